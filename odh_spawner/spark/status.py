"""A standalone master's JSON (`GET http://MASTER_UI/json/`) -> SparkStatus. Pure.

The master lists every worker it has seen, DEAD ones included, and reports memory in MiB.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable

MIB = 2**20


@dataclass(frozen=True)
class WorkerStatus:
    id: str
    host: str
    port: int
    state: str  # ALIVE, DEAD, DECOMMISSIONED, UNKNOWN
    cores: int
    cores_used: int
    memory: int  # bytes
    memory_used: int  # bytes


@dataclass(frozen=True)
class AppStatus:
    id: str
    name: str
    state: str  # RUNNING, WAITING, ...
    cores: int
    memory_per_executor: int  # bytes
    user: str
    duration_ms: int


@dataclass(frozen=True)
class SparkStatus:
    master_url: str
    ui_url: str
    state: str  # the master's: ALIVE once it leads
    workers: tuple[WorkerStatus, ...]
    applications: tuple[AppStatus, ...]

    @property
    def alive_workers(self) -> tuple[WorkerStatus, ...]:
        return tuple(w for w in self.workers if w.state == "ALIVE")

    @property
    def workers_alive(self) -> int:
        return len(self.alive_workers)

    @property
    def cores(self) -> int:
        return sum(w.cores for w in self.alive_workers)

    @property
    def cores_used(self) -> int:
        return sum(w.cores_used for w in self.alive_workers)

    @property
    def memory(self) -> int:
        return sum(w.memory for w in self.alive_workers)

    @property
    def memory_used(self) -> int:
        return sum(w.memory_used for w in self.alive_workers)

    @property
    def running_applications(self) -> tuple[AppStatus, ...]:
        return tuple(a for a in self.applications if a.state == "RUNNING")

    def to_dict(self) -> dict:
        """A JSON-ready summary (for the platform service and the notebook extension)."""
        return {
            "master_url": self.master_url,
            "ui_url": self.ui_url,
            "state": self.state,
            "workers_alive": self.workers_alive,
            "cores": self.cores,
            "cores_used": self.cores_used,
            "memory": self.memory,
            "memory_used": self.memory_used,
            "workers": [{"id": w.id, "state": w.state, "cores": w.cores, "memory": w.memory} for w in self.workers],
            "applications": [{"id": a.id, "name": a.name, "state": a.state, "cores": a.cores,
                              "memory_per_executor": a.memory_per_executor, "duration_ms": a.duration_ms}
                             for a in self.applications],
        }


def _int(value) -> int:
    return int(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else 0


def parse_master_json(data: dict, ui_url: str = "", ports: Iterable[int] | None = None) -> SparkStatus:
    """Parse the master's JSON. With `ports`, keep only the workers listening on those ports (this cluster's)."""
    keep = set(ports) if ports is not None else None
    workers = []
    for w in data.get("workers") or []:
        port = _int(w.get("port"))
        if keep is not None and port not in keep:
            continue
        workers.append(WorkerStatus(
            id=str(w.get("id", "")), host=str(w.get("host", "")), port=port, state=str(w.get("state", "UNKNOWN")),
            cores=_int(w.get("cores")), cores_used=_int(w.get("coresused")),
            memory=_int(w.get("memory")) * MIB, memory_used=_int(w.get("memoryused")) * MIB,
        ))
    apps = tuple(
        AppStatus(id=str(a.get("id", "")), name=str(a.get("name", "")), state=str(a.get("state", "")),
                  cores=_int(a.get("cores")), memory_per_executor=_int(a.get("memoryperexecutor",
                                                                             a.get("memoryperslave"))) * MIB,
                  user=str(a.get("user", "")), duration_ms=_int(a.get("duration")))
        for a in data.get("activeapps") or []
    )
    return SparkStatus(master_url=str(data.get("url", "")), ui_url=ui_url, state=str(data.get("status", "")),
                       workers=tuple(workers), applications=apps)
