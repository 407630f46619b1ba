"""One lock, two runtimes: the virtualenv the local platform builds from an image's lock (odh_spawner.host.environments)
and a real server spawned from it through the hub.

The minimal lock's environment is built in the default cache (/var/cache/odh-hub/envs as root, else
~/.cache/odh-hub/envs; $ODH_ENV_CACHE overrides), the one the hub uses and tests/integration/test_image_locks.py
reuses: it survives between runs and is rebuilt only when its key (the lock's content, the Python version,
odh-hub's version and notebook files) changes. Cold it takes about half a minute with uv; cached, milliseconds.
"""

from __future__ import annotations

import os
import stat
import subprocess
import time

import pytest
import yaml

from odh_spawner.host.environments import MARKER, PROJECT_ROOT, LockEnvironments, parse_lock
from tests.support.fixtures import process_env, server_pid
from tests.support.kernel import Kernel
from tests.support.profiles import profile

MINIMAL = "images/minimal/requirements.lock"
PINS = parse_lock((PROJECT_ROOT / MINIMAL).read_text(), MINIMAL)


@pytest.fixture(scope="session")
def minimal_env():
    """The minimal lock's environment, built (or found) once per session in the shared cache."""
    envs = LockEnvironments()
    return envs, envs.ensure(MINIMAL, log=print)


def test_built_once_then_reused_and_complete(minimal_env):
    envs, first = minimal_env
    began = time.monotonic()
    again = envs.ensure(MINIMAL)
    took = time.monotonic() - began
    assert not again.built and again.path == first.path and again.key == first.key
    assert took < 1, f"a cached environment took {took:.2f} s to find"
    link = os.path.join(envs.cache_dir, first.key)
    assert os.path.islink(link) and os.path.realpath(link) == first.path  # published by an atomic symlink
    assert os.path.isfile(os.path.join(first.path, MARKER))
    # readable and executable by everyone, writable by the builder only
    py = os.path.join(first.bindir, "python")
    for path in (first.path, first.bindir, os.path.join(first.bindir, "jupyterhub-singleuser")):
        mode = stat.S_IMODE(os.stat(path).st_mode)
        assert mode & 0o005 == 0o005 and not mode & 0o022, (path, oct(mode))
    # exactly the lock's versions, consistent, and odh-hub's notebook side in it
    out = subprocess.run([py, "-c", "import importlib.metadata as m; print(m.version('jupyterhub'), "
                                    "m.version('jupyter-server'), m.version('odh-hub-notebook'))"],
                         capture_output=True, text=True, env={"PATH": os.defpath}, timeout=60, check=True)
    assert out.stdout.split() == [PINS.version("jupyterhub"), PINS.version("jupyter-server"), "0.1.0"]
    lab = os.path.join(first.path, "share/jupyter/labextensions/@odh-hub/labextension/package.json")
    assert os.path.isfile(lab)


def test_a_half_built_environment_is_never_used(minimal_env, tmp_path):
    envs, first = minimal_env
    other = LockEnvironments(cache_dir=str(tmp_path))
    half = tmp_path / f"{first.key}.d-dead"
    (half / "bin").mkdir(parents=True)  # what a builder that died leaves: no marker
    os.symlink(half.name, tmp_path / first.key)
    assert other.cached(MINIMAL) is None


def test_a_second_builder_waits_for_the_first_and_takes_its_result(minimal_env, tmp_path):
    """Builders of one key serialize on `<key>.lock` (flock: per open file, so threads, processes and hubs
    alike). Here the test is the first builder: it holds the lock, the second `ensure` waits; the first publishes
    its environment and lets go; the second returns that one without building."""
    import fcntl
    import threading

    envs, first = minimal_env
    other = LockEnvironments(cache_dir=str(tmp_path))
    key = other.key(MINIMAL)
    result = []
    with open(tmp_path / f"{key}.lock", "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        waiter = threading.Thread(target=lambda: result.append(other.ensure(MINIMAL)))
        waiter.start()
        waiter.join(1.5)
        assert waiter.is_alive() and not result, "the second builder did not wait for the lock"
        done = tmp_path / f"{key}.d-first"  # what the first builder publishes (a stand-in: no 30 s build)
        (done / "bin").mkdir(parents=True)
        (done / MARKER).write_text("{}")
        os.symlink(done.name, tmp_path / key)
    waiter.join(30)
    assert result and not result[0].built and result[0].path == str(done)
    assert sorted(os.listdir(tmp_path)) == sorted([key, f"{key}.d-first", f"{key}.lock"])  # it built nothing


def _edit_profiles(config_dir: str, extra: list[dict]) -> str:
    path = os.path.join(config_dir, "profiles.yaml")
    with open(path) as f:
        original = f.read()
    doc = yaml.safe_load(original)
    doc["profiles"].extend(extra)
    _write(path, yaml.safe_dump(doc))
    return original


def _write(path, text):
    with open(path, "w") as f:
        f.write(text)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))  # a new mtime: the hub re-reads it


