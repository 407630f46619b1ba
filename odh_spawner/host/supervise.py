"""Small pieces for supervising the local platform's processes: a restart budget and exit descriptions
(finding, identifying and stopping processes by PID: host.procs)."""

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


def exit_text(returncode: int) -> str:
    """'signal 9 (SIGKILL)' or 'status 1', for a Popen returncode."""
    if returncode < 0:
        try:
            return f"signal {-returncode} ({signal.Signals(-returncode).name})"
        except ValueError:
            return f"signal {-returncode}"
    return f"status {returncode}"