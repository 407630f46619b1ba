"""GET <prefix>/api/usage: the caller's usage and limits (an admin may name a user with ?user=).

    {"user", "cpu_hours", "memory_bytes", "storage_bytes", "storage_quota_bytes", "storage_quota_source",
     "deployments": {"count", "limit", "source"}, "ingestions": {...}, "spark_workers": {...}, "as_of"}

Figures come from the metrics snapshot (platform.metrics, refreshed every `metrics_interval`), the managers'
counts and the user's per-group quotas (platform.quotas). CPU hours are the running total the platform keeps
per user (`UsageLedger`, platform.usage.accumulate): they survive server restarts and the service's own.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import time

from tornado import web

from odh_spawner.naming import user_slug
from odh_spawner.platform.api import ApiHandler
from odh_spawner.platform.usage import accumulate, assemble

log = logging.getLogger("odh_spawner.platform")
TOTALS_FILE = "usage-totals.json"


class UsageLedger:
    """Per-user CPU seconds in all, kept in `<state_dir>/usage-totals.json` (written at most every
    `save_every` seconds when it changed, and at stop)."""

    def __init__(self, state_dir: str, save_every: float = 30.0):
        self.path = os.path.join(state_dir, TOTALS_FILE)
        self.save_every = save_every
        self.totals: dict = self._load()
        self._seen = None
        self.seen_at: float | None = None  # when the last snapshot was first seen (the figures' age)
        self._saved_at = 0.0
        self._dirty = False

    def _load(self) -> dict:
        try:
            with open(self.path, encoding="utf-8") as f:
                data = json.load(f)
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            log.warning("Usage totals in %s not read (%s); counting from now", self.path, type(e).__name__)
            return {}
        return {k: v for k, v in data.items() if isinstance(v, dict)} if isinstance(data, dict) else {}

    def update(self, snapshot) -> None:
        """Add a new snapshot's CPU readings (each snapshot once)."""
        if snapshot is None or snapshot is self._seen:
            return
        self._seen, self.seen_at = snapshot, time.time()
        readings = {slug: u.get("cpu_seconds", 0.0) for slug, u in snapshot.usage.items()}
        totals = accumulate(self.totals, readings)
        if totals != self.totals:
            self.totals, self._dirty = totals, True
        if self._dirty and time.monotonic() - self._saved_at >= self.save_every:
            self.save()

    def save(self) -> None:
        if not self._dirty:
            return
        tmp = self.path + ".tmp"
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                json.dump(self.totals, f)
            os.replace(tmp, self.path)
        except OSError as e:
            log.warning("Usage totals not saved to %s (%s)", self.path, type(e).__name__)
            return
        self._saved_at, self._dirty = time.monotonic(), False

    async def run(self, metrics, interval: float) -> None:
        """Follow the metrics' snapshots."""
        try:
            while True:
                self.update(metrics.collector.snapshot)
                await asyncio.sleep(interval)
        finally:
            self.save()


class UsageHandler(ApiHandler):
    async def get(self):
        other = self.get_query_argument("user", "")
        if other and other != self.current_user["name"] and not self.is_admin:
            raise web.HTTPError(403, "Only admins may see other users' usage.")
        owner = other or self.current_user["name"]
        p = self.platform
        snapshot = p.metrics.collector.snapshot
        p.usage_ledger.update(snapshot)
        quotas = await p.quotas.of(owner)
        ingestions = len(p.ingestions.list(owner)) if p.ingestions is not None else 0
        self.reply(assemble(user_slug(owner), owner, snapshot, p.usage_ledger.totals, quotas,
                            deployments=len(p.deployments.list(owner)), ingestions=ingestions,
                            as_of=p.usage_ledger.seen_at))


def usage_routes(api: str, kw: dict) -> list:
    return [(api + r"/usage", UsageHandler, kw)]
