"""Check what landed against the consumer group's committed offsets. Pure.

Per partition, object ranges [first, last] (from their keys) sorted by first offset must form a chain:
each begins right after the previous one ends. Reported:
- overlaps: two objects holding the same offsets (a duplicate);
- gaps: offsets between two objects that no object holds (a loss; topics with transactions or compaction
  have offsets without records, which show here too);
- missing: committed offsets beyond the last object (committed but never written: a loss);
- uncommitted: objects beyond the committed offset (written, not yet committed: the worker adopts them
  when it restarts — not an error while the ingestion runs)."""

from __future__ import annotations


def verify(ranges: dict[int, list[tuple[int, int, str]]], committed: dict[int, int],
           start: dict[int, int] | None = None) -> dict:
    """ranges: partition -> [(first, last, key)]; committed: partition -> next offset to read;
    start: partition -> first offset the ingestion began at (defaults to the first object's)."""
    out = {"ok": True, "partitions": {}, "gaps": [], "overlaps": [], "missing": [], "uncommitted": []}
    for p in sorted(set(ranges) | set(committed)):
        objs = sorted(ranges.get(p, []))
        c = committed.get(p)
        begin = (start or {}).get(p, objs[0][0] if objs else (c if c is not None else 0))
        expected = begin
        records = 0
        for first, last, key in objs:
            if first > expected:
                out["gaps"].append({"partition": p, "from": expected, "to": first - 1})
            elif first < expected:
                out["overlaps"].append({"partition": p, "from": first, "to": min(last, expected - 1), "key": key})
            records += last - first + 1
            expected = max(expected, last + 1)
            if c is not None and first >= c:
                out["uncommitted"].append({"partition": p, "key": key})
        if c is not None and c > expected:
            out["missing"].append({"partition": p, "from": expected, "to": c - 1})
        out["partitions"][p] = {"objects": len(objs), "first": begin, "next": expected, "committed": c,
                                "offsets_covered": records}
    out["ok"] = not (out["gaps"] or out["overlaps"] or out["missing"])
    return out


def recovered_offset(committed: int, ranges: list[tuple[int, int]]) -> int:
    """Where to resume a partition: after every object that continues the committed offset without a hole
    (written before a crash, not committed yet). Objects are durable, so they count as done."""
    nxt = committed
    for first, last in sorted(ranges):
        if first == nxt:
            nxt = last + 1
        elif first > nxt:
            break
    return nxt
