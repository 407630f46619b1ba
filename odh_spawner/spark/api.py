"""What the Spark REST API (platform service, notebook extension) answers and enforces. Pure (no I/O).

- `ClusterLimits`: the limits a cluster was started under (the profile's worker maximum, the admin's per-user
  and hub-wide limits), recorded in its state file, so whoever scales it later applies the same ones.
- `check_scale_request`: a scale request against those limits -> the new request, or a typed error.
- `status_json`: the status object the JupyterLab panel, the widget and the Python client read::

    {"enabled": true, "state": "running"|"starting"|"stopped", "master_url", "ui_url", "workers_alive",
     "workers_requested", "max_workers", "cores", "cores_used", "memory_mb", "memory_used_mb",
     "applications": [{"id", "name", "state", "cores"}]}
"""

from __future__ import annotations

from dataclasses import dataclass

from odh_spawner.profiles.resolve import SparkRequest
from odh_spawner.spark.errors import SparkLimitError
from odh_spawner.spark.limits import SparkLimits, SparkUsage, check_scale
from odh_spawner.spark.status import MIB, SparkStatus

DISABLED = {"enabled": False}
STATES = ("running", "starting", "stopped")


@dataclass(frozen=True)
class ClusterLimits:
    profile_max_workers: int  # the profile's spark.workers.max
    max_workers: int  # the admin's per-user limit, over all of the user's servers (SparkLimits.max_workers)
    max_total_workers: int | None = None  # the admin's hub-wide limit (SparkLimits.max_total_workers)
    limit_source: str = ""  # where max_workers came from ("group students"), for messages

    @classmethod
    def of(cls, limits: SparkLimits, profile_max_workers: int) -> ClusterLimits:
        return cls(profile_max_workers, limits.max_workers, limits.max_total_workers,
                   getattr(limits, "limit_source", ""))

    @property
    def cluster_max_workers(self) -> int:
        """Most workers this cluster may scale to (ignoring the user's other clusters and the hub-wide limit)."""
        return min(self.profile_max_workers, self.max_workers)

    def spark_limits(self) -> SparkLimits:
        limits = SparkLimits(max_workers=self.max_workers, max_total_workers=self.max_total_workers)
        limits.limit_source = self.limit_source
        return limits

    def to_json(self) -> dict:
        out = {"profile_max_workers": self.profile_max_workers, "max_workers": self.max_workers,
               "max_total_workers": self.max_total_workers}
        if self.limit_source:
            out["limit_source"] = self.limit_source
        return out

    @classmethod
    def from_json(cls, data: dict | None) -> ClusterLimits:
        """Limits recorded in a state file; the admin's defaults for a state written without them."""
        data = data or {}
        default = SparkLimits()

        def positive(key: str, fallback):
            value = data.get(key, fallback)
            ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
            return value if ok else fallback

        max_workers = positive("max_workers", default.max_workers)
        source = data.get("limit_source", "")
        return cls(profile_max_workers=positive("profile_max_workers", max_workers), max_workers=max_workers,
                   max_total_workers=positive("max_total_workers", None),
                   limit_source=source[:200] if isinstance(source, str) else "")


def check_scale_request(limits: ClusterLimits, current: SparkRequest, workers, usage: SparkUsage) -> SparkRequest:
    """The request after scaling from `current.workers` to `workers`, or OptionsError (400) / SparkLimitError (403).

    A scale-up must stay within the profile's maximum, the user's limit over all of their clusters and the
    hub-wide limit (`usage`: workers running now, this cluster included). Scaling down is always allowed.
    """
    check_scale(None, current, workers, usage)  # a whole number of at least 1
    if workers > current.workers and workers > limits.profile_max_workers:
        raise SparkLimitError(f"{workers} Spark workers exceed this profile's limit of "
                              f"{limits.profile_max_workers}.")
    return check_scale(limits.spark_limits(), current, workers, usage)


def cluster_state(master_running: bool, status: SparkStatus | None, busy: bool = False,
                  workers_requested: int = 0) -> str:
    """'stopped' without a master process; 'starting' while it does not lead yet, fewer than
    `workers_requested` workers have registered (a cluster launched beside its server: pass its requested
    count while its phase is 'starting'), or it is being scaled or restarted; else 'running'."""
    if not master_running:
        return "stopped"
    if busy or status is None or status.state != "ALIVE" or status.workers_alive < workers_requested:
        return "starting"
    return "running"


def status_json(*, state: str, master_url: str, ui_url: str, workers_requested: int, max_workers: int,
                status: SparkStatus | None = None) -> dict:
    """The API's status object; counts from the master's JSON when it answered (`status`), else zeros."""
    if state not in STATES:
        raise ValueError(f"Unknown cluster state {state!r}.")
    s = status if state != "stopped" else None
    return {
        "enabled": True,
        "state": state,
        "master_url": master_url,
        "ui_url": ui_url,
        "workers_alive": s.workers_alive if s else 0,
        "workers_requested": workers_requested,
        "max_workers": max_workers,
        "cores": s.cores if s else 0,
        "cores_used": s.cores_used if s else 0,
        "memory_mb": s.memory // MIB if s else 0,
        "memory_used_mb": s.memory_used // MIB if s else 0,
        "applications": [{"id": a.id, "name": a.name, "state": a.state, "cores": a.cores}
                         for a in (s.applications if s else ())],
    }
