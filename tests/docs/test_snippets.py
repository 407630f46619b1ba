"""Every Python block of README.md and docs/user-guide.md runs, in a real kernel of the profile it is written for,
against the real local platform (hub and proxy, Ceph RGW, the Kafka broker, Spark, MLServer), as alice would
run it after `make up`: the demo profiles as shipped, each in its lock environment (built once and cached, as
`make up` builds them), not the hub's own environment that other suites spawn in. How a block names its profile
and the hidden setup and checks it needs: tests/support/docblocks.py. `make test-docs` runs this layer alone.

A block that raises fails the test with the document and line of the block; its hidden checks assert the
output the docs describe where it is stable.
"""

from __future__ import annotations

import os
import sys

import pytest

from odh_spawner.host.environments import LockEnvironments, lock_envs_of
from odh_spawner.localplatform.settings import load_settings
from odh_spawner.profiles.format import load_profiles
from tests.support import docblocks
from tests.support.fixtures import DEMO_DIR, server_pid
from tests.support.kernel import Kernel, KernelError

SESSIONS = docblocks.sessions(docblocks.all_blocks())
USER = "alice"


def _touch_write(path: str, text: str) -> None:
    """Write and move the mtime on, so the hub's hot reload sees the change even within one second."""
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    st = os.stat(path)
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000))


@pytest.fixture(scope="module")
def demo_profiles(hub, config_dir):
    """The demo profiles as shipped (config/demo/profiles.yaml: each profile in its image's lock environment),
    hot-reloaded into the session's hub in place of the hub-environment rewrite; put back afterwards. Their
    environments are built first (once; cached where the hub looks), so a spawn does not wait for a build."""
    demo = os.path.join(DEMO_DIR, "profiles.yaml")
    envs = LockEnvironments()
    for lock, slug in lock_envs_of(load_profiles(demo)).items():
        built = envs.ensure(lock, log=lambda m, slug=slug: print(f"{slug}: {m}", flush=True))
        print(f"{slug}: {lock}: {'built' if built.built else 'cached'}: {built.path}")
    path = os.path.join(config_dir, "profiles.yaml")
    with open(path, encoding="utf-8") as f:
        rewritten = f.read()
    with open(demo, encoding="utf-8") as f:
        _touch_write(path, f.read())
    assert load_settings(config_dir).profiles_file == path
    yield
    _touch_write(path, rewritten)


def _start(session, profile: str, spark: int):
    session.stop() if session.model()["servers"].get("") else None
    options = {"profile": profile, **({"spark": {"workers": spark}} if spark else {})}
    r = session.api("POST", f"/users/{session.name}/server", json=options)
    assert r.status_code in (201, 202), r.text
    session.wait_ready(timeout=300)


@pytest.mark.parametrize("key", list(SESSIONS), ids=[f"{doc}:{profile}" for doc, profile in SESSIONS])
def test_documented_blocks_run_in_their_profile(key, demo_profiles, login):
    doc, profile = key
    blocks = SESSIONS[key]
    spark = max(b.spark for b in blocks)
    alice = login(USER)
    _start(alice, profile, spark)
    admin = login("admin")
    pid = server_pid(admin, USER)
    env = open(f"/proc/{pid}/environ", "rb").read().split(b"\0")
    venv = next((e.split(b"=", 1)[1].decode() for e in env if e.startswith(b"VIRTUAL_ENV=")), "")
    exe = os.readlink(f"/proc/{pid}/exe")
    print(f"{doc} in {profile}: server pid {pid} runs {exe} (VIRTUAL_ENV={venv or '-'})")
    kernel = Kernel(f"{alice.url}/user/{USER}/", alice.token)
    try:
        # the kernel runs in the profile's lock environment, not the hub's
        where = kernel.execute("import sys; print(sys.prefix)").strip()
        assert where != os.path.realpath(sys.prefix) and "/envs/" in where, where
        if spark:
            kernel.execute("from odh_hub import spark_status\nimport time\n"
                           "t = time.monotonic()\n"
                           f"while spark_status().get('workers_alive', 0) < {spark}:\n"
                           "    assert time.monotonic() - t < 180, spark_status()\n"
                           "    time.sleep(1)\n", timeout=240)
        for b in blocks:
            for part, code in (("setup", b.setup), ("block", b.code), ("check", b.check)):
                if not code.strip():
                    continue
                try:
                    out = kernel.execute(code, timeout=600)
                except KernelError as e:
                    pytest.fail(f"{b.where} ({part} of the block, profile {profile}) failed:\n{e}")
                print(f"--- {b.where} {part}:\n{out}")
    finally:
        kernel.close()
        alice.stop(timeout=120)
