"""The hub's and the platform service's metrics against the real platform (hub, proxy, Ceph RGW, Kafka): what
they report after real spawns and uploads, and who may read them (a hub token with read:metrics only; the
refusal is proven by its message)."""

from __future__ import annotations

import time

import boto3
import pytest
import requests
from botocore.config import Config
from prometheus_client.parser import text_string_to_metric_families

from odh_spawner.naming import user_slug

pytestmark = pytest.mark.integration


def parse(text: str) -> dict:
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(samples: dict, name: str, **labels) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def platform_metrics_url(hub) -> str:
    return hub.runtime["platform_url"] + "/services/odh-platform/metrics"


def scrape_platform(hub, token: str) -> dict:
    r = requests.get(platform_metrics_url(hub), headers={"Authorization": f"token {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("text/plain")
    return parse(r.text)


def scrape_hub(hub, token: str) -> dict:
    r = requests.get(hub.url.rstrip("/") + "/hub/metrics", headers={"Authorization": f"token {token}"}, timeout=10)
    assert r.status_code == 200, r.text
    return parse(r.text)


def wait_for_value(fetch, check, timeout: float, what: str):
    deadline, last = time.monotonic() + timeout, None
    while time.monotonic() < deadline:
        last = fetch()
        if check(last):
            return last
        time.sleep(1)
    raise AssertionError(f"{what} not seen within {timeout:.0f} s")


def test_platform_metrics_need_a_token_with_read_metrics(hub, login):
    url = platform_metrics_url(hub)
    r = requests.get(url, timeout=10)
    assert r.status_code == 403 and "read:metrics" in r.json()["message"]
    r = requests.get(url, headers={"Authorization": f"token {login('bob').token}"}, timeout=10)
    assert r.status_code == 403
    assert r.json()["message"] == "This token may not read metrics (it lacks the read:metrics scope)."
    assert "odh_" not in r.text
    r = requests.get(url, headers={"Authorization": "token not-a-token"}, timeout=10)
    assert r.status_code == 403 and "odh_" not in r.text
    # an admin's token carries read:metrics (JupyterHub's admin role)
    got = scrape_platform(hub, login("admin").token)
    assert value(got, "odh_spark_clusters", phase="failed") is not None


def test_components_are_probed_and_states_reported(hub, login):
    token = login("admin").token
    got = wait_for_value(lambda: scrape_platform(hub, token),
                         lambda s: value(s, "odh_component_up", component="object_store") == 1
                         and value(s, "odh_component_up", component="kafka") == 1,
                         30, "the object store and Kafka up")
    assert 0 < value(got, "odh_component_probe_seconds", component="object_store") < 3
    for state in ("Creating", "Available", "Failed", "Deleting"):
        assert value(got, "odh_deployments", state=state, backend="local") is not None, state
    for state in ("running", "paused", "stopped"):
        assert value(got, "odh_ingestions", state=state) is not None, state
    assert value(got, "odh_object_store_capacity_bytes") > value(got, "odh_object_store_free_bytes") > 0


def test_a_spawn_counts_by_profile_with_its_stages_and_the_user_shows_usage(hub, login):
    admin, bob = login("admin"), login("bob")
    before = scrape_hub(hub, admin.token)
    ok_before = value(before, "odh_spawns_total", profile="minimal", outcome="success") or 0
    creds_before = value(before, "odh_credentials_issued_total") or 0
    r = bob.api("POST", "/users/bob/server", json={"profile": "minimal"})
    assert r.status_code in (201, 202), r.text
    try:
        bob.wait_ready()
        after = scrape_hub(hub, admin.token)
        assert value(after, "odh_spawns_total", profile="minimal", outcome="success") == ok_before + 1
        assert value(after, "odh_credentials_issued_total") == creds_before + 1
        for stage in ("profile", "credentials", "server process", "server answering"):
            assert value(after, "odh_spawn_stage_duration_seconds_count", profile="minimal", stage=stage) >= 1, stage
        assert value(after, "jupyterhub_running_servers") >= 1  # JupyterHub's own, beside ours
        # the user's server shows up in their usage (cgroups, or /proc without them) within a refresh or two
        got = wait_for_value(lambda: scrape_platform(hub, admin.token),
                             lambda s: (value(s, "odh_user_memory_bytes", owner=user_slug("bob")) or 0) > 10 * 2**20,
                             20, "bob's server's memory")
        assert value(got, "odh_user_cpu_seconds_total", owner=user_slug("bob")) > 0
    finally:
        bob.stop()


def test_stored_bytes_per_user_follow_an_upload(hub, login, user_server):
    alice = user_server("alice")
    env = alice.env
    s3 = boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    token = login("admin").token

    def stored() -> float:
        return value(scrape_platform(hub, token), "odh_user_bucket_bytes", owner="alice") or 0

    # alice's figure may still be moving when this test starts (an earlier module's deployments deleted: their
    # model files leave her models bucket): the baseline is a figure that held across a whole storage interval
    start, deadline = stored(), time.monotonic() + 120
    while time.monotonic() < deadline:
        time.sleep(31)
        now = stored()
        if now == start:
            break
        start = now
    s3.create_bucket(Bucket="alice-metrics")
    s3.put_object(Bucket="alice-metrics", Key="blob", Body=b"x" * (3 * 2**20))
    # RGW's bucket stats are read at most every storage interval (30 s)
    got = wait_for_value(lambda: scrape_platform(hub, token),
                         lambda s: (value(s, "odh_user_bucket_bytes", owner="alice") or 0) >= start + 3 * 2**20,
                         120, "alice's 3 MiB upload in her stored bytes")
    assert value(got, "odh_user_quota_bytes", owner="alice") == 10 * 2**30  # config/demo: user_quota_max_size
    s3.delete_object(Bucket="alice-metrics", Key="blob")
    s3.delete_bucket(Bucket="alice-metrics")
