"""Every Python block of README.md and docs/user-guide.md runs, in a real kernel of the profile it is written for,
against the real local platform (hub and proxy, Ceph RGW, the Kafka broker, Spark, MLServer), as alice would
run it after `make up`: the demo profiles as shipped, each in its lock environment (built once and cached, as
`make up` builds them), as in the integration and browser layers. How a block names its profile
and the hidden setup and checks it needs: tests/support/docblocks.py. `make test-docs` runs this layer alone.

A block that raises fails the test with the document and line of the block; its hidden checks assert the
output the docs describe where it is stable.
"""

from __future__ import annotations

import os
import sys

import pytest

from odh_spawner.localplatform.settings import load_settings
from tests.support import docblocks
from tests.support.fixtures import DEMO_DIR, server_pid
from tests.support.kernel import Kernel, KernelError

SESSIONS = docblocks.sessions(docblocks.all_blocks())
USER = "alice"


@pytest.fixture(scope="module")
def demo_profiles(hub, config_dir):
    """The session's hub serves the demo profiles as shipped (each in its image's lock environment, built by
    the `hub` fixture); checked here, since this layer's point is to run where users run."""
    with open(os.path.join(DEMO_DIR, "profiles.yaml"), encoding="utf-8") as f:
        demo = f.read()
    with open(load_settings(config_dir).profiles_file, encoding="utf-8") as f:
        assert f.read() == demo, "the session's profiles differ from config/demo/profiles.yaml"


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
