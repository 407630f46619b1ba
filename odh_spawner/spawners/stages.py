"""Where a spawn's time goes: named stages with their durations. Pure (the clock is injected).

A spawner opens a stage when it starts a step and the next stage (or `finish`) closes it. The progress page
shows each stage as it ends, in the user's words with its duration ("Object-storage credentials ready
(0.12 s)"), so a slow spawn says where it was slow; the hub log gets one line with every stage, which the
benchmarks read (`SpawnStages.from_log_line`).
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Callable

LOG_PREFIX = "odh spawn stages "


@dataclass
class SpawnStages:
    clock: Callable[[], float] = time.perf_counter
    durations: dict[str, float] = field(default_factory=dict)
    _current: str | None = None
    _since: float = 0.0
    _began: float | None = None

    def begin(self, name: str) -> float | None:
        """Close the open stage (returning its duration) and open `name`."""
        now = self.clock()
        if self._began is None:
            self._began = now
        closed = self._close(now)
        self._current, self._since = name, now
        return closed

    def finish(self) -> float | None:
        """Close the open stage; returns its duration (None when none was open)."""
        return self._close(self.clock())

    def _close(self, now: float) -> float | None:
        if self._current is None:
            return None
        took = max(0.0, now - self._since)
        self.durations[self._current] = self.durations.get(self._current, 0.0) + took
        self._current = None
        return took

    @property
    def total(self) -> float:
        return sum(self.durations.values())

    def summary(self) -> str:
        """'identity 0.01 s, credentials 0.12 s, ...' in the order the stages ran."""
        return ", ".join(f"{name} {took:.2f} s" for name, took in self.durations.items())

    def log_line(self, user: str) -> str:
        return LOG_PREFIX + json.dumps({"user": user, "total": round(self.total, 4),
                                        "stages": {k: round(v, 4) for k, v in self.durations.items()}})

    @staticmethod
    def from_log_line(line: str) -> dict | None:
        """The record `log_line` wrote, from a hub log line holding it (None when the line has none)."""
        at = line.find(LOG_PREFIX)
        if at < 0:
            return None
        try:
            record = json.loads(line[at + len(LOG_PREFIX):])
        except ValueError:
            return None
        return record if isinstance(record, dict) and isinstance(record.get("stages"), dict) else None


def with_duration(message: str, took: float | None) -> str:
    return message if took is None else f"{message} ({took:.2f} s)"
