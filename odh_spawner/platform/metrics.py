"""The platform service's /metrics: a snapshot of what it manages, refreshed in the background every
`PlatformService.metrics_interval` seconds, served to Prometheus behind the hub's authentication (a hub token
with the `read:metrics` scope; the local platform's Prometheus gets one as the service `odh-prometheus`).

The refresh probes the components (the object store over HTTP, Kafka with a metadata request), reads the
deployments', ingestions' and Spark clusters' states, users' CPU and memory (host.usage) and their stored bytes
(the RGW Admin Ops API, at most every `storage_interval`). A scrape only renders the latest snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from odh_spawner.deploy.model import AVAILABLE, CREATING, DELETING, FAILED
from odh_spawner.host.usage import user_usage
from odh_spawner.ingest.model import DESIRED
from odh_spawner.naming import slug_of
from odh_spawner.metrics.platform import GatewayMetrics, Snapshot, SnapshotCollector, registry_with
from odh_spawner.quantities import parse_memory

log = logging.getLogger("odh_spawner.platform")
METRICS_SCOPE = "read:metrics"
DEPLOYMENT_STATES = (CREATING, AVAILABLE, FAILED, DELETING)
INGESTION_STATES = (*DESIRED, "starting", "restarting")


class PlatformMetrics:
    def __init__(self, platform, interval: float = 5.0, probe_timeout: float = 3.0, storage_interval: float = 30.0):
        self.platform = platform
        self.interval = interval
        self.probe_timeout = probe_timeout
        self.storage_interval = storage_interval
        self.collector = SnapshotCollector()
        self.registry = registry_with(self.collector)
        self.gateway = GatewayMetrics(self.registry)
        self._kafka_admin = None
        self._storage: dict = {}
        self._quotas: dict = {}  # owner slug -> bytes or None
        self._storage_at = 0.0

    # -- probes -----------------------------------------------------------------------------------
    async def _probe_object_store(self) -> tuple[bool, float]:
        """Any HTTP answer from the RGW (even 403) is up; no answer within the timeout is down."""
        began = time.perf_counter()
        try:
            await AsyncHTTPClient().fetch(self.platform.storage.admin_endpoint, request_timeout=self.probe_timeout,
                                          connect_timeout=self.probe_timeout, raise_error=True)
            ok = True
        except HTTPClientError as e:
            ok = e.code != 599
        except (OSError, asyncio.TimeoutError):
            ok = False
        return ok, time.perf_counter() - began

    def _kafka_metadata(self) -> bool:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        if self._kafka_admin is None:
            self._kafka_admin = AdminClient({"bootstrap.servers": self.platform.kafka_bootstrap_servers,
                                             "socket.timeout.ms": int(self.probe_timeout * 1000)})
        try:
            self._kafka_admin.list_topics(timeout=self.probe_timeout)
            return True
        except KafkaException:
            return False

    async def _probe_kafka(self) -> tuple[bool, float]:
        began = time.perf_counter()
        try:
            ok = await asyncio.wait_for(asyncio.to_thread(self._kafka_metadata), self.probe_timeout + 1)
        except asyncio.TimeoutError:
            ok = False
        return ok, time.perf_counter() - began

    # -- the snapshot -----------------------------------------------------------------------------
    async def _storage_usage(self) -> dict:
        """Bytes stored per user slug (RGW users named odh-<slug>), refreshed at most every storage_interval."""
        if time.monotonic() - self._storage_at < self.storage_interval:
            return self._storage
        self._storage_at = time.monotonic()
        try:
            by_uid = await self.platform.storage.store().usage()
        except Exception as e:  # the object store is down: keep the last figures (its own probe says so)
            log.info("Storage usage not refreshed (%s)", type(e).__name__)
            return self._storage
        ours = {uid: slug for uid in by_uid if (slug := slug_of(uid)) is not None}  # RGW users odh-<slug>
        self._storage = {slug: by_uid[uid]["bytes"] for uid, slug in ours.items()}
        try:  # each user's own quota (per group, set at spawn), as RGW enforces it
            quotas = await self.platform.storage.store().quotas(iter(ours))
            self._quotas = {ours[uid]: q for uid, q in quotas.items()}
        except Exception as e:
            log.info("Storage quotas not refreshed (%s)", type(e).__name__)
        return self._storage

    def _usage(self) -> dict:
        p = self.platform
        parents = [p.usage_cgroup_parent, getattr(getattr(p.ingestions, "backend", None), "cgroup_parent", "")]
        return user_usage(p.usage_cgroup_root, [x for x in parents if x])

    async def _users_usage(self) -> dict:
        pod_usage = getattr(self.platform, "pod_usage", None)
        if pod_usage is None:
            return await asyncio.to_thread(self._usage)
        try:
            return await pod_usage.usage()
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the reason is logged by pod_usage; the other figures go on
            log.debug("Users' pod usage not read (%s)", type(e).__name__)
            return {}

    def _disk(self) -> tuple[int, int] | None:
        path = self.platform.object_store_data_dir
        if not path:
            return None
        try:
            st = os.statvfs(path)
        except OSError:
            return None
        return st.f_blocks * st.f_frsize, st.f_bavail * st.f_frsize

    async def refresh(self) -> Snapshot:
        p = self.platform
        snap = Snapshot(deployment_states=DEPLOYMENT_STATES, ingestion_states=INGESTION_STATES)
        probes = {}
        if p.storage.enabled:
            probes["object_store"] = self._probe_object_store()
        if p.kafka_bootstrap_servers:
            probes["kafka"] = self._probe_kafka()
        results = await asyncio.gather(*probes.values())
        snap.components = dict(zip(probes, results))
        backend = snap.backend = getattr(p.backend, "name", type(p.backend).__name__)
        snap.deployments = [{"owner": d.owner, "name": d.name, "state": d.state, "backend": backend,
                             "serving": bool(d.serving), "restarts": d.restarts} for d in p.deployments.list()]
        self.gateway.prune({(d["owner"], d["name"]) for d in snap.deployments})
        if p.ingestions is not None:
            for ing in p.ingestions.list():
                try:
                    info = p.ingestions.describe(ing)
                except Exception as e:  # one unreadable status file must not hide the others
                    log.warning("Ingestion %s/%s not described for metrics (%s)", ing.owner, ing.name,
                                type(e).__name__)
                    continue
                snap.ingestions.append({k: info.get(k) for k in ("owner", "name", "state", "records", "bytes",
                                                                 "partitions", "last_object_at", "restarts")})
        try:
            snap.spark = await p.spark.metrics_summary()
        except Exception as e:
            log.warning("Spark clusters not summarised for metrics (%s: %s)", type(e).__name__, str(e)[:200])
        snap.usage = await self._users_usage()
        if p.storage.enabled:
            snap.storage = await self._storage_usage()
            quota = p.storage.quota_max_size
            snap.quota_bytes = parse_memory(quota) if quota else None
            snap.quotas = dict(self._quotas)
        snap.disk = self._disk()
        self.collector.snapshot = snap
        return snap

    async def run(self) -> None:
        while True:
            try:
                await self.refresh()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("Metrics refresh failed")
            await asyncio.sleep(self.interval)



class MetricsHandler(web.RequestHandler):
    """GET <prefix>/metrics: the Prometheus text format, for a hub token with the read:metrics scope."""

    def initialize(self, platform):
        self.platform = platform

    def check_xsrf_cookie(self):
        """Token-authenticated; no cookies."""

    async def authorize(self) -> None:
        auth = self.platform.hub_auth
        who = await auth.get_user(self, sync=False)
        if not who:
            raise web.HTTPError(403, "A JupyterHub token with the read:metrics scope is needed.")
        if METRICS_SCOPE not in who.get("scopes", []):
            raise web.HTTPError(403, "This token may not read metrics (it lacks the read:metrics scope).")

    async def exposition(self) -> bytes:
        return generate_latest(self.platform.metrics.registry)

    async def get(self):
        await self.authorize()
        body = await self.exposition()
        self.set_header("Content-Type", CONTENT_TYPE_LATEST)
        self.set_header("Cache-Control", "no-store")
        self.finish(body)

    def write_error(self, status_code, **kwargs):
        import json

        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else self._reason
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}))


class ModelMetricsHandler(MetricsHandler):
    """GET <prefix>/metrics/models: users' local model servers' own metrics (platform.model_metrics), read at
    scrape time, screened and labelled with their owner and deployment; the same read:metrics token."""

    async def exposition(self) -> bytes:
        scraper = getattr(self.platform, "model_metrics", None)
        if scraper is None:
            raise web.HTTPError(404, "Model servers' metrics are served here only with the local serving backend; "
                                     "on Kubernetes, scrape the model server pods with a PodMonitor "
                                     "(docs/metrics.md).")
        return await scraper.exposition()
