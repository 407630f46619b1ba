"""Session fixtures with real components, shared by the integration and browser layers (started once):
a single-node Ceph RGW and JupyterHub with its real proxy. Nothing starts unless a test asks for it."""

import os
import shutil

import pytest

from odh_spawner.localplatform.ceph import CephCluster
from odh_spawner.localplatform.hub import HubProcess, runtime_settings
from odh_spawner.localplatform.settings import load_settings
from tests.conftest import ARTIFACTS, ROOT
from tests.support.hubclient import HubUserSession

DEMO_DIR = os.path.join(ROOT, "config", "demo")
PASSWORDS = {"alice": "alice-odh", "bob": "bob-odh", "admin": "admin-odh"}


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is dead for our purposes
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.fixture(scope="session")
def ceph(tmp_path_factory):
    cluster = CephCluster(str(tmp_path_factory.mktemp("ceph")), report=print)
    cluster.start()
    yield cluster
    pids = cluster.pids
    cluster.stop()
    assert not [p for p in pids if pid_alive(p)], "Ceph daemons left running"


@pytest.fixture(scope="session")
def config_dir(tmp_path_factory):
    """A private copy of the demo configuration (tests edit profiles.yaml for hot reload)."""
    d = tmp_path_factory.mktemp("config")
    for name in ("platform.yaml", "profiles.yaml", "users.yaml"):
        shutil.copy(os.path.join(DEMO_DIR, name), d / name)
    return str(d)


@pytest.fixture(scope="session")
def hub(ceph, config_dir, tmp_path_factory):
    state = tmp_path_factory.mktemp("hub-state")
    runtime = runtime_settings(load_settings(config_dir), str(state), ceph.endpoint)
    os.makedirs(ARTIFACTS, exist_ok=True)
    proc = HubProcess(runtime, log_path=os.path.join(ARTIFACTS, "jupyterhub-integration.log"), report=print)
    proc.start()
    yield proc
    proc.stop()
    assert not pid_alive(proc.proc.pid)


@pytest.fixture(scope="session")
def login(hub):
    sessions = {}

    def _login(name: str) -> HubUserSession:
        if name not in sessions:
            sessions[name] = HubUserSession(hub.url, name, PASSWORDS[name])
        return sessions[name]

    return _login
