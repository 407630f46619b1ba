"""The local platform's Prometheus: Debian's /usr/bin/prometheus on a random loopback port, scraping the hub,
the platform service and (through it) users' model servers every 5 s and evaluating the chart's alert rules
(helm/odh-hub/files/prometheus/alerts.yaml).

`prometheus_config` builds its configuration from plain data (pure, unit-tested). `PrometheusProcess` writes it
with the scrape token (both 0600, under <state>/prometheus), starts Prometheus, waits until it is ready, keeps it
running (`supervise`, same port and data) and stops it by PID. The scrape token is a hub API token of the hub
service `odh-prometheus`, whose only scope is read:metrics (localplatform.hubconfig).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Callable
from urllib.parse import urlsplit

import yaml

import odh_spawner
from odh_spawner.host.ports import free_port
from odh_spawner.host.supervise import RestartBudget, SupervisedProcess, exit_text

RULES_FILE = str(Path(odh_spawner.__file__).parents[1] / "helm" / "odh-hub" / "files" / "prometheus" / "alerts.yaml")
INTERVAL_SECONDS = 5  # scrape and rule evaluation: an alert's `for` counts in these steps
HUB_SERVICE = "odh-prometheus"  # the hub service whose token Prometheus scrapes with (scope read:metrics)
PLATFORM_METRICS = "/services/odh-platform/metrics"
MODEL_METRICS = PLATFORM_METRICS + "/models"  # users' model servers' own metrics, through the platform service


class PrometheusError(RuntimeError):
    """The local Prometheus could not start or keeps exiting (the message says where its log is)."""


def scrape_target(url: str, path: str) -> dict:
    """A static scrape job's address parts for `path` below the base `url`: scheme, host:port, metrics path.
    A hub bound to every address (0.0.0.0, ::) is scraped on loopback. Pure."""
    u = urlsplit(url)
    host = u.hostname or "127.0.0.1"
    if host in ("0.0.0.0", "::"):
        host = "127.0.0.1"
    if ":" in host:
        host = f"[{host}]"
    port = u.port or (443 if u.scheme == "https" else 80)
    return {"scheme": u.scheme or "http", "target": f"{host}:{port}", "path": u.path.rstrip("/") + path}


def prometheus_config(hub_url: str, platform_url: str, token_file: str, rules_files: list[str],
                      interval: int = INTERVAL_SECONDS) -> dict:
    """Prometheus's configuration (as a dict, written as YAML): job `odh-hub` scrapes the hub's /hub/metrics
    through its public URL, job `odh-platform` the platform service's metrics on its loopback URL and job
    `odh-models` the users' model servers' own metrics through the platform service, all with the bearer token
    in `token_file`; the rules in `rules_files` are evaluated as often as targets are scraped. Pure."""
    jobs = []
    for job, base, path in (("odh-hub", hub_url, "/hub/metrics"), ("odh-platform", platform_url, PLATFORM_METRICS),
                            ("odh-models", platform_url, MODEL_METRICS)):
        if not base:
            continue
        t = scrape_target(base, path)
        jobs.append({
            "job_name": job,
            "scheme": t["scheme"],
            "metrics_path": t["path"],
            "authorization": {"credentials_file": token_file},
            "static_configs": [{"targets": [t["target"]]}],
        })
    return {
        "global": {
            "scrape_interval": f"{interval}s",
            "scrape_timeout": f"{max(1, interval - 1)}s",
            "evaluation_interval": f"{interval}s",
        },
        "rule_files": list(rules_files),
        "scrape_configs": jobs,
    }


def prometheus_command() -> str:
    return shutil.which("prometheus") or "/usr/bin/prometheus"


def _write_private(path: str, text: str) -> None:
    """Write `text` to `path`, mode 0600 from the first byte (an existing file too)."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        os.fchmod(f.fileno(), 0o600)
        f.write(text)


class PrometheusProcess(SupervisedProcess):
    """One Prometheus with its configuration, scrape token and time series under `data_dir` (kept across
    restarts)."""

    error = PrometheusError
    keeps_exiting = "Prometheus"
    restarted_name = "Prometheus"
    restart_timeout = 30.0
    stop_timeout = 10.0

    def __init__(self, data_dir: str, *, hub_url: str, platform_url: str, token: str, rules_files: list[str],
                 port: int = 0, retention: str = "7d", report: Callable[[str], None] | None = None,
                 command: str | None = None):
        self.data_dir = os.path.abspath(data_dir)
        self.hub_url = hub_url
        self.platform_url = platform_url
        self.token = token
        self.rules_files = [os.path.abspath(r) for r in rules_files]
        self.port = port or 0
        self.retention = retention
        self.report = report or (lambda msg: None)
        self.command = command or prometheus_command()
        self.proc: subprocess.Popen | None = None
        self.budget = RestartBudget()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def address(self) -> str:
        return self.url

    @property
    def log_path(self) -> str:
        return os.path.join(self.data_dir, "prometheus.log")

    @property
    def token_file(self) -> str:
        return os.path.join(self.data_dir, "scrape-token")

    @property
    def config_file(self) -> str:
        return os.path.join(self.data_dir, "prometheus.yml")

    def config(self) -> dict:
        return prometheus_config(self.hub_url, self.platform_url, self.token_file, self.rules_files)

    def log_tail(self, lines: int = 5) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                return "\n".join(f.read()[-20000:].splitlines()[-lines:])
        except OSError:
            return ""

    def _spawn(self) -> subprocess.Popen:
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            return subprocess.Popen(
                [self.command, f"--config.file={self.config_file}",
                 f"--storage.tsdb.path={os.path.join(self.data_dir, 'data')}",
                 f"--storage.tsdb.retention.time={self.retention}",
                 f"--web.listen-address=127.0.0.1:{self.port}"],
                cwd=self.data_dir, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        finally:
            os.close(log)

    def start(self, timeout: float = 30) -> "PrometheusProcess":
        if not os.access(self.command, os.X_OK):
            raise PrometheusError(f"`prometheus` is not installed ({self.command}); run `make install`.")
        for rules in self.rules_files:
            if not os.path.isfile(rules):
                raise PrometheusError(f"The alert rules file {rules} does not exist.")
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        _write_private(self.token_file, self.token)
        _write_private(self.config_file, yaml.safe_dump(self.config(), sort_keys=False))
        if not self.port:
            self.port = free_port()
        t0 = time.monotonic()
        self.proc = self._spawn()
        self._wait(timeout)
        self.report(f"Prometheus ready at {self.url} in {time.monotonic() - t0:.1f}s")
        return self

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.url + "/-/ready", timeout=1) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if self.proc.poll() is not None:
                raise PrometheusError(f"Prometheus exited with {exit_text(self.proc.returncode)}: "
                                      f"{self.log_tail()}; see {self.log_path}.")
            if time.monotonic() > deadline:
                self.stop()
                raise PrometheusError(f"Prometheus was not ready within {timeout:.0f}s; see {self.log_path}.")
            time.sleep(0.1)
