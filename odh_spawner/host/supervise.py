"""Small pieces for supervising the local platform's processes: a restart budget, a restart back-off and exit
descriptions (finding, identifying and stopping processes by PID: host.procs; the processes it owns for users:
host.owned)."""

from __future__ import annotations

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


def restart_delay(restarts: int, cap: float) -> float:
    """Seconds to wait before the next restart of a process that has been restarted `restarts` times: doubling
    from 2 s, at most `cap` (a model server or ingestion worker that keeps dying is retried ever less often,
    never given up on: it belongs to a user who may fix what makes it fail)."""
    return min(2 ** min(restarts, 6), cap)


def exit_text(returncode: int) -> str:
    """'signal 9 (SIGKILL)' or 'status 1', for a Popen returncode."""
    if returncode < 0:
        try:
            return f"signal {-returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            return f"signal {-returncode}"
    return f"status {returncode}"