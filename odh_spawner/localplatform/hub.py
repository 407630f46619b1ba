"""Run JupyterHub (with its proxy and managed services) as a child process, and stop it leaving nothing behind."""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.error
import urllib.request
from typing import Callable

from odh_spawner.deploy.local import stop_recorded
from odh_spawner.ingest.local import stop_recorded as stop_ingestions
from odh_spawner.localplatform.hubconfig import platform_id
from odh_spawner.host.portguard import PortGuard
from odh_spawner.host.ports import free_port
from odh_spawner.localplatform.settings import PlatformSettings
from odh_spawner.host.procs import pids_with_env, terminate_pids

CONFIG_FILE = os.path.join(os.path.dirname(__file__), "jupyterhub_config.py")


class HubError(RuntimeError):
    pass


def find_proxy() -> list[str]:
    """configurable-http-proxy (Node): $ODH_PROXY_COMMAND, else the one on PATH."""
    cmd = os.environ.get("ODH_PROXY_COMMAND") or shutil.which("configurable-http-proxy")
    if not cmd or not os.access(cmd, os.X_OK):
        raise HubError("`configurable-http-proxy` not found: run `make install` or set ODH_PROXY_COMMAND.")
    return [os.path.abspath(cmd)]


def runtime_settings(settings: PlatformSettings, state_dir: str, ceph=None, kafka=None) -> dict:
    """Runtime settings (plain data) for the hub config; `ceph` is a started CephCluster or None; `kafka` a
    started KafkaBroker or None (then settings.kafka_bootstrap, an external broker, if any)."""
    port = settings.hub_port or free_port()
    return {
        "bind_url": f"http://{settings.hub_ip}:{port}",
        "hub_bind_url": f"http://127.0.0.1:{free_port()}",
        "proxy_api_url": f"http://127.0.0.1:{free_port()}",
        "proxy_auth_token": secrets.token_hex(32),
        "platform_url": f"http://127.0.0.1:{free_port()}",
        "deployments": {"max_model_size": settings.deploy_max_model_size,
                        "max_per_user": settings.deploy_max_per_user},
        "proxy_command": find_proxy(),
        "state_dir": os.path.abspath(state_dir),
        "profiles_file": settings.profiles_file,
        "users_file": settings.users_file,
        "start_timeout": settings.start_timeout,
        "concurrent_spawn_limit": settings.concurrent_spawn_limit,
        "s3_endpoint": ceph.endpoint if ceph is not None else "",
        "rgw_admin_keys_file": ceph.admin_keys_file if ceph is not None else "",
        "object_store_data_dir": ceph.dir if ceph is not None else "",
        "user_quota": {"max_size": settings.quota_max_size, "max_objects": settings.quota_max_objects},
        "kafka_bootstrap": kafka.bootstrap if kafka is not None else settings.kafka_bootstrap,
        "max_ingestions_per_user": settings.max_ingestions_per_user,
        "drop_privileges": settings.drop_privileges,
        "quotas": settings.quotas,
        # the local Prometheus's hub API token (service odh-prometheus, scope read:metrics): only here (the
        # hub's settings file, 0600) and in Prometheus's scrape-token file (0600); never logged
        "prometheus_token": secrets.token_hex(32) if settings.prometheus_enabled else "",
        "idle_culler": {
            "enabled": settings.culler_enabled,
            "timeout_seconds": settings.culler_timeout,
            "every_seconds": settings.culler_every,
        },
    }


