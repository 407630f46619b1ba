"""An ingestion record: who owns it, what it reads and writes, what its owner wants (running, paused,
stopped), and where its worker runs. Pure (JSON in, JSON out)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from odh_spawner.naming import user_slug
from odh_spawner.ingest.spec import Spec

RUNNING, PAUSED, STOPPED = "running", "paused", "stopped"
DESIRED = (RUNNING, PAUSED, STOPPED)


def group_id(owner: str, name: str) -> str:
    """The ingestion's consumer group: one per (owner, name), injective (a slug has no '.', a name neither)."""
    return f"odh-ingest.{user_slug(owner)}.{name}"


@dataclass
class Ingestion:
    owner: str
    name: str
    spec: Spec
    desired: str = RUNNING
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    runtime: dict = field(default_factory=dict)  # the worker: pid, started, run_dir
    restarts: int = 0
    last_error: str | None = None  # the platform's (the worker reports its own in its status)
    changes: list = field(default_factory=list)  # settings changes: [{"at", "from", "to"}]

    @property
    def key(self) -> tuple[str, str]:
        return (self.owner, self.name)

    @property
    def group(self) -> str:
        return group_id(self.owner, self.name)

    def touch(self) -> None:
        self.updated = time.time()

    def to_json(self) -> dict:
        return {"owner": self.owner, "name": self.name, "spec": self.spec.to_json(), "desired": self.desired,
                "created": self.created, "updated": self.updated, "runtime": self.runtime,
                "restarts": self.restarts, "last_error": self.last_error, "changes": self.changes}

    @classmethod
    def from_json(cls, d: dict) -> "Ingestion":
        return cls(owner=d["owner"], name=d["name"], spec=Spec(**d["spec"]), desired=d.get("desired", RUNNING),
                   created=d.get("created", 0), updated=d.get("updated", 0), runtime=d.get("runtime") or {},
                   restarts=d.get("restarts", 0), last_error=d.get("last_error"), changes=d.get("changes") or [])


def hint(state: str, status: dict, last_error: str | None, last_exit: str | None = None) -> str | None:
    """One sentence on why nothing lands (or None when things land). Pure."""
    if state == "restarting":
        return "The worker stopped and is being started again" + (f" (last time {last_exit})" if last_exit else "") + "."
    if last_error:
        if "permission" in last_error.lower():
            return "No permission on the bucket: your keys may not write there; check the bucket name and its owner."
        if "unreachable" in last_error.lower():
            return "The Kafka broker cannot be reached; the worker retries by itself."
        return "See last_error; the worker keeps retrying."
    if state in (PAUSED, STOPPED):
        return f"The ingestion is {state}: resume it to go on."
    parts = status.get("partitions") or {}
    lag = sum(p.get("lag") or 0 for p in parts.values())
    if state == RUNNING and not parts:
        return "The worker is joining its consumer group."
    if state == RUNNING and status.get("records", 0) == 0 and lag == 0:
        return "The topic has no records yet: produce some (e.g. server_extension.ingest.produce_sample)."
    if state == RUNNING and status.get("buffered_records") and not status.get("objects"):
        return "Records are buffered; the first object lands when a batch closes (flush_records or flush_seconds)."
    return None
