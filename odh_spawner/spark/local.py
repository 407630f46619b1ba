"""LocalSparkCluster: a real Spark standalone cluster (one master, N workers) for one local user server.

The daemons are started with Spark's own `bin/spark-class`, each in its own session, bound to 127.0.0.1 on
free ports, with logs, work directories, configuration and a state file under `<state_root>/<name>/`.
They get a clean environment (never the hub's): PATH, locale, JAVA_HOME, the Spark settings and whatever
`env` the caller passes (e.g. the user's own S3 keys, which executors inherit from their worker).

Master and workers boot together. A worker registers as soon as it is up, and one that reaches the master
before the master leads is ignored and tries again only 5-15 s later; workers boot faster than the master,
so each worker that is up (RPC port bound) before the master leads is held (SIGSTOP) and released (SIGCONT)
once it does. A worker that still missed the master is restarted at once.

`ui_proxy_url` (the path under which the user's notebook server proxies the master UI) turns on Spark's
reverse-proxy mode on master and workers, so the links inside the UI (workers, applications) stay under it.
`LocalSparkCluster.attach(state)` gives another process (the platform service) a handle on a cluster the hub
started, from its state file: its processes are then identified by PID, start time and configuration
directory only, never signalled as children.

Isolation (see spark.auth): every cluster has its own secret (`spark.authenticate`), so only applications
holding it register; the notebook gets it through `notebook_env()` (a SPARK_CONF_DIR of its own). With
`run_as` (a localusers.SystemUser; the platform runs as root) master, workers and executors run as the user's
system user. The cluster's directory stays the platform's (0711): its state file and kept secret are the
platform's alone, `conf/` holds no secret, `logs/` is readable by the user's group; `work/` (executors'
files) and `notebook-conf/` are the user's own (0700), each made afresh before it is handed over.

With `port_guard_id` (the local platform sets it) the web UI ports of master, workers and the notebook's
drivers admit only the owner's system user and root (spark.uiguard): guarded before a daemon binds them,
released when a daemon is replaced or stopped and when the cluster stops.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import stat
import time
from dataclasses import replace
from typing import Callable, Mapping

from traitlets import Float, Int, Unicode
from traitlets.config import LoggingConfigurable

from odh_spawner.host import owned
from odh_spawner.host.ports import free_port
from odh_spawner.host.privsep import PrivsepError
from odh_spawner.host.safefiles import private_dir
from odh_spawner.host.users import SystemUser
from odh_spawner.profiles.resolve import SparkRequest
from odh_spawner.spark import auth, procs, uiguard
from odh_spawner.spark.adopt import adopted, user_from_record, user_record
from odh_spawner.spark.daemon import (CLEAN_ENV, MASTER_CLASS, SPARK_DEFAULTS, WORKER_CLASS, Daemon, fetch_master_json, missed_master,
                     spawn)
from odh_spawner.spark.env import spark_env, spark_memory
from odh_spawner.spark.errors import SparkError, SparkStartError
from odh_spawner.spark.limits import SparkLimits, SparkUsage, check_scale
from odh_spawner.spark.phase import FAILED, PHASE_ENV, PHASE_FILE, READY, STARTING, write_phase
from odh_spawner.spark.state import ClusterState, forget_cluster, read_state, remove_state, write_state
from odh_spawner.spark.status import SparkStatus, parse_master_json

NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,127}$")
RESCUE_AFTER = 3.0  # seconds a worker may stay unregistered once it has tried and the master leads
MAX_RELAUNCHES = 3


def _exit_code(proc: Daemon):
    return proc.popen.returncode if proc.popen is not None else "unknown"


class LocalSparkCluster(LoggingConfigurable):
    spark_home = Unicode(
        "",
        config=True,
        help="""Spark installation to run (its bin/spark-class). Empty: $SPARK_HOME, else the Spark shipped in
        the installed pyspark package.""",
    )
    java_home = Unicode("", config=True,
                        help="JAVA_HOME for the Spark daemons. Empty: $JAVA_HOME, else `java` on PATH.")
    daemon_memory = Unicode(
        "256m",
        config=True,
        help="""Heap of each master and worker JVM (SPARK_DAEMON_MEMORY). Executors get the worker memory the
        user chose; the daemons themselves only coordinate.""",
    )
    daemon_java_opts = Unicode(
        "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
        config=True,
        help="""JVM options of the master and worker daemons (SPARK_DAEMON_JAVA_OPTS). The default (serial GC,
        client compiler only) about halves their start time on small machines; executors are not affected.""",
    )
    boot_nice = Int(
        10,
        config=True,
        help="""Nice value the master and workers boot with, until every worker has registered; then they run
        at normal priority again. Their JVMs start beside the user's notebook server, and on a small machine
        they would otherwise take the CPU the server needs to come up. Needs root (which may lower it again);
        0 (or a platform not run as root) leaves their priority alone.""",
    )
    port_guard_id = Unicode(
        "",
        config=True,
        help="""Id of the platform's nftables table (odh_<id>, host.portguard) guarding the cluster's web UI ports
        (master, workers, the notebook's drivers), so that only the owner's system user (their notebook server's
        proxy) and root connect to them. Empty, without root and nft, or in single-user mode: not guarded (any
        local user may open the UIs).""",
    )
    driver_ui_ports = Int(
        8,
        config=True,
        help="""Consecutive ports reserved and guarded for the UIs of the notebook's Spark drivers (one per
        kernel with a SparkSession): its spark-defaults.conf pins spark.ui.port to the first. One driver more
        than this does not start (its JVM exits: 'Failed to bind SparkUI', naming spark.ui.port, in the
        server's log). Only with port_guard_id.""",
    )
    start_timeout = Float(120.0, config=True, help="Seconds a cluster may take to report all workers ALIVE.")
    stop_timeout = Float(10.0, config=True, help="Seconds Spark processes get after SIGTERM before SIGKILL.")
    poll_interval = Float(0.1, config=True, help="Seconds between readiness polls of the master's JSON.")

    def __init__(self, state_root: str, name: str, request: SparkRequest, *, user: str = "", server: str = "",
                 owner_pid: int | None = None, env: Mapping[str, str] | None = None,
                 progress: Callable[[str], None] | None = None, ui_proxy_url: str = "",
                 limits: Mapping | None = None, run_as: SystemUser | None = None,
                 driver_conf: Mapping[str, str] | None = None, **kwargs):
        super().__init__(**kwargs)
        if not NAME_RE.fullmatch(name):
            raise ValueError(f"The cluster name {name!r} is not valid: use letters, digits, '.', '_' and '-' only.")
        self.directory = os.path.join(os.path.abspath(state_root), name)
        self.name, self.user, self.server = name, user, server
        self.request = request
        self.extra_env = dict(env or {})
        self.driver_conf = dict(driver_conf or {})  # more entries of the notebook's spark-defaults.conf (spark.s3a)
        self.ui_proxy_url = ui_proxy_url.rstrip("/")
        self.limits = dict(limits or {})  # recorded in the state file (see spark.api.ClusterLimits)
        self.run_as = run_as
        self.authenticate = True  # False only for a cluster an earlier hub version started (attach)
        self._secret: str | None = None  # this cluster's spark.authenticate secret (never logged)
        self._driver_ports: list[int] = []  # the notebook's drivers' UI ports (see spark.uiguard)
        self.progress = progress or (lambda message: None)
        self.master_port, self.master_ui_port = free_port(), free_port()
        self._owner_pid = owner_pid
        self._owner_started: int | None = None  # known for an attached cluster; else read when saving
        self._creator = (os.getpid(), procs.start_time(os.getpid()))
        self._master: Daemon | None = None
        self._workers: dict[int, Daemon] = {}
        self._ports_fixed = False
        self._owns_directory = False  # set once no other live cluster uses the directory
        self.phase, self.error = READY, ""  # STARTING from launch() until wait_started() ends

    # -- where things are --------------------------------------------------------------------
    @property
    def conf_dir(self) -> str:
        return os.path.join(self.directory, "conf")

    @property
    def log_dir(self) -> str:
        return os.path.join(self.directory, "logs")

    @property
    def work_dir(self) -> str:
        return os.path.join(self.directory, "work")

    @property
    def master_url(self) -> str:
        return f"spark://127.0.0.1:{self.master_port}"

    @property
    def ui_url(self) -> str:
        return f"http://127.0.0.1:{self.master_ui_port}"

    @property
    def running(self) -> bool:
        return self._master is not None

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self._procs()]

    @property
    def ports(self) -> list[int]:
        return [port for p in self._procs() for port in (p.port, p.ui_port)]

    @property
    def notebook_conf_dir(self) -> str:
        return os.path.join(self.directory, auth.NOTEBOOK_CONF)

    def notebook_env(self, python: str = "") -> dict[str, str]:
        """Environment for the notebook server: its SparkSession finds this cluster, authenticates to it and
        binds 127.0.0.1. `python`: the notebook's interpreter, which executors then run for Python code
        (PYSPARK_PYTHON). The secret is not in it: SPARK_CONF_DIR names the directory (the notebook user's
        own, 0700) whose spark-defaults.conf (0600) holds it. Call after `start()`."""
        env = {**spark_env(self.master_url, self.ui_url, self.request, self.ui_proxy_url),
               "SPARK_LOCAL_IP": "127.0.0.1", PHASE_ENV: self.phase_path}
        if self.authenticate:
            env["SPARK_CONF_DIR"] = self.notebook_conf_dir
        if python:
            env["PYSPARK_PYTHON"] = python
        return env

    def _procs(self) -> list[Daemon]:
        return ([self._master] if self._master else []) + [self._workers[i] for i in sorted(self._workers)]

    # -- state file ----------------------------------------------------------------------------
    def _state(self) -> ClusterState:
        owner, owner_started = self._owner_pid, self._owner_started
        if owner and owner_started is None:
            owner_started = procs.start_time(owner)
        return ClusterState(
            name=self.name, directory=self.directory, user=self.user, server=self.server,
            owner_pid=owner, owner_started=owner_started, creator_pid=self._creator[0],
            creator_started=self._creator[1], workers_requested=self.request.workers,
            processes=[p.record() for p in self._procs()], worker_cores=self.request.worker_cores,
            worker_memory=self.request.worker_memory, ui_proxy_url=self.ui_proxy_url, limits=self.limits,
            authenticate=self.authenticate, run_as=user_record(self.run_as), phase=self.phase, error=self.error,
            guard_id=self.port_guard_id if self._ui_guard.active else "", driver_ui_ports=list(self._driver_ports),
        )

    @property
    def _ui_guard(self) -> uiguard.UiGuard:
        return uiguard.UiGuard(self.port_guard_id, self.run_as)

    def _release_ui(self, ports: list[int]) -> None:
        if self._ui_guard.active:
            uiguard.release(self.port_guard_id, ports)

    @property
    def ui_ports(self) -> list[int]:
        """The UI ports of master, workers and the notebook's drivers (guarded with port_guard_id)."""
        return sorted({p.ui_port for p in self._procs()} | set(self._driver_ports))

    def _save(self) -> None:
        write_state(self._state())

    def set_owner(self, pid: int | None) -> None:
        """Record the notebook server this cluster belongs to (the reaper stops the cluster once it is gone)."""
        self._owner_pid, self._owner_started = pid, None
        if self.running:
            self._save()

    # -- launching -----------------------------------------------------------------------------
    def _prepare(self) -> None:
        previous = read_state(self.directory) if os.path.isdir(self.directory) else None
        if previous is not None and previous.live_processes():
            raise SparkError(f"A Spark cluster named {self.name!r} is already running.")
        self._owns_directory = True
        os.makedirs(self.directory, exist_ok=True)
        for d in (self.conf_dir, self.log_dir):
            os.makedirs(d, exist_ok=True)
        # the daemons' configuration holds no secret and must be readable by them whatever the creator's umask
        # (the hub's is 077): unreadable, a master would start without reverse proxy and authentication
        os.chmod(self.conf_dir, 0o755)
        user = self.run_as
        if user is not None:  # the platform's directory: others may pass through it, nothing more; files made
            # in it later belong to the owner's group (setgid), also when the platform service no longer is root
            st = os.stat(self.directory, follow_symlinks=False)
            if st.st_gid != user.gid:
                os.chown(self.directory, -1, user.gid, follow_symlinks=False)
            if st.st_gid != user.gid or st.st_mode & 0o7777 != 0o2711:  # (chmod by a non-member drops setgid)
                os.chmod(self.directory, 0o2711)
            private_dir(self.log_dir, 0o2750, user.gid)  # the platform's: no link planted, its group may read
        self._fresh_work_dir(user)
        defaults = os.path.join(self.conf_dir, "spark-defaults.conf")
        tmp = f"{defaults}.tmp"
        with open(tmp, "w") as f:
            f.write(auth.render_conf(self.spark_defaults()))
        os.chmod(tmp, 0o644)
        os.replace(tmp, defaults)
        if self.authenticate and self._secret is None:  # a new cluster: a new secret, and the notebook's copy
            self._secret = auth.new_secret()
            auth.write_secret(self.directory, self._secret)
            extra = dict(self.driver_conf)
            if self._ui_guard.active and self.driver_ui_ports > 0:  # the drivers' UIs on ports guarded now
                self._driver_ports = uiguard.free_port_block(self.driver_ui_ports)
                self._ui_guard.guard(self._driver_ports)
                extra.update(uiguard.driver_conf(self._driver_ports[0], len(self._driver_ports)))
            auth.write_notebook_conf(self.directory, self._secret, owner=user, extra=extra)
        self._find_binaries()

    def _fresh_work_dir(self, user: SystemUser | None) -> None:
        """The executors' work directory, made afresh and handed to the owner; through the privileged helper
        (the platform service dropped root) the owner's earlier one is kept, since only they may empty it."""
        helper = owned.helper()
        if helper is not None and user is not None:
            st = os.stat(self.work_dir, follow_symlinks=False) if os.path.lexists(self.work_dir) else None
            if st is not None and st.st_uid == user.uid and stat.S_ISDIR(st.st_mode):
                return
            shutil.rmtree(self.work_dir, ignore_errors=True)
            os.mkdir(self.work_dir, 0o700)
            try:
                helper.call("give_dir", path=self.work_dir, user=user.name)
            except PrivsepError as e:
                raise SparkError(f"The Spark work directory could not be handed to its owner: {e}") from None
            return
        shutil.rmtree(self.work_dir, ignore_errors=True)  # made afresh, then handed over
        os.mkdir(self.work_dir, 0o700 if user is not None else 0o777)
        if user is not None:
            user.chown(self.work_dir, 0o700)

    def _find_binaries(self) -> None:
        self._spark_class = os.path.join(procs.find_spark_home(self.spark_home), "bin", "spark-class")
        self._java = procs.find_java(self.java_home)

    def spark_defaults(self) -> dict[str, str]:
        """spark-defaults.conf of master and workers (their SPARK_CONF_DIR)."""
        conf = dict(SPARK_DEFAULTS)
        if self.ui_proxy_url:
            conf.update({"spark.ui.reverseProxy": "true", "spark.ui.reverseProxyUrl": self.ui_proxy_url})
        if self.authenticate:
            conf.update(auth.daemon_conf())
        return conf

    @classmethod
    def attach(cls, state: ClusterState, dead_master_ok: bool = False, **kwargs) -> "LocalSparkCluster":
        """A handle on a running cluster started by another process (the hub), to scale, restart or stop it.

        Everything comes from the state file: shape, ports, limits, owner, and the PID and start time of each
        process. Raises SparkError when the state lacks what scaling needs or the master is gone (unless
        `dead_master_ok`: a handle to restart a cluster whose master died, i.e. a failed one).
        """
        master = state.master
        if master is None or not state.worker_cores or not state.worker_memory:
            raise SparkError(f"The Spark cluster {state.name!r} cannot be managed from here (its state file "
                             "predates this hub version); restart your server.")
        run_as = user_from_record(state)
        secret = auth.read_secret(state.directory) if state.authenticate else None
        if state.authenticate and not secret:
            raise SparkError(f"The Spark cluster {state.name!r} cannot be managed from here (its secret is gone); "
                             "restart your server.")
        if not dead_master_ok and not procs.is_spark_process(master.pid, state.conf_dir, master.started):
            raise SparkError(f"The Spark cluster {state.name!r} is not running.")
        workers = {int(p.role.rpartition("-")[2]): p for p in state.workers}
        request = SparkRequest(workers=len(workers), worker_cores=state.worker_cores,
                               worker_memory=state.worker_memory)
        cluster = cls(os.path.dirname(state.directory), state.name, request, user=state.user, server=state.server,
                      owner_pid=state.owner_pid, ui_proxy_url=state.ui_proxy_url, limits=state.limits,
                      run_as=run_as, **kwargs)
        cluster.authenticate, cluster._secret = state.authenticate, secret
        cluster.port_guard_id, cluster._driver_ports = state.guard_id, list(state.driver_ui_ports)
        cluster.phase, cluster.error = state.phase, state.error
        cluster._owner_started = state.owner_started
        cluster._creator = (state.creator_pid, state.creator_started)
        cluster.master_port, cluster.master_ui_port = master.port, master.ui_port
        cluster._find_binaries()
        cluster._master = adopted(master, cluster.log_dir)
        cluster._workers = {i: adopted(p, cluster.log_dir) for i, p in sorted(workers.items())}
        cluster._ports_fixed = True  # a restart keeps the master URL the notebook was given
        cluster._owns_directory = True
        return cluster

    def _env(self) -> dict[str, str]:
        env = {k: os.environ[k] for k in CLEAN_ENV if k in os.environ}
        env.update(self.extra_env)
        env.update(
            SPARK_HOME=os.path.dirname(os.path.dirname(self._spark_class)),
            JAVA_HOME=os.path.dirname(os.path.dirname(os.path.realpath(self._java))),
            SPARK_CONF_DIR=self.conf_dir, SPARK_LOG_DIR=self.log_dir, SPARK_WORKER_DIR=self.work_dir,
            SPARK_LOCAL_IP="127.0.0.1", SPARK_DAEMON_MEMORY=self.daemon_memory,
            SPARK_DAEMON_JAVA_OPTS=self.daemon_java_opts,
        )
        if self.run_as is not None:
            env.update(self.run_as.env())
        if self.authenticate:
            if not self._secret:
                raise SparkError(f"The Spark cluster {self.name!r} has no secret; restart your server.")
            env[auth.SECRET_ENV] = self._secret  # the environment only: never a command line (see spark.auth)
        return env

    def master_args(self) -> list[str]:
        return [MASTER_CLASS, "--host", "127.0.0.1", "--port", str(self.master_port),
                "--webui-port", str(self.master_ui_port)]

    def worker_args(self, index: int, port: int, ui_port: int) -> list[str]:
        return [WORKER_CLASS, "--host", "127.0.0.1", "--port", str(port), "--webui-port", str(ui_port),
                "--cores", str(self.request.worker_cores), "--memory", spark_memory(self.request.worker_memory),
                "--work-dir", os.path.join(self.work_dir, f"worker-{index}"), self.master_url]

    @property
    def _boot_niced(self) -> bool:
        return self.boot_nice > 0 and os.geteuid() == 0

    def _spawn(self, role: str, args: list[str], port: int, ui_port: int) -> Daemon:
        self._ui_guard.guard([ui_port])  # before it binds: nobody but its owner and root ever opens it
        daemon = spawn(self._spark_class, role, args, self._env(), self.directory, self.log_dir, port, ui_port,
                       run_as=self.run_as)
        if self._boot_niced:  # spark-class has not started its JVM yet: the JVM's threads inherit this
            procs.set_nice(daemon.pid, self.boot_nice)
        return daemon

    def _normal_priority(self) -> None:
        if self._boot_niced:
            for p in self._procs():
                procs.set_nice(p.pid, 0)

    def _launch_master(self) -> None:
        self._master = self._spawn("master", self.master_args(), self.master_port, self.master_ui_port)
        self._save()

    def _launch_worker(self, index: int, relaunches: int = 0) -> Daemon:
        port, ui_port = free_port(), free_port()
        old = self._workers.get(index)
        if old is not None and old.ui_port != ui_port:  # a worker replaced: its UI port is no longer ours
            self._release_ui([old.ui_port])
        proc = self._spawn(f"worker-{index}", self.worker_args(index, port, ui_port), port, ui_port)
        proc.relaunches = relaunches
        self._workers[index] = proc
        self._save()
        return proc

    def _relaunch_worker(self, index: int) -> None:
        old = self._workers[index]
        procs.terminate([(old.pid, old.started, old.popen)], self.conf_dir, self.stop_timeout)
        self._launch_worker(index, old.relaunches + 1)

    # -- readiness -----------------------------------------------------------------------------
    def _hold_early_workers(self, indices: list[int], held: set[int]) -> None:
        """Stop workers that are up before the master leads, so that they register after it does."""
        for i in indices:
            w = self._workers[i]
            if i not in held and not w.exited() and w.rpc_bound():
                owned.send_signal(w.pid, w.started, signal.SIGSTOP)
                held.add(i)

    def _release(self, held: set[int]) -> None:
        for i in held:
            if i in self._workers:
                owned.send_signal(self._workers[i].pid, self._workers[i].started, signal.SIGCONT)
        held.clear()

    def _fetch_json(self) -> dict | None:
        return fetch_master_json(self.ui_url)

    async def status(self) -> SparkStatus:
        """Workers alive, cores, memory and running applications, as the master reports them."""
        if not self.running:
            raise SparkError(f"The Spark cluster {self.name!r} is not running.")
        data = await asyncio.to_thread(self._fetch_json)
        if data is None:
            raise SparkError("The Spark master is not answering; try restarting the cluster.")
        return parse_master_json(data, self.ui_url, [p.port for p in self._workers.values()])

    @staticmethod
    def _failed(proc: Daemon, what: str) -> SparkStartError:
        return SparkStartError(what, log_path=proc.log_path, log_tail=proc.tail(lines=25))

    async def _wait_ready(self, indices: list[int], deadline: float, budget: float) -> SparkStatus:
        """Wait until the master leads and the workers `indices` are ALIVE; hold early workers, relaunch
        workers that missed the master."""
        held: set[int] = set()
        try:
            status = await self._poll_ready(indices, deadline, budget, held)
        finally:
            self._release(held)
        self._normal_priority()  # before any application's executors are started by the workers
        return status

    async def _poll_ready(self, indices: list[int], deadline: float, budget: float, held: set[int]) -> SparkStatus:
        leading_since = None
        tried_at: dict[int, float] = {}  # when a worker was first seen to have tried while the master led
        waiting = indices
        while True:
            if self._master.exited():
                raise self._failed(self._master, f"The Spark master exited during start "
                                                 f"(code {_exit_code(self._master)}).")
            for i in indices:
                w = self._workers[i]
                if w.exited():
                    if w.bind_failed() and w.relaunches < MAX_RELAUNCHES:
                        self._launch_worker(i, w.relaunches + 1)
                        continue
                    raise self._failed(w, f"Spark worker {i} exited during start (code {_exit_code(w)}).")
            data = await asyncio.to_thread(self._fetch_json)
            now = time.monotonic()
            if data is None or data.get("status") != "ALIVE":
                self._hold_early_workers(indices, held)
            else:
                self._release(held)
                leading_since = leading_since or now
                status = parse_master_json(data, self.ui_url, [p.port for p in self._workers.values()])
                alive_ports = {w.port for w in status.alive_workers}
                waiting = [i for i in indices if self._workers[i].port not in alive_ports]
                if not waiting:
                    return status
                for i in waiting:
                    w = self._workers[i]
                    if i not in tried_at and w.tried_to_register():
                        tried_at[i] = now
                    missed = missed_master(w, self._master) or (i in tried_at and now - tried_at[i] > RESCUE_AFTER)
                    if missed and w.relaunches < MAX_RELAUNCHES:
                        self.log.info("Spark worker %s of %s missed the master's start; restarting it", i, self.name)
                        await asyncio.to_thread(self._relaunch_worker, i)
                        tried_at.pop(i, None)
            if now > deadline:
                late = self._master if leading_since is None else self._workers[waiting[0]]
                raise self._failed(late, f"The Spark cluster was not ready within {budget:.0f}s.")
            await asyncio.sleep(self.poll_interval)

    # -- lifecycle -----------------------------------------------------------------------------
    def _launch_all(self) -> None:
        n = self.request.workers
        self.progress("starting Spark master")
        self._launch_master()
        for i in range(1, n + 1):
            self.progress(f"starting Spark worker {i}/{n}")
            self._launch_worker(i)

    async def start(self, timeout: float | None = None) -> "LocalSparkCluster":
        """Start master and workers; return once the master reports every worker ALIVE.

        On any failure (or cancellation) every process started so far is stopped before the error propagates.
        """
        if self.running:
            raise SparkError(f"The Spark cluster {self.name!r} is already running.")
        budget = timeout or self.start_timeout
        deadline = time.monotonic() + budget
        n = self.request.workers
        try:
            self._prepare()
            for attempt in range(MAX_RELAUNCHES):
                self._launch_all()
                try:
                    status = await self._wait_ready(list(range(1, n + 1)), deadline, budget)
                    break
                except SparkStartError:
                    if not (self._master.exited() and self._master.bind_failed()) or attempt == MAX_RELAUNCHES - 1:
                        raise
                    if self._ports_fixed:
                        raise SparkStartError(f"The Spark master's port {self.master_port} or "
                                              f"{self.master_ui_port} is taken by another process.") from None
                    await asyncio.to_thread(self._stop_processes)
                    self.master_port, self.master_ui_port = free_port(), free_port()
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self.stop_blocking))
            raise
        self._ports_fixed = True
        self._set_phase(READY)
        self.progress(f"Spark cluster ready: {status.workers_alive} workers, {status.cores} cores")
        return self

    async def launch(self) -> "LocalSparkCluster":
        """Start master and workers without waiting for them (they boot beside whatever the caller starts
        next); `wait_started()` waits. Their addresses are fixed from here on, since the caller hands them out:
        a master whose port another process took meanwhile fails instead of moving."""
        if self.running:
            raise SparkError(f"The Spark cluster {self.name!r} is already running.")
        try:
            await asyncio.to_thread(self._prepare)
            self._ports_fixed = True
            self._set_phase(STARTING)
            await asyncio.to_thread(self._launch_all)
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self.stop_blocking))
            raise
        return self

    async def wait_started(self, timeout: float | None = None) -> SparkStatus:
        """After `launch()`: wait until the master leads and every worker is ALIVE. On failure the processes
        are stopped, the phase file says why (the notebook's getOrCreate() reads it) and the error propagates;
        on cancellation (the server stopped) everything is stopped."""
        budget = timeout or self.start_timeout
        try:
            status = await self._wait_ready(list(range(1, self.request.workers + 1)), time.monotonic() + budget,
                                            budget)
        except SparkError as e:
            await asyncio.shield(asyncio.to_thread(self._teardown, False))
            self._set_phase(FAILED, str(e).splitlines()[0][:300])
            raise
        except BaseException:
            await asyncio.shield(asyncio.to_thread(self.stop_blocking))
            raise
        self._set_phase(READY)
        self.progress(f"Spark cluster ready: {status.workers_alive} workers, {status.cores} cores")
        return status

    # -- phase ---------------------------------------------------------------------------------
    @property
    def phase_path(self) -> str:
        return os.path.join(self.directory, PHASE_FILE)

    def _set_phase(self, phase: str, error: str = "") -> None:
        """Record the cluster's phase in the state file (the platform's status says 'starting' until 'ready')
        and in the phase file the notebook reads (readable by the owner's group only; no secret in it)."""
        self.phase, self.error = phase, error
        if self.running:
            self._save()
        write_phase(self.phase_path, phase, error, gid=self.run_as.gid if self.run_as is not None else None)

    async def scale(self, workers: int, *, limits: SparkLimits | None = None, usage: SparkUsage | None = None,
                    timeout: float | None = None) -> SparkStatus:
        """Add or remove workers. With `limits`, the new size is checked first (`usage`: what runs now,
        this cluster included; default: only this cluster). A scale-up that fails leaves the old size."""
        if not self.running:
            raise SparkError(f"The Spark cluster {self.name!r} is not running.")
        current = len(self._workers)
        usage = usage or SparkUsage(user_workers=current, total_workers=current)
        target = check_scale(limits, replace(self.request, workers=current), workers, usage)
        if workers > current:
            top = max(self._workers, default=0)
            new = list(range(top + 1, top + 1 + workers - current))
            budget = timeout or self.start_timeout
            try:
                for k, i in enumerate(new, 1):
                    self.progress(f"starting Spark worker {k}/{len(new)}")
                    self._launch_worker(i)
                status = await self._wait_ready(new, time.monotonic() + budget, budget)
            except BaseException:
                await asyncio.shield(asyncio.to_thread(self._stop_workers, new))
                raise
        else:
            await asyncio.to_thread(self._stop_workers, sorted(self._workers)[workers:])
            status = await self.status()
        self.request = replace(self.request, workers=target.workers)
        self._save()
        return status

    async def restart(self, timeout: float | None = None) -> "LocalSparkCluster":
        """Stop every process and start the cluster again on the same master URL, the same secret (the notebook
        keeps its configuration) and as the same user."""
        await asyncio.to_thread(self._teardown, False)
        self._ports_fixed = True
        return await self.start(timeout)

    def _stop_workers(self, indices: list[int]) -> None:
        gone = [self._workers.pop(i) for i in indices if i in self._workers]
        procs.terminate([(p.pid, p.started, p.popen) for p in gone], self.conf_dir, self.stop_timeout)
        self._release_ui([p.ui_port for p in gone])
        if self._master is not None:
            self._save()

    def _stop_processes(self) -> list[int]:
        targets = list(reversed(self._procs()))
        records = [(p.pid, p.started, p.popen) for p in targets]
        ui_ports = [p.ui_port for p in targets]
        if self._owns_directory:  # processes another handle (the platform service) started: SIGTERM them too
            known = {p.pid for p in targets}
            try:
                state = read_state(self.directory)
            except (OSError, ValueError, TypeError):
                state = None
            others = [p for p in reversed(state.processes if state else []) if p.pid not in known]
            records += [(p.pid, p.started, None) for p in others]
            ui_ports += [p.ui_port for p in others]
        self._master, self._workers = None, {}
        try:
            return procs.terminate(records, self.conf_dir, self.stop_timeout, sweep=self._owns_directory)
        finally:
            self._release_ui(ui_ports)

    def _teardown(self, forget: bool) -> list[int]:
        killed = self._stop_processes()
        if self._owns_directory:
            if forget:
                forget_cluster(self.directory)  # the state file, the secret and the notebook's copy
                self._release_ui(self._driver_ports)  # no notebook driver uses them now
                self._secret, self._driver_ports = None, []
            else:
                remove_state(self.directory)
            shutil.rmtree(self.work_dir, ignore_errors=True)
        return killed

    def stop_blocking(self) -> list[int]:
        """Stop every process of the cluster (SIGTERM, then SIGKILL after stop_timeout); idempotent.

        Returns the PIDs that needed SIGKILL. Logs stay; the work directories, the state file, the secret and
        the notebook's Spark configuration go.
        """
        return self._teardown(True)

    async def stop(self) -> list[int]:
        return await asyncio.to_thread(self.stop_blocking)

    def release(self) -> None:
        """Drop this handle without stopping anything (its children that another process stopped are reaped)."""
        for p in self._procs():
            if p.popen is not None:
                p.popen.poll()
        self._master, self._workers = None, {}
