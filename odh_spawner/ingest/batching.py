"""Per-partition batches and the rules that close them. Pure (the clock is passed in).

A batch closes when it holds `flush_records` records, when its first record has waited `flush_seconds`
(wall clock: checked on every poll, also when no new record arrives — kafka-connect-storage-cloud #144), when
a record of another hour arrives (partition_by="hour": one object never spans two hours), or when all batches
together exceed the memory cap (the largest closes first)."""

from __future__ import annotations

from dataclasses import dataclass, field

from odh_spawner.ingest.keys import hour_of

RECORD_OVERHEAD = 64  # bytes counted per record beyond key and value (offset, timestamp, list slot)


@dataclass
class Record:
    offset: int
    timestamp: int  # ms
    key: bytes | None
    value: bytes | None

    @property
    def size(self) -> int:
        return RECORD_OVERHEAD + len(self.key or b"") + len(self.value or b"")


@dataclass
class Batch:
    partition: int
    opened: float  # clock time of its first record
    hour: str | None = None
    records: list[Record] = field(default_factory=list)
    nbytes: int = 0

    @property
    def first(self) -> int:
        return self.records[0].offset

    @property
    def last(self) -> int:
        return self.records[-1].offset

    def add(self, r: Record) -> None:
        self.records.append(r)
        self.nbytes += r.size


class Batcher:
    """Open batches of the partitions this worker owns. `add` returns batches that must be written first
    (closed by an hour change); `due` returns the batches to write now."""

    def __init__(self, flush_records: int, flush_seconds: float, partition_by: str | None = None,
                 max_bytes: int = 64 * 2**20):
        self.flush_records = flush_records
        self.flush_seconds = flush_seconds
        self.partition_by = partition_by
        self.max_bytes = max_bytes
        self.open: dict[int, Batch] = {}

    @property
    def nbytes(self) -> int:
        return sum(b.nbytes for b in self.open.values())

    def add(self, partition: int, r: Record, now: float) -> list[tuple[Batch, str]]:
        closed = []
        hour = hour_of(r.timestamp) if self.partition_by == "hour" else None
        b = self.open.get(partition)
        if b is not None and b.records and b.hour != hour:
            closed.append((self.open.pop(partition), "hour"))
            b = None
        if b is None:
            b = self.open[partition] = Batch(partition, now, hour)
        b.add(r)
        if len(b.records) >= self.flush_records:  # at once: batch boundaries do not depend on poll sizes
            closed.append((self.open.pop(partition), "records"))
        return closed

    def due(self, now: float) -> list[tuple[Batch, str]]:
        out = []
        for p, b in list(self.open.items()):
            if len(b.records) >= self.flush_records:
                out.append((self.open.pop(p), "records"))
            elif b.records and now - b.opened >= self.flush_seconds:
                out.append((self.open.pop(p), "time"))
        while self.open and self.nbytes > self.max_bytes:
            p = max(self.open, key=lambda k: self.open[k].nbytes)
            out.append((self.open.pop(p), "memory"))
        return out

    def next_deadline(self, now: float) -> float:
        """Seconds until the earliest time flush (for the poll timeout)."""
        if not self.open:
            return self.flush_seconds
        return max(0.0, min(b.opened + self.flush_seconds for b in self.open.values()) - now)

    def drop(self, partitions) -> None:
        for p in partitions:
            self.open.pop(p, None)

    def take_all(self) -> list[Batch]:
        out = [b for b in self.open.values() if b.records]
        self.open.clear()
        return out
