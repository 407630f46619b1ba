"""The user's Spark cluster from the notebook side, through the real hub, its proxy, the platform service and a
real Spark standalone cluster: status, scaling within limits, isolation between users, the Spark UI through the
hub's proxy, the ipywidgets panel, restart, stop, and reaping after a hub crash.

Processes are checked through the cluster's state file (PID, start time, ports) and /proc (every JVM carrying
the cluster's configuration directory), never by name.
"""

from __future__ import annotations

import html
import json
import os
import pwd
import re
import signal
import time
from concurrent.futures import ThreadPoolExecutor

import psutil
import pytest
import requests

from odh_spawner.host.portguard import PortGuard
from odh_spawner.localplatform.hub import HubProcess, runtime_settings
from odh_spawner.localplatform.settings import load_settings
from odh_spawner.spark import procs
from odh_spawner.spark.state import ClusterState, read_state
from server_extension.spark_client import SparkClient, spark_status, spark_ui_url
from server_extension.spark_widget import SparkClusterWidget
from tests.conftest import ARTIFACTS
from tests.support.fixtures import PASSWORDS, pid_alive, process_env
from tests.support.hubclient import HubUserSession
from tests.support.kernel import Kernel, KernelError
from tests.support.wait import wait_for

SPARK_OPTIONS = {"profile": "datascience", "spark": {"workers": 1}}  # the profile allows at most 3 workers
LIMIT_MESSAGE = "4 Spark workers exceed this profile's limit of 3."
DRIVER = """
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("odh-notebook").config("spark.ui.showConsoleProgress", "false").getOrCreate()
print("count", spark.range(1000).count())
from server_extension.spark_client import spark_status
s = spark_status()
print("apps", [a["name"] for a in s["applications"]], s["state"])
"""


def cluster_state(hub, user: str = "alice") -> ClusterState | None:
    return read_state(os.path.join(hub.runtime["state_dir"], "spark-clusters", user))


def ports_of(state: ClusterState) -> list[int]:
    return [port for p in state.processes for port in (p.port, p.ui_port)]


def assert_cluster_gone(state: ClusterState, timeout: float = 30) -> None:
    """No process of the cluster is left: not the recorded PIDs, no JVM with its configuration, no port."""
    wait_for(lambda: not any(procs.alive(p.pid, p.started) for p in state.processes), timeout,
             "the cluster's processes to exit")
    assert procs.cluster_pids(state.conf_dir) == []
    assert not [port for port in ports_of(state) if procs.listening(port)]


class SparkUser:
    """A user's server with Spark, called through the hub's proxy with the user's token."""

    def __init__(self, session: HubUserSession):
        self.session = session
        self.url = f"{session.url}/user/{session.name}/"
        self.auth = session.auth

    def call(self, method: str, path: str, **kw) -> requests.Response:
        return requests.request(method, self.url + "odh/api/" + path, headers=self.auth, timeout=300, **kw)

    def get(self, path: str = "spark") -> dict:
        r = self.call("GET", path)
        assert r.status_code == 200, r.text
        return r.json()

    def post(self, path: str, body: dict) -> dict:
        r = self.call("POST", path, json=body)
        assert r.status_code == 200, r.text
        return r.json()


def spawn_with_spark(session: HubUserSession) -> None:
    r = session.api("POST", f"/users/{session.name}/server", json=SPARK_OPTIONS)
    assert r.status_code in (201, 202), r.text
    session.wait_ready(timeout=180)


@pytest.fixture(scope="module")
def alice(login):
    session = login("alice")
    spawn_with_spark(session)
    user = SparkUser(session)
    # the spawn returns once the notebook server answers; the cluster boots beside it
    wait_for(lambda: user.get()["state"] == "running", 120, "alice's Spark cluster to be running")
    yield user
    if session.model()["servers"].get(""):
        session.stop()


def test_status_through_the_users_own_server(alice, hub):
    s = alice.get()
    state = cluster_state(hub)
    env = process_env(state.owner_pid)  # the cluster belongs to the server process
    assert s["enabled"] and s["state"] == "running"
    assert s["master_url"] == env["SPARK_MASTER_URL"] == f"spark://127.0.0.1:{state.master.port}"
    assert s["ui_url"] == "/user/alice/odh/spark-ui/"
    assert (s["workers_alive"], s["workers_requested"], s["max_workers"]) == (1, 1, 3)
    assert (s["cores"], s["cores_used"], s["memory_mb"], s["applications"]) == (1, 0, 1024, [])
    # the spawner recorded what the platform service needs to scale it within the same limits
    assert state.limits == {"profile_max_workers": 3, "max_workers": 4, "max_total_workers": None,
                            "limit_source": "the platform default"}  # no group of alice's sets a Spark quota
    assert (state.worker_cores, state.worker_memory, state.ui_proxy_url) == (1, 2**30, "/user/alice/odh/spark-ui")


