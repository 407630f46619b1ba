"""One Spark daemon process (master or worker) of a local cluster: launch, log reading, master JSON.

What its log says is how we learn why a daemon failed: a port taken by someone else (we retry on new ports),
or a worker whose first registration went nowhere (it would retry only after 5-15 s).
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

from odh_spawner.spark import procs
from odh_spawner.spark.errors import SparkError
from odh_spawner.spark.state import ProcessRecord

MASTER_CLASS = "org.apache.spark.deploy.master.Master"
WORKER_CLASS = "org.apache.spark.deploy.worker.Worker"
BIND_ERRORS = ("BindException", "Address already in use", "Failed to bind")
CLEAN_ENV = ("PATH", "LANG", "LC_ALL", "TZ", "TMPDIR", "HOME", "JAVA_HOME")
SPARK_DEFAULTS = {
    "spark.port.maxRetries": "0",  # a taken port fails loudly (we retry with new ports) instead of drifting
    "spark.master.rest.enabled": "false",
    "spark.ui.killEnabled": "false",
}
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


@dataclass
class Daemon:
    role: str  # "master" or "worker-N"
    popen: subprocess.Popen
    port: int
    ui_port: int
    log_path: str
    log_offset: int  # where this run's output starts in the (appended) log
    started: int | None  # /proc start time
    relaunches: int = 0

    @property
    def pid(self) -> int:
        return self.popen.pid

    def exited(self) -> bool:
        return self.popen.poll() is not None

    def record(self) -> ProcessRecord:
        return ProcessRecord(self.role, self.pid, self.started, self.port, self.ui_port)

    def tail(self, lines: int = 400) -> str:
        return procs.log_tail(self.log_path, self.log_offset, lines=lines)

    def bind_failed(self) -> bool:
        return any(marker in self.tail() for marker in BIND_ERRORS)

    def tried_to_register(self) -> bool:
        return "Connecting to master" in self.tail()

    def rpc_bound(self) -> bool:
        """True once the daemon listens on its RPC port (a worker registers with the master right after)."""
        return "Successfully started service 'spark" in self.tail()


def spawn(spark_class: str, role: str, args: list[str], env: dict, cwd: str, log_dir: str, port: int,
          ui_port: int, run_as=None) -> Daemon:
    """Start `spark-class ARGS` in its own session, output appended to `<log_dir>/<role>.log`.

    `run_as` (a localusers.SystemUser): the process drops to that user, its groups and umask 077 before it
    executes anything (Popen's user/group/extra_groups, which need root); its log file, opened here, is
    readable by the user's own group. SparkError when the identity cannot be taken.
    """
    log_path = os.path.join(log_dir, f"{role}.log")
    identity = {}
    if run_as is not None:
        identity = dict(user=run_as.uid, group=run_as.gid, extra_groups=run_as.groups, umask=0o077)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC, 0o640)
    with os.fdopen(fd, "ab") as log:
        if run_as is not None:
            os.fchown(log.fileno(), -1, run_as.gid)
            os.fchmod(log.fileno(), 0o640)
        offset = log.seek(0, os.SEEK_END)
        log.write(f"---- odh-hub: starting {role} at {time.strftime('%Y-%m-%dT%H:%M:%S')}\n".encode())
        log.flush()
        try:
            popen = subprocess.Popen([spark_class, *args], env=env, cwd=cwd, stdin=subprocess.DEVNULL, stdout=log,
                                     stderr=subprocess.STDOUT, start_new_session=True, **identity)
        except (PermissionError, subprocess.SubprocessError) as e:
            if run_as is None:
                raise
            raise SparkError(f"The Spark {role} could not be started as {run_as.name}: {e}") from None
    return Daemon(role, popen, port, ui_port, log_path, offset, procs.start_time(popen.pid))


def missed_master(worker: Daemon, master: Daemon) -> bool:
    """True when the worker's registration went nowhere: the master was not listening yet, or got it while it
    was not leading yet (it logs the registration, then ignores it in standby)."""
    if "Failed to connect to master" in worker.tail():
        return True
    lines = master.tail().splitlines()
    registered = [n for n, line in enumerate(lines) if f"Registering worker 127.0.0.1:{worker.port} " in line]
    leading = next((n for n, line in enumerate(lines) if "elected leader" in line), None)
    return bool(registered) and leading is not None and registered[-1] < leading


def fetch_master_json(ui_url: str) -> dict | None:
    """The master's `/json/`, or None while it does not answer (never through an HTTP proxy)."""
    try:
        with _NO_PROXY.open(f"{ui_url}/json/", timeout=2) as r:
            return json.load(r)
    except (urllib.error.URLError, OSError, ValueError):
        return None
