"""A user's usage as GET <prefix>/api/usage answers it, and the CPU seconds each user has used in all. Pure.

CPU seconds come from the users' cgroups (or /proc), whose counters start again at 0 when a server restarts.
A user's reading is also the sum of several groups (their server's, each ingestion worker's; or, without
cgroups, of their live processes), so it drops when one of them goes. The platform therefore keeps, per user,
a running total it persists in its state directory (`usage-totals.json`): each refresh adds how much the
reading grew since the last one; a reading below the last one adds nothing and becomes the new base. Nothing
is ever counted twice; what is lost is at most one refresh interval (`metrics_interval`) of a group that
went or restarted, and what ran while the platform service itself was down beyond its next reading.
"""

from __future__ import annotations

import time


def accumulate(totals: dict, readings: dict) -> dict:
    """The new totals after `readings` (slug -> cpu seconds now, from the cgroups). `totals`: slug ->
    {"cpu_seconds": total so far, "last": the last reading} (not changed; a new dict is returned). A user with
    no reading now keeps their total and last reading (a reading missed once is not counted twice); a later
    reading below the last one (a group went, or began again) adds nothing and becomes the new base."""
    out = {}
    for slug, entry in totals.items():
        out[slug] = {"cpu_seconds": float(entry.get("cpu_seconds", 0.0)), "last": float(entry.get("last", 0.0))}
    for slug, now in readings.items():
        now = max(0.0, float(now))
        entry = out.setdefault(slug, {"cpu_seconds": 0.0, "last": 0.0})
        entry["cpu_seconds"] += max(0.0, now - entry["last"])
        entry["last"] = now
    return out


def _count(n: int, limit: int | None, source: str) -> dict:
    return {"count": n, "limit": limit, "source": source}


def assemble(slug: str, owner: str, snapshot, totals: dict, quotas, *, deployments: int, ingestions: int,
             as_of: float | None = None) -> dict:
    """The usage of `owner` (their name slug `slug`) from the metrics `snapshot` (metrics.platform.Snapshot;
    None before the first refresh), the CPU `totals` (accumulate), their quotas (profiles.quotas.UserQuotas)
    and how many deployments and ingestions they have now (the managers' count, the one their limits count)."""
    live = snapshot.usage.get(slug, {}) if snapshot is not None else {}
    total = totals.get(slug, {}).get("cpu_seconds", 0.0)
    workers = sum(int(c.get("workers") or 0) for c in (snapshot.spark if snapshot is not None else [])
                  if c["owner"] == owner)
    stored = snapshot.storage.get(slug) if snapshot is not None else None
    return {
        "user": owner,
        "cpu_hours": round(total / 3600.0, 4),
        "cpu_seconds": round(total, 1),
        "cpu_seconds_now": float(live.get("cpu_seconds", 0.0)),
        "memory_bytes": int(live.get("memory_bytes", 0)),
        "storage_bytes": int(stored or 0),
        "storage_known": stored is not None,
        "storage_quota_bytes": quotas.storage.value,
        "storage_quota_source": quotas.storage.source,
        "deployments": _count(deployments, quotas.deployments.value, quotas.deployments.source),
        "ingestions": _count(ingestions, quotas.ingestions.value, quotas.ingestions.source),
        "spark_workers": _count(workers, quotas.spark_workers.value, quotas.spark_workers.source),
        "as_of": as_of if as_of is not None else time.time(),
    }
