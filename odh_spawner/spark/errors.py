"""Typed Spark errors. Messages are safe to show to users; log paths and log tails are for admins' logs."""

from __future__ import annotations

from odh_spawner.errors import ForbiddenOption, OdhError


class SparkError(OdhError):
    """A Spark cluster could not be started, scaled or stopped."""


class SparkLimitError(ForbiddenOption):
    """A requested Spark shape exceeds a per-user or hub-wide limit (HTTP 403)."""


class SparkStartError(SparkError):
    """A cluster process failed or the cluster was not ready in time.

    `log_path` names the log of the failing process and `log_tail` holds its last lines (Spark's own
    output: no credentials reach the Spark daemons' command lines or logs).
    """

    def __init__(self, message: str, *, log_path: str = "", log_tail: str = ""):
        self.reason = message
        self.log_path = log_path
        self.log_tail = log_tail
        detail = f"\n--- last lines of {log_path} ---\n{log_tail}" if log_tail else ""
        super().__init__(f"{message}{detail}")
