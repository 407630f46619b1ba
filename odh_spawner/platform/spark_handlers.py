"""Spark on users' behalf: status, scale and restart of the caller's own Spark cluster.

    GET  <prefix>/api/spark[?server=NAME]            -> status (spark.api.status_json), {"enabled": false} if none
    POST <prefix>/api/spark/scale   {"workers": N}   -> status; 403 {"message"} above a limit
    POST <prefix>/api/spark/restart                  -> status

The cluster is the one of the caller's server (`server`: a named server, default the default server).
Nothing in a request names a cluster: only admins reach another user's, with ?user=. The handlers call
`PlatformService.spark`, one of two backends with the same methods (status, scale, restart, prune, close):

- `SparkClusters` here (local): finds the cluster by its owner in the Spark state directory the hub's spawner
  writes (`PlatformService.spark_state_dir`); to scale or restart it attaches to the cluster the hub started
  (`LocalSparkCluster.attach`), applying the limits recorded with it at spawn;
- `kube_spark.KubeSparkClusters` (Kubernetes): the per-server anchor ConfigMap and the objects it owns.
"""

from __future__ import annotations

import asyncio
import logging
import os

from tornado import web

from odh_spawner.host import owned
from odh_spawner.host.privsep import PrivsepError
from odh_spawner.spark import procs
from odh_spawner.spark.api import DISABLED, ClusterLimits, check_scale_request, cluster_state, status_json
from odh_spawner.spark.daemon import fetch_master_json
from odh_spawner.spark.errors import SparkError, SparkStartError
from odh_spawner.spark.local import LocalSparkCluster
from odh_spawner.spark.naming import cluster_slug
from odh_spawner.spark.state import STATE_FILE, ClusterState, all_states, current_usage, read_state, user_clusters
from odh_spawner.spark.status import parse_master_json
from odh_spawner.platform.api import ApiHandler


class NoSparkCluster(SparkError):
    status_code = 404


class SparkBusy(SparkError):
    status_code = 409


class SparkUnavailable(SparkError):
    status_code = 503