def test_scale_to_two_workers(alice, hub):
    s = alice.post("spark/scale", {"workers": 2})
    assert (s["state"], s["workers_alive"], s["workers_requested"], s["cores"]) == ("running", 2, 2, 2)
    state = cluster_state(hub)
    assert len(state.workers) == 2 and all(procs.is_spark_process(p.pid, state.conf_dir, p.started)
                                           for p in state.processes)
    # the master itself reports both of this cluster's workers ALIVE
    master = requests.get(f"http://127.0.0.1:{state.master.ui_port}/json/", timeout=10).json()
    alive = {w["port"] for w in master["workers"] if w["state"] == "ALIVE"}
    assert {w.port for w in state.workers} <= alive
    assert alice.get()["workers_alive"] == 2


def test_scale_over_the_limit_is_refused_with_a_message(alice, hub):
    r = alice.call("POST", "spark/scale", json={"workers": 4})
    assert r.status_code == 403 and r.json()["message"] == LIMIT_MESSAGE
    for bad, says in (("lots", "whole number"), (None, "whole number"), (0, "at least 1 worker")):
        r = alice.call("POST", "spark/scale", json={"workers": bad})
        assert r.status_code == 400 and says in r.json()["message"], r.text
    r = alice.call("POST", "spark/scale", json={"workers": 2, "cores": 8})
    assert r.status_code == 400 and "cores" in r.json()["message"]
    assert len(cluster_state(hub).workers) == 2 and alice.get()["workers_alive"] == 2


def test_other_users_cannot_act_on_the_cluster(alice, user_server, login, hub):
    bob = user_server("bob")  # the minimal profile: no Spark
    h = {"Authorization": f"token {bob.token}"}
    own = bob.url + "odh/api/spark"
    assert requests.get(own, headers=h, timeout=30).json() == {"enabled": False}
    for path, body in (("/scale", {"workers": 2}), ("/restart", {})):
        r = requests.post(own + path, json=body, headers=h, timeout=30)
        assert r.status_code == 404 and "no Spark cluster" in r.json()["message"]
    r = requests.get(bob.url + "odh/spark-ui/", headers=h, timeout=30)
    assert r.status_code == 404 and "Spark Master" not in r.text
    assert r.text == "404: This server has no Spark cluster.\n"  # not the server's page template (its token)
    # naming alice is for admins only: through bob's server, and straight at the platform service
    platform = f"{hub.url}/services/odh-platform/api/spark"
    for base in (own, platform):
        for method, path, body in (("GET", "", None), ("POST", "/scale", {"workers": 1}), ("POST", "/restart", {})):
            r = requests.request(method, f"{base}{path}?user=alice", json=body, headers=h, timeout=30)
            assert r.status_code == 403, (base, path, r.text)
            assert r.json()["message"] == "Only admins may act on other users' Spark clusters."
    # alice's server refuses bob's token: her API and her Spark UI
    for method, path in (("GET", "odh/api/spark"), ("POST", "odh/api/spark/scale")):
        r = requests.request(method, alice.url + path, json={"workers": 1}, headers=h, timeout=30)
        assert r.status_code == 403
    r = requests.get(alice.url + "odh/spark-ui/", headers=h, timeout=30, allow_redirects=False)
    assert r.status_code == 403 and "Spark Master" not in r.text
    # an admin may look at alice's cluster
    r = requests.get(platform + "?user=alice", headers=login("admin").auth, timeout=30)
    assert r.status_code == 200 and r.json()["workers_requested"] == 2
    assert len(cluster_state(hub).workers) == 2 and alice.get()["workers_alive"] == 2


