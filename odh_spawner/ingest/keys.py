"""Object keys of ingested batches, from topic, partition, first and last offset. Pure.

    <prefix>topic=<topic>/partition=<p>/[dt=YYYY-MM-DD/hour=HH/]<topic>+<p>+<first>+<last>.<ext>

A retried batch (same partition, same first and last offset) gets the same key and so rewrites the same
object; two objects whose ranges overlap are visible by their names alone (verify)."""

from __future__ import annotations

import re
import time

EXT = {"jsonl": "jsonl", "parquet": "parquet"}
_FILE = re.compile(r"(?P<topic>.+)\+(?P<partition>\d+)\+(?P<first>\d+)\+(?P<last>\d+)\.(?P<ext>jsonl|parquet)")


def partition_prefix(prefix: str, topic: str, partition: int) -> str:
    return f"{prefix}topic={topic}/partition={partition}/"


def hour_of(timestamp_ms: int) -> str:
    """'dt=2026-11-26/hour=11' (UTC) of a record timestamp in milliseconds."""
    t = time.gmtime(max(timestamp_ms, 0) / 1000)
    return f"dt={t.tm_year:04d}-{t.tm_mon:02d}-{t.tm_mday:02d}/hour={t.tm_hour:02d}"


def object_key(prefix: str, topic: str, partition: int, first: int, last: int, fmt: str,
               hour: str | None = None) -> str:
    if first < 0 or last < first:
        raise ValueError(f"Bad offset range {first}..{last}.")
    folder = partition_prefix(prefix, topic, partition) + (f"{hour}/" if hour else "")
    return f"{folder}{topic}+{partition}+{first:010d}+{last:010d}.{EXT[fmt]}"


def parse_key(key: str) -> tuple[str, int, int, int] | None:
    """(topic, partition, first, last) of an object key made by object_key, else None."""
    m = _FILE.fullmatch(key.rsplit("/", 1)[-1])
    if not m:
        return None
    return m["topic"], int(m["partition"]), int(m["first"]), int(m["last"])
