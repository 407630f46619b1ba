"""RGW unreachable at spawn: the spawn fails within a bounded time with a message the user understands,
and nothing half-made is left (no server process, no server record)."""

import os
import socket
import time

import pytest

from odh_spawner.localplatform.hub import HubProcess, runtime_settings
from odh_spawner.localplatform.settings import load_settings
from tests.conftest import ARTIFACTS
from tests.support.hubclient import HubUserSession


@pytest.fixture
def hub_with_dead_storage(ceph, config_dir, tmp_path):
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        dead = s.getsockname()[1]
    runtime = runtime_settings(load_settings(config_dir), str(tmp_path), ceph)
    runtime.update(s3_endpoint=f"http://127.0.0.1:{dead}", idle_culler={"enabled": False})
    hub = HubProcess(runtime, log_path=os.path.join(ARTIFACTS, "jupyterhub-storage-down.log")).start()
    yield hub
    hub.stop()


def test_spawn_fails_fast_and_clean_when_storage_is_down(hub_with_dead_storage):
    alice = HubUserSession(hub_with_dead_storage.url, "alice", "alice-odh")
    t0 = time.monotonic()
    r = alice.api("POST", "/users/alice/server", json={"profile": "minimal"})
    elapsed = time.monotonic() - t0
    assert r.status_code == 503, r.text
    assert "Object storage is not reachable" in r.json()["message"]
    assert elapsed < 35  # 3 x OdhStorage.timeout at most
    assert alice.model()["servers"] == {}
