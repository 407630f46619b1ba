"""Processes of local Spark clusters: find Spark, identify its JVMs through /proc, stop them by PID (the
primitives are host.procs').

A cluster's JVMs are recognised by their command line: a `java` binary running a Spark master, worker or
executor class, with the cluster's own configuration directory on the class path (spark-class puts
$SPARK_CONF_DIR first on it, and workers hand it to their executors). A PID is signalled only after that
check, and only when its start time matches the one recorded, so a recycled PID is never touched.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import subprocess
import time
from typing import Iterable

from odh_spawner.host.owned import OwnedProcess, send_signal, stop_all
from odh_spawner.host.procs import (  # noqa: F401 (re-exported: the Spark modules' process primitives)
    alive, cmdline, killpg, listening, set_nice, signal_pid, start_time,
)
from odh_spawner.spark.errors import SparkError

SPARK_CLASSES = (
    "org.apache.spark.deploy.master.Master",
    "org.apache.spark.deploy.worker.Worker",
    "org.apache.spark.executor.CoarseGrainedExecutorBackend",
)


def find_spark_home(configured: str = "") -> str:
    """SPARK_HOME: `configured`, else $SPARK_HOME, else the Spark shipped inside the pyspark package."""
    candidates = [configured, os.environ.get("SPARK_HOME", "")]
    spec = importlib.util.find_spec("pyspark")
    if spec is not None and spec.submodule_search_locations:
        candidates.append(list(spec.submodule_search_locations)[0])
    for home in candidates:
        if home and os.access(os.path.join(home, "bin", "spark-class"), os.X_OK):
            return os.path.abspath(home)
    raise SparkError("Spark is not installed on this hub (no bin/spark-class in SPARK_HOME or the pyspark "
                     "package); install the pinned pyspark.")


def find_java(java_home: str = "") -> str:
    """The java binary spark-class will run (JAVA_HOME first, like spark-class itself)."""
    home = java_home or os.environ.get("JAVA_HOME", "")
    java = os.path.join(home, "bin", "java") if home else shutil.which("java")
    if not java or not os.access(java, os.X_OK):
        raise SparkError("Java is not installed on this hub (Spark needs Java 17 or newer); "
                         "install a JRE or set JAVA_HOME.")
    return java


def is_spark_process(pid: int, conf_dir: str, started: int | None = None) -> bool:
    """True when `pid` is a Spark JVM (master, worker or executor) of the cluster configured in `conf_dir`."""
    if not alive(pid, started):
        return False
    args = cmdline(pid)
    if not args or os.path.basename(args[0]) != "java":
        return False
    conf = os.path.abspath(conf_dir).rstrip("/")
    on_classpath = any(conf + "/" in a.split(":") or conf in a.split(":") for a in args)
    return on_classpath and any(cls in args for cls in SPARK_CLASSES)


def cluster_pids(conf_dir: str) -> list[int]:
    """Every live Spark JVM of the cluster configured in `conf_dir` (found by scanning /proc)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and is_spark_process(int(entry), conf_dir):
            found.append(int(entry))
    return sorted(found)


def terminate(procs: Iterable[tuple[int, int | None, "subprocess.Popen | None"]], conf_dir: str,
              timeout: float, sweep: bool = False) -> list[int]:
    """Stop a cluster's processes (host.owned.stop_all): SIGTERM (and SIGCONT: a worker held during start
    handles SIGTERM only once continued), wait up to `timeout`, SIGKILL what is left. Returns the PIDs killed.

    `procs` holds (pid, start time, Popen or None). Our own unreaped children are stopped as such (before
    spark-class has exec'd into java their command line is still the shell script's; their process group,
    executors and spark-class's launcher, is killed); any other PID only after `is_spark_process` confirms it,
    and then by PID alone. With `sweep` (a whole cluster stops), any JVM still carrying the cluster's
    configuration directory (an executor whose worker died) is then killed by PID too.
    """
    targets = []
    for pid, started, popen in procs:
        if popen is not None and popen.returncode is None:
            targets.append(OwnedProcess(pid, started, popen=popen))
        elif is_spark_process(pid, conf_dir, started):
            targets.append(OwnedProcess(pid, started))
    killed = stop_all(targets, timeout, group=False, also=(signal.SIGCONT,))
    for pid in cluster_pids(conf_dir) if sweep else ():
        send_signal(pid, start_time(pid), signal.SIGKILL)
        killed.append(pid)
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline and any(alive(pid) for pid in killed):
        time.sleep(0.05)
    return killed