def test_spark_ui_through_the_hub_proxy(alice, hub):
    s = alice.get()
    r = requests.get(hub.url + s["ui_url"], headers=alice.auth, timeout=30)
    assert r.status_code == 200 and r.headers["Content-Type"].startswith("text/html")
    assert "Spark Master" in r.text and s["master_url"] in r.text
    links = {html.unescape(link) for link in re.findall(r'(?:href|src)="([^"]+)"', r.text)}
    bad = [link for link in links if link.startswith("/") and not link.startswith("/user/alice/odh/spark-ui/")]
    assert not bad, bad
    # a worker's page, which the master proxies (reverse-proxy mode), and the UI's own assets
    worker = next(link for link in links if "/proxy/worker-" in link)
    r = requests.get(hub.url + worker, headers=alice.auth, timeout=30)
    assert r.status_code == 200 and "Spark Worker" in r.text
    css = next(link for link in links if link.endswith(".css"))
    r = requests.get(hub.url + css, headers=alice.auth, timeout=30)
    assert r.status_code == 200 and "text/css" in r.headers["Content-Type"]
    # the path without its slash leads to the UI too
    r = requests.get(hub.url + s["ui_url"].rstrip("/"), headers=alice.auth, timeout=30)
    assert r.status_code == 200 and "Spark Master" in r.text


def test_widget_shows_and_scales_the_cluster(alice, hub):
    ui = SparkClusterWidget(SparkClient(alice.url, alice.session.token))
    assert ui.last["state"] == "running" and ui.message.value == ""
    assert alice.get()["master_url"] in ui.summary.value and "2 alive / 2 requested (at most 3)" in ui.summary.value
    assert "href='/user/alice/odh/spark-ui/'" in ui.link.value and "No running applications" in ui.applications.value
    assert (ui.workers.value, ui.workers.max) == (2, 3)
    assert ui.scale(4) is None and ui.message.value == f"<span style='color:#b00'>Error 403: {html.escape(LIMIT_MESSAGE)}</span>"
    ui.workers.value = 1
    ui.buttons["scale"].click()
    assert ui.last["workers_alive"] == 1 and ui.message.value == "Scaled to 1 worker." and ui.workers.value == 1
    assert len(cluster_state(hub).workers) == 1
    # the module-level client functions, as in a notebook (base URL and token from the environment)
    with pytest.MonkeyPatch.context() as env:
        env.setenv("JUPYTERHUB_SERVICE_URL", alice.url)
        env.setenv("JUPYTERHUB_API_TOKEN", alice.session.token)
        assert spark_status()["workers_requested"] == 1
        assert spark_ui_url() == f"{hub.url}/user/alice/odh/spark-ui/"


def test_a_notebook_driver_shows_up_as_an_application(alice, hub):
    kernel = Kernel(alice.url, alice.session.token)
    try:
        out = kernel.execute(DRIVER)  # the kernel's own environment points it at the cluster
        assert "count 1000" in out and "apps ['odh-notebook'] running" in out
        s = alice.get()
        (app,) = s["applications"]
        assert (app["name"], app["state"]) == ("odh-notebook", "RUNNING") and app["cores"] >= 1
        assert s["cores_used"] >= 1
        ui = SparkClusterWidget(SparkClient(alice.url, alice.session.token))
        assert "odh-notebook" in ui.applications.value and app["id"] in ui.applications.value
        page = requests.get(hub.url + s["ui_url"], headers=alice.auth, timeout=30).text
        assert "odh-notebook" in page and app["id"] in page
        # the driver runs in reverse-proxy mode too: the master's link to its UI works through the hub's proxy
        app_ui = f"{s['ui_url']}proxy/{app['id']}"
        assert f'href="{app_ui}"' in page
        r = requests.get(hub.url + app_ui + "/jobs/", headers=alice.auth, timeout=30)
        assert r.status_code == 200 and "Spark Jobs" in r.text and "odh-notebook" in r.text
        links = {html.unescape(link) for link in re.findall(r'(?:href|src)="([^"]+)"', r.text)}
        assert f"{app_ui}/stages/" in links and all(
            link.startswith(("/user/alice/odh/spark-ui/", "#", "http")) for link in links if link.startswith("/"))
        kernel.execute("spark.stop()")
    finally:
        kernel.close()
    wait_for(lambda: alice.get()["applications"] == [], 30, "the application to finish")


