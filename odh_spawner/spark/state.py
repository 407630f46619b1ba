"""State files of local Spark clusters, and the reaper that stops clusters whose owner is gone.

Each cluster keeps `<state_root>/<name>/spark-cluster.json`: who it belongs to (the notebook server's PID
once known, else the hub process that started it, each with its start time so a reused PID is not mistaken
for the owner), and the PID, start time and ports of each of its processes. After a hub crash and restart,
`reap_orphans(state_root)` stops every cluster whose owner is no longer running.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import asdict, dataclass, field
from dataclasses import fields as dataclass_fields

from odh_spawner.host.safefiles import fresh_tmp
from odh_spawner.spark import auth, procs, uiguard
from odh_spawner.spark.phase import PHASE_FILE
from odh_spawner.spark.limits import SparkUsage

STATE_FILE = "spark-cluster.json"
STATE_VERSION = 1
log = logging.getLogger("odh_spawner.spark")


@dataclass
class ProcessRecord:
    role: str  # "master" or "worker-N"
    pid: int
    started: int | None  # /proc start time, clock ticks
    port: int
    ui_port: int


@dataclass
class ClusterState:
    name: str
    directory: str
    user: str = ""
    server: str = ""
    owner_pid: int | None = None  # the notebook server this cluster belongs to
    owner_started: int | None = None
    creator_pid: int | None = None  # the hub process that started it (the owner until owner_pid is known)
    creator_started: int | None = None
    workers_requested: int = 0
    processes: list[ProcessRecord] = field(default_factory=list)
    # what another process (the platform service) needs to scale or restart the cluster
    worker_cores: int = 0
    worker_memory: int = 0  # bytes
    ui_proxy_url: str = ""  # where users reach the master UI (spark.ui.reverseProxyUrl), "" when not proxied
    limits: dict = field(default_factory=dict)  # the limits it was started under (see spark.api.ClusterLimits)
    # security (absent in state files of earlier versions: no authentication, daemons as the platform's user)
    authenticate: bool = False  # spark.authenticate with the secret kept in <directory>/auth-secret
    run_as: dict | None = None  # the system user the daemons run as: {"name", "uid", "gid", "home"}
    # "starting" from launch until master and every worker are up (then "ready"); absent in older files
    phase: str = "ready"
    error: str = ""
    # the nftables guard of its UI ports (spark.uiguard): the table's id ("" when unguarded) and the block of
    # ports the notebook's drivers bind their UI to (pinned in its spark-defaults.conf); absent in older files
    guard_id: str = ""
    driver_ui_ports: list[int] = field(default_factory=list)

    @property
    def ui_ports(self) -> list[int]:
        """Every UI port of the cluster: master, workers, and the drivers' block."""
        return sorted({p.ui_port for p in self.processes if p.ui_port} | set(self.driver_ui_ports))

    @property
    def conf_dir(self) -> str:
        return os.path.join(self.directory, "conf")

    def owner_alive(self) -> bool:
        if self.owner_pid:
            return procs.alive(self.owner_pid, self.owner_started)
        if self.creator_pid:
            return procs.alive(self.creator_pid, self.creator_started)
        return False

    @property
    def master(self) -> ProcessRecord | None:
        return next((p for p in self.processes if p.role == "master"), None)

    @property
    def workers(self) -> list[ProcessRecord]:
        return [p for p in self.processes if p.role.startswith("worker")]

    def live_processes(self) -> list[ProcessRecord]:
        return [p for p in self.processes if procs.is_spark_process(p.pid, self.conf_dir, p.started)]

    def to_json(self) -> dict:
        return {"version": STATE_VERSION, **asdict(self)}

    @classmethod
    def from_json(cls, data: dict) -> "ClusterState":
        if data.get("version") != STATE_VERSION:
            raise ValueError(f"Unsupported state version {data.get('version')!r}.")
        known = {f.name for f in dataclass_fields(cls)}
        fields = {k: v for k, v in data.items() if k in known}
        fields["processes"] = [ProcessRecord(**p) for p in fields.get("processes", [])]
        return cls(**fields)


def state_path(directory: str) -> str:
    return os.path.join(directory, STATE_FILE)


