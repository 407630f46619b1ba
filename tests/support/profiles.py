"""Profile documents for tests."""

import copy

DIGEST = "sha256:" + "a" * 64


def profile(slug="p", **overrides) -> dict:
    base = {
        "slug": slug,
        "display_name": f"Profile {slug}",
        "image": f"quay.io/example/{slug}@{DIGEST}",
        "sizes": [
            {"slug": "small", "cpu": {"request": "500m", "limit": 1}, "memory": {"request": "1Gi", "limit": "2Gi"},
             "default": True},
            {"slug": "large", "cpu": {"request": 2, "limit": 4}, "memory": {"request": "4Gi", "limit": "8Gi"}},
        ],
    }
    base.update(copy.deepcopy(overrides))
    return base


def document(*profiles) -> dict:
    return {"profiles": list(profiles) or [profile()]}


def hub_environments(path) -> None:
    """Rewrite a copy of a profile file so every profile runs locally in the hub's own Python environment: the
    demo profiles name image locks, whose environments take a build (odh_spawner.host.environments) that tests
    spawning with the demo profiles must not pay; tests/integration/test_lock_environments.py covers locks."""
    import yaml

    with open(path, encoding="utf-8") as f:
        doc = yaml.safe_load(f)
    for p in doc["profiles"]:
        p["local"] = {"environment": "hub"}
    with open(path, "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f, sort_keys=False)


def demo_config_in_hub_environment(dest: str) -> str:
    """A copy of config/demo in `dest` whose profiles all run in the hub's own Python (see hub_environments):
    for benchmarks that compare spawns with a plain LocalProcessSpawner or with earlier results."""
    import os
    import shutil

    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    shutil.copytree(os.path.join(root, "config", "demo"), dest)
    hub_environments(os.path.join(dest, "profiles.yaml"))
    return dest


MISSING_LOCK = "/nonexistent/odh-hub/requirements.lock"  # no such file: a spawn from it fails in Spawner.start


def broken_profile(slug: str, users: list[str]) -> dict:
    """A profile whose lock environment cannot be read: a real spawn from it fails at start with the spawner's
    message "The '<slug>' environment is misconfigured: Cannot read the lock ..." (after the hub has begun it)."""
    return profile(slug, users=list(users), local={"environment": {"lock": MISSING_LOCK}})


class extra_profiles:
    """Profiles added to the hub's profile file (re-read on change, so the running hub offers them) for the
    `with` block; the file is written back as it was afterwards."""

    def __init__(self, config_dir: str, *profiles: dict):
        import os

        self.path = os.path.join(config_dir, "profiles.yaml")
        self.profiles = profiles

    def _write(self, text: str) -> None:
        import os

        with open(self.path, "w", encoding="utf-8") as f:
            f.write(text)
        st = os.stat(self.path)
        os.utime(self.path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a new mtime: the hub re-reads it

    def __enter__(self):
        import yaml

        with open(self.path, encoding="utf-8") as f:
            self.original = f.read()
        doc = yaml.safe_load(self.original)
        doc["profiles"].extend(copy.deepcopy(self.profiles))
        self._write(yaml.safe_dump(doc, sort_keys=False))
        return self

    def __exit__(self, *exc):
        self._write(self.original)
        return False
