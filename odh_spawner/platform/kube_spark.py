"""The platform service's Spark API on Kubernetes: status, scale and restart of the caller's own cluster.

OdhKubeSpawner creates each server's cluster (spark.kube_io): a per-server anchor ConfigMap recording its shape,
type, limits and proxied UI path, owning the master/worker Deployments + Service or one SparkConnect. This
class finds the caller's cluster by that anchor's name (from user and server name: nothing in a request names a
cluster), and

- status: reads the anchor and what it owns; for a standalone cluster also the master's `/json/` through its
  Service (live workers, cores, applications), falling back to the Deployments' ready replicas;
- scale: checks the request against the limits recorded at spawn and the user's and everyone's workers now
  (all anchors of the namespace), then patches the worker Deployment's `replicas` (SparkConnect:
  `executor.instances`) and the anchor's worker count;
- restart: what `kubectl rollout restart` does to the master and worker Deployments (a new pod template
  annotation). A SparkConnect cluster is restarted by restarting the server.

The service account needs get/list/patch on configmaps, get/patch on deployments (and sparkconnects) in the
users' namespace: the chart's Role grants them.
"""

from __future__ import annotations

import asyncio
import datetime

from kubernetes_asyncio import client
from traitlets import Unicode

from odh_spawner.kube.client import KubeApiSettings
from odh_spawner.spark import kube, kube_io
from odh_spawner.spark.api import DISABLED, check_scale_request
from odh_spawner.spark.daemon import fetch_master_json
from odh_spawner.spark.kube_status import AnchorInfo, anchor_info, connect_status, master_ui_base, standalone_status
from odh_spawner.spark.errors import SparkError
from odh_spawner.platform.spark_handlers import NoSparkCluster, SparkBusy, SparkUnavailable


