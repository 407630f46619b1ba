"""A real Spark standalone cluster per user server: start, run a job, scale, restart, stop, reap, refuse.

Every cluster is created through the `clusters` fixture, whose finalizer stops it (and checks by /proc that no
JVM of it is left) even when a test fails; driver JVMs are shut down by the `spark_driver` fixture.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from odh_spawner.profiles.resolve import SparkRequest
from odh_spawner.spark import (LocalSparkCluster, SparkError, SparkLimitError, SparkLimits, SparkStartError,
                               SparkUsage, check_request, current_usage, reap_orphans, spark_memory, stop_cluster)
from odh_spawner.spark import procs
from odh_spawner.spark.state import read_state

MI = 2**20
SMALL = SparkRequest(workers=1, worker_cores=1, worker_memory=512 * MI)
CYCLES = int(os.environ.get("SPARK_TEST_CYCLES", "5"))  # more for a soak: SPARK_TEST_CYCLES=50


def spark_jvms(root: str) -> list[int]:
    """Every live process whose command line mentions `root` (the clusters' conf and work directories)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and procs.alive(int(entry)) and any(root in a for a in procs.cmdline(int(entry))):
            found.append(int(entry))
    return found


@pytest.fixture
def spark_root(tmp_path):
    root = str(tmp_path / "spark")
    yield root
    left = spark_jvms(root)
    for pid in left:  # never leave a JVM behind, even after a failed test; then fail loudly
        procs.signal_pid(pid, signal.SIGKILL)
    assert not left, f"Spark processes left running: {left}"


@pytest.fixture
def clusters(spark_root):
    made: list[LocalSparkCluster] = []

    def make(name="c", request=SMALL, cls=LocalSparkCluster, **kw) -> LocalSparkCluster:
        cluster = cls(spark_root, name, request, user=kw.pop("user", "alice"), **kw)
        made.append(cluster)
        return cluster

    yield make
    for cluster in made:
        cluster.stop_blocking()


@pytest.fixture
def spark_driver(monkeypatch):
    """A notebook-like driver (pyspark in this process); its JVM is shut down afterwards."""
    from pyspark import SparkContext
    from pyspark.sql import SparkSession

    monkeypatch.setenv("SPARK_LOCAL_IP", "127.0.0.1")
    sessions = []

    def connect(cluster: LocalSparkCluster, app="odh-test") -> SparkSession:
        # the cluster's secret, as its owner's notebook gets it (read when the driver's JVM starts)
        monkeypatch.setenv("SPARK_CONF_DIR", cluster.notebook_env()["SPARK_CONF_DIR"])
        spark = (SparkSession.builder.master(cluster.master_url).appName(app)
                 .config("spark.driver.host", "127.0.0.1").config("spark.driver.bindAddress", "127.0.0.1")
                 .config("spark.ui.enabled", "false").config("spark.ui.showConsoleProgress", "false")
                 .config("spark.executor.memory", spark_memory(cluster.request.worker_memory))
                 .config("spark.executor.cores", str(cluster.request.worker_cores))
                 .getOrCreate())
        sessions.append(spark)
        return spark

    yield connect
    for spark in sessions:
        spark.stop()
    gateway = SparkContext._gateway
    if gateway is not None:
        proc = gateway.proc
        gateway.shutdown()
        proc.stdin.close()  # the gateway JVM exits when its stdin closes
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        SparkContext._gateway = SparkContext._jvm = None


def assert_gone(pids, ports, conf_dir):
    assert [p for p in pids if procs.alive(p)] == []
    assert [p for p in ports if procs.listening(p)] == []
    assert procs.cluster_pids(conf_dir) == []


async def test_job_scale_limits_and_clean_stop(clusters, spark_driver):
    stages = []
    cluster = clusters(progress=stages.append)
    await cluster.start()
    assert stages == ["starting Spark master", "starting Spark worker 1/1", "Spark cluster ready: 1 workers, 1 cores"]
    assert cluster.master_url.startswith("spark://127.0.0.1:") and cluster.ui_url.startswith("http://127.0.0.1:")
    status = await cluster.status()
    assert (status.state, status.workers_alive, status.cores, status.memory) == ("ALIVE", 1, 1, 512 * MI)
    for pid in cluster.pids:  # master + worker, each a Spark JVM of this cluster, as recorded in the state file
        assert procs.is_spark_process(pid, cluster.conf_dir)
    assert sorted(p.pid for p in read_state(cluster.directory).processes) == sorted(cluster.pids)

    spark = spark_driver(cluster)
    assert spark.range(1_000_000).groupBy().sum("id").first()[0] == 499_999_500_000
    status = await cluster.status()
    (app,) = status.running_applications
    assert app.name == "odh-test" and app.memory_per_executor == 512 * MI and status.cores_used == 1

    status = await cluster.scale(2)
    assert status.workers_alive == 2 and status.cores == 2 and cluster.request.workers == 2
    assert current_usage(os.path.dirname(cluster.directory), "alice") == SparkUsage(2, 2)
    assert spark.range(0, 1000, numPartitions=8).selectExpr("sum(id * 2)").first()[0] == 999_000

    with pytest.raises(SparkLimitError, match="3 Spark workers exceed your limit of 2"):
        await cluster.scale(3, limits=SparkLimits(max_workers=2))
    assert (await cluster.status()).workers_alive == 2  # refused before anything started
    status = await cluster.scale(1)
    assert status.workers_alive == 1 and cluster.request.workers == 1

    pids, ports = cluster.pids, cluster.ports
    spark.stop()
    assert await cluster.stop() == []  # everything exited on SIGTERM
    assert_gone(pids, ports, cluster.conf_dir)
    assert read_state(cluster.directory) is None
    assert await cluster.stop() == []  # idempotent
    with pytest.raises(SparkError, match="not running"):
        await cluster.status()


def test_limits_refuse_a_cluster_before_it_starts():
    with pytest.raises(SparkLimitError, match="4 Spark workers exceed your limit of 2") as e:
        check_request(SparkLimits(max_workers=2), SparkRequest(4, 1, 512 * MI))
    assert e.value.status_code == 403


async def test_notebook_env_reaches_the_cluster(clusters):
    """A notebook process with only the env the spawner gives it: a plain getOrCreate() uses the cluster,
    and Python code runs on the executors."""
    cluster = clusters()
    await cluster.start()
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG") if k in os.environ}
    env.update(cluster.notebook_env(python=sys.executable))
    code = ("from pyspark.sql import SparkSession\n"
            "s = SparkSession.builder.config('spark.ui.enabled', 'false').getOrCreate()\n"
            "sc = s.sparkContext\n"
            "print(sc.master, s.range(1000).groupBy().sum('id').first()[0],"
            " sc.parallelize(range(10), 2).map(lambda x: x * x).sum())\n"
            "s.stop()\n")
    out = await asyncio.to_thread(subprocess.run, [sys.executable, "-c", code], env=env, capture_output=True,
                                  text=True, timeout=180)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.split() == [cluster.master_url, "499500", "285"]


def thread_nices(pid: int) -> set[int]:
    """The nice value of every thread of `pid` (/proc/PID/task/TID/stat, field 19)."""
    out = set()
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                out.add(int(f.read().rsplit(")", 1)[1].split()[16]))
        except (OSError, IndexError):
            pass
    return out


@pytest.mark.skipif(os.geteuid() != 0, reason="boot priority is lowered only where it can be raised again (root)")
async def test_launch_boots_at_low_priority_and_ready_is_normal_priority(clusters):
    """launch() starts the JVMs niced (the notebook server booting beside them gets the CPU first); once every
    worker registered, every thread of every daemon is back at normal priority, phase 'ready' recorded."""
    cluster = clusters()
    await cluster.launch()
    assert cluster.phase == "starting" and json.load(open(cluster.phase_path))["phase"] == "starting"
    await asyncio.sleep(1.0)  # the JVMs run by now, with their threads
    assert all(thread_nices(pid) == {cluster.boot_nice} for pid in cluster.pids), \
        {pid: thread_nices(pid) for pid in cluster.pids}
    status = await cluster.wait_started()
    assert status.workers_alive == 1
    assert all(thread_nices(pid) == {0} for pid in cluster.pids), {pid: thread_nices(pid) for pid in cluster.pids}
    assert cluster.phase == "ready" and json.load(open(cluster.phase_path)) == {"phase": "ready", "error": ""}
    assert read_state(cluster.directory).phase == "ready"


async def test_restart_keeps_the_master_url(clusters):
    cluster = clusters()
    await cluster.start()
    url, old = cluster.master_url, cluster.pids
    await cluster.restart()
    assert cluster.master_url == url and not set(old) & set(cluster.pids)
    assert [p for p in old if procs.alive(p)] == []
    assert (await cluster.status()).workers_alive == 1


async def test_start_stop_cycles_leave_no_process(clusters, spark_root):
    t0 = time.monotonic()
    for i in range(CYCLES):
        cluster = clusters(f"cycle-{i}")
        await cluster.start()
        pids, ports = cluster.pids, cluster.ports
        await cluster.stop()
        assert_gone(pids, ports, cluster.conf_dir)
    elapsed = time.monotonic() - t0
    print(f"\n{CYCLES} start/stop cycles of a 1-worker cluster: {elapsed:.1f}s ({elapsed / CYCLES:.1f}s each)")
    assert spark_jvms(spark_root) == []


async def test_reaper_stops_orphans_and_spares_live_owners(clusters, spark_root):
    sleeper = [sys.executable, "-c", "import time; time.sleep(600)"]
    doomed, survivor = subprocess.Popen(sleeper), subprocess.Popen(sleeper)
    try:
        orphan = clusters("orphan", owner_pid=doomed.pid)
        owned = clusters("owned")
        await asyncio.gather(orphan.start(), owned.start())
        owned.set_owner(survivor.pid)
        assert read_state(owned.directory).owner_pid == survivor.pid
        doomed.kill()
        doomed.wait()
        # the hub "crashes": only the state files are left to go by
        assert reap_orphans(spark_root) == ["orphan"]
        assert_gone(orphan.pids, orphan.ports, orphan.conf_dir)
        assert read_state(orphan.directory) is None
        assert all(procs.alive(p) for p in owned.pids) and (await owned.status()).workers_alive == 1
        assert reap_orphans(spark_root) == []
        # a restarted hub stops a surviving cluster from its state file when its server stops
        assert stop_cluster(spark_root, "owned") is True
        assert_gone(owned.pids, owned.ports, owned.conf_dir)
        assert stop_cluster(spark_root, "owned") is False
    finally:
        for p in (doomed, survivor):
            p.kill()
            p.wait()


async def test_reaper_never_signals_a_pid_that_is_not_the_clusters(spark_root):
    """A state file naming a PID that now belongs to another process: the reaper leaves that process alone."""
    from odh_spawner.spark.state import ClusterState, ProcessRecord, write_state

    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    try:
        directory = os.path.join(spark_root, "stale")
        os.makedirs(os.path.join(directory, "conf"))
        write_state(ClusterState(name="stale", directory=directory, owner_pid=2**22 + 1,
                                 processes=[ProcessRecord("master", bystander.pid, None, 1, 2)]))
        assert reap_orphans(spark_root) == []  # nothing of the cluster was running
        assert bystander.poll() is None and read_state(directory) is None
    finally:
        bystander.kill()
        bystander.wait()


class MasterStartsLate(LocalSparkCluster):
    """The worker is up and has failed to reach the master before the master is even launched."""

    def _launch_master(self):
        self.late = True

    def _launch_worker(self, index, relaunches=0):
        worker = super()._launch_worker(index, relaunches)
        if getattr(self, "late", False):
            self.late = False
            deadline = time.monotonic() + 90
            while "Failed to connect to master" not in worker.tail() and time.monotonic() < deadline:
                time.sleep(0.1)
            super()._launch_master()
        return worker


async def test_a_worker_that_missed_the_master_is_restarted_at_once(clusters):
    """Left alone, such a worker would retry only after 5-15 s; it is restarted as soon as the master leads."""
    cluster = clusters(cls=MasterStartsLate)
    await cluster.start()
    (worker,) = cluster._workers.values()
    assert worker.relaunches == 1 and (await cluster.status()).workers_alive == 1
    assert procs.alive(worker.pid) and len(procs.cluster_pids(cluster.conf_dir)) == 2


class BrokenSecondWorker(LocalSparkCluster):
    def worker_args(self, index, port, ui_port):
        args = super().worker_args(index, port, ui_port)
        return args + ["--no-such-option"] if index == 2 else args


async def test_partial_start_is_cleaned_up(clusters):
    cluster = clusters(request=SparkRequest(2, 1, 512 * MI), cls=BrokenSecondWorker)
    with pytest.raises(SparkStartError, match="Spark worker 2 exited during start") as e:
        await cluster.start()
    assert e.value.log_path.endswith("worker-2.log") and "Usage: Worker" in e.value.log_tail
    assert not cluster.running and procs.cluster_pids(cluster.conf_dir) == []
    assert read_state(cluster.directory) is None


async def test_timeout_and_missing_java_fail_cleanly(clusters):
    slow = clusters("slow")
    with pytest.raises(SparkStartError, match="not ready within 1s"):
        await slow.start(timeout=1)
    assert not slow.running and procs.cluster_pids(slow.conf_dir) == []
    nojava = clusters("nojava", java_home="/nonexistent")
    with pytest.raises(SparkError, match="Java is not installed"):
        await nojava.start()
    assert not nojava.running


async def test_a_second_cluster_with_the_same_name_is_refused(clusters):
    first = clusters("same")
    await first.start()
    with pytest.raises(SparkError, match="already running"):
        await clusters("same").start()
    assert (await first.status()).workers_alive == 1
