"""Local serving backend: one MLServer process per deployment version, on free ports of 127.0.0.1,
reachable through the hub's proxy and the platform's model gateway under a stable path (deploy.routing).

A process is started detached (its own session) so it keeps serving when the platform service restarts; it
is identified afterwards by PID, start time and its model directory on the command line, so a recycled PID
is never mistaken for it (host.owned). The process gets a minimal environment: none of the service's tokens.

Its log is not in the version directory (its owner's, 0700, after the first start) but beside it in the
deployment's `logs/`, root's alone: the process inherits it as stdout and stderr, and root never reads a file
its owner could have replaced with a link to a secret or a FIFO (host.safefiles).
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import stat
import shutil
import sys
import time

from tornado.httpclient import AsyncHTTPClient, HTTPRequest
from traitlets import Bool, Float, List, Unicode, default
from traitlets.config import LoggingConfigurable

from odh_spawner.host import owned
from odh_spawner.host.owned import OwnedProcess, StartFailed, Supervisor, clean_env
from odh_spawner.host.privsep import PrivsepError
from odh_spawner.host.portguard import PortGuard, PortGuardError
from odh_spawner.host.ports import free_port
from odh_spawner.host.safefiles import private_dir
from odh_spawner.host.users import SystemUser, adopt_home, can_switch_users, ensure_traversable, lookup
from odh_spawner.naming import user_slug
from odh_spawner.host import procs
from odh_spawner.deploy import artifacts
from odh_spawner.deploy.model import BackendFailed, Deployment, Version, parse_model_uri

IMPLEMENTATIONS = {"sklearn": "mlserver_sklearn.SKLearnModel", "mlflow": "mlserver_mlflow.MLflowRuntime"}
MODEL_URIS = {"sklearn": ("model.joblib", "model.pkl", "model.pickle"), "mlflow": (".",)}
LOG = "mlserver.log"  # in the version directory before logs moved to LOG_DIR (records of then still name it)
LOG_DIR = "logs"


def model_settings(model_name: str, version: Version, model_dir: str) -> dict:
    """MLServer's model-settings.json for a downloaded model. Pure."""
    uri = next((f for f in MODEL_URIS[version.framework] if os.path.exists(os.path.join(model_dir, f))),
               MODEL_URIS[version.framework][0])
    return {"name": model_name, "implementation": IMPLEMENTATIONS[version.framework],
            "parameters": {"uri": f"./{uri}", "version": f"v{version.version}"}}


def server_settings(http_port: int, grpc_port: int, metrics_port: int) -> dict:
    """MLServer's settings.json: loopback only, one process (parallel workers crash under uvloop 0.23)."""
    return {"host": "127.0.0.1", "http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port,
            "parallel_workers": 0, "load_models_at_startup": True, "debug": False}


def failure_tail(log: str, lines: int = 20) -> list[str]:
    """The last `lines` lines of a model server's log that explain a failure: up to the end of its first Python
    traceback (the exception line) when there is one. That is the error that brought the server down: what
    follows repeats it (uvicorn logs the same error again, wrapped, when the app's start-up fails: exit code 3)
    or is the shutdown. The log is the current run's (read from its offset)."""
    text = log.splitlines()
    starts = [i for i, line in enumerate(text) if line.startswith("Traceback (most recent call last)")]
    if not starts:
        return text[-lines:]
    end = starts[0] + 1
    while end < len(text) and (not text[end].strip() or text[end][0] in " \t"):
        end += 1  # the traceback's frames; the first line back at the margin is the exception
    return text[: end + 1][-lines:]


