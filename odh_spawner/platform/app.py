"""PlatformService: the JupyterHub service process. Run as `python -m odh_spawner.platform [--Class.trait=...]`.

JupyterHub starts it (a managed service) with JUPYTERHUB_SERVICE_URL, JUPYTERHUB_SERVICE_PREFIX and
JUPYTERHUB_API_TOKEN; on Kubernetes it runs as its own Deployment with the same variables.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import signal
from urllib.parse import urlparse

from jupyterhub.services.auth import HubAuth
from prometheus_client import disable_created_metrics
from tornado import web
from tornado.ioloop import PeriodicCallback
from traitlets import Bool, Float, Int, Type, Unicode, default
from traitlets.config import Application

from odh_spawner.credentials.config import OdhStorage
from odh_spawner.deploy.local import LocalMLServerBackend
from odh_spawner.deploy.manager import DeploymentManager
from odh_spawner.deploy.proxyroutes import ProxyRoutes
from odh_spawner.deploy.routing import ModelRoutes
from odh_spawner.deploy.store import DeploymentStore
from odh_spawner.quantities import parse_memory
from odh_spawner.platform.gateway import (ModelGateway, OwnerCheck, TokenUsers, gateway_routes, local_uid_of,
                                          log_request)
from odh_spawner.platform.api import NotFoundHandler
from odh_spawner.platform.metrics import PlatformMetrics
from odh_spawner.platform.model_metrics import ModelServerScraper
from odh_spawner.platform.quotas import PlatformQuotas, UserGroups
from odh_spawner.platform.routes import routes
from odh_spawner.platform.spark_handlers import SparkClusters
from odh_spawner.platform.upstream import UpstreamPool
from odh_spawner.platform.usage_handlers import UsageLedger


class PlatformService(Application):
    name = "odh-platform"
    description = "odh-hub platform service: model deployments and Spark scaling on users' behalf."

    service_url = Unicode(
        os.environ.get("JUPYTERHUB_SERVICE_URL", "http://127.0.0.1:10101"),
        config=True, help="Where to listen (host and port of this URL); JupyterHub sets JUPYTERHUB_SERVICE_URL.",
    )
    service_prefix = Unicode(
        os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/odh-platform/"),
        config=True, help="URL prefix of the API; JupyterHub sets JUPYTERHUB_SERVICE_PREFIX.",
    )
    state_dir = Unicode(
        os.environ.get("ODH_PLATFORM_STATE_DIR", ""),
        config=True, help="Directory for deployment records and local model copies (created 0700).",
    )
    public_url = Unicode(
        os.environ.get("ODH_PUBLIC_URL", ""),
        config=True, help="The hub's public URL; deployments are reachable under it through the proxy.",
    )
    proxy_api_url = Unicode(
        os.environ.get("CONFIGPROXY_API_URL", ""),
        config=True, help="configurable-http-proxy's REST API, for model routes (token: $CONFIGPROXY_AUTH_TOKEN).",
    )
    serving_backend_class = Type(
        LocalMLServerBackend, klass=object, config=True,
        help="Serving backend: LocalMLServerBackend (MLServer processes) or a Kubernetes one.",
    )
    max_model_size = Unicode("2Gi", config=True, help="Largest model (all its files) a deployment accepts.")
    max_deployments_per_user = Int(20, config=True, help="Deployments one user may have at a time.")
    watch_interval = Float(2.0, config=True, help="Seconds between health checks of served models.")
    spark_clusters_class = Type(
        SparkClusters, klass=object, config=True,
        help="""Where users' Spark clusters run, for the Spark API (status, scale, restart): SparkClusters (local
        Spark standalone processes, found in spark_state_dir) or
        odh_spawner.platform.kube_spark.KubeSparkClusters (the Kubernetes objects OdhKubeSpawner created).""",
    )
    spark_state_dir = Unicode(
        os.environ.get("ODH_SPARK_STATE_DIR", ""),
        config=True,
        help="""The local Spark clusters' state directory (the same as OdhLocalSpawner.spark_state_dir): users'
        clusters are found there to report, scale and restart them. Empty: no Spark API (status says disabled).""",
    )

    gateway_url = Unicode(
        "",
        config=True,
        help="""Where the hub's proxy reaches this service's model gateway (the proxy routes each deployment's
        /v2/models/<model> here; the gateway checks the caller's credential and forwards to the model server).
        Default: the scheme, host and port of service_url. On Kubernetes, the platform Service's in-cluster
        URL.""",
    )
    token_cache_seconds = Float(
        30, config=True,
        help="""Seconds the model gateway remembers what the hub said about a hub token (its user, or that it
        is invalid). A revoked token may still call its owner's endpoints this long; API keys take effect at
        once.""",
    )
    token_cache_size = Int(4096, config=True, help="Most hub tokens the model gateway remembers (LRU).")
    upstream_timeout = Float(
        120, config=True, help="Seconds the model gateway waits for a model server's answer (502 after).")
    upstream_max_idle = Int(
        32, config=True, help="Idle keep-alive connections the model gateway keeps per model server.")
    gateway_max_body_size = Unicode(
        "16Mi",
        config=True,
        help="""Longest request body the model gateway accepts for a model endpoint (e.g. "16Mi"; suffixes as
        for memory sizes). A longer one is refused with 413 and a JSON message before the caller's credential is
        checked, as soon as its Content-Length (or, chunked, its running length) says so: nothing past this is
        ever held in memory.""",
    )
    gateway_max_answer_size = Unicode(
        "64Mi",
        config=True,
        help="""Longest answer body the model gateway takes from a model server (e.g. "64Mi"). A longer one
        becomes a 502 with a JSON message: refused by its Content-Length before it is read, or as soon as a
        chunked answer passes the limit.""",
    )
    kafka_bootstrap_servers = Unicode(
        os.environ.get("KAFKA_BOOTSTRAP_SERVERS", ""),
        config=True,
        help="""Bootstrap address of the Kafka users ingest from (host:port[,host:port]); the local platform
        passes its noida-db broker, on Kubernetes the admin gives their Strimzi (or any) Kafka. Empty: no
        ingestion API (it answers 503).""",
    )
    max_ingestions_per_user = Int(10, config=True, help="Kafka ingestions one user may have at a time.")
    ingest_backend_class = Type(
        "odh_spawner.ingest.local.LocalIngestBackend", klass=object, config=True,
        help="""Where ingestions run: odh_spawner.ingest.local.LocalIngestBackend (one worker process per
        ingestion, as its owner) or odh_spawner.ingest.kube.KubeIngestBackend (Kubernetes: a worker Deployment
        per ingestion, or a Strimzi KafkaConnector; see KubeIngestBackend.ingest_mode).""",
    )

    drop_privileges = Bool(
        False, config=True,
        help="""Started as root: start the privileged helper (odh_spawner.host.privsep), then run as the
        platform's own unprivileged system user (odh_platform_<id>), so that nothing that parses users' requests
        runs as root; starting users' processes, signalling them, cgroups, the port guard and handing
        directories to users go through the helper's typed commands. Ignored when not started as root.""",
    )
    platform_id = Unicode(
        "", config=True,
        help="""Id of this local platform (its state directory's hash): names the service's system user,
        odh_platform_<id>. Default: a hash of state_dir.""",
    )

    metrics_interval = Float(
        5.0, config=True,
        help="""Seconds between refreshes of the metrics' snapshot (component probes, states, usage); a scrape
        serves the latest one. Match Prometheus's scrape interval.""")
    model_metrics_timeout = Float(
        2.0, config=True,
        help="""Seconds a scrape of <prefix>/metrics/models waits for one model server's metrics (all are read
        at once); a slower one is reported down (odh_model_server_scrape_up 0). Keep it below Prometheus's
        scrape timeout.""")
    model_metrics_max_size = Unicode(
        "1Mi", config=True,
        help="""Longest metrics answer read from one model server (e.g. "1Mi"); a longer one is not read and
        the model server is reported down.""")
    model_metrics_max_series = Int(
        1000, config=True,
        help="""Most series of one model server re-exposed per scrape (a histogram's buckets count as one
        series); the rest are dropped and counted (odh_model_server_scrape_samples_dropped).""")
    usage_cgroup_root = Unicode("/sys/fs/cgroup", config=True, help="Where the cgroup filesystem is mounted.")
    usage_cgroup_parent = Unicode(
        "", config=True,
        help="""The parent cgroup of users' local servers (OdhLocalSpawner.cgroup_parent), read for users' CPU
        seconds and memory; the ingestion workers' parent is added. Empty: the servers' usage comes from /proc
        (live processes of odh- accounts).""")
    pod_usage_class = Type(
        None, klass=object, allow_none=True, config=True,
        help="""Where users' CPU seconds and memory come from on Kubernetes:
        odh_spawner.platform.kube_usage.KubePodUsage (the pod metrics, metrics.k8s.io, joined to the pods' user
        annotation; the chart sets it with metrics.podUsage.enabled). None: this machine's cgroups, else /proc
        (the local platform).""",
    )
    object_store_data_dir = Unicode(
        os.environ.get("ODH_OBJECT_STORE_DATA_DIR", ""),
        config=True,
        help="""A directory on the object store's disk (the local Ceph's data directory), whose free space the
        metrics report (odh_object_store_free_bytes). Empty: not reported (on Kubernetes, Ceph's own metrics
        say it).""")

    use_uvloop = Bool(
        True, config=True,
        help="""Run the service on uvloop when it is installed (a faster event loop: less latency added by the
        model gateway). False: asyncio's default loop.""",
    )

    @default("gateway_url")
    def _default_gateway_url(self):
        u = urlparse(self.service_url)
        return f"{u.scheme}://{u.netloc}"

    @default("state_dir")
    def _default_state(self):
        return os.path.abspath("odh-platform-state")

    aliases = {"state-dir": "PlatformService.state_dir", "public-url": "PlatformService.public_url"}

    def _separate(self, ingest_cgroup_parent: str) -> None:
        """Drop root (drop_privileges): read what only root may read first (the RGW admin keys), give the
        service its state directories, start the helper, become the service's user."""
        from odh_spawner.host import owned, privsep

        if self.storage.enabled:
            self.storage.store()  # the admin keys, read once while we may
        pid = self.platform_id or hashlib.sha256(os.path.abspath(self.state_dir).encode()).hexdigest()[:8]
        roots = [self.state_dir] + ([self.spark_state_dir] if self.spark_state_dir else [])
        helper = privsep.separate(privsep.platform_user_name(pid), roots,
                                  guard_id=getattr(self.backend, "port_guard_id", ""),
                                  cgroup_parent=ingest_cgroup_parent)
        owned.delegate(helper)
        self.privsep = helper
        self.log.info("Running as %s; root work goes through the privileged helper (pid %d)",
                      privsep.platform_user_name(pid), helper.process.pid)

    def initialize(self, argv=None):
        super().initialize(argv)
        self.privsep = None
        self.hub_auth = HubAuth(api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""), cache_max_age=60)
        token = os.environ.get("CONFIGPROXY_AUTH_TOKEN", "")
        proxy = ProxyRoutes(self.proxy_api_url, token) if self.proxy_api_url and token else None
        self.backend = self.serving_backend_class(parent=self)
        self.storage = OdhStorage(parent=self)
        os.makedirs(self.state_dir, mode=0o711, exist_ok=True)
        # deployment records hold API keys: they are 0600 (the service's umask is 077); directories are 0711 so
        # that model servers running as their owners can pass through to their own version directories
        os.chmod(self.state_dir, 0o711)
        ingest_backend = self.ingest_backend_class(parent=self) if self.kafka_bootstrap_servers else None
        if self.drop_privileges and os.geteuid() == 0:
            self._separate(getattr(ingest_backend, "cgroup_parent", ""))
        self.quotas = PlatformQuotas(self, UserGroups(self.hub_auth))  # per-group limits (profiles.quotas)
        self.usage_ledger = UsageLedger(self.state_dir)  # users' CPU seconds in all, across restarts
        self.deployments = DeploymentManager(
            self.backend, DeploymentStore(os.path.join(self.state_dir, "deployments")), self._credentials_for,
            max_model_bytes=parse_memory(self.max_model_size), max_per_user=self.max_deployments_per_user,
            routes=ModelRoutes(self.gateway_url, proxy, self.public_url, log=self.log), log=self.log,
            limit_for=lambda owner: self.quotas.limit(owner, "deployments"),
        )
        self.gateway = ModelGateway(
            self.deployments,
            TokenUsers(self.hub_auth, ttl=self.token_cache_seconds, max_entries=self.token_cache_size),
            lambda user: self.hub_auth.check_scopes(self.hub_auth.access_scopes, user),
            UpstreamPool(max_idle=self.upstream_max_idle, timeout=self.upstream_timeout),
            max_body_size=parse_memory(self.gateway_max_body_size),
            max_answer_size=parse_memory(self.gateway_max_answer_size),
            # local model servers: forward only to the recorded process, listening as its owner
            owner_check=(OwnerCheck(local_uid_of(self.backend)) if isinstance(self.backend, LocalMLServerBackend)
                         else None),
        )
        self.spark = self.spark_clusters_class.for_platform(self)
        self.pod_usage = self.pod_usage_class.for_platform(self) if self.pod_usage_class else None
        disable_created_metrics()  # no `_created` twin of every counter: half the series, nothing lost
        self.metrics = PlatformMetrics(self, interval=self.metrics_interval)
        self.gateway.metrics = self.metrics.gateway
        # local model servers' own metrics (<prefix>/metrics/models), read from the recorded processes only
        self.model_metrics = (ModelServerScraper(self.deployments, self.gateway.owner_check,
                                                 timeout=self.model_metrics_timeout,
                                                 max_bytes=parse_memory(self.model_metrics_max_size),
                                                 max_series=self.model_metrics_max_series)
                              if self.gateway.owner_check is not None else None)
        self.ingestions = None
        if self.kafka_bootstrap_servers:
            from odh_spawner.ingest.manager import IngestionManager
            from odh_spawner.ingest.store import IngestionStore

            self.ingestions = IngestionManager(
                ingest_backend, IngestionStore(os.path.join(self.state_dir, "ingestions")),
                self._credentials_for, self.kafka_bootstrap_servers, max_per_user=self.max_ingestions_per_user,
                log=self.log, limit_for=lambda owner: self.quotas.limit(owner, "ingestions"))

    async def _credentials_for(self, owner: str):
        return await self.storage.store().ensure(owner)

    def make_app(self) -> web.Application:
        return web.Application(gateway_routes(self.gateway) + routes(self.service_prefix, self),
                               default_handler_class=NotFoundHandler, log_function=log_request,
                               default_handler_args={"platform": self},
                               cookie_secret=os.urandom(32))  # the admin page's OAuth session, per process

    async def run(self) -> None:
        await self.deployments.adopt_all()
        ingest_watcher = None
        if self.ingestions is not None:
            await self.ingestions.adopt_all()
            ingest_watcher = asyncio.ensure_future(self.ingestions.watch(self.watch_interval))
        url = urlparse(self.service_url)
        server = self.make_app().listen(url.port or 80, address=url.hostname or "127.0.0.1")
        watcher = asyncio.ensure_future(self.deployments.watch(self.watch_interval))
        metrics = asyncio.ensure_future(self.metrics.run())
        ledger = asyncio.ensure_future(self.usage_ledger.run(self.metrics, self.metrics_interval))
        spark_pruner = PeriodicCallback(self.spark.prune, 10_000)  # drop handles on clusters the hub stopped
        spark_pruner.start()
        self.log.info("odh platform service on %s%s", self.service_url.rstrip("/"), self.service_prefix)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        # deployments outlive this process: stop listening, leave the model servers running
        server.stop()
        watcher.cancel()
        metrics.cancel()
        ledger.cancel()
        if ingest_watcher is not None:
            ingest_watcher.cancel()  # ingestion workers keep running too
            if hasattr(self.ingestions.backend, "close"):
                await self.ingestions.backend.close()
        spark_pruner.stop()
        await self.deployments.close()
        self.gateway.upstream.close()
        if self.model_metrics is not None:
            self.model_metrics.close()
        await self.spark.close()
        if self.pod_usage is not None:
            await self.pod_usage.close()
        self.log.info("odh platform service stopped (deployments keep serving)")

    def start(self):
        if self.use_uvloop:
            try:
                import uvloop
            except ImportError:
                uvloop = None
            if uvloop is not None:
                uvloop.run(self.run())
                return
        asyncio.run(self.run())


main = PlatformService.launch_instance
