"""Alerts for real: a real `odh-hub up` (Ceph, Kafka, JupyterHub with the platform service, Prometheus scraping
both every 5 s with the chart's alert rules). With every target up and nothing firing, each fault is made for
real (a component hung with SIGSTOP: the launcher and the hub restart a process that exits, so a killed one comes
back before any alert could fire; a hung one stays down until someone acts), the alert must fire, the runbook's
Confirm, Fix and Verify commands (the ```sh blocks of docs/runbooks/<Alert>.md, run as written with bash) must
succeed, and the alert must resolve. The time from the fault to firing is printed and written to
test-artifacts/alert-timings.json; a full run's file is committed as docs/runbooks/alert-timings.json, which
docs/runbooks/README.md quotes (tests/unit/test_alert_rules.py checks the table against it).

An ingestion worker and a model server that keep crashing are made for real too (alice's ingestion's worker and
her deployment's MLServer killed three times each; the platform restarts them each time): the alert fires, the
runbook's Fix (pause the ingestion; roll the deployment back) runs and the alert resolves (the platform counts
the restarts of the current run and of the serving version's model server, so the fix starts them from 0).

The per-user alerts are made for real: alice's ingestion worker hung (SIGSTOP) while her producer writes (lag
growing; Fix: pause and resume), a new version of her deployment that raises on one request in ten (gateway
5xx; Fix: roll back), her serving version's model file damaged and its model server killed, so no restart
comes up (model server down; Fix: roll back), and alice near her quota (8 MiB quota, 7.5 MiB stored; Fix: raise
her quota in RGW).

Not made here (their rules are covered by `promtool test rules` only): OdhSparkClusterFailed,
OdhSpawnFailureRatioHigh and OdhObjectStoreDiskFilling."""

from __future__ import annotations

import base64
import io
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time

import pytest
import requests
import yaml

from odh_spawner.host import procs
from odh_spawner.localplatform import status as st
from tests.conftest import ARTIFACTS, ROOT
from tests.integration.test_admin_view import spark_master_pid
from tests.integration.test_durability import (Stream, Up, deploy_seven, ingest_workers, predict, records_serving_pid,
                                               spawn, user_s3)
from tests.support import runbooks, secretscan
from tests.support.fixtures import DEMO_DIR, PASSWORDS, process_env, server_pid, wait_spark_ready
from tests.support.hubclient import HubUserSession
from tests.support.profiles import hub_environments
from tests.support.wait import wait_for

FIRE_TIMEOUT = 90     # the slowest alert here: probe (5 s) + scrape (5 s) + evaluation (5 s) + for (10 s), with slack
RESOLVE_TIMEOUT = 180  # the platform service restarted by the hub, or the hub by the launcher, then a scrape
TIMINGS: dict[str, dict] = {}


def step(msg: str) -> None:
    print(f"[alerts {time.strftime('%H:%M:%S')}] {msg}", flush=True)


