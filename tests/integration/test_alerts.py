"""Alerts for real: a real `odh-hub up` (Ceph, Kafka, JupyterHub with the platform service, Prometheus scraping
both every 5 s with the chart's alert rules). With every target up and nothing firing, each fault is made for
real (a component hung with SIGSTOP: the launcher and the hub restart a process that exits, so a killed one comes
back before any alert could fire; a hung one stays down until someone acts), the alert must fire, the runbook's
Confirm, Fix and Verify commands (the ```sh blocks of docs/runbooks/<Alert>.md, run as written with bash) must
succeed, and the alert must resolve. The time from the fault to firing is printed and written to
test-artifacts/alert-timings.json.

An ingestion worker and a model server that keep crashing are made for real too (alice's ingestion's worker and
her deployment's MLServer killed three times each; the platform restarts them each time): the alert must fire
and the runbook's Confirm commands run. These alerts look back 10 minutes, so they cannot resolve within the
test: for the ingestion the runbook's Fix (pause it, as an admin) is run and must pause it; for the model server
the Fix (a rollback) is not run, the deployment having no earlier version.

A user near their quota is made for real as well (alice, with an 8 MiB quota, stores 7.5 MiB): the alert fires,
the runbook's Fix raises her quota in RGW and the alert resolves.

Not made here (their rules are covered by `promtool test rules` only): the other per-user alerts (Spark, spawn
failures, model server down or failing requests, ingestion lag) and the disk alert."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time

import pytest
import requests
import yaml

from odh_spawner.host import procs
from odh_spawner.localplatform import status as st
from tests.conftest import ARTIFACTS, ROOT
from tests.integration.test_durability import (Stream, Up, deploy_seven, ingest_workers, records_serving_pid, spawn,
                                               user_s3)
from tests.support import runbooks, secretscan
from tests.support.fixtures import DEMO_DIR, PASSWORDS
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
        with open(os.path.join(ARTIFACTS, "alert-timings.json"), "w") as f:
            json.dump(TIMINGS, f, indent=1)
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


def test_an_ingestion_worker_restarting_fires_and_the_runbook_pauses_it(up, alice):
    quiet(up)
    session, env = alice
    stream = Stream(up, session)
    stream.env = env
    stream.start()
    step(f"alice's ingestion durable runs: {stream.produced} records landed exactly once")
    t0 = kill_three_times("ingestion worker", lambda: ingest_workers(up.state))
    step("killed the ingestion worker three times (SIGKILL); the platform restarted it after each")
    alert = "OdhIngestionWorkerRestarting"
    wait_firing(up, alert, "odh_ingestion_worker_restarts_total")
    fired = time.monotonic() - t0
    step(f"{alert}: firing {fired:.1f} s after the third kill")
    labels = next(a["labels"] for a in alerts(up) if a["labels"]["alertname"] == alert)
    assert (labels["owner"], labels["ingestion"]) == ("alice", "durable")
    sets = {"OWNER": "alice", "INGESTION": "durable"}
    confirm = run_section(up, alert, "Confirm", sets)
    assert f"{alert} firing" in confirm and '"ingestion":"durable"' in confirm
    admin = HubUserSession(up.url, "admin", PASSWORDS["admin"])
    t1 = time.monotonic()
    run_section(up, alert, "Fix", sets, env={"ODH_ADMIN_TOKEN": admin.token})
    wait_for(lambda: stream.ing.status()["state"] == "paused" and not ingest_workers(up.state), 60,
             "the ingestion to be paused with no worker")
    step(f"{alert}: the runbook's fix paused the ingestion in {time.monotonic() - t1:.1f} s (the alert looks back "
         f"10 minutes: it stays firing)")
    TIMINGS[alert] = {"fault": "SIGKILL the ingestion worker 3 times", "fired_after_s": round(fired, 1),
                      "fix_commands_s": round(time.monotonic() - t1, 1), "resolved_after_fix_s": None}


def test_a_crash_looping_model_server_fires(up, alice):
    quiet(up)
    session, _ = alice
    deploy_seven(session)
    step("alice's deployment seven serves")
    t0 = kill_three_times("model server", lambda: [records_serving_pid(up.state)])
    step("killed the model server three times (SIGKILL); the platform restarted it after each")
    wait_firing(up, "OdhModelServerCrashLooping", "odh_deployment_restarts_total")
    fired = time.monotonic() - t0
    step(f"OdhModelServerCrashLooping: firing {fired:.1f} s after the third kill")
    labels = next(a["labels"] for a in alerts(up) if a["labels"]["alertname"] == "OdhModelServerCrashLooping")
    assert (labels["owner"], labels["deployment"]) == ("alice", "seven")
    confirm = run_section(up, "OdhModelServerCrashLooping", "Confirm", {"OWNER": "alice", "DEPLOYMENT": "seven"})
    assert "OdhModelServerCrashLooping firing" in confirm and '"deployment":"seven"' in confirm
    TIMINGS["OdhModelServerCrashLooping"] = {"fault": "SIGKILL the model server 3 times",
                                             "fired_after_s": round(fired, 1), "fix_commands_s": None,
                                             "resolved_after_fix_s": None}


def test_a_user_near_their_quota_fires(up, alice):
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


def test_every_runbook_s_confirm_and_verify_commands_run(up, alice):
    """The read-only sections of every runbook run as written on the running platform (with the example names
    set to alice's ingestion and deployment of the tests above)."""
    sets = {"OWNER": "alice", "DEPLOYMENT": "seven", "INGESTION": "durable"}
    for rule in runbooks.alert_rules():
        for section in ("Confirm", "Verify"):
            run_section(up, rule["alert"], section, sets)
    run_section(up, "OdhObjectStoreDiskFilling", "Fix", sets)  # a fix that only looks
