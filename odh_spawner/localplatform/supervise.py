"""Small pieces for supervising the local platform's processes: a restart budget, and finding processes by
what their environment says about them (for processes whose parent died, so no Popen handle is left)."""

from __future__ import annotations

import os
import signal
import time


class RestartBudget:
    """At most `limit` restarts within `window` seconds; a process that exits more often is given up on."""

    def __init__(self, limit: int = 5, window: float = 120.0, clock=time.monotonic):
        self.limit = limit
        self.window = window
        self.clock = clock
        self.times: list[float] = []

    def spend(self) -> bool:
        """Record a restart; False when this one would exceed the budget (do not restart then)."""
        now = self.clock()
        self.times = [t for t in self.times if now - t < self.window] + [now]
        return len(self.times) <= self.limit


def exit_text(returncode: int) -> str:
    """'signal 9 (SIGKILL)' or 'status 1', for a Popen returncode."""
    if returncode < 0:
        try:
            return f"signal {-returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            return f"signal {-returncode}"
    return f"status {returncode}"


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


def alive(pid: int) -> bool:
    """The process exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def terminate(pids: list[int], timeout: float = 10) -> None:
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
