"""An ingestion record: who owns it, what it reads and writes, what its owner wants (running, paused,
stopped), and where its worker runs. Pure (JSON in, JSON out; new_token draws randomness).

Kafka identities. An ingestion's consumer group and its worker's static member id (`group.instance.id`) each
carry a random token made when the ingestion is created and kept in its record, so they survive restarts and
cannot be derived from public names (a colleague cannot join the group blindly as the ingestion). A record
from before the tokens gets them when it is loaded (`migrated`: the manager saves it again); the worker takes
its position from its objects in the bucket, not from the group, so a new group loses nothing."""

from __future__ import annotations

import re
import secrets
import time
from dataclasses import dataclass, field

from odh_spawner.naming import user_slug
from odh_spawner.ingest.spec import Spec

RUNNING, PAUSED, STOPPED = "running", "paused", "stopped"
DESIRED = (RUNNING, PAUSED, STOPPED)


TOKEN = re.compile(r"[A-Za-z0-9_-]{16,64}")


def new_token() -> str:
    """A random, URL-safe token (128 bits): no '.', so ids holding it stay injective."""
    return secrets.token_urlsafe(16)


def base_name(owner: str, name: str) -> str:
    """`odh-ingest.<user slug>.<name>`: public, injective in (owner, name) (a slug has no '.', a name neither).
    Names the ingestion's Kubernetes objects; never its consumer group any more."""
    return f"odh-ingest.{user_slug(owner)}.{name}"


def group_id(owner: str, name: str, token: str) -> str:
    """The ingestion's consumer group: its public base name and its group token (injective: no '.' in a token)."""
    if not TOKEN.fullmatch(token or ""):
        raise ValueError("A group token is 16-64 URL-safe characters.")
    return f"{base_name(owner, name)}.{token}"


def member_id(token: str) -> str:
    """The worker's static member id (`group.instance.id`): a token of its own, not derived from the group's."""
    if not TOKEN.fullmatch(token or ""):
        raise ValueError("A member token is 16-64 URL-safe characters.")
    return f"odh-ingest-worker.{token}"


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
    group_token: str = field(default_factory=new_token)  # in the consumer group's id
    member_token: str = field(default_factory=new_token)  # in the worker's static member id
    migrated: bool = field(default=False, compare=False)  # tokens made at load (not kept: save the record)

    @property
    def key(self) -> tuple[str, str]:
        return (self.owner, self.name)

    @property
    def group(self) -> str:
        return group_id(self.owner, self.name, self.group_token)

    @property
    def member(self) -> str:
        return member_id(self.member_token)

    def prefixes(self) -> list[str]:
        """Every key prefix the ingestion has written under, the current one first (a change of prefix keeps
        the position: the worker looks under each)."""
        out = [self.spec.prefix]
        for c in reversed(self.changes):
            for side in ("to", "from"):
                p = (c.get(side) or {}).get("prefix") if isinstance(c, dict) else None
                if isinstance(p, str) and p not in out:
                    out.append(p)
        return out

    def touch(self) -> None:
        self.updated = time.time()

    def to_json(self) -> dict:
        return {"owner": self.owner, "name": self.name, "spec": self.spec.to_json(), "desired": self.desired,
                "created": self.created, "updated": self.updated, "runtime": self.runtime,
                "restarts": self.restarts, "last_error": self.last_error, "changes": self.changes,
                "group_token": self.group_token, "member_token": self.member_token}

    @classmethod
    def from_json(cls, d: dict) -> "Ingestion":
        """A record; one from before the Kafka tokens (or with a malformed one) gets new tokens, `migrated`."""
        tokens = {k: d.get(k) for k in ("group_token", "member_token")}
        valid = {k: v for k, v in tokens.items() if isinstance(v, str) and TOKEN.fullmatch(v)}
        return cls(owner=d["owner"], name=d["name"], spec=Spec(**d["spec"]), desired=d.get("desired", RUNNING),
                   created=d.get("created", 0), updated=d.get("updated", 0), runtime=d.get("runtime") or {},
                   restarts=d.get("restarts", 0), last_error=d.get("last_error"), changes=d.get("changes") or [],
                   migrated=len(valid) < len(tokens), **valid)


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