S3A_DRIVER = """
import os
import pyarrow as pa, pyarrow.parquet as pq
from pyarrow import fs
from pyspark.sql import SparkSession
s3 = fs.S3FileSystem(endpoint_override=os.environ["S3_ENDPOINT_URL"], region="us-east-1", allow_bucket_creation=True)
s3.create_dir("{mine}")
for part in range(4):  # what a user's other tools (or an ingestion) leave in their bucket
    ids = list(range(part * 25_000, (part + 1) * 25_000))
    pq.write_table(pa.table({{"id": ids, "k": [i % 7 for i in ids]}}), f"{mine}/raw/part-{{part}}.parquet",
                   filesystem=s3)
spark = SparkSession.builder.appName("odh-s3a").config("spark.ui.showConsoleProgress", "false").getOrCreate()
raw = spark.read.parquet("s3a://{mine}/raw/")
print("rows", raw.count(), "sum_k", raw.groupBy().sum("k").first()[0], "files", len(raw.inputFiles()))
raw.groupBy("k").count().write.mode("overwrite").parquet("s3a://{mine}/by_k")
print("by_k", sorted(tuple(r) for r in spark.read.parquet("s3a://{mine}/by_k").collect()))
print("back", sorted(r["k"] for r in pq.read_table("{mine}/by_k", filesystem=s3).to_pylist()))
for what, path in (("read", "s3a://{theirs}/private/"), ("write", "s3a://{theirs}/planted")):
    try:
        if what == "read":
            spark.read.parquet(path).count()
        else:
            raw.limit(1).write.mode("overwrite").parquet(path)
        print("did", what, "the colleague's bucket")
    except Exception as e:
        print("refused", what, ":", type(e).__name__, "|", [line for line in str(e).splitlines() if "AccessDenied" in line][:1])
spark.stop()
"""


def test_s3a_reads_and_writes_the_users_own_buckets_only(alice, user_server, hub):
    """spark.read/write.parquet("s3a://...") just work in the notebook: driver and executors use the user's own
    keys (from their 0600 spark-defaults.conf; none on a command line, none in the Spark daemons' environment);
    the result is an ordinary dataset other tools read; a colleague's bucket is refused by the object store
    (AccessDenied), for reading and for writing."""
    import uuid

    mine, theirs = f"alice-s3a-{uuid.uuid4().hex[:8]}", f"bob-private-{uuid.uuid4().hex[:8]}"
    bob = user_server("bob")
    bob.client().create_bucket(theirs)
    bob.client().put_small(theirs, "private/part-0.parquet", b"PAR1 not for alice")
    state = cluster_state(hub)
    conf = os.path.join(state.directory, "notebook-conf", "spark-defaults.conf")
    st = os.stat(conf)
    owner_env = process_env(state.owner_pid)
    assert (st.st_mode & 0o777, st.st_uid) == (0o600, pwd.getpwnam(owner_env["USER"]).pw_uid)  # hers alone
    kernel = Kernel(alice.url, alice.session.token)
    try:
        out = kernel.execute(S3A_DRIVER.format(mine=mine, theirs=theirs), timeout=600)
        # uncaught, the refusal is said in one sentence above the Java trace (server_extension.spark_kernel)
        with pytest.raises(KernelError) as failed:
            kernel.execute(f'SparkSession.builder.getOrCreate().read.parquet("s3a://{theirs}/private/").count()')
        assert (f"Access denied: the object store refused your keys for s3a://{theirs}/private. It belongs to "
                "another user or is not shared with you; use one of your own buckets.") in str(failed.value)
        kernel.execute("SparkSession.builder.getOrCreate().stop()")
    finally:
        kernel.close()
    assert f"rows 100000 sum_k {sum(i % 7 for i in range(100_000))} files 4" in out, out
    counts = sorted((k, sum(1 for i in range(100_000) if i % 7 == k)) for k in range(7))
    assert f"by_k {counts}" in out and f"back {list(range(7))}" in out, out
    assert "did read" not in out and "did write" not in out, out
    for what, path in (("read", f"s3a://{theirs}/private"), ("write", f"s3a://{theirs}/planted")):
        refusal = out.split(f"refused {what} :", 1)[1].splitlines()[0]
        assert "AccessDeniedException" in refusal and path in refusal, refusal
    assert [o["key"] for o in bob.client().iter_objects(theirs)] == ["private/part-0.parquet"]  # nothing planted
    # the keys reached no command line and no Spark daemon's environment
    secret = owner_env["AWS_SECRET_ACCESS_KEY"]
    for p in psutil.process_iter(["pid", "cmdline"]):
        assert secret not in " ".join(p.info["cmdline"] or []), p.info["pid"]
    for daemon in state.processes:
        assert secret not in process_env(daemon.pid).values()