def test_server_and_kernel_run_from_the_lock_environment(minimal_env, login, config_dir, hub):
    _, env = minimal_env
    path = os.path.join(config_dir, "profiles.yaml")
    original = _edit_profiles(config_dir, [
        profile("locked", users=["alice"], local={"environment": {"lock": MINIMAL}}),
        profile("missing-lock", users=["alice"], local={"environment": {"lock": "images/nope/requirements.lock"}}),
    ])
    alice = login("alice")
    try:
        assert {"locked", "missing-lock"} <= set(alice.offered_profiles())
        # a lock that is not there: the spawn fails at once and says why
        r = alice.api("POST", "/users/alice/server", json={"profile": "missing-lock"})
        assert r.status_code == 400 and "environment is misconfigured" in r.text and "Cannot read the lock" in r.text, \
            r.text
        assert alice.model()["servers"] == {}

        r = alice.api("POST", "/users/alice/server", json={"profile": "locked"})
        assert r.status_code in (201, 202), r.text
        alice.wait_ready()
        pid = server_pid(login("admin"), "alice")
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            argv = f.read().split(b"\0")
        assert argv[0].decode() == os.path.join(env.bindir, "python"), argv  # the script's shebang: the env's python
        penv = process_env(pid)
        assert penv["VIRTUAL_ENV"] == env.path and penv["PATH"].split(":")[0] == env.bindir
        assert "PYTHONPATH" not in penv  # nothing of the hub's (or the test run's) Python path
        assert penv["ODH_LOCAL_ENVIRONMENT"] == f"lock:{MINIMAL}"
        # the server extension answers from the lock environment
        r = alice.server_api("/odh/api/deployments")
        assert r.status_code == 200, r.text
        kernel = Kernel(f"{hub.url}/user/alice/", alice.token)
        try:
            out = kernel.execute("import sys, jupyter_server, server_extension; print(sys.prefix); "
                                 "print(jupyter_server.__version__); print(server_extension.__file__)")
        finally:
            kernel.close()
        prefix, version, ext = out.split()
        assert prefix == env.path and version == PINS.version("jupyter-server")
        assert ext.startswith(env.path + "/"), ext  # the installed copy, not the checkout's
        alice.stop()
    finally:
        _write(path, original)
        if alice.model()["servers"]:
            alice.stop()
    assert "locked" not in alice.offered_profiles()


def test_a_build_failure_leaves_nothing_and_fails_the_spawn_clearly(login, config_dir, tmp_path):
    """A lock pinning a version that does not exist: the build fails at its install step (uv asks the index:
    about a second), nothing half-built stays in the cache, and a spawn needing it shows the preparation stage
    and then fails with a message that says which step."""
    import threading

    bad = tmp_path / "bad.lock"
    bad.write_text(f"# a lock that cannot be installed ({time.time()})\nsix==0.0.0.0.1\n")
    os.chmod(tmp_path, 0o755)
    envs = LockEnvironments(cache_dir=str(tmp_path / "cache"))
    from odh_spawner.host.environments import EnvBuildError

    with pytest.raises(EnvBuildError, match="install the lock failed"):
        envs.ensure(str(bad), log=print)
    assert sorted(os.listdir(tmp_path / "cache")) == [f"{envs.key(str(bad))}.lock"]  # no env, no half-built dir

    path = os.path.join(config_dir, "profiles.yaml")
    original = _edit_profiles(config_dir, [profile("broken", users=["alice"],
                                                   local={"environment": {"lock": str(bad)}})])
    alice = login("alice")
    try:
        assert "broken" in alice.offered_profiles()
        posted = {}
        thread = threading.Thread(target=lambda: posted.update(r=alice.api("POST", "/users/alice/server",
                                                                            json={"profile": "broken"})))
        thread.start()
        deadline = time.monotonic() + 20
        while alice.model()["servers"].get("", {}).get("pending") != "spawn":
            assert time.monotonic() < deadline, "spawn never became pending"
            time.sleep(0.02)
        messages = [e.get("message", "") for e in alice.progress_messages()]
        thread.join()
        assert "Preparing the broken environment (first time only)" in messages, messages
        r = posted["r"]
        assert r.status_code == 503, r.text
        assert "The broken environment could not be prepared: install the lock failed" in r.json()["message"]
        assert alice.model()["servers"] == {}
        hub_cache = LockEnvironments()  # what the hub used: only the (empty) lock file of the key is left
        key = hub_cache.key(str(bad))
        assert not [n for n in os.listdir(hub_cache.cache_dir) if n.startswith(key) and not n.endswith(".lock")]
        os.unlink(os.path.join(hub_cache.cache_dir, f"{key}.lock"))
    finally:
        _write(path, original)