class LocalMLServerBackend(LoggingConfigurable):
    name = "local"

    mlserver_command = List(
        Unicode(),
        config=True,
        help="""Command that runs MLServer; `start <model dir>` is appended. Defaults to the `mlserver` script
        beside this Python.""",
    )

    @default("mlserver_command")
    def _default_command(self):
        return [os.path.join(os.path.dirname(sys.executable), "mlserver")]

    ready_timeout = Float(120, config=True, help="Seconds a model may take to load before the deployment fails.")
    stop_timeout = Float(10, config=True, help="Seconds MLServer gets to stop on SIGTERM before SIGKILL.")
    run_as_owner = Bool(
        config=True,
        help="""Run each model server as its owner's system user (odh_spawner.naming.system_user, made by the
        local spawner on their first spawn). A model file is code (a pickle runs when it loads), so a model
        server must never run with more rights than its owner. Defaults to True when the platform runs as
        root; without root every model server runs as the platform's user (single-user mode).""",
    )

    @default("run_as_owner")
    def _default_run_as_owner(self):
        return can_switch_users()

    port_guard_id = Unicode(
        "",
        config=True,
        help="""Id of the nftables table (odh_<id>) guarding model servers' loopback ports, so that only the
        platform's root processes (the gateway) connect to them: MLServer has no authentication of its own.
        Empty: no guard (then any local user may reach a model server's port directly; the log says so).""",
    )

    def __init__(self, **kw):
        super().__init__(**kw)
        self._sup = Supervisor()
        self._guard = PortGuard(self.port_guard_id) if self.port_guard_id else None
        if self._guard is not None and not self._guard.available():
            self.log.warning("Model servers' ports are not guarded (needs root and nft): local users can reach "
                             "them directly, bypassing the gateway's authentication.")
            self._guard = None

    # -- identity ------------------------------------------------------------------------------
    def owner_identity(self, owner: str) -> SystemUser | None:
        """The owner's system user, None when model servers run as the platform's user."""
        if not self.run_as_owner:
            return None
        user = lookup(owner)
        if user is None:
            raise BackendFailed(f"{owner!r} has no system user on this machine yet: start a notebook server "
                                "once, then deploy again.")
        return user

    @staticmethod
    def _hand_over(model_dir: str, user: SystemUser) -> None:
        """Let the owner's model server read the version directory, and pass through its parents (o+x: records
        in them stay 0600). Through the privileged helper (the service dropped root): the directory stays the
        service's and the owner's group may read it (share_dir; nothing of the owner's is ever walked). As root:
        handed to the owner once, at its first start (never walked again on a restart)."""
        ensure_traversable(os.path.dirname(model_dir))
        helper = owned.helper()
        if helper is not None:
            try:
                helper.call("share_dir", path=model_dir, user=user.name)
            except PrivsepError as e:
                raise BackendFailed(f"The model directory could not be shared with its owner: {e}") from None
            return
        if os.lstat(model_dir).st_uid != user.uid:
            adopt_home(model_dir, user)
            user.chown(model_dir, 0o700)

    def _guard_ports(self, ports: dict) -> None:
        helper = owned.helper()
        try:
            if helper is not None:
                helper.call("guard", ports=sorted(ports.values()))
            elif self._guard is not None:
                self._guard.guard(ports.values())
        except (PortGuardError, PrivsepError) as e:
            self.log.error("Could not guard model server ports %s: %s", sorted(ports.values()), e)

    def _release_ports(self, rt: dict) -> None:
        ports = sorted(rt.get(k) for k in ("port", "grpc_port", "metrics_port") if rt.get(k))
        helper = owned.helper()
        if helper is not None:
            try:
                helper.call("release", ports=ports)
            except PrivsepError as e:
                self.log.warning("Could not release model server ports %s: %s", ports, e)
        elif self._guard is not None:
            self._guard.release(ports)

    # -- naming ------------------------------------------------------------------------------
    @staticmethod
    def model_name_for(owner: str, name: str) -> str:
        """Unique per (owner, name): an owner slug has no '.', and neither has a deployment name."""
        return f"{user_slug(owner)}.{name}"

    # -- processes ---------------------------------------------------------------------------
    @staticmethod
    def log_path(model_dir: str) -> str:
        """A version's log: beside its directory, in the deployment's `logs/` (root's alone, 0700), never in the
        version directory its owner controls (root reads it; a link planted there must lead nowhere)."""
        return os.path.join(os.path.dirname(model_dir), LOG_DIR, f"{os.path.basename(model_dir)}.log")

    def _owned(self, rt: dict) -> OwnedProcess:
        """The process a runtime record names. A record from before logs moved names none: its log is read
        from the version directory, safely (host.safefiles), or not at all."""
        log = rt.get("log") or os.path.join(rt["dir"], LOG)
        return self._sup.find(rt["pid"], rt.get("started"), marker=rt.get("cmd_dir", rt["dir"]), log=log,
                              log_offset=rt.get("log_offset", 0))

    def start_process(self, d: Deployment, v: Version, model_dir: str, ports: dict | None = None) -> dict:
        """Write MLServer's settings into `model_dir` and start it; returns the runtime record."""
        ports = ports if ports and not any(procs.listening(p) for p in ports.values()) else {
            "port": free_port(), "grpc_port": free_port(), "metrics_port": free_port()}
        identity = self.owner_identity(d.owner)
        # written by root into a directory its owner may control after a first start: never follow a link
        _write_new(os.path.join(model_dir, "model-settings.json"), model_settings(d.model_name, v, model_dir))
        _write_new(os.path.join(model_dir, "settings.json"),
                   server_settings(ports["port"], ports["grpc_port"], ports["metrics_port"]))
        log_path = self.log_path(model_dir)
        private_dir(os.path.dirname(log_path), 0o700)
        if identity is not None:
            self._hand_over(model_dir, identity)
        self._guard_ports(ports)  # before it listens: nobody but the gateway ever reaches it
        try:
            proc = self._sup.start([*self.mlserver_command, "start", model_dir], log_path=log_path, cwd=model_dir,
                                   env=clean_env({"PYTHONUNBUFFERED": "1", "HOME": self._home(model_dir, identity),
                                                  # no telemetry from users' model servers (MLflow's would also
                                                  # write below HOME and try the network)
                                                  "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "true"}),
                                   run_as=identity,
                                   marker=model_dir)
        except StartFailed as e:
            raise BackendFailed(f"The model server {e}.") from None
        self.log.info("Started MLServer for %s/%s v%d: pid %d, port %d", d.owner, d.name, v.version, proc.pid,
                      ports["port"])
        return {**ports, **proc.record(), "dir": model_dir, "version": v.version}

    @staticmethod
    def _home(model_dir: str, identity: SystemUser | None) -> str:
        """The model server's HOME: its owner's home when the version directory stays the service's (read-only
        to the owner: the privileged helper shares it) and that home is a directory of theirs, else the version
        directory. (An account's recorded home can be stale, e.g. made by an earlier platform in another state
        directory: a process creating it would make its missing parents as the owner, anywhere.)"""
        if identity is None or owned.helper() is None:
            return model_dir
        try:
            st = os.lstat(identity.home)
        except OSError:
            return model_dir
        return identity.home if stat.S_ISDIR(st.st_mode) and st.st_uid == identity.uid else model_dir

    def alive(self, rt: dict | None) -> bool:
        return bool(rt and rt.get("pid")) and self._owned(rt).alive()

    def exit_status(self, rt: dict) -> str:
        return self._owned(rt).exit_status() if rt.get("pid") else "it stopped"

    def log_tail(self, rt: dict | None, lines: int = 20) -> list[str]:
        if not rt or not rt.get("dir"):
            return []
        return failure_tail(self._owned(rt).tail(lines=1000), lines) if rt.get("pid") else []

    async def wait_ready(self, d: Deployment, rt: dict) -> None:
        """Until MLServer says the model is ready; BackendFailed (with its log) if it exits or times out."""
        url = f"http://127.0.0.1:{rt['port']}/v2/models/{d.model_name}/ready"
        deadline = time.monotonic() + self.ready_timeout
        http = AsyncHTTPClient()
        while True:
            if not self.alive(rt):
                raise BackendFailed(f"The model server could not load the model ({self.exit_status(rt)}).",
                                    log_tail=self.log_tail(rt))
            try:
                r = await http.fetch(HTTPRequest(url, request_timeout=2), raise_error=False)
                if r.code == 200:
                    return
            except OSError:
                pass
            if time.monotonic() > deadline:
                tail = self.log_tail(rt)
                await self.stop_process(rt)
                raise BackendFailed(f"The model did not become ready within {self.ready_timeout:.0f} s.",
                                    log_tail=tail)
            await asyncio.sleep(0.1)

    async def stop_process(self, rt: dict | None) -> None:
        if not rt or not rt.get("pid"):
            return
        await asyncio.to_thread(self._stop_sync, rt)

    def _stop_sync(self, rt: dict) -> None:
        try:
            self._sup.stop(self._owned(rt), self.stop_timeout)  # MLServer leads its session: SIGKILL its group
        finally:
            self._release_ports(rt)

    # -- the backend interface the DeploymentManager uses --------------------------------------
    def supports(self, framework: str) -> bool:
        module = IMPLEMENTATIONS[framework].split(".")[0]
        return importlib.util.find_spec(module) is not None

    async def bring_up(self, d: Deployment, v: Version, creds, objects: list[dict], version_dir: str,
                       report) -> None:
        """Serve version `v`: fetch the model, start MLServer, wait until the model is ready, switch the
        gateway's upstream to it, then stop the process of the version served before. BackendFailed leaves nothing running."""
        bucket, prefix = parse_model_uri(v.model_uri)
        self.remove_files(version_dir)
        os.makedirs(version_dir, mode=0o700)
        rt = None
        try:
            await asyncio.to_thread(artifacts.download, creds, bucket, prefix, objects, version_dir)
            report("starting")
            rt = d.runtime["pending"] = self.start_process(d, v, version_dir)
            await self.wait_ready(d, rt)
        except BaseException:
            await self.stop_process(rt)
            d.runtime.pop("pending", None)
            self.remove_files(version_dir)
            raise
        old = d.runtime.get("serving")
        d.runtime["serving"] = d.runtime.pop("pending")  # the gateway forwards to it from now on
        self._serve_at(d, rt)
        if old and old.get("pid") != rt["pid"]:
            await self.stop_process(old)
            if old.get("dir") != version_dir:
                self.remove_files(old["dir"])

    async def check(self, d: Deployment) -> str | None:
        """None while the served process lives; else what happened (and the log tail into the record)."""
        rt = d.runtime.get("serving")
        if self.alive(rt):
            return None
        d.log_tail = self.log_tail(rt)
        return f"The model server stopped unexpectedly ({self.exit_status(rt or {})})."

    async def recover(self, d: Deployment, v: Version) -> None:
        """Start the served version again from its local files, on its old ports when they are free."""
        old = d.runtime.get("serving") or {}
        rt = self.start_process(d, v, old["dir"], {k: old[k] for k in ("port", "grpc_port", "metrics_port")})
        try:
            await self.wait_ready(d, rt)
        except BaseException:
            await self.stop_process(rt)
            raise
        d.runtime["serving"] = rt
        self._serve_at(d, rt)

    async def adopt(self, d: Deployment) -> bool:
        """After a restart of the service: keep a live process (the manager re-adds its route), stop a half-started one."""
        pending = d.runtime.pop("pending", None)
        if pending and self.alive(pending):
            await self.stop_process(pending)
        rt = d.runtime.get("serving")
        if not self.alive(rt):
            return False
        self._serve_at(d, rt)
        return True

    async def teardown(self, d: Deployment) -> None:
        d.upstream = None
        for key in ("pending", "serving"):
            await self.stop_process(d.runtime.pop(key, None))

    # -- where the model answers ------------------------------------------------------------------
    @staticmethod
    def _serve_at(d: Deployment, rt: dict) -> None:
        """The served process's address: the model gateway's upstream, and the URL until the manager routes
        the deployment through the gateway (without ModelRoutes: tests and tools only)."""
        d.upstream = d.url = f"http://127.0.0.1:{rt['port']}"

    @classmethod
    def remove_files(cls, path: str) -> None:
        """A version's directory and its log."""
        shutil.rmtree(path, ignore_errors=True)
        try:
            os.unlink(cls.log_path(path))
        except OSError:
            pass


def _write_new(path: str, data: dict) -> None:
    """Replace `path` with JSON `data`, never following a link planted there."""
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    with os.fdopen(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600), "w") as f:
        json.dump(data, f)


def stop_recorded(store_root: str, timeout: float = 10) -> int:
    """Stop every model server a deployment record names (verified by PID, start time and model dir).
    Used when the whole local platform stops; returns how many were running."""
    from odh_spawner.deploy.store import DeploymentStore

    if not os.path.isdir(store_root):
        return 0
    backend, count = LocalMLServerBackend(stop_timeout=timeout), 0
    for d in DeploymentStore(store_root).load_all():
        for key in ("pending", "serving"):
            rt = d.runtime.get(key)
            if backend.alive(rt):
                backend._stop_sync(rt)
                count += 1
    return count
