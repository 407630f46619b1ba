"""Users are isolated on local Spark clusters: each cluster has its own secret (`spark.authenticate`), only its
owner's notebook gets it, and (as root) the cluster runs as the owner's system user.

Everything here is real: a Spark standalone master and worker from the pinned pyspark, drivers in separate
Python processes with nothing but the environment a notebook server gets, and, when the tests run as root (CI
does), two real system users made with `localusers.ensure_system_user` (removed again at the end).
"""

import json
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid

import pytest

from odh_spawner.host import users as localusers
from odh_spawner.host.portguard import PortGuard
from odh_spawner.spark import LocalSparkCluster, auth, procs
from odh_spawner.spark.daemon import fetch_master_json
from odh_spawner.spark.state import read_state
from tests.integration import test_spark_local
from tests.integration.test_spark_local import SMALL, spark_jvms

clusters, spark_root = test_spark_local.clusters, test_spark_local.spark_root  # its fixtures, used here too

REFUSED_WITHIN = 120.0  # seconds a refused application may take to print why (a JVM start on a busy machine)
# what a refused driver prints, measured with Spark 4.3: the master's SASL handler answers a driver that does not
# authenticate (no secret) with the first, and a wrong secret fails the DIGEST-MD5 exchange with the second
NO_SECRET = "Expected SaslMessage, received something else (maybe your client does not have SASL enabled?)"
WRONG_SECRET = "javax.security.sasl.SaslException: DIGEST-MD5: digest response format violation"
as_root = pytest.mark.skipif(os.geteuid() != 0, reason="system users need root (CI runs as root)")

# a notebook: a plain getOrCreate() (no configuration), one job, then it holds its application (and executors)
# until its stdin closes, so the test can look at every process of the cluster meanwhile
DRIVER = """
import sys
from pyspark.sql import SparkSession
b = SparkSession.builder.appName(sys.argv[1])
s = (b if sys.argv[2:] == ["ui"] else b.config("spark.ui.enabled", "false")).getOrCreate()
print("RESULT", s.range(1000).groupBy().sum("id").first()[0], flush=True)
sys.stdin.read()
s.stop()
"""


def pyspark_path() -> str:
    import pyspark

    return os.path.dirname(os.path.dirname(os.path.abspath(pyspark.__file__)))


class Driver:
    """A notebook-like driver process (ours: stopped by PID in `close`)."""

    def __init__(self, env: dict, app: str, user: localusers.SystemUser | None = None, python: str = sys.executable,
                 ui: bool = False):
        identity = {}
        if user is not None:
            identity = dict(user=user.uid, group=user.gid, extra_groups=user.groups, cwd=user.home)
        self.app = app
        self.err = ""  # what `wait_for_error` read of its stderr so far
        self.proc = subprocess.Popen([python, "-c", DRIVER, app, *(["ui"] if ui else [])], env=env, stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     start_new_session=True, **identity)

    def result(self, timeout: float) -> str:
        """The job's result line, or "" when there is none within `timeout` (the driver keeps running)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and self.proc.poll() is None:
            import select

            ready, _, _ = select.select([self.proc.stdout], [], [], 0.5)
            if ready:
                line = self.proc.stdout.readline()
                if line.startswith("RESULT"):
                    return line.split()[1]
        return ""

    def wait_for_error(self, text: str, timeout: float) -> str:
        """Read the driver's stderr until `text` is in it, it exits or `timeout` passes; return what was read."""
        import select

        deadline = time.monotonic() + timeout
        while text not in self.err and time.monotonic() < deadline:
            ready, _, _ = select.select([self.proc.stderr], [], [], 0.5)
            if ready:
                line = self.proc.stderr.readline()
                if not line:
                    break
                self.err += line
        return self.err

    def jvm(self) -> int | None:
        """The driver's JVM (spark-submit's SparkSubmit, a descendant of the Python process)."""
        for pid in all_pids():
            if "org.apache.spark.deploy.SparkSubmit" in procs.cmdline(pid) and self.proc.pid in ancestors(pid):
                return pid
        return None

    def close(self, grace: float = 20.0) -> str:
        """Stop the driver (its whole session: pyspark's JVM too); return its stderr."""
        try:
            self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(grace)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)  # what is left of its session (the JVM)
        except (ProcessLookupError, PermissionError):
            pass
        self.err += self.proc.stderr.read()
        return self.err


