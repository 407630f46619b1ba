"""Users' model servers' own metrics through the platform service (<platform>/metrics/models), against the real
local platform (hub, proxy, platform service, Ceph RGW) and real MLServer deployments made from a user's kernel.

What a model server says is its owner's to choose (a model file is code): alice's model registers, when it
loads, metrics that claim to be bob's and the platform's; and once her model server is killed, bob listens on
its metrics port with an exposition of his own. Neither reaches the endpoint as anyone but alice, and bob's
listener is never even connected to (it prints every connection it gets)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from odh_spawner.host import users as localusers
from tests.support.fixtures import ARTIFACTS, pid_alive
from tests.support.kernel import Kernel
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

TRAIN = """
import numpy as np
from sklearn.linear_model import LogisticRegression
rng = np.random.default_rng(0)
X = rng.random((200, 4)); y = (X[:, 0] > 0.5).astype(int)
v1 = LogisticRegression().fit(X, y)
probe = [[0.9, 0.1, 0.1, 0.1]]
from server_extension.deploy import deploy, DeployClient
"""

# alice's model: a pickle that, when MLServer loads it, registers a collector with prometheus_client's registry
# (the one MLServer serves on its metrics port) saying what a hostile model would, then returns a real estimator
SPOOFING = r'''
SPOOF = """
from prometheus_client import REGISTRY
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
class Spoof:
    def describe(self):
        return []
    def collect(self):
        c = CounterMetricFamily("model_infer_request_success", "spoof", labels=["model", "version", "owner", "deployment"])
        c.add_metric(["bob.fraud", "v1", "bob", "fraud"], 4242.0)
        yield c
        for name in ("odh_deployment_up", "odh_model_server_scrape_up"):
            g = GaugeMetricFamily(name, "spoof", labels=["owner", "deployment"])
            g.add_metric(["bob", "fraud"], 1.0)
            yield g
