"""OdhLocalSpawner: the local backend. A JupyterHub local process started from the SpawnPlan.

No container engine runs here: the server runs in the profile's *local environment* (the hub's own
Python, a named virtualenv, or a virtualenv the hub builds once from the image's lock: odh_spawner.host.environments),
never pretending to run the image. CPU and memory limits are applied
through cgroups where the OS allows; image, GPUs, volumes and scheduling apply on Kubernetes only.

Built on JupyterHub's LocalProcessSpawner: run as root, each hub user's server (and so their kernels and
terminals) runs as their own system user `odh-<slug>` (odh_spawner.host.users), created on first spawn, in a
home of mode 0700 that only they own. Run as anyone else, it cannot switch users and runs every server as
the hub's own user (single-user mode), which the log and the spawn form say.
"""

from __future__ import annotations

import asyncio
import os
import platform
import subprocess
import sys
import time

from jupyterhub.spawner import LocalProcessSpawner
from jupyterhub.utils import maybe_future, url_path_join
from traitlets import Bool, Dict, Float, Unicode, default

from odh_spawner.host.environments import (BuiltEnv, EnvBuildError, LockEnvironments, LockError, environment_summary,
                                           server_env)
from odh_spawner.credentials.model import ACCESS_KEY_ENV, ENDPOINT_ENV, SECRET_KEY_ENV
from odh_spawner.errors import ProfileError
from odh_spawner.host.limits import CgroupLimits, join
from odh_spawner.host.users import (SystemUser, SystemUserError, can_switch_users, ensure_system_user, ensure_traversable,
                         single_user_warning)
from odh_spawner.metrics import hub as hub_metrics
from odh_spawner.spawners.mixin import OdhSpawnerMixin, user_error
from odh_spawner.naming import state_dir_name
from odh_spawner.quantities import format_bytes
from odh_spawner.spawners.readiness import ServerExited, wait_http
from odh_spawner.profiles.resolve import SpawnPlan
from odh_spawner.spark import (LocalSparkCluster, SparkError, SparkLimitError, check_request, cluster_slug,
                    current_usage, reap_orphans, s3a, stop_server_cluster)