@pytest.fixture(scope="module")
def up(tmp_path_factory):
    d = tmp_path_factory.mktemp("alerts-config")
    for name in ("platform.yaml", "profiles.yaml", "users.yaml"):
        (d / name).write_text(open(os.path.join(DEMO_DIR, name)).read())
    hub_environments(d / "profiles.yaml")  # no user code runs here: no lock environment builds
    platform = yaml.safe_load((d / "platform.yaml").read_text())
    platform["ceph"]["objectstore"] = "memstore"  # the alerts are about processes, not what they keep
    platform["ceph"]["user_quota_max_size"] = "8Mi"  # so a user can come near it in a test
    (d / "platform.yaml").write_text(yaml.safe_dump(platform))
    state = str(tmp_path_factory.mktemp("alerts-state"))
    u = Up(str(d), state, "alerts")
    u.state = state
    u.prometheus = u.wait_line(r"Prometheus: (http://\S+)", 10).group(1)
    secretscan.register_secret(open(os.path.join(state, "prometheus", "scrape-token")).read(), "scrape-token")
    try:
        yield u
    finally:
        os.makedirs(ARTIFACTS, exist_ok=True)
        with open(os.path.join(ARTIFACTS, "alert-timings.json"), "w") as f:  # docs/runbooks/alert-timings.json
            json.dump({"when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                       "load_average": round(os.getloadavg()[0], 2), "alerts": TIMINGS}, f, indent=1)
        for alert, t in TIMINGS.items():
            resolved = (f"resolved {t['resolved_after_fix_s']} s after the runbook's fix began"
                        if t["resolved_after_fix_s"] is not None else "not resolved within the test")
            step(f"{alert} ({t['fault']}): fired {t['fired_after_s']} s after the fault; {resolved}")
        for c in st.components(state):  # nothing left stopped for Ctrl-C to wait on
            if c.state == "stopped":
                os.kill(c.pid, signal.SIGCONT)
        u.ctrl_c()


def alerts(up) -> list[dict]:
    return requests.get(f"{up.prometheus}/api/v1/alerts", timeout=5).json()["data"]["alerts"]


def targets(up) -> dict[str, str]:
    active = requests.get(f"{up.prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
    return {t["labels"]["job"]: t["health"] for t in active}


def query(up, expr: str) -> list:
    r = requests.get(f"{up.prometheus}/api/v1/query", params={"query": expr}, timeout=5).json()
    return [(x["metric"], x["value"][1]) for x in r["data"]["result"]]


def wait_firing(up, alert: str, metric: str) -> None:
    try:
        wait_for(lambda: state_of(up, alert) == "firing", FIRE_TIMEOUT, f"{alert} to fire", interval=0.25)
    except AssertionError as e:
        raise AssertionError(f"{e}: {metric} {query(up, metric + '[10m]')}; alerts {alerts(up)}") from None


def state_of(up, name: str) -> str:
    """'firing', 'pending' or '' for the alert `name`."""
    states = {a["state"] for a in alerts(up) if a["labels"]["alertname"] == name}
    return "firing" if "firing" in states else "pending" if states else ""


def run_section(up, alert: str, section: str, sets: dict | None = None, env: dict | None = None) -> str:
    """Run the runbook's ```sh blocks of `section` as written (bash -e), as an admin would at the repository;
    `sets` gives the values of the example assignments the runbook asks to set from the alert's labels
    (`OWNER=alice DEPLOYMENT=iris`)."""
    out = []
    env = dict(os.environ, ODH_STATE_DIR=up.state, PYTHONPATH=ROOT, **(env or {}),
               PATH=os.path.dirname(sys.executable) + os.pathsep + os.environ.get("PATH", ""))
    for block in runbooks.sh_blocks(runbooks.runbook(alert), section):
        for var, value in (sets or {}).items():
            block = re.sub(rf"\b{var}=\S+", f"{var}={value}", block)
        r = subprocess.run(["bash", "-e", "-c", block], cwd=ROOT, env=env, capture_output=True, text=True,
                           timeout=RESOLVE_TIMEOUT)
        assert r.returncode == 0, f"{alert} ## {section}:\n{block}\n{r.stdout}\n{r.stderr}"
        out.append(r.stdout)
    return "".join(out)


# what the faults here may set off; other alerts are about this machine (its disk: other tests write GBs)
OUTAGES = {"OdhHubDown", "OdhPlatformServiceDown", "OdhObjectStoreDown", "OdhKafkaDown", "OdhModelServerDown",
           "OdhModelServerCrashLooping"}


def rule_states(up) -> list:
    groups = requests.get(f"{up.prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    return [(r["name"], r["health"], r["state"], r.get("lastError", ""), r.get("lastEvaluation", ""))
            for g in groups for r in g["rules"] if r["health"] != "ok" or r["state"] != "inactive"]


def quiet(up) -> None:
    """Every target up, none of the outage alerts pending or firing."""
    wait_for(lambda: set(targets(up).values()) == {"up"} and len(targets(up)) == 3, 90,
             "every target up", interval=1)
    try:
        wait_for(lambda: not [a for a in alerts(up) if a["labels"]["alertname"] in OUTAGES], 120,
                 "no outage alert pending or firing", interval=1)
    except AssertionError as e:
        raise AssertionError(f"{e}: alerts {alerts(up)}; rules {rule_states(up)}; targets {targets(up)}") from None


def fault_and_fix(up, alert: str, component: str) -> None:
    quiet(up)
    pid = st.find(up.state, component).pid
    os.kill(pid, signal.SIGSTOP)
    t0 = time.monotonic()
    step(f"{alert}: {component} (pid {pid}) hung with SIGSTOP")
    try:
        wait_for(lambda: state_of(up, alert) == "firing", FIRE_TIMEOUT, f"{alert} to fire", interval=0.25)
    except AssertionError:
        os.kill(pid, signal.SIGCONT)
        raise
    fired = time.monotonic() - t0
    step(f"{alert}: firing after {fired:.1f} s")
    confirm = run_section(up, alert, "Confirm")
    assert alert in confirm  # `odh-hub alerts` lists it
    assert f"{component}" in confirm and "stopped" in confirm  # `odh-hub status` shows it hung
    t1 = time.monotonic()
    run_section(up, alert, "Fix")
    fixed = time.monotonic() - t1
    wait_for(lambda: state_of(up, alert) == "", RESOLVE_TIMEOUT, f"{alert} to resolve", interval=0.5)
    resolved = time.monotonic() - t1
    assert alert not in run_section(up, alert, "Verify")
    assert st.find(up.state, component).state == "running"
    TIMINGS[alert] = {"fault": f"SIGSTOP {component}", "fired_after_s": round(fired, 1),
                      "fix_commands_s": round(fixed, 1), "resolved_after_fix_s": round(resolved, 1)}
    step(f"{alert}: the runbook's fix took {fixed:.1f} s; resolved {resolved:.1f} s after it began")


def test_prometheus_scrapes_hub_and_platform_with_nothing_firing(up):
    quiet(up)
    assert targets(up) == {"odh-hub": "up", "odh-platform": "up", "odh-models": "up"}
    rules = requests.get(f"{up.prometheus}/api/v1/rules", timeout=5).json()["data"]["groups"]
    assert {r["name"] for g in rules for r in g["rules"]} == {r["alert"] for r in runbooks.alert_rules()}
    assert all(r["health"] == "ok" for g in rules for r in g["rules"]), rules
    # the scrape token: the hub service odh-prometheus's, private to root, never in the launcher's output
    token_file = os.path.join(up.state, "prometheus", "scrape-token")
    assert os.stat(token_file).st_mode & 0o777 == 0o600
    token = open(token_file).read()
    assert token and token not in up.text
    hub = requests.get(f"{up.url}/hub/api/user", headers={"Authorization": f"token {token}"}, timeout=10).json()
    assert hub["kind"] == "service" and hub["name"] == "odh-prometheus" and hub["scopes"] == ["read:metrics"]
    # with read:metrics only, it reads metrics and nothing else
    assert requests.get(f"{up.url}/hub/api/users", headers={"Authorization": f"token {token}"},
                        timeout=10).status_code == 403
    assert requests.get(f"{up.url}/hub/metrics", timeout=10).status_code in (401, 403)


def test_object_store_down_fires_and_the_runbook_fixes_it(up):
    fault_and_fix(up, "OdhObjectStoreDown", "ceph-rgw")


def test_kafka_down_fires_and_the_runbook_fixes_it(up):
    fault_and_fix(up, "OdhKafkaDown", "kafka")


def test_platform_service_down_fires_and_the_runbook_fixes_it(up):
    fault_and_fix(up, "OdhPlatformServiceDown", "platform")


def test_hub_down_fires_and_the_runbook_fixes_it(up):
    fault_and_fix(up, "OdhHubDown", "hub")


@pytest.fixture(scope="module")
def alice(up):
    """alice's running server: her hub session and the server's environment (her S3 keys)."""
    session, _, env = spawn(up.url, "alice")
    return session, env


def kill_three_times(what: str, pids, timeout: float = 120) -> float:
    """SIGKILL the one process `pids()` names three times, each time once the platform has started it again;
    returns the monotonic time of the third kill."""
    for i in range(3):
        (pid,) = wait_for(lambda: [p for p in pids() if procs.alive(p)], timeout, f"the {what} to run")
        os.kill(pid, signal.SIGKILL)
        killed = time.monotonic()
        if i < 2:
            wait_for(lambda: [p for p in pids() if p != pid and procs.alive(p)], timeout,
                     f"the platform to restart the {what}")
    return killed


def test_a_user_near_their_quota_fires(up, alice):
    """Before the ingestion and deployment tests below, which store in alice's buckets too (the Fix raises her
    quota to 20 GiB)."""
    session, env = alice
    r = requests.post(f"{up.url}/user/alice/odh/api/buckets", headers=session.auth, json={"name": "alice-full"},
                      timeout=30)
    assert r.status_code in (200, 201), r.text
    user_s3(env).put_object(Bucket="alice-full", Key="big.bin", Body=os.urandom(15 * 2**19))  # 7.5 MiB
    t0 = time.monotonic()
    step("alice stores 7.5 MiB more (quota 8 MiB)")
    alert = "OdhUserNearQuota"
    try:  # the platform reads users' usage every 30 s; then a scrape, an evaluation and `for: 30s`
        wait_for(lambda: state_of(up, alert) == "firing", 150, f"{alert} to fire", interval=0.5)
    except AssertionError as e:
        raise AssertionError(f"{e}: {query(up, 'odh_user_bucket_bytes')} {query(up, 'odh_user_quota_bytes')}") \
            from None
    fired = time.monotonic() - t0
    step(f"{alert}: firing {fired:.1f} s after the upload")
    confirm = run_section(up, alert, "Confirm", {"OWNER": "alice"})
    assert f"{alert} firing" in confirm and '"owner":"alice"' in confirm
    t1 = time.monotonic()
    out = run_section(up, alert, "Fix", {"OWNER": "alice"})
    fixed = time.monotonic() - t1
    assert '"max_size": 21474836480' in out and '"enabled": true' in out, out
    wait_for(lambda: state_of(up, alert) == "", 150, f"{alert} to resolve", interval=0.5)
    resolved = time.monotonic() - t1
    assert alert not in run_section(up, alert, "Verify", {"OWNER": "alice"})
    step(f"{alert}: the runbook's fix took {fixed:.1f} s; resolved {resolved:.1f} s after it began")
    TIMINGS[alert] = {"fault": "alice stores 7.5 MiB of her 8 MiB quota", "fired_after_s": round(fired, 1),
                      "fix_commands_s": round(fixed, 1), "resolved_after_fix_s": round(resolved, 1)}


def admin_env(up) -> dict:
    return {"ODH_ADMIN_TOKEN": HubUserSession(up.url, "admin", PASSWORDS["admin"]).token}


def fix_and_resolve(up, alert: str, sets: dict, timeout: float = RESOLVE_TIMEOUT) -> tuple[str, float, float]:
    """The runbook's Fix as an admin, then the alert must resolve and Verify not list it: (Fix's output, seconds
    the Fix's commands took, seconds from the Fix's start to the alert resolved)."""
    t1 = time.monotonic()
    out = run_section(up, alert, "Fix", sets, env=admin_env(up))
    fixed = time.monotonic() - t1
    try:
        wait_for(lambda: state_of(up, alert) == "", timeout, f"{alert} to resolve", interval=0.5)
    except AssertionError as e:
        raise AssertionError(f"{e}: alerts {alerts(up)}") from None
    resolved = time.monotonic() - t1
    assert alert not in run_section(up, alert, "Verify", sets)
    step(f"{alert}: the runbook's fix took {fixed:.1f} s; resolved {resolved:.1f} s after it began")
    return out, fixed, resolved


def firing_labels(up, alert: str) -> dict:
    return next(a["labels"] for a in alerts(up) if a["labels"]["alertname"] == alert and a["state"] == "firing")


@pytest.fixture(scope="module")
def stream(up, alice):
    """alice's ingestion `durable` with 3000 records landed."""
    session, env = alice
    s = Stream(up, session)
    s.env = env
    s.start()
    step(f"alice's ingestion durable runs: {s.produced} records landed exactly once")
    return s


class Producer(threading.Thread):
    """alice's producer: `per_second` records a second onto the stream's topic until stop()."""

    def __init__(self, stream: Stream, per_second: int):
        super().__init__(daemon=True)
        self.stream, self.per_second, self.halt, self.error = stream, per_second, threading.Event(), None

    def run(self) -> None:
        try:
            while not self.halt.is_set():
                t = time.monotonic()
                self.stream.more(self.per_second)
                self.halt.wait(max(0.0, 1 - (time.monotonic() - t)))
        except Exception as e:  # reported by stop()
            self.error = e

    def stop(self) -> None:
        self.halt.set()
        self.join(60)
        assert self.error is None, self.error


def test_a_stuck_ingestion_worker_fires_lag_growing_and_the_runbook_s_pause_and_resume_resolve_it(up, stream):
    """The worker hung (SIGSTOP) while alice's producer writes 300 records a second: the lag passes 1000 and keeps
    growing; the runbook's Fix (pause and resume, as an admin) starts the worker again from its last commit and
    it catches up while the producer goes on; every record lands exactly once."""
    quiet(up)
    alert = "OdhIngestionLagGrowing"
    (pid,) = ingest_workers(up.state)
    producer = Producer(stream, 300)
    os.kill(pid, signal.SIGSTOP)
    t0 = time.monotonic()
    producer.start()
    step(f"{alert}: alice's ingestion worker (pid {pid}) hung with SIGSTOP; her producer writes 300 records/s")
    try:
        try:
            wait_firing(up, alert, "odh_ingestion_lag_records")
        except AssertionError:
            os.kill(pid, signal.SIGCONT)
            raise
        fired = time.monotonic() - t0
        step(f"{alert}: firing {fired:.1f} s after the worker hung")
        assert (firing_labels(up, alert)["owner"], firing_labels(up, alert)["ingestion"]) == ("alice", "durable")
        sets = {"OWNER": "alice", "INGESTION": "durable"}
        confirm = run_section(up, alert, "Confirm", sets)
        assert f"{alert} firing" in confirm and '"ingestion":"durable"' in confirm, confirm
        out, fixed, resolved = fix_and_resolve(up, alert, sets)
        assert stream.ing.status()["state"] == "running"  # paused and resumed: a new worker
        assert not procs.alive(pid) or pid not in ingest_workers(up.state)  # the hung worker is gone
    finally:
        producer.stop()
    stream.landed()
    step(f"{alert}: all {stream.produced} records landed exactly once")
    TIMINGS[alert] = {"fault": "SIGSTOP the ingestion worker while 300 records/s are produced",
                      "fired_after_s": round(fired, 1), "fix_commands_s": round(fixed, 1),
                      "resolved_after_fix_s": round(resolved, 1)}


def test_an_ingestion_worker_restarting_fires_and_the_runbook_s_pause_resolves_it(up, stream):
    quiet(up)
    t0 = kill_three_times("ingestion worker", lambda: ingest_workers(up.state))
    step("killed the ingestion worker three times (SIGKILL); the platform restarted it after each")
    alert = "OdhIngestionWorkerRestarting"
    wait_firing(up, alert, "odh_ingestion_worker_restarts_total")
    fired = time.monotonic() - t0
    step(f"{alert}: firing {fired:.1f} s after the third kill")
    labels = firing_labels(up, alert)
    assert (labels["owner"], labels["ingestion"]) == ("alice", "durable")
    sets = {"OWNER": "alice", "INGESTION": "durable"}
    confirm = run_section(up, alert, "Confirm", sets)
    assert f"{alert} firing" in confirm and '"ingestion":"durable"' in confirm
    _, fixed, resolved = fix_and_resolve(up, alert, sets)
    assert stream.ing.status()["state"] == "paused" and not ingest_workers(up.state)
    assert stream.ing.status()["restarts"] == 0  # counted for the current run: the pause ended it
    TIMINGS[alert] = {"fault": "SIGKILL the ingestion worker 3 times", "fired_after_s": round(fired, 1),
                      "fix_commands_s": round(fixed, 1), "resolved_after_fix_s": round(resolved, 1)}


def deployment(session) -> dict:
    r = requests.get(f"{session.url}/user/{session.name}/odh/api/deployments/seven", headers=session.auth,
                     timeout=30)
    assert r.status_code == 200, r.text
    return r.json()


def new_version(session, path: str, model) -> int:
    """`model` saved as `path` in alice's home and deployed as a new version of seven; its number once it
    serves."""
    import joblib

    buf = io.BytesIO()
    joblib.dump(model, buf)
    base = f"{session.url}/user/{session.name}"
    r = requests.put(f"{base}/api/contents/{path}", headers=session.auth, timeout=30, json={
        "type": "file", "format": "base64", "content": base64.b64encode(buf.getvalue()).decode()})
    assert r.status_code in (200, 201), r.text
    r = requests.post(f"{base}/odh/api/deployments/seven/versions", headers=session.auth, json={"path": path},
                      timeout=60)
    assert r.status_code == 202, r.text
    target = r.json()["target_version"]
    wait_for(lambda: (lambda d: d["version"] == target and d["stage"] == "ready")(deployment(session)), 120,
             f"version {target} to serve")
    return target


def rolled_back_to(out: str, version: int) -> bool:
    return json.loads(out)["target_version"] == version


def test_a_crash_looping_model_server_fires_and_the_runbook_s_rollback_resolves_it(up, alice):
    """alice's deployment seven gets a second version, whose model server is killed three times (the platform
    restarts it each time): the alert fires; the runbook's Fix rolls back to version 1 and it resolves (restarts
    count the serving version's model server)."""
    quiet(up)
    session, _ = alice
    from sklearn.dummy import DummyClassifier

    deploy_seven(session)
    assert new_version(session, "seven-2.joblib", DummyClassifier(strategy="constant", constant=7).fit(
        [[0], [1]], [7, 7])) == 2
    step("alice's deployment seven serves version 2")
    alert = "OdhModelServerCrashLooping"
    t0 = kill_three_times("model server", lambda: [records_serving_pid(up.state)])
    step("killed the model server three times (SIGKILL); the platform restarted it after each")
    wait_firing(up, alert, "odh_deployment_restarts_total")
    fired = time.monotonic() - t0
    step(f"{alert}: firing {fired:.1f} s after the third kill")
    labels = firing_labels(up, alert)
    assert (labels["owner"], labels["deployment"]) == ("alice", "seven")
    sets = {"OWNER": "alice", "DEPLOYMENT": "seven"}
    confirm = run_section(up, alert, "Confirm", sets)
    assert f"{alert} firing" in confirm and '"deployment":"seven"' in confirm
    out, fixed, resolved = fix_and_resolve(up, alert, sets)
    assert rolled_back_to(out, 1), out
    d = deployment(session)
    assert d["version"] == 1 and d["state"] == "Available" and d["restarts"] == 0, d
    assert predict(up.url, session) == [7]
    TIMINGS[alert] = {"fault": "SIGKILL the model server 3 times", "fired_after_s": round(fired, 1),
                      "fix_commands_s": round(fixed, 1), "resolved_after_fix_s": round(resolved, 1)}


class Callers(threading.Thread):
    """Callers of alice's deployment through the gateway (her hub token), one request after the other; every
    tenth sends two features where the model was trained on one. Counts the answers' statuses."""

    def __init__(self, url: str, session):
        super().__init__(daemon=True)
        self.url, self.session, self.halt, self.codes, self.n = url, session, threading.Event(), [], 0

    def run(self) -> None:
        while not self.halt.is_set():
            self.n += 1
            x = [0.5, 0.5] if self.n % 10 == 0 else [0.5]
            body = {"inputs": [{"name": "x", "shape": [1, len(x)], "datatype": "FP64", "data": x}]}
            try:
                r = requests.post(f"{self.url}/v2/models/alice.seven/infer", json=body, headers=self.session.auth,
                                  timeout=10)
                self.codes.append((time.monotonic(), len(x), r.status_code))
            except requests.RequestException:
                self.codes.append((time.monotonic(), len(x), 0))
            self.halt.wait(0.05)

    def stop(self) -> None:
        self.halt.set()
        self.join(30)


def test_a_model_version_that_fails_requests_fires_and_the_runbook_s_rollback_resolves_it(up, alice):
    """Version 3 of seven is a model trained on one feature; one caller in ten sends two (which version 1 and 2
    answer): the gateway answers those 5xx (the model raises), more than 5% of the requests fail, the alert
    fires. The runbook's Fix rolls back to version 2; the callers go on and the alert resolves once the last 5
    minutes hold fewer than 5% failures."""
    quiet(up)
    session, _ = alice
    from sklearn.linear_model import LogisticRegression

    assert new_version(session, "strict.joblib", LogisticRegression().fit([[0.0], [1.0]], [0, 7])) == 3
    alert = "OdhModelServerErrors"
    callers = Callers(up.url, session)
    callers.start()
    t0 = time.monotonic()
    step(f"{alert}: version 3 serves; callers send requests, one in ten with two features")
    try:
        wait_firing(up, alert, "odh_gateway_requests_total")
        fired = time.monotonic() - t0
        step(f"{alert}: firing {fired:.1f} s after version 3 began to serve the callers")
        assert {c for _, n, c in callers.codes if n == 2} <= {500, 502} and \
            {c for _, n, c in callers.codes if n == 1} == {200}, set(callers.codes)
        labels = firing_labels(up, alert)
        assert (labels["owner"], labels["deployment"]) == ("alice", "seven")
        sets = {"OWNER": "alice", "DEPLOYMENT": "seven"}
        confirm = run_section(up, alert, "Confirm", sets)
        assert f"{alert} firing" in confirm and "X has 2 features" in confirm, confirm  # the model's traceback
        out, fixed, resolved = fix_and_resolve(up, alert, sets, timeout=300)
        assert rolled_back_to(out, 2), out
        served = deployment(session)
        assert served["version"] == 2, served
        after = time.monotonic()
        time.sleep(2)
    finally:
        callers.stop()
    late = [(n, c) for t, n, c in callers.codes if t > after]
    assert {n for n, _ in late} == {1, 2} and {c for _, c in late} == {200}, late  # version 2 answers every caller
    step(f"{alert}: {len(callers.codes)} requests; {sum(c >= 500 for _, _, c in callers.codes)} answered 5xx")
    TIMINGS[alert] = {"fault": "a model version that raises on 1 request in 10 (gateway 5xx)",
                      "fired_after_s": round(fired, 1), "fix_commands_s": round(fixed, 1),
                      "resolved_after_fix_s": round(resolved, 1)}


def test_a_model_server_that_cannot_start_again_fires_and_the_runbook_s_rollback_resolves_it(up, alice):
    """Version 2's model file on disk damaged, then its model server killed: every restart exits (MLServer cannot
    load the model), the deployment is down, the alert fires; the runbook's Fix rolls back to version 1 (its own
    files) and it resolves."""
    quiet(up)
    session, _ = alice
    alert = "OdhModelServerDown"
    assert deployment(session)["version"] == 2
    pid = records_serving_pid(up.state)
    model_dir = None
    for dirpath, _, files in os.walk(os.path.join(up.state, "platform", "deployments")):
        if "deployment.json" in files:
            with open(os.path.join(dirpath, "deployment.json")) as f:
                model_dir = json.load(f)["runtime"]["serving"]["dir"]
    damaged = [os.path.join(model_dir, n) for n in os.listdir(model_dir) if n.endswith(".joblib")]
    assert damaged, os.listdir(model_dir)
    for path in damaged:
        with open(path, "wb") as f:
            f.write(b"damaged")
    os.kill(pid, signal.SIGKILL)
    t0 = time.monotonic()
    step(f"{alert}: version 2's model file damaged, its model server (pid {pid}) killed")
    wait_firing(up, alert, "odh_deployment_up")
    fired = time.monotonic() - t0
    step(f"{alert}: firing {fired:.1f} s after the kill")
    labels = firing_labels(up, alert)
    assert (labels["owner"], labels["deployment"]) == ("alice", "seven")
    sets = {"OWNER": "alice", "DEPLOYMENT": "seven"}
    confirm = run_section(up, alert, "Confirm", sets)
    assert f"{alert} firing" in confirm and '"deployment":"seven"' in confirm, confirm
    out, fixed, resolved = fix_and_resolve(up, alert, sets)
    assert rolled_back_to(out, 1), out
    d = deployment(session)
    assert d["version"] == 1 and d["state"] == "Available", d
    assert predict(up.url, session) == [7]
    TIMINGS[alert] = {"fault": "damage the serving version's model file, SIGKILL its model server",
                      "fired_after_s": round(fired, 1), "fix_commands_s": round(fixed, 1),
                      "resolved_after_fix_s": round(resolved, 1)}


def test_a_failed_spark_cluster_fires_and_the_runbook_s_restart_resolves_it(up):
    """bob's server with a Spark cluster (datascience, one worker); its master killed: the platform reports the
    cluster failed and does not start it again by itself, the alert fires; the runbook's Fix (an admin restarts
    bob's cluster) brings a new master and the alert resolves."""
    quiet(up)
    alert = "OdhSparkClusterFailed"
    bob = HubUserSession(up.url, "bob", PASSWORDS["bob"])
    r = bob.api("POST", "/users/bob/server", json={"profile": "datascience", "spark": {"workers": 1}})
    assert r.status_code in (201, 202), r.text
    bob.wait_ready(timeout=180)
    env = process_env(server_pid(HubUserSession(up.url, "admin", PASSWORDS["admin"]), "bob"))
    wait_spark_ready(env, workers=1)
    wait_for(lambda: [v for _, v in query(up, 'odh_spark_clusters{phase="ready"}') if v == "1"], 60,
             "Prometheus to see bob's cluster ready", interval=1)
    master = spark_master_pid(env)
    os.kill(master, signal.SIGKILL)
    t0 = time.monotonic()
    step(f"{alert}: bob's Spark master (pid {master}) killed (SIGKILL)")
    wait_firing(up, alert, "odh_spark_clusters")
    fired = time.monotonic() - t0
    step(f"{alert}: firing {fired:.1f} s after the kill")
    confirm = run_section(up, alert, "Confirm")
    assert f"{alert} firing" in confirm and re.search(r'"phase":"failed"\},"value":\[[\d.]+,"1"\]', confirm), confirm
    out, fixed, resolved = fix_and_resolve(up, alert, {"OWNER": "bob"})
    assert json.loads(out)["master_url"] == env["SPARK_MASTER_URL"], out  # the notebook's configuration holds
    wait_spark_ready(env, workers=1)
    assert spark_master_pid(env) != master
    bob.stop()
    TIMINGS[alert] = {"fault": "SIGKILL bob's Spark master", "fired_after_s": round(fired, 1),
                      "fix_commands_s": round(fixed, 1), "resolved_after_fix_s": round(resolved, 1)}


def test_every_runbook_s_confirm_and_verify_commands_run(up, alice):
    """The read-only sections of every runbook run as written on the running platform (with the example names
    set to alice's ingestion and deployment of the tests above)."""
    sets = {"OWNER": "alice", "DEPLOYMENT": "seven", "INGESTION": "durable"}
    for rule in runbooks.alert_rules():
        for section in ("Confirm", "Verify"):
            run_section(up, rule["alert"], section, sets)
    run_section(up, "OdhObjectStoreDiskFilling", "Fix", sets)  # a fix that only looks