def write_state(state: ClusterState) -> None:
    """Write atomically: a reaper never reads half a file."""
    path = state_path(state.directory)
    tmp, fd = fresh_tmp(path)  # never through a link: the directory may be the platform service's
    with os.fdopen(fd, "w") as f:
        json.dump(state.to_json(), f, indent=1)
    os.replace(tmp, path)


def read_state(directory: str) -> ClusterState | None:
    try:
        with open(state_path(directory)) as f:
            return ClusterState.from_json(json.load(f))
    except FileNotFoundError:
        return None


def remove_state(directory: str) -> None:
    try:
        os.remove(state_path(directory))
    except FileNotFoundError:
        pass


def all_states(state_root: str) -> list[ClusterState]:
    """Every readable cluster state under `state_root` (unreadable ones are logged and skipped)."""
    out = []
    try:
        names = sorted(os.listdir(state_root))
    except FileNotFoundError:
        return out
    for name in names:
        directory = os.path.join(state_root, name)
        try:
            state = read_state(directory)
        except (OSError, ValueError, TypeError) as e:
            log.warning("Ignoring unreadable Spark cluster state in %s: %s", directory, e)
            continue
        if state is not None:
            out.append(state)
    return out


def user_clusters(state_root: str, user: str, server: str | None = None) -> list[ClusterState]:
    """The clusters of `user` (of one of their servers when `server` is given), by the state files' `user` field."""
    return [s for s in all_states(state_root) if s.user == user and (server is None or s.server == server)]


def current_usage(state_root: str, user: str) -> SparkUsage:
    """Workers running now (live processes), for this user and for everyone, from the state files."""
    mine = total = 0
    for state in all_states(state_root):
        workers = sum(1 for p in state.live_processes() if p.role.startswith("worker"))
        total += workers
        if state.user == user:
            mine += workers
    return SparkUsage(user_workers=mine, total_workers=total)


def stop_recorded(state: ClusterState, timeout: float = 10.0) -> list[int]:
    """Stop a cluster from its state file alone (no Popen objects): verified PIDs only. Returns PIDs killed."""
    records = [(p.pid, p.started, None) for p in state.processes]
    try:
        return procs.terminate(records, state.conf_dir, timeout, sweep=True)
    finally:
        uiguard.release(state.guard_id, state.ui_ports)


def forget_cluster(directory: str) -> None:
    """Remove what a stopped cluster leaves that matters: its state file, its secret and the notebook's copy."""
    remove_state(directory)
    auth.remove_secret(directory)
    auth.remove_notebook_conf(directory)
    try:
        os.remove(os.path.join(directory, PHASE_FILE))
    except FileNotFoundError:
        pass


def reap_orphans(state_root: str, timeout: float = 10.0) -> list[str]:
    """Stop the clusters under `state_root` whose owner process is gone; return their names.

    Clusters whose owner still runs are left alone. A state file whose processes are all gone is removed.
    Every PID is checked (/proc command line, cluster configuration directory, start time) before a signal.
    """
    reaped = []
    for state in all_states(state_root):
        if state.owner_alive():
            continue
        live = state.live_processes() or procs.cluster_pids(state.conf_dir)
        if live:
            log.warning("Reaping Spark cluster %s of user %r: its owner (pid %s) is gone", state.name, state.user,
                        state.owner_pid or state.creator_pid)
            stop_recorded(state, timeout)
            reaped.append(state.name)
        else:
            uiguard.release(state.guard_id, state.ui_ports)  # what a crash left guarded (stop_recorded does it)
        forget_cluster(state.directory)
    return reaped


def stop_cluster(state_root: str, name: str, timeout: float = 10.0) -> bool:
    """Stop a cluster from its state file alone: for a restarted hub that holds no LocalSparkCluster for it
    (its server stops). Returns False when there is no such cluster."""
    directory = os.path.join(os.path.abspath(state_root), name)
    state = read_state(directory)
    if state is None:
        return False
    stop_recorded(state, timeout)
    forget_cluster(directory)
    return True


def stop_server_cluster(state_root: str, user: str, server: str = "", timeout: float = 10.0) -> bool:
    """Stop the cluster of one user server, found by the `user` and `server` its state file records (so also one
    a hub of an earlier version started under an older directory name). Returns False when there is none."""
    found = False
    for state in user_clusters(state_root, user, server):
        stop_recorded(state, timeout)
        forget_cluster(state.directory)
        found = True
    return found
