"""What a running `odh-hub up` started, recorded in its state directory (`up.json`, mode 0600), so that the next
`odh-hub up` after the launcher was killed (kill -9, a crash of the terminal) stops what the dead run left behind
before starting again, and refuses to start while the recorded launcher still runs.

Each process is recorded with its start time (from /proc), so a PID reused by an unrelated process is never
signalled. What the dead run left is stopped, not adopted: the hub (SIGTERM: it stops its proxy and managed
services, as on Ctrl-C), the Kafka broker and the Ceph daemons; their data stays and the new run starts them
again on it. Users' notebook servers, model servers and ingestion workers are not in the record: the new hub
and platform service find them in their own records and adopt them, as after a hub restart.
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

from odh_spawner.errors import OdhError
from odh_spawner.host import procs

RECORD = "up.json"
STOP_ORDER = ("prometheus", "hub", "kafka", "ceph")  # the hub before the others: it talks to them while it stops


class LauncherRunning(OdhError):
    """Another `odh-hub up` runs with this state directory."""


@dataclass(frozen=True)
class Entry:
    what: str      # "launcher", "prometheus", "hub", "kafka", "ceph-<daemon>"
    pid: int
    started: int   # start time in clock ticks since boot (/proc/<pid>/stat field 22)
    address: str = ""  # where it answers (a URL or host:port), for `odh-hub status`


def entry(what: str, pid: int, address: str = "") -> Entry | None:
    """The record of a running process (None when it is already gone)."""
    started = procs.start_time(pid)
    return Entry(what, pid, started, address) if started is not None else None


def path_of(state_dir: str) -> str:
    return os.path.join(state_dir, RECORD)


def write(state_dir: str, entries: Iterable[Entry | None]) -> None:
    """Replace the record (atomically; 0600: it is root's business which PIDs the platform runs)."""
    path = path_of(state_dir)
    tmp = f"{path}.tmp-{os.getpid()}"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w") as f:
        json.dump([asdict(e) for e in entries if e is not None], f)
    os.replace(tmp, path)


def read(state_dir: str) -> list[Entry]:
    """The recorded processes ([] when there is no record or it cannot be read)."""
    try:
        fd = os.open(path_of(state_dir), os.O_RDONLY | os.O_NOFOLLOW)
        with os.fdopen(fd) as f:
            raw = json.load(f)
        return [Entry(str(r["what"]), int(r["pid"]), int(r["started"]), str(r.get("address", ""))) for r in raw]
    except (OSError, ValueError, TypeError, KeyError):
        return []


def clear(state_dir: str) -> None:
    try:
        os.unlink(path_of(state_dir))
    except FileNotFoundError:
        pass


def left_running(entries: list[Entry], is_alive: Callable[[int, int], bool] = procs.alive) -> list[Entry]:
    """The recorded processes that still run as the same processes, in the order to stop them (the launcher
    itself is not among them)."""
    rank = {w: i for i, w in enumerate(STOP_ORDER)}
    found = [e for e in entries if e.what != "launcher" and is_alive(e.pid, e.started)]
    return sorted(found, key=lambda e: rank.get(e.what.split("-")[0], len(rank)))


def reap(state_dir: str, report: Callable[[str], None], timeout: float = 30) -> int:
    """Before starting: refuse while the recorded launcher runs; else stop what a dead run left (returns how
    many processes) and forget the record."""
    entries = read(state_dir)
    launcher = next((e for e in entries if e.what == "launcher"), None)
    if launcher is not None and launcher.pid != os.getpid() and procs.alive(launcher.pid, launcher.started):
        raise LauncherRunning(f"Another odh-hub up (pid {launcher.pid}) runs with the state directory {state_dir}; "
                              "stop it first (Ctrl-C in its terminal).")
    left = left_running(entries)
    if left:
        names = ", ".join(f"{e.what} (pid {e.pid})" for e in left)
        report(f"The previous odh-hub up (pid {launcher.pid if launcher else '?'}) ended without stopping what it "
               f"started; stopping {names}")
        for group in STOP_ORDER:
            pids = [e.pid for e in left if e.what.split("-")[0] == group and procs.alive(e.pid, e.started)]
            if pids:
                procs.terminate_pids(pids, timeout=timeout)
    clear(state_dir)
    return len(left)
