"""One Spark daemon process (master or worker) of a local cluster: launch and log reading (host.owned), master JSON.

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

from odh_spawner.host import owned
from odh_spawner.host.owned import OwnedProcess
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
    """A master or worker: the process (host.owned; `popen` None for one another process started, known from
    the state file) and the ports it was told to use."""

    role: str  # "master" or "worker-N"
    proc: OwnedProcess
    port: int
    ui_port: int
    relaunches: int = 0

    @property
    def pid(self) -> int:
        return self.proc.pid

    @property
    def popen(self) -> subprocess.Popen | None:
        return self.proc.popen

    @property
    def started(self) -> int | None:
        return self.proc.started

    @property
    def log_path(self) -> str:
        return self.proc.log

    def exited(self) -> bool:
        return not self.proc.alive()

    def record(self) -> ProcessRecord:
        return ProcessRecord(self.role, self.pid, self.started, self.port, self.ui_port)

    def tail(self, lines: int = 400) -> str:
        return self.proc.tail(lines)

    def bind_failed(self) -> bool:
        return any(marker in self.tail() for marker in BIND_ERRORS)

    def tried_to_register(self) -> bool:
        return "Connecting to master" in self.tail()

    def rpc_bound(self) -> bool:
        """True once the daemon listens on its RPC port (a worker registers with the master right after)."""
        return "Successfully started service 'spark" in self.tail()


def start_marker(role: str) -> str:
    """The line `spawn` writes to a daemon's log before each start (adopt finds the last run by it)."""
    return f"---- odh-hub: starting {role} at"


def spawn(spark_class: str, role: str, args: list[str], env: dict, cwd: str, log_dir: str, port: int,
          ui_port: int, run_as=None) -> Daemon:
    """Start `spark-class ARGS` in its own session (host.owned), output appended to `<log_dir>/<role>.log`.

    `run_as` (a host.users.SystemUser): the process drops to that user, its groups and umask 077 before it
    executes anything; its log file, opened here in the platform's log directory, is readable by the user's
    own group. SparkError when the identity cannot be taken.
    """
    header = f"{start_marker(role)} {time.strftime('%Y-%m-%dT%H:%M:%S')}\n"
    try:
        proc = owned.start([spark_class, *args], log_path=os.path.join(log_dir, f"{role}.log"), cwd=cwd, env=env,
                           run_as=run_as, extra_groups=True, log_mode=0o640, header=header)
    except owned.StartFailed as e:
        raise SparkError(f"The Spark {role} did not start: {e}") from None
    return Daemon(role, proc, port, ui_port)


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
