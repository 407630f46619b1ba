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
