"""Small pieces for supervising the local platform's processes: a restart budget, a restart back-off and exit
descriptions, and the supervising of one long-lived platform process (finding, identifying and stopping processes by PID: host.procs; the processes it owns for users:
host.owned)."""

from __future__ import annotations

import signal
import subprocess
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


class SupervisedProcess:
    """Supervising, stopping and killing one platform process by PID (the local Kafka brokers, Prometheus). A
    subclass gives `proc`, `budget`, `report`, `address`, `log_path`, `_spawn()` and `_wait(timeout)`, its names
    (`keeps_exiting`, `restarted_name`), its error class and its timings."""

    error: type[Exception] = RuntimeError
    keeps_exiting = "The process"   # "<keeps_exiting> keeps exiting (last with ...)"
    restarted_name = "Process"      # "<restarted_name> (pid N) exited unexpectedly (...); restarted it at <address>"
    restart_timeout = 30.0  # seconds to answer again after a (re)start
    stop_timeout = 10.0     # SIGTERM, then SIGKILL after this long
    reap_timeout = 5.0      # waiting for a killed process

    def supervise(self) -> str | None:
        """Start the process again (same ports, same data) if it exited on its own; a message when it did."""
        if self.proc is None or self.proc.poll() is None:
            return None
        how = exit_text(self.proc.returncode)
        if not self.budget.spend():
            raise self.error(f"{self.keeps_exiting} keeps exiting (last with {how}); see {self.log_path}.")
        old = self.proc.pid
        self.proc = self._spawn()
        self._wait(self.restart_timeout)
        msg = f"{self.restarted_name} (pid {old}) exited unexpectedly ({how}); restarted it at {self.address}"
        self.report(msg)
        return msg

    def stop(self, timeout: float | None = None) -> None:
        """SIGTERM (the process saves its data), SIGKILL after `timeout` seconds (default: stop_timeout)."""
        p = self.proc
        if p is None or p.poll() is not None:
            return
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(self.stop_timeout if timeout is None else timeout)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait(self.reap_timeout)

    def kill(self) -> None:
        """SIGKILL (tests: a crash)."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(self.reap_timeout)

    def restart(self, timeout: float | None = None) -> None:
        """Stop cleanly and start again on the same ports with the same data."""
        self.stop()
        self.proc = self._spawn()
        self._wait(self.restart_timeout if timeout is None else timeout)