class SparkClusters:
    """The platform service's handles on local Spark clusters: looked up by owner, attached on demand, one
    scale or restart per cluster at a time."""

    def __init__(self, state_root: str, log: logging.Logger | None = None, **cluster_config):
        self.state_root = state_root
        self.log = log or logging.getLogger("odh_spawner.platform")
        self.cluster_config = cluster_config  # e.g. parent=... for LocalSparkCluster traits
        self._attached: dict[str, LocalSparkCluster] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    @classmethod
    def for_platform(cls, platform) -> SparkClusters:
        return cls(platform.spark_state_dir, platform.log, parent=platform)

    async def close(self) -> None:
        """Nothing to close: handles on local clusters need no connection."""

    # -- lookup ----------------------------------------------------------------------------------
    def _take_over_new(self) -> None:
        """After the service dropped root (host.privsep): the hub (root) launches clusters and writes their state
        files; before reading them, the service takes over what root made (through its helper, which never
        enters a directory a user owns). One stat per cluster when nothing is new."""
        helper = owned.helper()
        if helper is None:
            return
        try:
            names = os.listdir(self.state_root)
        except OSError:
            return
        for name in names:
            directory = os.path.join(self.state_root, name)
            try:
                st = os.stat(os.path.join(directory, STATE_FILE), follow_symlinks=False)
            except OSError:
                continue
            if st.st_uid == 0:
                try:
                    helper.call("take_over", path=directory)
                except PrivsepError as e:
                    self.log.warning("Could not take over the Spark cluster directory %s: %s", directory, e)

    def find(self, user: str, server: str = "") -> ClusterState | None:
        if not self.state_root:
            return None
        self._take_over_new()
        found = user_clusters(self.state_root, user, server)
        return found[0] if found else None

    def _require(self, user: str, server: str) -> ClusterState:
        if not self.state_root:
            raise NoSparkCluster("Spark clusters are not available on this platform.")
        state = self.find(user, server)
        if state is None:
            raise NoSparkCluster("You have no Spark cluster: start your server with a profile that offers Spark "
                                 "and tick 'Spark cluster'.")
        return state

    def _lock(self, name: str) -> asyncio.Lock:
        return self._locks.setdefault(name, asyncio.Lock())

    # -- attached handles --------------------------------------------------------------------------
    def _attach(self, state: ClusterState, dead_master_ok: bool = False) -> LocalSparkCluster:
        """This service's handle on the cluster, fresh unless the one it holds still matches the state file
        (`dead_master_ok`: also a failed cluster's, whose master died, to restart it)."""
        held = self._attached.get(state.name)
        if held is not None and held.pids == [p.pid for p in state.processes]:
            return held
        self._forget(state.name)
        helper = owned.helper()
        if helper is not None:  # the hub (root) made it: the service takes over what it will write to
            try:
                helper.call("take_over", path=state.directory)
            except PrivsepError as e:
                raise SparkError(f"Your Spark cluster's directory could not be taken over: {e}") from None
        cluster = LocalSparkCluster.attach(state, dead_master_ok=dead_master_ok, **self.cluster_config)
        self._attached[state.name] = cluster
        return cluster

    def _forget(self, name: str) -> None:
        held = self._attached.pop(name, None)
        if held is not None:
            held.release()  # reaps children of this service that the hub stopped with the server

    def prune(self) -> None:
        """Drop handles on clusters that are gone or were changed by another process (e.g. the server stopped)."""
        for name, held in list(self._attached.items()):
            if self._lock(name).locked():
                continue
            try:
                state = read_state(held.directory)
            except (OSError, ValueError, TypeError):
                state = None
            if state is None or [p.pid for p in state.processes] != held.pids:
                self._forget(name)

    # -- metrics -----------------------------------------------------------------------------------
    async def metrics_summary(self) -> list[dict]:
        """Every user's cluster for the metrics: {"owner", "phase" (starting|ready|failed), "workers" (live)},
        from the state files and a liveness check of their processes (no call to the clusters)."""
        if not self.state_root:
            return []
        self._take_over_new()  # files root wrote for clusters started since (as find() does)
        return await asyncio.to_thread(self._summary)

    def _summary(self) -> list[dict]:
        out = []
        for state in all_states(self.state_root):
            live = state.live_processes()
            master_alive = any(p.role == "master" for p in live)
            phase = state.phase if state.phase in ("starting", "ready", "failed") else "ready"
            if phase == "ready" and not master_alive and not self._lock(state.name).locked():
                phase = "failed"  # its master died while its server runs
            out.append({"owner": state.user, "phase": phase,
                        "workers": sum(1 for p in live if p.role.startswith("worker"))})
        return out

    # -- the API's operations ----------------------------------------------------------------------
    async def status(self, user: str, server: str = "") -> dict:
        self.prune()
        name = cluster_slug(user, server)
        state = self.find(user, server)
        held = self._attached.get(name)
        if state is None and held is not None and self._lock(name).locked():  # between stop and start of a restart
            return status_json(state="starting", master_url=held.master_url, ui_url=self._ui_url(held.ui_proxy_url,
                               held.master_ui_port), workers_requested=held.request.workers,
                               max_workers=ClusterLimits.from_json(held.limits).cluster_max_workers)
        if state is None:
            return dict(DISABLED)
        return await self._status(state)

    async def _status(self, state: ClusterState) -> dict:
        limits = ClusterLimits.from_json(state.limits)
        master = state.master
        running = master is not None and procs.is_spark_process(master.pid, state.conf_dir, master.started)
        status = None
        if running:
            data = await asyncio.to_thread(fetch_master_json, f"http://127.0.0.1:{master.ui_port}")
            if data is not None:
                status = parse_master_json(data, "", [w.port for w in state.workers])
        return status_json(
            state=cluster_state(running, status, self._lock(state.name).locked(),
                                workers_requested=state.workers_requested if state.phase == "starting" else 0),
            master_url=f"spark://127.0.0.1:{master.port}" if master else "",
            ui_url=self._ui_url(state.ui_proxy_url, master.ui_port) if master else "",
            workers_requested=state.workers_requested, max_workers=limits.cluster_max_workers, status=status)

    @staticmethod
    def _ui_url(proxy_url: str, ui_port: int) -> str:
        """The master UI as the user reaches it: through their own server when proxied."""
        return proxy_url.rstrip("/") + "/" if proxy_url else f"http://127.0.0.1:{ui_port}/"

    async def scale(self, user: str, server: str, workers) -> dict:
        name = self._require(user, server).name
        async with self._lock(name):
            state = self._require(user, server)
            limits = ClusterLimits.from_json(state.limits)
            cluster = self._attach_running(state)
            usage = current_usage(self.state_root, user)
            check_scale_request(limits, cluster.request, workers, usage)
            before = cluster.request.workers
            self.log.info("Scaling Spark cluster %s of %s from %d to %d workers", name, user, before, workers)
            try:
                await cluster.scale(workers, limits=limits.spark_limits(), usage=usage)
            except SparkStartError as e:
                self.log.error("Scaling Spark cluster %s failed: %s", name, e)
                raise SparkUnavailable(f"The new Spark workers did not start ({e.reason}); the cluster keeps "
                                       f"{before} workers.") from None
        return await self._status(self._require(user, server))

    async def restart(self, user: str, server: str) -> dict:
        name = self._require(user, server).name
        async with self._lock(name):
            # a failed cluster (its master died) restarts too: that is what the OdhSparkClusterFailed runbook does
            cluster = self._attach_running(self._require(user, server), dead_master_ok=True)
            self.log.info("Restarting Spark cluster %s of %s", name, user)
            try:
                await cluster.restart()
            except SparkStartError as e:
                self.log.error("Restarting Spark cluster %s failed: %s", name, e)
                self._forget(name)
                raise SparkUnavailable(f"Your Spark cluster did not come back ({e.reason}); restart your server "
                                       "to get a new one.") from None
        return await self._status(self._require(user, server))

    def _attach_running(self, state: ClusterState, dead_master_ok: bool = False) -> LocalSparkCluster:
        try:
            return self._attach(state, dead_master_ok)
        except SparkError as e:
            raise SparkBusy(str(e)) from None


