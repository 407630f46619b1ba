"""A batch as the bytes of one object: JSON lines or Parquet. Pure.

Each row: partition, offset, timestamp (ms), key and value (UTF-8 text; undecodable bytes replaced)."""

from __future__ import annotations

import io
import json

from odh_spawner.ingest.batching import Batch

CONTENT_TYPES = {"jsonl": "application/x-ndjson", "parquet": "application/vnd.apache.parquet"}


def _text(b: bytes | None) -> str | None:
    return None if b is None else b.decode("utf-8", errors="replace")


def encode(batch: Batch, fmt: str) -> bytes:
    if fmt == "jsonl":
        lines = (json.dumps({"partition": batch.partition, "offset": r.offset, "timestamp": r.timestamp,
                             "key": _text(r.key), "value": _text(r.value)}, separators=(",", ":"))
                 for r in batch.records)
        return ("\n".join(lines) + "\n").encode()
    if fmt == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        rs = batch.records
        table = pa.table({
            "partition": pa.array([batch.partition] * len(rs), pa.int32()),
            "offset": pa.array([r.offset for r in rs], pa.int64()),
            "timestamp": pa.array([r.timestamp for r in rs], pa.int64()),
            "key": pa.array([_text(r.key) for r in rs], pa.string()),
            "value": pa.array([_text(r.value) for r in rs], pa.string()),
        })
        buf = io.BytesIO()
        pq.write_table(table, buf, compression="snappy")
        return buf.getvalue()
    raise ValueError(f"Unknown format {fmt!r}.")


def decode(data: bytes, fmt: str) -> list[dict]:
    """Rows of an object written by `encode` (for reading back and tests)."""
    if fmt == "jsonl":
        return [json.loads(line) for line in data.decode().splitlines() if line]
    import pyarrow.parquet as pq

    return pq.read_table(io.BytesIO(data)).to_pylist()
