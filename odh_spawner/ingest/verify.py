"""Check what landed against the consumer group's committed offsets. Pure.

Per partition, object ranges [first, last] (from their keys) sorted by first offset must form a chain:
each begins right after the previous one ends. Reported:
- overlaps: two objects holding the same offsets (a duplicate);
- gaps: offsets between two objects that no object holds (a loss; topics with transactions or compaction
  have offsets without records, which show here too);
- missing: committed offsets beyond the last object (committed but never written: a loss);
- uncommitted: objects beyond the committed offset (written, not yet committed: the worker adopts them
  when it restarts — not an error while the ingestion runs).

The committed offsets are a hint (lag): the worker resumes from its objects (position_of_record) and sets a
group's offsets back when someone else moved them, so "missing" shows a foreign commit until then."""

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


def position_of_record(ranges: list[tuple[int, int]]) -> int | None:
    """Where a partition resumes: right after the last offset its objects hold (None: no object yet, start at
    the topic's beginning). The objects are the position of record — they are durable and only their owner
    can write them — so a consumer group's committed offset, which anyone on an unauthenticated broker may
    move, never decides it: a commit ahead cannot skip records, a commit behind cannot write them twice. The
    worker writes a partition's batches in order, one after the other, so its objects form a chain and the
    last one ends it (objects removed from the front — retention — do not move it back)."""
    return max(last for _, last in ranges) + 1 if ranges else None


def foreign_commits(own: dict[int, int], group: dict[int, int]) -> dict[int, int]:
    """Partitions whose committed offset in the group is not what the worker committed (someone else moved it,
    or it was deleted): partition -> the offset found (-1 for none). Pure."""
    return {p: group.get(p, -1) for p, mine in own.items() if group.get(p, -1) != mine}