class OdhLocalSpawner(OdhSpawnerMixin, LocalProcessSpawner):
    backend_name = "local"
    spark_available = True

    system_users = Bool(
        config=True,
        help="""Run each hub user's server, kernels, terminals and Spark cluster as their own system user
        (`odh-` + the user's injective slug), created on their first spawn with a home of mode 0700 under
        `home_root`. Needs root; defaults to True when the hub runs as root. False (or a hub not run as
        root) is single-user mode: every server runs as the hub's own user and users are not isolated from
        each other on this machine.""",
    )

    @default("system_users")
    def _default_system_users(self):
        return can_switch_users()

    home_root = Unicode(
        config=True,
        help="""Directory holding users' home directories, one per user named by their injective slug
        (`<home_root>/<slug>`, mode 0700, owned by the user's system user). It and its parents must be
        traversable by users (mode 0711 is enough). Defaults to ./home.""",
    )

    @default("home_root")
    def _default_home_root(self):
        return os.path.abspath("home")

    environments = Dict(
        {},
        config=True,
        help="""Named local environments a profile's `local.environment` may use: name -> path of a
        virtualenv (its bin/jupyterhub-singleuser is run). The name 'hub' always means the hub's own
        Python environment.""",
    )
    environment_build_timeout = Float(
        600,
        config=True,
        help="""Seconds a spawn waits for its profile's lock environment to be built (only the first spawn of a
        lock does; `odh-hub envs build` prebuilds), and at most what the hub's start_timeout leaves. Past it the
        spawn fails with a message to retry; the build itself goes on and the next spawn uses it.""",
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
    _sysuser: SystemUser | None = None
    _warned_single_user = False
    _s3_env: dict = {}
    _spark_env: dict = {}
    _spark: LocalSparkCluster | None = None
    _spark_ready: asyncio.Future | None = None
    _lock_env: BuiltEnv | None = None
    _env_builds: dict = {}  # lock -> the running build (shared by concurrent spawns of this hub)
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
            note = "CPU and memory limits are enforced on this machine (cgroups)."
        else:
            note = "CPU and memory sizes are not enforced on this machine (no writable cgroups); they apply on Kubernetes."
        if not self.isolated:
            note += " Single-user mode: " + single_user_warning()
        return note

    def environment_notes(self, visible) -> dict[str, str]:
        """Each profile's local environment for the spawn form: its lock's Python and key packages, or the hub's
        own Python; a container digest does not apply here. A lock that cannot be read says so (the spawn
        refuses it with the full reason)."""
        envs = LockEnvironments(parent=self)
        notes = {}
        for p in visible:
            if p.local.lock:
                try:
                    notes[p.slug] = environment_summary(envs.python_version(), envs.read_lock(p.local.lock)[2])
                except (LockError, OSError, subprocess.SubprocessError) as e:
                    self.log.warning("Spawn form: the lock of profile %s: %s", p.slug, e)
                    notes[p.slug] = f"environment from {p.local.lock} (unreadable: see the hub log)"
            elif p.local.environment == "hub":
                notes[p.slug] = f"Python {platform.python_version()} · the hub's own environment"
            else:
                notes[p.slug] = f"the '{p.local.environment}' environment of this hub"
        return notes

    # -- identity ------------------------------------------------------------------------------
    @property
    def isolated(self) -> bool:
        """Whether this server runs as its user's own system user (root hub, system_users on)."""
        return self.system_users and can_switch_users()

    @property
    def home_dir(self) -> str:
        return os.path.join(self.home_root, state_dir_name(self.user.name))

    async def _ensure_identity(self) -> None:
        """The user's system user and home (root), or just the home (single-user mode)."""
        if not self.isolated:
            if not OdhLocalSpawner._warned_single_user:
                OdhLocalSpawner._warned_single_user = True
                self.log.warning(single_user_warning())
            self._sysuser = None
            os.makedirs(self.home_dir, mode=0o700, exist_ok=True)
            return
        try:
            self.odh_stage(15, "system user", "Preparing your account on this machine",
                           "Your account on this machine is ready")
            self._sysuser = await asyncio.to_thread(ensure_system_user, self.user.name, self.home_dir)
        except SystemUserError as e:
            self.log.error("System user for %s: %s", self._log_name, e)
            raise user_error(503, f"Your account on this machine could not be prepared: {e}") from None
        self.odh_progress(15, f"Running as your own system user {self._sysuser.name}")

    @property
    def cgroup_name(self) -> str:
        return f"{self.user.name}-{self.name or 'default'}"

    def environment_bin(self, name: str) -> str:
        if name == "hub":
            return os.path.dirname(sys.executable)
        path = self.environments.get(name)
        if not path:
            raise ProfileError(f"Local environment {name!r} is not configured on this hub "
                               f"(OdhLocalSpawner.environments knows: hub, {', '.join(sorted(self.environments))}).")
        return os.path.join(path, "bin")

    async def apply_plan(self, plan: SpawnPlan) -> None:
        self._lock_env = None
        if plan.local_lock:  # built (or found) in start(), which sets cmd
            self.cpu_limit, self.cpu_guarantee = plan.cpu_limit, plan.cpu_request
            self.mem_limit, self.mem_guarantee = plan.mem_limit, plan.mem_request
            return
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
            if self.plan.local_lock:
                env["ODH_LOCAL_ENVIRONMENT"] = f"lock:{self.plan.local_lock}"
        if self._lock_env is not None:
            env = server_env(env, self._lock_env.path)
        env.update(self._s3_env)
        env.update(self._spark_env)
        return env

    def user_env(self, env):
        if self._sysuser is not None:
            env.update(self._sysuser.env())
        else:
            env.update(USER=self.user.name, HOME=self.home_dir, SHELL="/bin/bash")
        return env

    def get_args(self):
        args = super().get_args()
        if os.geteuid() == 0 and self._sysuser is None and "--allow-root" not in args:
            args.append("--allow-root")  # root without system users (system_users = False): the admin's choice
        return args

    def make_preexec_fn(self, name):
        procs = self._cgroup_procs
        sysuser, home = self._sysuser, self.home_dir
        drop = sysuser.preexec(chdir=True) if sysuser is not None else (lambda: os.chdir(home))

        def preexec():
            if procs:
                join(procs)  # as root, before the user's identity is taken on
            drop()

        return preexec

    async def start(self):
        began = time.monotonic()
        ok = False
        self._cgroup_procs = []
        limits = self.limits
        plan = self.plan
        try:
            await self._ensure_identity()
            creds = await self.odh_s3_credentials()  # locally the keys reach the process environment
            self._s3_env = creds.env() if creds is not None else {}
            if limits is not None and plan is not None:
                self.odh_stage(30, "limits", "Applying your size's limits",
                               f"Limits applied: {plan.cpu_limit:g} CPU, {format_bytes(plan.mem_limit)} memory")
                self._cgroup_procs = limits.create(self.cgroup_name, plan.cpu_limit, plan.mem_limit)
            elif plan is not None:
                self.odh_progress(30, "Limits not enforced locally (no writable cgroups)")
            self._spark_env = {}
            if plan is not None and plan.local_lock:
                await self._prepare_lock_env(plan, self.start_timeout - (time.monotonic() - began) - 5)
            if plan is not None and plan.spark is not None:
                await self._launch_spark(plan)
            env_name = (f"{plan.profile}" if plan.local_lock else plan.local_environment) if plan else "hub"
            self.odh_stage(50, "server process", f"Starting JupyterLab in the local '{env_name}' environment",
                           "JupyterLab process started")
            ip, port = await super().start()
            if self._spark is not None:
                self._spark.set_owner(self.pid)  # the cluster lives and dies with this process
            self.odh_stage(70, "server answering", "Waiting for JupyterLab to answer", "JupyterLab answering")
            # within the hub's start_timeout (which this wait now counts against), else the hub's own wait decides
            await self._wait_answering(ip, port, min(self.http_timeout,
                                                     self.start_timeout - (time.monotonic() - began) - 2))
            ok = True
            return ip, port
        finally:
            self.odh_progress_done(ok)

    answer_poll_interval = Float(
        0.05,
        config=True,
        help="""Seconds between checks whether a starting server answers HTTP yet. The spawner waits for the
        answer itself (at most http_timeout) before handing the server to the hub, whose own check backs off
        exponentially and would notice a ready server up to seconds late. 0 leaves the wait to the hub.""",
    )

    async def _wait_answering(self, ip: str, port: int, timeout: float) -> None:
        if self.answer_poll_interval <= 0 or timeout <= 0:
            return
        url = f"http://{ip or '127.0.0.1'}:{port}{url_path_join(self.server.base_url, 'api')}"
        try:
            await wait_http(url, alive=lambda: self.proc is not None and self.proc.poll() is None,
                            timeout=timeout, interval=self.answer_poll_interval)
        except ServerExited:
            code = self.proc.returncode if self.proc is not None else "unknown"
            self.log.error("The server of %s exited (code %s) before it answered", self._log_name, code)
            raise user_error(500, f"Your JupyterLab server exited during start (code {code}); "
                                  "the hub log has its output.") from None

    async def _launch_spark(self, plan: SpawnPlan) -> None:
        """The Spark standalone cluster of this server, within the admin's limits: its processes are launched
        and their addresses go into the server's environment; the JVMs boot beside the notebook server (the
        wait for them runs in the background, and a notebook's getOrCreate() waits for them if it is first)."""
        self.odh_stage(40, "spark launch", "Launching your Spark cluster", "Spark cluster launched")
        await self._reap_once()
        limits = self.odh_spark_limits()  # the admin's, with this user's Spark-worker quota
        try:
            check_request(limits, plan.spark, current_usage(self.spark_state_dir, self.user.name))
        except SparkLimitError as e:
            raise user_error(403, str(e)) from None
        if self._sysuser is not None:  # the user's notebook reads its Spark conf from below this directory
            os.makedirs(self.spark_state_dir, mode=0o711, exist_ok=True)
            ensure_traversable(self.spark_state_dir)
        cluster = LocalSparkCluster(
            self.spark_state_dir, cluster_slug(self.user.name, self.name), plan.spark, user=self.user.name,
            server=self.name, parent=self, ui_proxy_url=self.spark_ui_path(),
            limits=self.spark_cluster_limits(limits, plan).to_json(),
            run_as=self._sysuser,  # the user's own system user (None in single-user mode)
            driver_conf=self._s3a_conf())  # s3a:// with the user's own keys, in their 0600 spark-defaults.conf
        launched = time.monotonic()
        try:
            await cluster.launch()
        except SparkError as e:
            hub_metrics.record_spark_start(False)
            self.log.error("Spark cluster for %s failed to launch: %s", self._log_name, e)
            raise user_error(503, f"Your Spark cluster could not start: {str(e).splitlines()[0][:300]}.") from None
        self._spark = cluster
        self._spark_ready = asyncio.ensure_future(self._await_spark(cluster, launched))
        bindir = self._lock_env.bindir if self._lock_env is not None else self.environment_bin(plan.local_environment)
        python = os.path.join(bindir, "python")
        self._spark_env = cluster.notebook_env(python=python)

    def _s3a_conf(self) -> dict[str, str]:
        """The notebook driver's s3a settings (spark.s3a): the object store and this user's keys ({} without)."""
        endpoint = self._s3_env.get(ENDPOINT_ENV, "")
        if not endpoint:
            return {}
        try:
            return s3a.driver_conf(endpoint, self._s3_env.get(ACCESS_KEY_ENV, ""), self._s3_env.get(SECRET_KEY_ENV, ""))
        except s3a.S3aConfigError as e:
            self.log.warning("No s3a settings for the Spark cluster of %s: %s", self._log_name, e)
            return {}

    async def _prepare_lock_env(self, plan: SpawnPlan, start_budget: float) -> None:
        """The virtualenv of the profile's lock: from the cache, else built now (once: concurrent spawns of the
        same lock share the build, other hubs wait on its file lock), within environment_build_timeout."""
        envs = LockEnvironments(parent=self)
        try:
            found = await asyncio.to_thread(envs.cached, plan.local_lock)
        except (LockError, EnvBuildError) as e:
            self.log.error("Lock environment of profile %s: %s", plan.profile, e)
            raise user_error(400, f"The '{plan.profile}' environment is misconfigured: {e}") from None
        if found is None:
            self.odh_stage(35, "environment", f"Preparing the {plan.profile} environment (first time only)",
                           f"The {plan.profile} environment is ready")
            cls = type(self)
            build = cls._env_builds.get(plan.local_lock)
            if build is None or build.done():
                build = asyncio.ensure_future(asyncio.to_thread(envs.ensure, plan.local_lock, self.log.info))
                cls._env_builds[plan.local_lock] = build
            # within environment_build_timeout and what the hub's start_timeout leaves (else the hub's own timeout
            # would end the spawn with a less helpful message); shielded: a spawn that gives up does not stop the
            # build, which the next spawn uses
            wait = max(1.0, min(self.environment_build_timeout, start_budget))
            try:
                found = await asyncio.wait_for(asyncio.shield(build), wait)
            except asyncio.TimeoutError:
                self.log.warning("Spawn of %s gave up waiting %.0f s for the %s environment; its build goes on",
                                 self._log_name, wait, plan.profile)
                raise user_error(503, f"The {plan.profile} environment is still being prepared (it takes a few "
                                      "minutes the first time). Try again shortly.") from None
            except (LockError, EnvBuildError) as e:
                self.log.error("Building the environment of profile %s failed: %s", plan.profile, e)
                raise user_error(503, f"The {plan.profile} environment could not be prepared: {e}") from None
        if self._sysuser is not None:
            await asyncio.to_thread(ensure_traversable, os.path.dirname(found.path))
        self._lock_env = found
        self.cmd = [os.path.join(found.bindir, "jupyterhub-singleuser")]
        self.log.info("Server of %s runs from the lock environment %s", self._log_name, found.path)

    async def _await_spark(self, cluster: LocalSparkCluster, launched: float) -> None:
        """In the background: the cluster's JVMs up and every worker registered (or the failure recorded where
        the notebook and the platform see it)."""
        try:
            status = await cluster.wait_started()
        except SparkError as e:
            hub_metrics.record_spark_start(False)
            self.log.error("Spark cluster for %s failed to start: %s", self._log_name, e)
        else:
            hub_metrics.record_spark_start(True, time.monotonic() - launched)
            self.log.info("Spark cluster of %s ready: %d workers, %d cores", self._log_name, status.workers_alive,
                          status.cores)

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
        ready, self._spark_ready = self._spark_ready, None
        if ready is not None and not ready.done():
            ready.cancel()
            await asyncio.gather(ready, return_exceptions=True)
        if cluster is not None:
            await cluster.stop()
        elif os.path.isdir(self.spark_state_dir):  # a hub restarted since the start holds no handle
            await asyncio.to_thread(stop_server_cluster, self.spark_state_dir, self.user.name, self.name or "")
        limits = self.limits
        if limits is not None:  # it may wait seconds for stray kernels to die: never on the hub's event loop
            await asyncio.to_thread(limits.remove, self.cgroup_name)
        return await maybe_future(super().run_post_stop_hook())
