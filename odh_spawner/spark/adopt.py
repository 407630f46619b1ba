"""Taking over a cluster another process started (the platform service, after the hub launched it): its daemons
known by PID and start time from the state file, and the system user they run as, checked against the user
database. Used by LocalSparkCluster.attach()."""

from __future__ import annotations

import os
import pwd
from dataclasses import dataclass

from odh_spawner.host.users import SystemUser
from odh_spawner.spark import procs
from odh_spawner.spark.daemon import Daemon
from odh_spawner.spark.errors import SparkError
from odh_spawner.spark.state import ClusterState, ProcessRecord


@dataclass
class AdoptedDaemon(Daemon):
    """A daemon another process started (known from the state file): no Popen; alive per /proc and start time."""

    adopted_pid: int = 0

    @property
    def pid(self) -> int:
        return self.adopted_pid

    def exited(self) -> bool:
        return not procs.alive(self.adopted_pid, self.started)

    @classmethod
    def from_record(cls, record: ProcessRecord, log_dir: str) -> "AdoptedDaemon":
        log_path = os.path.join(log_dir, f"{record.role}.log")
        return cls(record.role, None, record.port, record.ui_port, log_path, _run_offset(log_path, record.role),
                   record.started, adopted_pid=record.pid)


def _run_offset(log_path: str, role: str, window: int = 4 * 2**20) -> int:
    """Where the last run of `role` starts in its (appended) log: the last start marker `spawn` wrote."""
    marker = f"---- odh-hub: starting {role} at".encode()
    try:
        with open(log_path, "rb") as f:
            start = max(0, f.seek(0, os.SEEK_END) - window)
            f.seek(start)
            found = f.read().rfind(marker)
    except OSError:
        return 0
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