class KubeSparkClusters(KubeApiSettings):
    """Users' Spark clusters on Kubernetes, as the platform service reports and changes them."""

    master_ui_url = Unicode(
        "http://{master}.{namespace}.svc:{port}",
        config=True,
        help="""Where this service reaches a standalone master's web UI for live counts of workers, cores and
        applications: a template with {master} (the master Service), {namespace} and {port}. Empty: counts come
        from the Deployments' ready pods only (e.g. when a NetworkPolicy keeps the service from the masters).""",
    )

    @classmethod
    def for_platform(cls, platform) -> KubeSparkClusters:
        return cls(parent=platform, log=platform.log)

    def __init__(self, **kw):
        super().__init__(**kw)
        self._apis: kube_io.Apis | None = None
        self._locks: dict[str, asyncio.Lock] = {}

    # -- API access ----------------------------------------------------------------------------------------
    async def apis(self) -> kube_io.Apis:
        if self._apis is None:
            api = await self.api()
            self._apis = kube_io.Apis(core=client.CoreV1Api(api), apps=client.AppsV1Api(api),
                                      custom=client.CustomObjectsApi(api))
        return self._apis

    async def close(self) -> None:
        await super().close()
        self._apis = None

    @property
    def timeouts(self) -> kube_io.Timeouts:
        return kube_io.Timeouts(request=self.request_timeout, retry=self.retry_timeout)

    def prune(self) -> None:
        """Nothing is held between requests (the anchors are the record)."""

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    @staticmethod
    async def _answered(call):
        """The result of a kube_io call; the API refusing or not answering is a 503 (the message says which)."""
        try:
            return await call
        except SparkError as e:
            raise SparkUnavailable(str(e)) from None

    async def _read(self, kind: str, name: str) -> dict | None:
        apis = await self.apis()
        return await self._answered(kube_io.read_object(apis, kind, self.namespace, name, self.timeouts, self.log))

    async def _patch(self, kind: str, name: str, patch: list[dict]) -> bool:
        apis = await self.apis()
        return await self._answered(kube_io.patch_object(apis, kind, self.namespace, name, patch, self.timeouts,
                                                         self.log))

    async def _anchors(self) -> list[dict]:
        apis = await self.apis()
        return await self._answered(kube_io.list_anchors(apis, self.namespace, self.timeouts, self.log))

    async def _find(self, user: str, server: str) -> AnchorInfo | None:
        anchor = await self._read("ConfigMap", kube.names(user, server)["anchor"])
        if anchor is None:
            return None
        annotations = (anchor.get("metadata") or {}).get("annotations") or {}
        if annotations.get("hub.jupyter.org/username") != user:  # a slug collision can never hand over a cluster
            return None
        return anchor_info(anchor)

    async def _require(self, user: str, server: str) -> AnchorInfo:
        info = await self._find(user, server)
        if info is None or info.deleting:
            raise NoSparkCluster("You have no Spark cluster: start your server with a profile that offers Spark "
                                 "and tick 'Spark cluster'.")
        return info

    # -- metrics -----------------------------------------------------------------------------------------------
    async def metrics_summary(self) -> list[dict]:
        """Every user's cluster for the metrics: {"owner", "phase" (starting|ready|failed), "workers"}, from
        the anchors and each cluster's status (as the Spark API reports it)."""
        out = []
        for anchor in await self._anchors():
            info = anchor_info(anchor)
            user = ((anchor.get("metadata") or {}).get("annotations") or {}).get("hub.jupyter.org/username")
            if info is None or info.deleting or not user:
                continue
            server = ((anchor.get("metadata") or {}).get("annotations") or {}).get("hub.jupyter.org/servername", "")
            try:
                st = await self._status(user, server, info)
            except SparkError:
                st = {"state": "stopped", "workers_alive": 0}
            phase = {"running": "ready", "starting": "starting"}.get(st.get("state"), "failed")
            out.append({"owner": user, "phase": phase, "workers": int(st.get("workers_alive") or 0)})
        return out

    # -- the API's operations --------------------------------------------------------------------------------
    async def status(self, user: str, server: str = "") -> dict:
        info = await self._find(user, server)
        if info is None:
            return dict(DISABLED)
        return await self._status(user, server, info)

    async def _status(self, user: str, server: str, info: AnchorInfo) -> dict:
        n, urls = kube.names(user, server), kube.endpoints(user, server, self.namespace)
        busy = self._lock(info.name).locked()
        if info.cluster_type == "spark-connect":
            return connect_status(info, await self._read("SparkConnect", n["connect"]), remote_url=urls["remote"],
                                  busy=busy)
        master, worker = await asyncio.gather(self._read("Deployment", n["master"]), self._read("Deployment",
                                                                                                 n["worker"]))
        master_json = None
        if master is not None and self.master_ui_url:
            base = master_ui_base(self.master_ui_url, n["master"], self.namespace)
            master_json = await asyncio.to_thread(fetch_master_json, base)
        return standalone_status(info, master, worker, master_json, busy=busy, in_cluster_ui=urls["ui"],
                                 master_url=urls["master"])

    async def scale(self, user: str, server: str, workers) -> dict:
        info = await self._require(user, server)
        async with self._lock(info.name):
            info = await self._require(user, server)
            usage = kube.usage_from_anchors(await self._anchors(), user)
            check_scale_request(info.limits, info.request, workers, usage)
            n = kube.names(user, server)
            kind, target = (("SparkConnect", n["connect"]) if info.cluster_type == "spark-connect"
                            else ("Deployment", n["worker"]))
            self.log.info("Scaling Spark cluster %s of %s from %d to %d workers", info.name, user,
                          info.request.workers, workers)
            if not await self._patch(kind, target, kube.scale_patch(info.cluster_type, workers)):
                raise NoSparkCluster("Your Spark cluster is gone (your server stopped).")
            await self._patch("ConfigMap", info.name, kube.anchor_data_patch(workers))
        return await self.status(user, server)

    async def restart(self, user: str, server: str) -> dict:
        info = await self._require(user, server)
        if info.cluster_type == "spark-connect":
            raise SparkBusy("A Spark Connect cluster restarts with your server: stop and start your server.")
        async with self._lock(info.name):
            n = kube.names(user, server)
            when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
            self.log.info("Restarting Spark cluster %s of %s", info.name, user)
            for name in (n["master"], n["worker"]):
                deployment = await self._read("Deployment", name)
                if deployment is None or not await self._patch("Deployment", name,
                                                               kube.restart_patch(deployment, when)):
                    raise NoSparkCluster("Your Spark cluster is gone (your server stopped).")
        return await self.status(user, server)