class SparkHandler(ApiHandler):
    @property
    def clusters(self) -> SparkClusters:
        return self.platform.spark

    def owner(self) -> str:
        other = self.get_query_argument("user", "")
        if other and other != self.current_user["name"]:
            if not self.is_admin:
                raise web.HTTPError(403, "Only admins may act on other users' Spark clusters.")
            return other
        return self.current_user["name"]

    def server_name(self) -> str:
        return self.get_query_argument("server", "")


class SparkStatusHandler(SparkHandler):
    async def get(self):
        self.reply(await self.clusters.status(self.owner(), self.server_name()))


class SparkScaleHandler(SparkHandler):
    async def post(self):
        b = self.body()
        unknown = sorted(set(b) - {"workers"})
        if unknown or "workers" not in b:
            raise web.HTTPError(400, 'Give the number of workers, e.g. {"workers": 2}.')
        self.reply(await self.clusters.scale(self.owner(), self.server_name(), b["workers"]))


class SparkRestartHandler(SparkHandler):
    async def post(self):
        self.body()  # an empty object or nothing
        self.reply(await self.clusters.restart(self.owner(), self.server_name()))


def spark_routes(api: str, kw: dict) -> list:
    return [
        (api + r"/spark", SparkStatusHandler, kw),
        (api + r"/spark/scale", SparkScaleHandler, kw),
        (api + r"/spark/restart", SparkRestartHandler, kw),
    ]
