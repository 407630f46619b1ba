"""Session fixtures with real components, shared by the integration and browser layers (started once):
a single-node Ceph RGW and JupyterHub with its real proxy. Nothing starts unless a test asks for it."""

import os
import shutil

import pytest
import requests
import yaml

from odh_spawner.localplatform.ceph import CephCluster
from odh_spawner.host import procs
from odh_spawner.localplatform.hub import HubProcess, runtime_settings
from odh_spawner.localplatform.settings import load_settings
from tests.conftest import ARTIFACTS, ROOT
from tests.support import secretscan
from tests.support.hubclient import HubUserSession
from tests.support.wait import wait_for

DEMO_DIR = os.path.join(ROOT, "config", "demo")
INGESTIONS_PER_USER = 4
PASSWORDS = {"alice": "alice-odh", "bob": "bob-odh", "admin": "admin-odh", "carol": "carol-odh"}
# carol (tests only) is in the small-quota group `students` (tests/integration/test_usage_quotas.py)
STUDENT_QUOTAS = {"storage": "2Mi", "deployments": 0, "ingestions": 1, "spark_workers": 1}


def pid_alive(pid: int) -> bool:
    """A process runs (a zombie whose threads have all exited is dead for our purposes)."""
    return procs.alive(pid)


def process_env(pid: int) -> dict[str, str]:
    """A process's environment, read from /proc (how tests see what a server really got). The values of its
    secret-named variables join the session's secret scan (tests.support.secretscan.is_secret_name says which:
    AWS_SECRET_ACCESS_KEY, JUPYTERHUB_API_TOKEN, JPY_API_TOKEN, ...; not AWS_ACCESS_KEY_ID, nor paths)."""
    with open(f"/proc/{pid}/environ", "rb") as f:
        items = [kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv]
    env = {k.decode(): v.decode() for k, v in items}
    secretscan.register_env(env, f"environment of pid {pid}")
    return env


def wait_spark_ready(env: dict, workers: int, timeout: float = 120) -> dict:
    """The spawn returns once the notebook server answers; its Spark cluster boots beside it. Wait until the
    master (its UI URL from the server's environment) leads with `workers` workers ALIVE; return its JSON."""
    def ready():
        try:
            data = requests.get(env["ODH_SPARK_UI_URL"] + "/json/", timeout=5).json()
        except (requests.RequestException, ValueError):
            return None
        alive = [w for w in data.get("workers", []) if w.get("state") == "ALIVE"]
        return data if data.get("status") == "ALIVE" and len(alive) >= workers else None

    return wait_for(ready, timeout, f"the Spark master and {workers} worker(s) to be up")


def server_pid(admin: HubUserSession, name: str) -> int:
    """A user's server PID from the hub's server state (needs the admin:server_state scope)."""
    return admin.api("GET", f"/users/{name}").json()["servers"][""]["state"]["pid"]


def build_lock_environments(config_dir: str) -> None:
    """The lock environments of the profiles in `config_dir`, built now if not cached (where the hub looks), so
    that no spawn waits for a build (a first build takes a minute or two; `make up` prebuilds the same way)."""
    from odh_spawner.host.environments import LockEnvironments, lock_envs_of
    from odh_spawner.profiles.format import load_profiles

    envs = LockEnvironments()
    for lock, slug in lock_envs_of(load_profiles(load_settings(config_dir).profiles_file)).items():
        built = envs.ensure(lock, log=lambda m, slug=slug: print(f"{slug}: {m}", flush=True))
        print(f"{slug}: {lock}: {'built' if built.built else 'cached'} at {built.path}")


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
    """A private copy of the demo configuration (tests edit profiles.yaml for hot reload). The demo profiles
    stay as shipped: servers run in their images' lock environments, as users' do after `make up` (built once
    and cached, see `hub`), not in the hub's own Python."""
    d = tmp_path_factory.mktemp("config")
    for name in ("platform.yaml", "profiles.yaml", "users.yaml"):
        shutil.copy(os.path.join(DEMO_DIR, name), d / name)
    platform = yaml.safe_load((d / "platform.yaml").read_text())
    platform["deployments"]["max_model_size"] = "8Mi"  # so the size limit is testable with small uploads
    platform["kafka"]["max_ingestions_per_user"] = INGESTIONS_PER_USER  # reachable in a test
    platform.setdefault("quotas", {}).setdefault("groups", {})["students"] = STUDENT_QUOTAS
    (d / "platform.yaml").write_text(yaml.safe_dump(platform))
    from odh_spawner.auth.passwords import hash_password

    users = yaml.safe_load((d / "users.yaml").read_text())
    users["users"]["carol"] = {"password_hash": hash_password(PASSWORDS["carol"]), "groups": ["students"],
                               "admin": False}
    (d / "users.yaml").write_text(yaml.safe_dump(users))
    return str(d)


@pytest.fixture(scope="session")
def hub(ceph, config_dir, tmp_path_factory, kafka_broker):
    build_lock_environments(config_dir)
    state = tmp_path_factory.mktemp("hub-state")
    runtime = runtime_settings(load_settings(config_dir), str(state), ceph, kafka_broker)
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


class RunningServer:
    """A user's running notebook server, reached through the hub's proxy."""

    def __init__(self, session: HubUserSession, pid: int):
        self.session = session
        self.name = session.name
        self.pid = pid
        self.url = f"{session.url}/user/{session.name}/"
        self.token = session.token

    @property
    def env(self) -> dict:
        return process_env(self.pid)

    def client(self):
        from server_extension.client import BucketClient

        return BucketClient(self.url, self.token)


@pytest.fixture(scope="module")
def user_server(login):
    """Start (once per test module) a user's server with the Standard Data Science profile (its lock
    environment: pandas, scikit-learn, pyarrow, MLflow, the Kafka client; no Spark cluster unless asked);
    stopped after the module, so other modules find users without servers."""
    running: dict[str, RunningServer] = {}

    def _server(name: str) -> RunningServer:
        if name not in running:
            user = login(name)
            r = user.api("POST", f"/users/{name}/server", json={"profile": "datascience"})
            assert r.status_code in (201, 202), r.text
            user.wait_ready()
            running[name] = RunningServer(user, server_pid(login("admin"), name))
        return running[name]

    yield _server
    for server in running.values():
        server.session.stop()
