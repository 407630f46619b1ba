"""Benchmark plumbing for deployments: a real Ceph RGW, a real hub (proxy, platform service) and alice's
server, plus a bare MLServer of the same model for the baselines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import requests

from odh_spawner.localplatform.ceph import CephCluster
from odh_spawner.localplatform.hub import HubProcess, runtime_settings
from odh_spawner.host.ports import free_port
from odh_spawner.localplatform.settings import load_settings
from tests.support.hubclient import HubUserSession
from tests.support.profiles import demo_config_in_hub_environment

from bench._common import ROOT
from bench._servers import terminate

os.environ.setdefault("ODH_PROXY_COMMAND", os.path.join(ROOT, ".tools/chp/node_modules/.bin/configurable-http-proxy"))
MLSERVER = os.path.join(os.path.dirname(sys.executable), "mlserver")


def train(path: str) -> list:
    """A small scikit-learn model saved with joblib; returns one input row."""
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    X = rng.random((500, 8))
    joblib.dump(LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int)), path)
    return [X[0].tolist()]


def v2_body(rows: list) -> dict:
    return {"inputs": [{"name": "x", "shape": [len(rows), len(rows[0])], "datatype": "FP64",
                        "data": [x for r in rows for x in r]}]}


class Platform:
    """Ceph + hub + alice's running server (minimal profile)."""

    def __enter__(self):
        self.tmp = tempfile.TemporaryDirectory()
        d = self.tmp.name
        self.ceph = CephCluster(os.path.join(d, "ceph")).start()
        config = demo_config_in_hub_environment(os.path.join(d, "demo-config"))  # the hub's Python, as before locks
        runtime = runtime_settings(load_settings(config), os.path.join(d, "hub"), self.ceph)
        runtime["idle_culler"] = {"enabled": False}
        self.hub = HubProcess(runtime, log_path=os.path.join(d, "hub.log")).start()
        self.alice = HubUserSession(self.hub.url, "alice", "alice-odh")
        r = self.alice.api("POST", "/users/alice/server", json={"profile": "minimal"})
        assert r.status_code in (201, 202), r.text
        self.alice.wait_ready()
        self.home = os.path.join(runtime["state_dir"], "home", "alice")
        self.api = f"{self.hub.url}/user/alice/odh/api/deployments"
        self.headers = {"Authorization": f"token {self.alice.token}"}
        return self

    def deploy(self, name: str, path: str, timeout: float = 120) -> dict:
        """The click: POST a file of the server for deployment, poll until ready."""
        r = requests.post(self.api, headers=self.headers, json={"name": name, "path": path}, timeout=60)
        assert r.status_code == 202, r.text
        deadline = time.monotonic() + timeout
        while True:
            info = requests.get(f"{self.api}/{name}", headers=self.headers, timeout=30).json()
            if info["stage"] == "ready":
                return info
            assert info["stage"] != "failed", info
            assert time.monotonic() < deadline, info
            time.sleep(0.05)

    def delete(self, name: str) -> None:
        requests.delete(f"{self.api}/{name}", headers=self.headers, timeout=60).raise_for_status()

    def __exit__(self, *exc):
        try:
            self.alice.stop()
        finally:
            self.hub.stop()
            self.ceph.stop()
            self.tmp.cleanup()


class BareMLServer:
    """`mlserver start` of a model file, the way one would by hand (same settings as the platform's)."""

    def __init__(self, model_file: str, workdir: str, name: str = "bare"):
        self.dir = os.path.join(workdir, name)
        os.makedirs(self.dir, exist_ok=True)
        os.link(model_file, os.path.join(self.dir, "model.joblib")) if not os.path.exists(
            os.path.join(self.dir, "model.joblib")) else None
        self.name = name
        self.port = free_port()
        with open(os.path.join(self.dir, "model-settings.json"), "w") as f:
            json.dump({"name": name, "implementation": "mlserver_sklearn.SKLearnModel",
                       "parameters": {"uri": "./model.joblib"}}, f)
        with open(os.path.join(self.dir, "settings.json"), "w") as f:
            json.dump({"host": "127.0.0.1", "http_port": self.port, "grpc_port": free_port(),
                       "metrics_port": free_port(), "parallel_workers": 0}, f)
        self.url = f"http://127.0.0.1:{self.port}/v2/models/{name}"

    def start_until_ready(self, timeout: float = 120) -> float:
        t0 = time.perf_counter()
        self.log = open(os.path.join(self.dir, "mlserver.log"), "ab")
        self.proc = subprocess.Popen([MLSERVER, "start", self.dir], cwd=self.dir, stdout=self.log,
                                     stderr=subprocess.STDOUT, start_new_session=True)
        while True:
            try:
                if requests.get(self.url + "/ready", timeout=2).status_code == 200:
                    return time.perf_counter() - t0
            except requests.RequestException:
                pass
            if self.proc.poll() is not None or time.perf_counter() - t0 > timeout:
                raise RuntimeError(f"bare mlserver did not start; see {self.dir}/mlserver.log")
            time.sleep(0.05)

    def stop(self) -> None:
        terminate(self.proc)
        self.log.close()
