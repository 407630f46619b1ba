"""The kernels' Spark wait (server_extension.spark_kernel) against the hub's phase file (odh_spawner.spark.phase):
one format, the bounded wait and its messages, which contexts wait, and the import hook on the real pyspark."""

import os
import subprocess
import sys
import types

import pytest

from odh_spawner.spark import phase
from server_extension import spark_kernel as sk


class FakeTime:
    def __init__(self, flips=None):
        self.now = 0.0
        self.flips = flips or {}  # time -> callable run once when reached

    def clock(self):
        return self.now

    def sleep(self, dt):
        self.now += dt
        for at in sorted(self.flips):
            if self.now >= at:
                self.flips.pop(at)()


def test_the_hub_writes_what_the_kernel_reads(tmp_path):
    path = str(tmp_path / phase.PHASE_FILE)
    for p in phase.PHASES:
        phase.write_phase(path, p, "boom" if p == phase.FAILED else "")
        assert sk.read_phase(path)["phase"] == p
    assert oct(os.stat(path).st_mode & 0o777) == "0o644"
    phase.write_phase(path, phase.STARTING, gid=os.getgid())
    assert oct(os.stat(path).st_mode & 0o777) == "0o640"
    assert sk.PHASE_ENV == phase.PHASE_ENV
    with pytest.raises(ValueError):
        phase.phase_json("sleeping")


def test_waits_while_starting_says_so_once_and_returns_when_ready(tmp_path):
    path = str(tmp_path / "phase.json")
    phase.write_phase(path, phase.STARTING)
    t = FakeTime({1.0: lambda: phase.write_phase(path, phase.READY)})
    said = []
    waited = sk.wait_until_ready(path, timeout=10, say=said.append, clock=t.clock, sleep=t.sleep)
    assert 1.0 <= waited < 1.3
    assert said[0].startswith("Waiting for your Spark cluster to start")
    assert said[1].startswith("Spark cluster ready (waited 1.")
    assert len(said) == 2


def test_ready_or_no_file_does_not_wait_or_talk(tmp_path):
    path = str(tmp_path / "phase.json")
    said = []
    assert sk.wait_until_ready(path, timeout=10, say=said.append) == pytest.approx(0, abs=0.5)
    phase.write_phase(path, phase.READY)
    assert sk.wait_until_ready(path, timeout=10, say=said.append) == pytest.approx(0, abs=0.5)
    assert said == []


def test_a_failed_cluster_raises_its_reason_and_a_slow_one_times_out(tmp_path):
    path = str(tmp_path / "phase.json")
    phase.write_phase(path, phase.FAILED, "The Spark master exited during start (code 1).")
    with pytest.raises(sk.SparkClusterNotReady, match="master exited during start"):
        sk.wait_until_ready(path, timeout=10, say=lambda m: None)
    phase.write_phase(path, phase.STARTING)
    t = FakeTime()
    with pytest.raises(sk.SparkClusterNotReady, match="did not start within 5 s"):
        sk.wait_until_ready(path, timeout=5, say=lambda m: None, clock=t.clock, sleep=t.sleep)
    assert 5 <= t.now < 5.5


class Conf:
    def __init__(self, master=None):
        self.master = master

    def get(self, key, default=None):
        return self.master if key == "spark.master" else default


def test_which_contexts_wait():
    ours = "spark://127.0.0.1:7077"
    assert sk.uses_cluster(None, None, ours)
    assert sk.uses_cluster(ours, None, ours)
    assert sk.uses_cluster(None, Conf(), ours)
    assert sk.uses_cluster(None, Conf(ours), ours)
    assert not sk.uses_cluster("local[*]", None, ours)
    assert not sk.uses_cluster(None, Conf("local[2]"), ours)


def test_the_patched_context_waits_then_constructs(tmp_path, monkeypatch):
    path = str(tmp_path / "phase.json")
    phase.write_phase(path, phase.FAILED, "no JVM")
    monkeypatch.setenv(sk.PHASE_ENV, path)
    monkeypatch.setenv(sk.MASTER_ENV, "spark://127.0.0.1:1")
    made = []

    class SparkContext:
        _active_spark_context = None

        def __init__(self, master=None, appName=None, conf=None):
            made.append((master, appName))

    module = types.ModuleType("fake_context")
    module.SparkContext = SparkContext
    sk.patch_spark_context(module)
    sk.patch_spark_context(module)  # idempotent
    with pytest.raises(sk.SparkClusterNotReady, match="no JVM"):
        SparkContext()
    SparkContext("local[1]", "x")  # another master: no wait
    phase.write_phase(path, phase.READY)
    SparkContext(appName="y")
    assert made == [("local[1]", "x"), (None, "y")]


def test_the_import_hook_patches_the_real_pyspark_when_the_notebook_imports_it(tmp_path):
    path = str(tmp_path / "phase.json")
    phase.write_phase(path, phase.FAILED, "hook works")
    code = ("from server_extension import spark_kernel as sk; import sys\n"
            "assert sk.install()\n"
            "assert 'pyspark' not in sys.modules\n"
            "from pyspark import SparkContext\n"
            "assert SparkContext.__init__._odh_waits_for_cluster\n"
            "try:\n    SparkContext()\nexcept sk.SparkClusterNotReady as e:\n    print('refused:', e)\n")
    env = dict(os.environ, ODH_SPARK_PHASE_FILE=path, SPARK_MASTER_URL="spark://127.0.0.1:1")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "refused: Your Spark cluster failed to start: hook works" in out.stdout


def test_without_a_cluster_nothing_is_installed(monkeypatch):
    monkeypatch.delenv(sk.PHASE_ENV, raising=False)
    assert sk.install() is False


def test_an_s3a_access_denied_is_said_in_one_sentence():
    from server_extension.spark_kernel import access_denied_message

    java = ("An error occurred while calling o50.parquet.\n: java.nio.file.AccessDeniedException: "
            "s3a://bob-private-1/private: getFileStatus on s3a://bob-private-1/private: S3Exception: Forbidden")
    assert access_denied_message(java) == (
        "Access denied: the object store refused your keys for s3a://bob-private-1/private. It belongs to another "
        "user or is not shared with you; use one of your own buckets.")
    assert access_denied_message("java.io.FileNotFoundException: s3a://mine/x") is None