REGISTRY.register(Spoof())
"""
class Spoofing:
    def predict(self, X):
        return v1.predict(X)
    def get_params(self, deep=True):
        return {}
    def __reduce__(self):
        return (eval, ("[exec(S, {}), __import__('sklearn.dummy', fromlist=['DummyClassifier']).DummyClassifier("
                       "strategy='constant', constant=1).fit([[0, 0, 0, 0], [1, 1, 1, 1]], [0, 1])][1]", {"S": SPOOF}))
s = deploy(Spoofing(), name="spoofer", sample=probe)
print("SPOOFER", s.predict(probe))
'''

# bob's listener on a port alice's model server held: an exposition claiming alice's deployment
LISTENER = r'''
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def log_message(self, *a):
        pass
    def do_GET(self):
        print("REQUEST", self.path, flush=True)
        body = (b'# TYPE model_infer_request_success_total counter\n'
                b'model_infer_request_success_total{model="alice.watched",version="v1"} 777\n')
        self.send_response(200)
        self.send_header("Content-Type", "text/plain; version=0.0.4")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
class S(http.server.HTTPServer):
    allow_reuse_address = True
    def get_request(self):
        conn, addr = super().get_request()
        print("CONNECTION", flush=True)
        return conn, addr
srv = S(("127.0.0.1", int(sys.argv[1])), H)
print("LISTENING", flush=True)
srv.serve_forever()
'''

BODY = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0.9, 0.1, 0.1, 0.1]}]}


def models_url(hub) -> str:
    return hub.runtime["platform_url"] + "/services/odh-platform/metrics/models"


def scrape(hub, token: str) -> tuple[str, dict]:
    r = requests.get(models_url(hub), headers={"Authorization": f"token {token}"}, timeout=30)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    got = {(s.name, frozenset(s.labels.items())): s.value
           for fam in text_string_to_metric_families(r.text) for s in fam.samples}
    return r.text, got


def scrape_when_up(hub, token: str, deployment: str, timeout: float = 30) -> tuple[str, dict]:
    """A scrape in which the deployment's model server was read (`odh_model_server_scrape_up` 1). A read that
    took longer than the platform's 2 s budget on a loaded machine reports 0 for that scrape only; Prometheus
    scrapes again 5 s later, and so does this."""
    def up():
        text, got = scrape(hub, token)
        return (text, got) if got.get(("odh_model_server_scrape_up", L(owner="alice", deployment=deployment))) == 1 \
            else None
    return wait_for(up, timeout, f"a scrape that read alice's {deployment} model server", interval=2)


def L(**labels):
    return frozenset(labels.items())


def matching(got: dict, name: str, **labels) -> list[float]:
    """The values of the samples named `name` whose labels include `labels`."""
    return [v for (n, ls), v in got.items() if n == name and labels.items() <= dict(ls).items()]


def record(hub, owner: str, name: str) -> dict:
    path = os.path.join(hub.runtime["state_dir"], "platform", "deployments")
    for dirpath, _, files in os.walk(path):
        if "deployment.json" in files:
            with open(os.path.join(dirpath, "deployment.json")) as f:
                d = json.load(f)
            if (d["owner"], d["name"]) == (owner, name):
                return d
    raise AssertionError(f"no record of {owner}/{name}")


@pytest.fixture(scope="module")
def kernel(user_server):
    k = Kernel(user_server("alice").url, user_server("alice").token)
    k.execute(TRAIN, timeout=120)
    yield k
    k.close()


def test_model_server_metrics_need_a_token_with_read_metrics(hub, login):
    r = requests.get(models_url(hub), timeout=10)
    assert r.status_code == 403 and "read:metrics" in r.json()["message"]
    r = requests.get(models_url(hub), headers={"Authorization": f"token {login('bob').token}"}, timeout=10)
    assert r.status_code == 403
    assert r.json()["message"] == "This token may not read metrics (it lacks the read:metrics scope)."
    assert "model_infer" not in r.text and "odh_" not in r.text


def test_a_deployments_mlserver_metrics_appear_with_its_owner_and_name_after_a_prediction(hub, login, user_server,
                                                                                           kernel):
    out = kernel.execute('d = deploy(v1, name="watched", sample=probe)\nprint("URL", d.infer_url)', timeout=180)
    url = out.split("URL ", 1)[1].split()[0]
    key = requests.get(f"{user_server('alice').url}odh/api/deployments/watched",
                       headers={"Authorization": f"token {user_server('alice').token}"}, timeout=30).json()["api_key"]
    for _ in range(3):
        r = requests.post(url, json=BODY, headers={"Authorization": f"Bearer {key}"}, timeout=10)
        assert r.json()["outputs"][0]["data"] == [1]
    admin = login("admin").token
    text, got = scrape_when_up(hub, admin, "watched")
    mine = {"model": "alice.watched", "owner": "alice", "deployment": "watched"}
    # the platform's own test prediction and ours: MLServer's counter, labelled by the platform
    assert sum(matching(got, "model_infer_request_success_total", **mine)) >= 4
    assert sum(matching(got, "model_infer_request_duration_count", **mine)) >= 4
    assert got[("odh_model_server_scrape_up", L(owner="alice", deployment="watched"))] == 1
    assert 0 < got[("odh_model_server_scrape_duration_seconds", L(owner="alice", deployment="watched"))] < 2
    assert got[("process_resident_memory_bytes", L(owner="alice", deployment="watched"))] > 10 * 2**20
    infer = matching(got, "rest_server_requests_total", owner="alice", deployment="watched",
                     path="/v2/models/{model_name}/infer", status_code="200")
    assert infer and sum(infer) >= 4
    assert "python_gc" not in text and "_created" not in text
    # every sample names its owner and deployment
    assert all(dict(labels).get("owner") and dict(labels).get("deployment") for _, labels in got)


def test_a_model_that_emits_spoofed_metrics_is_re_exposed_only_as_its_owners(hub, login, kernel):
    out = kernel.execute(SPOOFING, timeout=180)
    assert "SPOOFER [1]" in out, out
    text, got = scrape_when_up(hub, login("admin").token, "spoofer")
    ours = L(owner="alice", deployment="spoofer")
    assert got[("odh_model_server_scrape_up", ours)] == 1
    # the spoofed counter is there, but as alice's spoofer (owner, deployment and model set by the platform)
    # (MLServer's own counter of the deployment is there too, with version "None")
    assert matching(got, "model_infer_request_success_total", model="alice.spoofer", version="v1", owner="alice",
                    deployment="spoofer") == [4242.0]
    assert not [labels for _, labels in got if dict(labels).get("owner") == "bob"]
    assert not [labels for _, labels in got if dict(labels).get("deployment") == "fraud"]
    assert "odh_deployment_up" not in text and "spoof" not in text.lower().replace("spoofer", "")
    assert text.count("# TYPE odh_model_server_scrape_up gauge") == 1
    assert got[("odh_model_server_scrape_samples_dropped", ours)] >= 2  # the two odh_ gauges (and python_*)
    # and the platform's own endpoint still says the truth about bob: he has no deployment (his servers' CPU and
    # memory may well be there, when an earlier test left him running)
    r = requests.get(hub.runtime["platform_url"] + "/services/odh-platform/metrics",
                     headers={"Authorization": f"token {login('admin').token}"}, timeout=10)
    bobs = [ln for ln in r.text.splitlines() if 'owner="bob"' in ln and not ln.startswith("odh_user_")]
    assert not bobs, bobs


def test_a_port_bob_took_over_from_alices_dead_model_server_is_never_read(hub, login, user_server, kernel):
    user_server("bob")  # bob's system user exists once he has spawned
    bob = localusers.lookup("bob")
    assert bob is not None
    rt = record(hub, "alice", "watched")["runtime"]["serving"]
    pid, metrics_port = rt["pid"], rt["metrics_port"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not pid_alive(pid), 10, "alice's model server to die")
    listener = subprocess.Popen(["/usr/bin/python3", "-I", "-c", LISTENER, str(metrics_port)], user=bob.uid,
                                group=bob.gid, extra_groups=[], cwd="/", stdout=subprocess.PIPE,
                                stdin=subprocess.DEVNULL, text=True)
    try:
        assert listener.stdout.readline().strip() == "LISTENING"
        admin = login("admin").token
        # until the platform restarts alice's model server (on new ports: bob holds one of the old ones), her
        # deployment is down; afterwards it is read from the new process. Bob's exposition is never there.
        seen_down = False
        for _ in range(60):
            text, got = scrape(hub, admin)
            up = got.get(("odh_model_server_scrape_up", L(owner="alice", deployment="watched")))
            seen_down = seen_down or up == 0
            assert 777.0 not in got.values(), text
            if up == 1:
                break
            time.sleep(1)
        assert seen_down and up == 1
        new = record(hub, "alice", "watched")["runtime"]["serving"]
        assert new["pid"] != pid and pid_alive(new["pid"])
        assert matching(got, "process_start_time_seconds", owner="alice", deployment="watched")
    finally:
        listener.send_signal(signal.SIGTERM)
        out, _ = listener.communicate(timeout=10)
    # bob's exposition was never asked for; the one connection it may have seen is the platform's check, before
    # restarting alice's model server, of whether her old ports are free (procs.listening: connect, close)
    assert "REQUEST" not in out and out.count("CONNECTION") <= 1, out
    with open(os.path.join(ARTIFACTS, "jupyterhub-integration.log"), errors="replace") as f:
        assert f"Metrics of the model server of alice/watched not read: its process {pid} is gone" in f.read()
    kernel.execute('DeployClient().delete("watched"); DeployClient().delete("spoofer")', timeout=120)
    _, got = scrape(hub, login("admin").token)
    assert not [k for k in got if dict(k[1]).get("deployment") in ("watched", "spoofer")
                and dict(k[1]).get("owner") == "alice"]