INGESTED = """
import json, os
from pyarrow import fs
from pyspark.sql import SparkSession, functions as F
from odh_hub import ingest, produce_sample
fs.S3FileSystem(endpoint_override=os.environ["S3_ENDPOINT_URL"], region="us-east-1",
                allow_bucket_creation=True).create_dir("{bucket}")
print("produced", produce_sample("{topic}", 5000, partitions=2))
ing = ingest(topic="{topic}", bucket="{bucket}", prefix="clicks/", format="parquet", flush_records=700,
             flush_seconds=1, name="{topic}")
print("records", ing.wait(5000, timeout=180)["records"])
spark = SparkSession.builder.appName("odh-ingested").config("spark.ui.showConsoleProgress", "false").getOrCreate()
df = spark.read.parquet("s3a://{bucket}/clicks/")
per = {{r["partition"]: (r["n"], r["lo"], r["hi"]) for r in
       df.groupBy("partition").agg(F.count("*").alias("n"), F.min("offset").alias("lo"), F.max("offset").alias("hi")).collect()}}
print("spark rows", df.count(), "distinct", df.select("partition", "offset").distinct().count(), "per", json.dumps(per))
spark.stop()
ing.delete()
"""


def test_an_ingestion_landed_as_parquet_is_read_by_spark_exactly(alice, hub, kafka_broker):
    """A topic ingested into the user's bucket as parquet, read by the same user's Spark through s3a://: every
    record exactly once (offsets 0..n-1 in each partition, no duplicate)."""
    import uuid

    topic = f"spark-clicks-{uuid.uuid4().hex[:6]}"
    kernel = Kernel(alice.url, alice.session.token)
    try:
        out = kernel.execute(INGESTED.format(bucket=f"alice-lake-{uuid.uuid4().hex[:8]}", topic=topic), timeout=600)
    finally:
        kernel.close()
    assert "produced 5000" in out and "records 5000" in out, out
    line = out.split("spark rows", 1)[1].splitlines()[0]
    assert line.startswith(" 5000 distinct 5000 per "), line
    per = json.loads(line.split(" per ", 1)[1])  # {partition: [n, lo, hi]} as Spark counted it
    assert sum(n for n, _, _ in per.values()) == 5000 and len(per) == 2
    assert all(lo == 0 and hi == n - 1 for n, lo, hi in per.values()), per


def test_restart_keeps_the_master_url(alice, hub):
    before = cluster_state(hub)
    seen = []
    with ThreadPoolExecutor(1) as pool:
        restart = pool.submit(alice.post, "spark/restart", {})
        while not restart.done():  # the panels polling meanwhile see a cluster starting, never none
            seen.append(alice.get())
            time.sleep(0.1)
        s = restart.result()
    after = cluster_state(hub)
    assert all(x["enabled"] for x in seen) and "starting" in {x["state"] for x in seen}
    assert s["state"] == "running" and s["workers_alive"] == s["workers_requested"] == 1
    assert s["master_url"] == f"spark://127.0.0.1:{before.master.port}" == f"spark://127.0.0.1:{after.master.port}"
    assert not {p.pid for p in before.processes} & {p.pid for p in after.processes}
    assert not [p.pid for p in before.processes if procs.alive(p.pid, p.started)]
    assert after.owner_pid == before.owner_pid and after.limits == before.limits


def test_stopping_the_server_leaves_no_spark_process(alice, hub):
    state = cluster_state(hub)
    assert state.live_processes() and procs.cluster_pids(state.conf_dir)
    alice.session.stop()
    assert_cluster_gone(state)
    assert cluster_state(hub) is None
    # the platform service says so, and holds no zombie of the processes it restarted
    r = requests.get(f"{hub.url}/services/odh-platform/api/spark", headers=alice.auth, timeout=30)
    assert r.json() == {"enabled": False}
    platform = next(p for p in psutil.Process(hub.proc.pid).children()
                    if "odh_spawner.platform" in " ".join(p.cmdline()))
    assert not [c.pid for c in platform.children() if c.status() == psutil.STATUS_ZOMBIE]