@pytest.fixture
def drivers():
    made: list[Driver] = []

    def make(*args, **kw) -> Driver:
        made.append(Driver(*args, **kw))
        return made[-1]

    yield make
    for d in made:
        d.close()


def all_pids() -> list[int]:
    return [int(e) for e in os.listdir("/proc") if e.isdigit()]


def ancestors(pid: int) -> list[int]:
    out = []
    while pid > 1:
        try:
            with open(f"/proc/{pid}/stat") as f:
                pid = int(f.read().rsplit(") ", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            break
        out.append(pid)
    return out


def uid_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("Uid:"))


def executors(cluster: LocalSparkCluster) -> list[int]:
    return [p for p in procs.cluster_pids(cluster.conf_dir)
            if "org.apache.spark.executor.CoarseGrainedExecutorBackend" in procs.cmdline(p)]


def base_env() -> dict:
    return {k: os.environ[k] for k in ("PATH", "LANG", "JAVA_HOME") if k in os.environ}


def app_names(cluster: LocalSparkCluster) -> list[str]:
    data = fetch_master_json(cluster.ui_url) or {}
    return [a["name"] for a in data.get("activeapps", []) + data.get("completedapps", [])]


def assert_refused(cluster: LocalSparkCluster, driver: Driver, cause: str) -> str:
    """`driver` is refused for lack of the secret: Spark's authentication error `cause` is in its own output
    (never just "no result so far"), it printed no result, and the master has no application of its name."""
    err = driver.wait_for_error(cause, REFUSED_WITHIN)
    assert cause in err, f"{driver.app} was not refused by authentication; its output ends:\n{err[-3000:]}"
    assert driver.app not in app_names(cluster)
    out = driver.close(grace=0)
    assert "RESULT" not in driver.proc.stdout.read(), f"{driver.app} ran a job on a cluster it has no secret of"
    return out


def no_secret_on_any_command_line(secret: str) -> None:
    leaks = [(pid, procs.cmdline(pid)[:3]) for pid in all_pids() if any(secret in a for a in procs.cmdline(pid))]
    assert leaks == [], f"the cluster secret is on the command line of {leaks}"


async def test_only_the_owners_notebook_attaches(clusters, drivers, tmp_path):
    cluster = clusters("owned")
    await cluster.start()
    secret = auth.read_secret(cluster.directory)
    assert secret and len(secret) >= 40
    state = read_state(cluster.directory)
    assert state.authenticate and secret not in json.dumps(state.to_json())

    # what the notebook gets: the conf directory, not the secret; the file holding it is private
    env = cluster.notebook_env(python=sys.executable)
    assert secret not in json.dumps(env) and env["SPARK_CONF_DIR"] == cluster.notebook_conf_dir
    defaults = os.path.join(env["SPARK_CONF_DIR"], "spark-defaults.conf")
    assert os.stat(env["SPARK_CONF_DIR"]).st_mode & 0o777 == 0o700 and os.stat(defaults).st_mode & 0o777 == 0o600
    assert os.stat(os.path.join(cluster.directory, auth.SECRET_FILE)).st_mode & 0o777 == 0o600
    with open(os.path.join(cluster.conf_dir, "spark-defaults.conf")) as f:
        assert secret not in f.read()  # the daemons' configuration holds no secret

    owner = drivers({**base_env(), **env}, "owner-app")
    assert owner.result(180) == "499500", owner.close()[-3000:]
    # while the owner's application holds its executor: no Spark process carries the secret on its command line
    (executor,) = executors(cluster)
    jvm = owner.jvm()
    assert jvm is not None
    no_secret_on_any_command_line(secret)
    with open(f"/proc/{executor}/environ", "rb") as f:  # executors get it from their worker's environment
        assert f"{auth.SECRET_ENV}={secret}".encode() in f.read().split(b"\0")

    # an application with no secret, and one with a wrong one, never register
    plain = {**base_env(), **{k: v for k, v in env.items() if k != "SPARK_CONF_DIR"}}
    stranger = drivers(plain, "no-secret-app")
    wrong_conf = tmp_path / "wrong-conf"
    wrong_conf.mkdir(mode=0o700)
    (wrong_conf / "spark-defaults.conf").write_text(auth.render_conf(auth.driver_conf(auth.new_secret())))
    impostor = drivers({**plain, "SPARK_CONF_DIR": str(wrong_conf)}, "wrong-secret-app")
    assert_refused(cluster, stranger, NO_SECRET)
    assert_refused(cluster, impostor, WRONG_SECRET)
    assert (await cluster.status()).workers_alive == 1  # the cluster is unharmed
    owner.close()

    # a restart keeps the secret (the notebook keeps its configuration): the owner attaches again
    await cluster.restart()
    assert auth.read_secret(cluster.directory) == secret
    again = drivers({**base_env(), **env}, "owner-again")
    assert again.result(180) == "499500", again.close()[-3000:]
    again.close()

    await cluster.stop()
    assert auth.read_secret(cluster.directory) is None and not os.path.exists(cluster.notebook_conf_dir)


# -- as root: the cluster runs as the owner's system user ------------------------------------------------------
@pytest.fixture(scope="session")
def shared_tmp():
    """A temporary directory other users may pass through (0711). Not pytest's: pytest keeps its temporary
    root at 0700 and resets it whenever any pytest run on the machine starts."""
    path = tempfile.mkdtemp(prefix="odh-spark-auth-")
    os.chmod(path, 0o711)
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def system_users(shared_tmp):
    """Two system users of unique hub names, homes under a temporary directory; deleted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("system users need root")
    tag = uuid.uuid4().hex[:8]
    made = []
    try:
        for who in ("owner", "other"):
            made.append(localusers.ensure_system_user(f"sp{tag}-{who}", os.path.join(shared_tmp, "homes", who)))
        yield made
    finally:
        for user in made:
            if pwd.getpwnam(user.name).pw_gecos.split(",")[0] == localusers.MARK:
                subprocess.run(["userdel", user.name], capture_output=True, timeout=30)


@pytest.fixture
def user_cluster(shared_tmp):
    """A cluster under a directory users can reach; stopped afterwards, no JVM of it left."""
    root = os.path.join(shared_tmp, uuid.uuid4().hex[:8])
    made = []

    def make(name: str, **kw) -> LocalSparkCluster:
        made.append(LocalSparkCluster(root, name, SMALL, user="owner", **kw))
        return made[-1]

    yield make
    for cluster in made:
        cluster.stop_blocking()
    left = spark_jvms(root)
    for pid in left:
        procs.signal_pid(pid, signal.SIGKILL)
    assert not left, f"Spark processes left running: {left}"


def user_python(user: localusers.SystemUser) -> tuple[str, dict]:
    """A Python the user may run, with pyspark importable (the venv's may live under root's 0700 home)."""
    for python in (sys.executable, "/usr/bin/python3"):
        env = {**base_env(), "PYTHONPATH": pyspark_path()}
        try:
            probe = subprocess.run([python, "-c", "import pyspark"], env=env, user=user.uid, group=user.gid,
                                   cwd=user.home, capture_output=True, timeout=60)
        except PermissionError:  # e.g. the venv's interpreter lives under /root (0700)
            continue
        if probe.returncode == 0:
            return python, env
    pytest.skip("no Python interpreter with pyspark that a system user may run")


@pytest.fixture
def guard_id():
    """A test's own nftables table (host.portguard), removed afterwards."""
    gid = "test" + uuid.uuid4().hex[:8]
    yield gid
    PortGuard(gid).remove()


def connect_as(user: localusers.SystemUser | None, port: int) -> str:
    """'connected', or the exception and errno of a TCP connection to 127.0.0.1:`port` as `user` (None: root)."""
    code = ("import socket\ntry:\n    socket.create_connection(('127.0.0.1', %d), timeout=5).close()\n"
            "    print('connected')\nexcept OSError as e:\n    print(type(e).__name__, e.errno)" % port)
    identity = dict(user=user.uid, group=user.gid, extra_groups=user.groups) if user is not None else {}
    out = subprocess.run([sys.executable if user is None else "/usr/bin/python3", "-c", code], capture_output=True,
                         text=True, timeout=30, **identity)
    return out.stdout.strip() or out.stderr.strip()[-300:]


def can_read(user: localusers.SystemUser, path: str) -> bool:
    out = subprocess.run(["cat", path], user=user.uid, group=user.gid, extra_groups=user.groups,
                         capture_output=True, timeout=30)
    return out.returncode == 0


@as_root
async def test_a_users_cluster_runs_as_them_and_keeps_others_out(user_cluster, drivers, system_users, guard_id):
    owner, other = system_users
    cluster = user_cluster("isolated", run_as=owner, port_guard_id=guard_id)
    await cluster.start()
    for pid in cluster.pids:  # master and worker run as the owner
        assert uid_of(pid) == owner.uid
    state = read_state(cluster.directory)
    assert state.run_as == {"name": owner.name, "uid": owner.uid, "gid": owner.gid, "home": owner.home}
    st = os.stat(cluster.work_dir)
    assert (st.st_uid, st.st_mode & 0o777) == (owner.uid, 0o700)
    st = os.stat(cluster.notebook_conf_dir)
    assert (st.st_uid, st.st_mode & 0o777) == (owner.uid, 0o700)
    assert os.stat(cluster.directory).st_uid == 0 and os.stat(cluster.directory).st_mode & 0o777 == 0o711

    python, env = user_python(owner)
    notebook = {**env, **owner.env(), **cluster.notebook_env(python=python)}
    app = drivers(notebook, "owner-as-user", user=owner, python=python, ui=True)
    assert app.result(180) == "499500", app.close()[-3000:]

    # the web UIs (master, worker, the owner's driver) answer the owner and root; the other user is reset by the
    # guard (ECONNREFUSED: the SYN is answered with a TCP reset) while the UI is up and listening
    state = read_state(cluster.directory)
    driver_ui = state.driver_ui_ports[0]
    with open(os.path.join(cluster.notebook_conf_dir, "spark-defaults.conf")) as f:
        assert f"spark.ui.port {driver_ui}\n" in f.read()
    ui_ports = [state.master.ui_port, state.workers[0].ui_port, driver_ui]
    assert state.guard_id == guard_id and PortGuard(guard_id).owned() == {p: {owner.uid} for p in state.ui_ports}
    for port in ui_ports:
        assert connect_as(owner, port) == "connected", port
        assert connect_as(None, port) == "connected", port
        assert connect_as(other, port) == "ConnectionRefusedError 111", port
    (executor,) = executors(cluster)
    assert uid_of(executor) == owner.uid and uid_of(app.jvm()) == owner.uid
    secret = auth.read_secret(cluster.directory)
    no_secret_on_any_command_line(secret)

    # the other user reads neither the secret (the platform's copy, the notebook's) nor the processes' environment
    for path in (os.path.join(cluster.directory, auth.SECRET_FILE),
                 os.path.join(cluster.notebook_conf_dir, "spark-defaults.conf"),
                 *(f"/proc/{pid}/environ" for pid in [*cluster.pids, executor])):
        assert not can_read(other, path), path
    assert can_read(owner, os.path.join(cluster.notebook_conf_dir, "spark-defaults.conf"))
    assert not can_read(other, os.path.join(cluster.log_dir, "master.log"))
    assert can_read(owner, os.path.join(cluster.log_dir, "master.log"))

    # ... and cannot attach an application, even pointing at the owner's configuration directory
    stranger = drivers({**env, **other.env(), **cluster.notebook_env(python=python)}, "other-as-user", user=other,
                       python=python)
    assert_refused(cluster, stranger, NO_SECRET)

    # the platform service (a fresh handle from the state file) scales and restarts as the same user
    handle = LocalSparkCluster.attach(read_state(cluster.directory))
    assert handle.run_as == owner
    await handle.scale(2)
    for pid in handle.pids:
        assert uid_of(pid) == owner.uid
    added = read_state(cluster.directory).workers[1].ui_port  # guarded by the platform's handle
    assert connect_as(other, added) == "ConnectionRefusedError 111" and connect_as(owner, added) == "connected"
    app.close()
    await handle.restart()
    for pid in handle.pids:
        assert uid_of(pid) == owner.uid
    assert (await handle.status()).workers_alive == 2
    restarted = read_state(cluster.directory)
    assert PortGuard(guard_id).owned() == {p: {owner.uid} for p in restarted.ui_ports}  # replaced workers' went
    again = drivers(notebook, "owner-after-restart", user=owner, python=python)
    assert again.result(180) == "499500", again.close()[-3000:]
    again.close()
    handle.release()
    await cluster.stop()  # the hub's handle stops what the platform service started (from the state file)
    assert procs.cluster_pids(cluster.conf_dir) == []
    assert PortGuard(guard_id).owned() == {}, "a stopped cluster's UI ports are released"
