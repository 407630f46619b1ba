"""Processes on this machine, by PID: identify them through /proc (command line, start time, environment),
tell whether they still run, signal and stop them (starting them, their logs: host.owned). Shared by everything the local
platform supervises (platform components, model servers, ingestion workers, Spark daemons). A PID is only ever
signalled by callers that checked its start time, so a recycled PID is never touched."""

from __future__ import annotations

import os
import signal
import socket
import time

def cmdline(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return [a.decode(errors="replace") for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def _stat_fields(pid: int) -> list[str]:
    """Fields of /proc/PID/stat after the command name (index 0 is field 3, the state)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(") ", 1)[1].split()
    except (OSError, IndexError):
        return []


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (stable for its life; differs for a reused PID)."""
    fields = _stat_fields(pid)
    return int(fields[19]) if len(fields) > 19 else None


def state_letter(pid: int) -> str:
    """The process's state from /proc (R, S, D, T stopped, t traced, Z zombie, ...); "" when it is gone."""
    fields = _stat_fields(pid)
    return fields[0] if fields else ""


def parent(pid: int) -> int:
    """The process's parent PID (0 when it is gone)."""
    fields = _stat_fields(pid)
    return int(fields[1]) if len(fields) > 1 else 0


def _threads_exiting(pid: int) -> bool:
    """True while a process whose main thread is already a zombie still has threads running.

    A killed JVM's main thread turns zombie before its other threads have exited, and the process's sockets
    and files close only when the last thread exits: until then its ports still answer."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return False
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                state = f.read().rsplit(") ", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if state not in ("Z", "X"):
            return True
    return False


def alive(pid: int | None, started: int | None = None) -> bool:
    """True when `pid` runs (a zombie counts as gone once all its threads have exited) and, if `started` is
    given, is the same process."""
    if not pid or pid <= 0:
        return False
    fields = _stat_fields(pid)
    if not fields or fields[0] == "X" or (fields[0] == "Z" and not _threads_exiting(pid)):
        return False
    return started is None or (len(fields) > 19 and int(fields[19]) == started)


def set_nice(pid: int, value: int) -> None:
    """Set the nice value of every thread of `pid` (Linux schedules threads: a JVM's are its tasks). Lowering it
    needs root. A process or thread that is gone is skipped."""
    try:
        tids = [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return
    for tid in tids:
        try:
            os.setpriority(os.PRIO_PROCESS, tid, value)
        except (ProcessLookupError, PermissionError):
            pass


def signal_pid(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def killpg(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def terminate_pids(pids: list[int], timeout: float = 10) -> None:
    """SIGTERM each PID, SIGKILL those still alive after `timeout` seconds."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while any(alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.1)
    for pid in pids:
        if alive(pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass



def process_environ(pid: int) -> dict[str, str]:
    """A process's environment from /proc ({} when it is gone or not ours to read)."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as f:
            raw = f.read()
    except OSError:
        return {}
    items = (kv.split(b"=", 1) for kv in raw.split(b"\0") if b"=" in kv)
    return {k.decode(errors="replace"): v.decode(errors="replace") for k, v in items}


def pids_with_env(match) -> list[int]:
    """PIDs (other than ours) whose environment satisfies `match(env: dict) -> bool`."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit() and int(entry) != os.getpid():
            env = process_environ(int(entry))
            if env and match(env):
                found.append(int(entry))
    return found


def listening(port: int, host: str = "127.0.0.1") -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False