def test_the_cluster_boots_beside_the_server_and_getorcreate_waits_for_it(alice, hub):
    """The spawn does not wait for the JVMs: while alice's server starts, the test freezes her Spark master
    (SIGSTOP) the moment its JVM runs (spark-class has exec'd java), so it cannot lead before the test lets it. The spawn still completes;
    the platform says 'starting'; a kernel's plain getOrCreate() says it waits and does; once the master runs
    again the job goes through and the cluster is 'running'."""
    frozen = {}

    def freeze_the_master():
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not frozen:
            state = cluster_state(hub)
            if state is not None and state.master is not None and \
                    procs.is_spark_process(state.master.pid, state.conf_dir, state.master.started):
                os.kill(state.master.pid, signal.SIGSTOP)
                frozen["master"] = state.master
                return
            time.sleep(0.005)

    with ThreadPoolExecutor(1) as pool:
        freezer = pool.submit(freeze_the_master)
        t0 = time.monotonic()
        spawn_with_spark(alice.session)
        spawned_in = time.monotonic() - t0
        freezer.result()
    master = frozen["master"]
    kernel = None
    try:
        assert procs.alive(master.pid, master.started) and psutil.Process(master.pid).status() == psutil.STATUS_STOPPED
        state = cluster_state(hub)
        assert state.phase == "starting" and state.owner_pid  # the server is up, the cluster is not
        with open(os.path.join(state.directory, "phase.json")) as f:
            assert '"starting"' in f.read()
        s = alice.get()
        assert (s["state"], s["workers_alive"]) == ("starting", 0)
        kernel = Kernel(alice.url, alice.session.token)
        with ThreadPoolExecutor(1) as pool:
            job = pool.submit(kernel.execute, DRIVER)
            time.sleep(3)
            assert not job.done()  # waiting for the frozen master, not failing
            os.kill(master.pid, signal.SIGCONT)
            out = job.result(timeout=240)
        assert "Waiting for your Spark cluster to start" in out and "Spark cluster ready (waited" in out
        assert "count 1000" in out
        wait_for(lambda: alice.get()["state"] == "running", 60, "the cluster to be running")
        assert cluster_state(hub).phase == "ready"
        print(f"spawn with a frozen Spark master: {spawned_in:.2f} s")
    finally:
        if procs.alive(master.pid, master.started):
            os.kill(master.pid, signal.SIGCONT)
        if kernel is not None:
            kernel.execute("'spark' in globals() and spark.stop()")
            kernel.close()
    state = cluster_state(hub)
    alice.session.stop()
    assert_cluster_gone(state)


# -- a hub crash ----------------------------------------------------------------------------------
@pytest.fixture
def private_hub(ceph, config_dir, tmp_path):
    """A second hub (with its proxy and services) that this test may kill; the session hub stays up."""
    runtime = runtime_settings(load_settings(config_dir), str(tmp_path / "hub"), ceph)
    proc = HubProcess(runtime, log_path=os.path.join(ARTIFACTS, "jupyterhub-spark-crash.log"), report=print)
    proc.start()
    yield proc
    proc.stop()


def test_cluster_orphaned_by_a_hub_crash_is_reaped_on_restart(private_hub):
    alice = HubUserSession(private_hub.url, "alice", PASSWORDS["alice"])
    spawn_with_spark(alice)
    state = cluster_state(private_hub)
    assert state is not None and len(state.live_processes()) == 2
    spark = {p.pid for p in state.processes}
    # the crash: the hub is SIGKILLed, and with it everything it ran (proxy, services, alice's server) except
    # the Spark daemons, which run in sessions of their own
    hub = psutil.Process(private_hub.proc.pid)
    others = [p for p in hub.children(recursive=True) if p.pid not in spark]
    assert state.owner_pid in {p.pid for p in others}
    os.kill(hub.pid, signal.SIGKILL)
    private_hub.proc.wait(10)
    for p in others:
        try:
            p.kill()  # psutil checks the process's start time: a reused PID is never signalled
        except psutil.NoSuchProcess:
            pass
    psutil.wait_procs(others, timeout=10)
    assert not pid_alive(state.owner_pid)
    assert all(procs.is_spark_process(p.pid, state.conf_dir, p.started) for p in state.processes), "not orphaned"
    # its UI ports stay guarded for alice meanwhile: the rules live in the kernel, not in the hub
    guard = PortGuard(state.guard_id)
    uid = pwd.getpwnam(state.run_as["name"]).pw_uid if state.run_as else None
    if os.geteuid() == 0:  # as root (CI): guarded for her system user
        assert uid is not None and state.ui_ports
        assert {p: guard.owned().get(p) for p in state.ui_ports} == {p: {uid} for p in state.ui_ports}
    # the hub comes back on the same state: it polls alice's server, finds it gone, and reaps its cluster
    log_start = os.path.getsize(private_hub.log_path)
    private_hub.start()
    assert_cluster_gone(state, timeout=60)
    assert cluster_state(private_hub) is None
    assert not set(guard.owned()) & set(state.ui_ports), "the reaped cluster's UI ports are released"
    with open(private_hub.log_path, errors="replace") as f:
        f.seek(log_start)
        assert "Stopped 1 orphaned Spark cluster(s): alice" in f.read()
