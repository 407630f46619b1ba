"""OdhLocalSpawner: the local backend. A JupyterHub local process started from the SpawnPlan.

No container engine runs here: the server runs in the profile's *local environment* (the hub's own
Python, or a named virtualenv), never pretending to run the image. CPU and memory limits are applied
through cgroups where the OS allows; image, GPUs, volumes and scheduling apply on Kubernetes only.
"""

from __future__ import annotations

import asyncio
import os
import sys

from jupyterhub.spawner import SimpleLocalProcessSpawner
from jupyterhub.utils import maybe_future
from traitlets import Bool, Dict, Unicode, default

from .errors import ProfileError
from .local_limits import CgroupLimits, join
from .mixin import OdhSpawnerMixin, user_error
from .resolve import SpawnPlan
from .spark import (LocalSparkCluster, SparkError, SparkLimitError, SparkLimits, check_request, cluster_slug,
                    current_usage, reap_orphans, stop_cluster)


class OdhLocalSpawner(OdhSpawnerMixin, SimpleLocalProcessSpawner):
    backend_name = "local"
    spark_available = True

    environments = Dict(
        {},
        config=True,
        help="""Named local environments a profile's `local.environment` may use: name -> path of a
        virtualenv (its bin/jupyterhub-singleuser is run). The name 'hub' always means the hub's own
        Python environment.""",
    )
    enforce_limits = Bool(
        True,
        config=True,
        help="""Apply the chosen size's CPU and memory limits through Linux cgroups when the hub may write
        them (root on a writable cgroupfs). Elsewhere servers run unlimited and the form says so.""",
    )
    cgroup_root = Unicode("/sys/fs/cgroup", config=True, help="Where the cgroup filesystem is mounted.")
    cgroup_parent = Unicode(
        "odh-hub",
        config=True,
        help="""Parent cgroup (under each controller) holding one group per server. Give every hub on a
        machine its own: a hub stopping a server kills everything left in that server's group.""",
    )
    spark_state_dir = Unicode(
        config=True,
        help="""Where local Spark clusters keep their state files, logs and work directories. Clusters whose
        server is gone (e.g. after a hub crash) are found here and stopped. Defaults to ./spark-clusters.""",
    )

    @default("spark_state_dir")
    def _default_spark_state_dir(self):
        return os.path.abspath("spark-clusters")

    _limits: CgroupLimits | None = None
    _s3_env: dict = {}
    _spark_env: dict = {}
    _spark: LocalSparkCluster | None = None
    _reaped_dirs: set = set()

    @property
    def limits(self) -> CgroupLimits | None:
        if not self.enforce_limits:
            return None
        cls = type(self)
        if cls._limits is None or (cls._limits.root, cls._limits.parent) != (self.cgroup_root, self.cgroup_parent):
            cls._limits = CgroupLimits(self.cgroup_root, self.cgroup_parent)
        return cls._limits if cls._limits.available() else None

    def limits_note(self) -> str:
        if self.limits is not None:
            return "CPU and memory limits are enforced on this machine (cgroups)."
        return "CPU and memory sizes are not enforced on this machine (no writable cgroups); they apply on Kubernetes."

    @property
    def cgroup_name(self) -> str:
        return f"{self.user.name}-{self.name or 'default'}"

    def environment_bin(self, name: str) -> str:
        if name == "hub":
            return os.path.dirname(sys.executable)
        path = self.environments.get(name)
        if not path:
            raise ProfileError(f"local environment {name!r} is not configured on this hub "
                               f"(OdhLocalSpawner.environments knows: hub, {', '.join(sorted(self.environments))})")
        return os.path.join(path, "bin")

    async def apply_plan(self, plan: SpawnPlan) -> None:
        try:
            bindir = self.environment_bin(plan.local_environment)
        except ProfileError as e:
            raise user_error(400, str(e)) from None
        exe = os.path.join(bindir, "jupyterhub-singleuser")
        if not os.access(exe, os.X_OK):
            raise user_error(400, f"The local environment {plan.local_environment!r} has no jupyterhub-singleuser.")
        self.cmd = [exe]
        self.cpu_limit, self.cpu_guarantee = plan.cpu_limit, plan.cpu_request
        self.mem_limit, self.mem_guarantee = plan.mem_limit, plan.mem_request

    def get_env(self):
        env = super().get_env()
        if self.plan is not None:
            env.update(self.odh_env(self.plan))
            env["ODH_LOCAL_ENVIRONMENT"] = self.plan.local_environment
        env.update(self._s3_env)
        env.update(self._spark_env)
        return env

    def get_args(self):
        args = super().get_args()
        if os.geteuid() == 0 and "--allow-root" not in args:
            args.append("--allow-root")
        return args

    def make_preexec_fn(self, name):
        parent = super().make_preexec_fn(name)
        procs = self._cgroup_procs

        def preexec():
            if procs:
                join(procs)
            parent()

        return preexec

    async def start(self):
        self._cgroup_procs = []
        limits = self.limits
        plan = self.plan
        try:
            creds = await self.odh_s3_credentials()  # locally the keys reach the process environment
            self._s3_env = creds.env() if creds is not None else {}
            if limits is not None and plan is not None:
                self._cgroup_procs = limits.create(self.cgroup_name, plan.cpu_limit, plan.mem_limit)
                self.odh_progress(30, f"Limits applied: {plan.cpu_limit:g} CPU, {plan.mem_limit // 2**20} MiB memory")
            elif plan is not None:
                self.odh_progress(30, "Limits not enforced locally (no writable cgroups)")
            self._spark_env = {}
            if plan is not None and plan.spark is not None:
                await self._start_spark(plan)
            env_name = plan.local_environment if plan else "hub"
            self.odh_progress(50, f"Starting JupyterLab in the local '{env_name}' environment")
            result = await super().start()
            if self._spark is not None:
                self._spark.set_owner(self.pid)  # the cluster lives and dies with this process
            self.odh_progress(70, "Server process started; waiting for it to answer")
            return result
        finally:
            self.odh_progress_done()

    async def _start_spark(self, plan: SpawnPlan) -> None:
        """A Spark standalone cluster for this server, within the admin's limits, before the server starts."""
        await self._reap_once()
        limits = SparkLimits(parent=self)
        try:
            check_request(limits, plan.spark, current_usage(self.spark_state_dir, self.user.name))
        except SparkLimitError as e:
            raise user_error(403, str(e)) from None
        cluster = LocalSparkCluster(
            self.spark_state_dir, cluster_slug(self.user.name, self.name), plan.spark, user=self.user.name,
            server=self.name, progress=lambda message: self.odh_progress(40, message), parent=self,
            ui_proxy_url=self.spark_ui_path(), limits=self.spark_cluster_limits(limits, plan).to_json())
        self._spark = cluster
        try:
            await cluster.start()
        except SparkError as e:
            self._spark = None
            self.log.error("Spark cluster for %s failed to start: %s", self._log_name, e)
            raise user_error(503, f"Your Spark cluster could not start: {str(e).splitlines()[0][:300]}") from None
        python = os.path.join(self.environment_bin(plan.local_environment), "python")
        self._spark_env = cluster.notebook_env(python=python)

    async def _reap_once(self) -> None:
        """After a hub crash, clusters whose servers are gone are stopped (once per process and state dir)."""
        if self.spark_state_dir in OdhLocalSpawner._reaped_dirs:
            return
        OdhLocalSpawner._reaped_dirs.add(self.spark_state_dir)
        reaped = await asyncio.to_thread(reap_orphans, self.spark_state_dir)
        if reaped:
            self.log.warning("Stopped %d orphaned Spark cluster(s): %s", len(reaped), ", ".join(reaped))

    async def poll(self):
        await self._reap_once()  # the hub polls every server at start-up: reap what a crash left
        return await super().poll()

    async def run_post_stop_hook(self):
        cluster, self._spark, self._spark_env = self._spark, None, {}
        if cluster is not None:
            await cluster.stop()
        elif os.path.isdir(self.spark_state_dir):  # a hub restarted since the start holds no handle
            await asyncio.to_thread(stop_cluster, self.spark_state_dir, cluster_slug(self.user.name, self.name))
        limits = self.limits
        if limits is not None:
            limits.remove(self.cgroup_name)
        return await maybe_future(super().run_post_stop_hook())