class HubProcess:
    def __init__(self, runtime: dict, log_path: str | None = None, report: Callable[[str], None] | None = None):
        self.runtime = runtime
        self.state_dir = runtime["state_dir"]
        self.log_path = log_path or os.path.join(self.state_dir, "jupyterhub.log")
        self.report = report or (lambda msg: None)
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return self.runtime["bind_url"]

    def start(self, timeout: float = 60, extra_env: dict | None = None) -> "HubProcess":
        os.makedirs(self.state_dir, exist_ok=True)
        settings_path = os.path.join(self.state_dir, "hub-settings.json")
        fd = os.open(settings_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump(self.runtime, f, indent=1)
        env = dict(os.environ, ODH_HUB_SETTINGS=settings_path, **(extra_env or {}))
        # the hub's own venv first on PATH, so services and servers find their scripts
        env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
        # the hub's database and log hold what users must not read: private from the first byte
        # (sqlite takes an empty file as an empty database)
        db = os.path.join(self.state_dir, "jupyterhub.sqlite")
        os.close(os.open(db, os.O_WRONLY | os.O_CREAT, 0o600))
        log = os.fdopen(os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "ab")
        os.chmod(self.log_path, 0o600)  # an existing log (e.g. from an older version) too
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "jupyterhub", "-f", CONFIG_FILE],
            cwd=self.state_dir, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        log.close()
        self.report("JupyterHub: starting hub and proxy")
        deadline = time.monotonic() + timeout
        while not self._healthy():
            if self.proc.poll() is not None:
                raise HubError(f"JupyterHub exited with {self.proc.returncode}; see {self.log_path}.")
            if time.monotonic() > deadline:
                self.stop()
                raise HubError(f"JupyterHub did not answer within {timeout:.0f}s; see {self.log_path}.")
            time.sleep(0.2)
        self.report(f"JupyterHub ready at {self.url}")
        return self

    def _healthy(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/hub/health", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def server_pids(self) -> list[int]:
        """PIDs of single-user servers the hub recorded (to reap them if the hub died uncleanly)."""
        db = os.path.join(self.state_dir, "jupyterhub.sqlite")
        if not os.path.exists(db):
            return []
        pids = []
        try:
            with sqlite3.connect(db, timeout=5) as conn:
                for (state,) in conn.execute("select state from spawners"):
                    pid = (json.loads(state) if isinstance(state, str) else state or {}).get("pid")
                    if isinstance(pid, int) and pid > 0:
                        pids.append(pid)
        except (sqlite3.Error, ValueError, AttributeError):
            return []
        return pids

    def _hub_children(self, services_only: bool) -> list[int]:
        """Processes this hub started that may outlive it (found by the hub API URL in their environment):
        its managed services, and with services_only=False its users' servers too. Model servers get a
        minimal environment and are never among them."""
        api = self.runtime["hub_bind_url"].rstrip("/") + "/hub/api"
        return pids_with_env(lambda env: env.get("JUPYTERHUB_API_URL") == api and (
            not services_only or "JUPYTERHUB_SERVICE_NAME" in env))

    def _recorded_proxy(self) -> list[int]:
        """The proxy's PID from its pid file, if that process still is a configurable-http-proxy."""
        try:
            with open(os.path.join(self.state_dir, "proxy.pid")) as f:
                pid = int(f.read().strip())
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                args = f.read()
        except (OSError, ValueError):
            return []
        return [pid] if b"configurable-http-proxy" in args else []

    def recover(self) -> list[int]:
        """After the hub died on its own: stop its orphaned managed services, by PID, so a new hub can start
        them again on the same addresses (the new hub stops the old proxy itself, from its pid file). Users'
        servers keep running: the new hub finds them in its database and polls them."""
        orphans = self._hub_children(services_only=True)
        terminate_pids(orphans)
        return orphans

    def stop(self, timeout: float = 30) -> None:
        """SIGTERM the hub (it stops servers, services and the proxy), then reap anything left, by PID."""
        if self.proc is None:
            return
        pids = self.server_pids() + self._hub_children(services_only=False) + self._recorded_proxy()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.report("JupyterHub did not stop in time; killing it")
        _kill_group(self.proc.pid)
        for pid in pids + self.server_pids():
            _kill_group(pid)
        terminate_pids(self._hub_children(services_only=False) + self._recorded_proxy(), timeout=5)
        self.proc.wait(5)
        # model servers outlive the hub and the platform service by design; the local platform as a whole
        # stopping takes them down too (their records stay: the next start serves them again)
        stopped = stop_recorded(os.path.join(self.state_dir, "platform", "deployments"))
        # ingestion workers too (flushing and committing what they hold); the next start runs them again
        workers = stop_ingestions(os.path.join(self.state_dir, "platform", "ingestions"))
        if workers:
            self.report(f"Stopped {workers} ingestion worker(s)")
        PortGuard(platform_id(self.state_dir)).remove()  # the model servers' firewall table goes with them
        if stopped:
            self.report(f"Stopped {stopped} model server(s)")


def _kill_group(pid: int) -> None:
    """Kill a process group we started (start_new_session=True makes pid the group id)."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
