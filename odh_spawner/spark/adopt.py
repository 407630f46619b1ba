"""Taking over a cluster another process started (the platform service, after the hub launched it): its daemons
known by PID and start time from the state file, and the system user they run as, checked against the user
database. Used by LocalSparkCluster.attach()."""

from __future__ import annotations

import os
import pwd

from odh_spawner.host.owned import OwnedProcess
from odh_spawner.host.safefiles import read_bytes
from odh_spawner.host.users import SystemUser
from odh_spawner.spark.daemon import Daemon, start_marker
from odh_spawner.spark.errors import SparkError
from odh_spawner.spark.state import ClusterState, ProcessRecord


def adopted(record: ProcessRecord, log_dir: str) -> Daemon:
    """A daemon another process started, from its state-file record: alive per /proc and its start time."""
    log_path = os.path.join(log_dir, f"{record.role}.log")
    proc = OwnedProcess(record.pid, record.started, log_path, _run_offset(log_path, record.role))
    return Daemon(record.role, proc, record.port, record.ui_port)


def _run_offset(log_path: str, role: str, window: int = 4 * 2**20) -> int:
    """Where the last run of `role` starts in its (appended) log: the last start marker `spawn` wrote (read
    safely: host.safefiles)."""
    try:
        start = max(0, os.stat(log_path, follow_symlinks=False).st_size - window)
        data = read_bytes(log_path, window, offset=start)
    except OSError:
        return 0
    found = data.rfind(start_marker(role).encode())
    return start + found if found >= 0 else 0


def user_record(user: SystemUser | None) -> dict | None:
    return None if user is None else {"name": user.name, "uid": user.uid, "gid": user.gid, "home": user.home}


def user_from_record(state: ClusterState) -> SystemUser | None:
    """The system user a cluster's daemons ran as (from its state file), checked against the user database."""
    r = state.run_as
    if not r:
        return None
    try:
        entry = pwd.getpwnam(r["name"])
        user = SystemUser(r["name"], int(r["uid"]), int(r["gid"]), r["home"])
    except (KeyError, TypeError, ValueError):
        raise SparkError(f"The Spark cluster {state.name!r} cannot be managed from here (its system user is "
                         "gone); restart your server.") from None
    if (entry.pw_uid, entry.pw_gid) != (user.uid, user.gid):
        raise SparkError(f"The Spark cluster {state.name!r} cannot be managed from here (its system user "
                         "changed); restart your server.")
    return user
