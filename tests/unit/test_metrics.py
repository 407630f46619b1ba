"""The metrics' families (pure): names, types, labels (owner slugs), zero rows for every known state, the
gateway's series pruned with their deployments, the hub side's counters, RGW usage per owner."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from odh_spawner.credentials.rgw import usage_by_owner
from odh_spawner.host.usage import proc_usage, slug_of_uid
from odh_spawner.metrics import hub
from odh_spawner.metrics.modelservers import FamiliesCollector, Scrape, Screened, families
from odh_spawner.metrics.platform import GatewayMetrics, Snapshot, SnapshotCollector, registry_with
from odh_spawner.naming import user_slug

pytestmark = pytest.mark.unit


def samples(registry) -> dict:
    """{(sample name, frozenset(labels)): value} of a registry's exposition, parsed back."""
    text = generate_latest(registry).decode()
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def snapshot() -> Snapshot:
    return Snapshot(
        components={"object_store": (True, 0.004), "kafka": (False, 3.0)},
        deployments=[{"owner": "alice", "name": "iris", "state": "Available", "backend": "local", "serving": True,
                      "restarts": 2},
                     {"owner": "Bob.Smith", "name": "churn", "state": "Failed", "backend": "local",
                      "serving": True, "restarts": 5},
                     {"owner": "alice", "name": "draft", "state": "Creating", "backend": "local", "serving": False,
                      "restarts": 0}],
        deployment_states=("Creating", "Available", "Failed", "Deleting"),
        ingestions=[{"owner": "alice", "name": "clicks", "state": "running", "records": 10000, "bytes": 123456,
                     "partitions": {"0": {"lag": 7}, "1": {"lag": 0}}, "last_object_at": 1765000000.5,
                     "restarts": 1}],
        ingestion_states=("running", "paused", "stopped", "starting", "restarting"),
        spark=[{"owner": "alice", "phase": "ready", "workers": 2}, {"owner": "alice", "phase": "failed", "workers": 0}],
        usage={"alice": {"cpu_seconds": 12.5, "memory_bytes": 300 * 2**20}},
        storage={"alice": 5 * 2**20},
        quota_bytes=2**30,
        disk=(100 * 2**30, 7 * 2**30),
    )


def test_snapshot_families_are_named_typed_and_labelled_as_documented():
    got = samples(registry_with(collector_of(snapshot())))
    L = lambda **kw: frozenset(kw.items())  # noqa: E731
    assert got[("odh_component_up", L(component="object_store"))] == 1
    assert got[("odh_component_up", L(component="kafka"))] == 0
    assert got[("odh_component_probe_seconds", L(component="kafka"))] == 3.0
    # every state has a row, 0 when empty, so an alert can compare without absent()
    assert got[("odh_deployments", L(state="Available", backend="local"))] == 1
    assert got[("odh_deployments", L(state="Deleting", backend="local"))] == 0
    slug = user_slug("Bob.Smith")
    assert slug != "Bob.Smith"
    assert got[("odh_deployment_up", L(owner=slug, deployment="churn"))] == 0
    assert got[("odh_deployment_up", L(owner="alice", deployment="iris"))] == 1
    assert ("odh_deployment_up", L(owner="alice", deployment="draft")) not in got  # not serving: no row
    assert got[("odh_deployment_restarts_total", L(owner=slug, deployment="churn"))] == 5
    assert got[("odh_ingestions", L(state="running"))] == 1
    assert got[("odh_ingestions", L(state="paused"))] == 0
    assert got[("odh_ingestion_records_total", L(owner="alice", ingestion="clicks"))] == 10000
    assert got[("odh_ingestion_bytes_total", L(owner="alice", ingestion="clicks"))] == 123456
    assert got[("odh_ingestion_lag_records", L(owner="alice", ingestion="clicks", partition="0"))] == 7
    assert got[("odh_ingestion_last_commit_timestamp_seconds", L(owner="alice", ingestion="clicks"))] == 1765000000.5
    assert got[("odh_ingestion_worker_restarts_total", L(owner="alice", ingestion="clicks"))] == 1
    assert got[("odh_spark_clusters", L(phase="ready"))] == 1
    assert got[("odh_spark_clusters", L(phase="failed"))] == 1
    assert got[("odh_spark_clusters", L(phase="starting"))] == 0
    assert got[("odh_spark_workers", L(owner="alice"))] == 2
    assert got[("odh_user_cpu_seconds_total", L(owner="alice"))] == 12.5
    assert got[("odh_user_memory_bytes", L(owner="alice"))] == 300 * 2**20
    assert got[("odh_user_bucket_bytes", L(owner="alice"))] == 5 * 2**20
    assert got[("odh_user_quota_bytes", L(owner="alice"))] == 2**30
    assert got[("odh_object_store_capacity_bytes", L())] == 100 * 2**30
    assert got[("odh_object_store_free_bytes", L())] == 7 * 2**30


def test_every_documented_platform_metric_is_exposed_and_nothing_undocumented():
    import pathlib
    import re

    doc = (pathlib.Path(__file__).resolve().parents[2] / "docs" / "metrics.md").read_text()
    documented = set(re.findall(r"^\| `(odh_[a-z_]+)` \|", doc, re.M))
    registry = registry_with(collector_of(snapshot()))
    gw = GatewayMetrics(registry)
    gw.observe("alice", "iris", 200, 0.01)
    # <platform>/metrics/models: the scrape's own odh_model_server_scrape_* families (MLServer's are not odh_*)
    models = CollectorRegistry()
    models.register(FamiliesCollector(families([Scrape("alice", "iris", True, 0.01, Screened())])))
    names = {fam.name for reg in (registry, models)
             for fam in text_string_to_metric_families(generate_latest(reg).decode())
             if not fam.name.endswith("_created")}  # prometheus_client's creation times, where not disabled
    names = {n + "_total" if f"{n}_total" in documented else n for n in names}
    hub_names = {"odh_spawns_total", "odh_spawn_stage_duration_seconds", "odh_credentials_issued_total",
                 "odh_credentials_failures_total", "odh_spark_cluster_starts_total", "odh_spark_cluster_start_seconds"}
    assert names | hub_names == documented


def test_without_a_quota_or_disk_those_series_are_absent():
    snap = snapshot()
    snap.quota_bytes, snap.disk = None, None
    got = {name for name, _ in samples(registry_with(collector_of(snap)))}
    assert "odh_user_quota_bytes" not in got and "odh_object_store_free_bytes" not in got
    assert "odh_user_bucket_bytes" in got


def test_gateway_counts_by_owner_slug_and_status_and_prunes_deleted_deployments():
    registry = CollectorRegistry()
    gw = GatewayMetrics(registry)
    gw.observe("Bob.Smith", "churn", 200, 0.004)
    gw.observe("Bob.Smith", "churn", 200, 0.006)
    gw.observe("Bob.Smith", "churn", 502, 1.5)
    gw.observe("alice", "iris", 200, 0.01)
    got = samples(registry)
    slug = user_slug("Bob.Smith")
    assert got[("odh_gateway_requests_total", frozenset({"owner": slug, "deployment": "churn", "code": "200"}.items()))] == 2
    assert got[("odh_gateway_requests_total", frozenset({"owner": slug, "deployment": "churn", "code": "502"}.items()))] == 1
    assert got[("odh_gateway_request_duration_seconds_count",
                frozenset({"owner": slug, "deployment": "churn"}.items()))] == 3
    gw.prune({("alice", "iris")})
    left = {dict(labels).get("deployment") for (name, labels) in samples(registry) if name.startswith("odh_gateway")}
    assert left == {"iris"}


def test_hub_side_counters_count_spawns_stages_credentials_and_spark_starts():
    def value(name, **labels):
        return next(
            (s.value for fam in text_string_to_metric_families(generate_latest().decode()) for s in fam.samples
             if s.name == name and s.labels == labels), 0.0)

    before = value("odh_spawns_total", profile="unit-test-profile", outcome="failure")
    stage_before = value("odh_spawn_stage_duration_seconds_count", profile="unit-test-profile", stage="credentials")
    hub.record_spawn("unit-test-profile", False, {"profile": 0.01, "credentials": 0.2})
    assert value("odh_spawns_total", profile="unit-test-profile", outcome="failure") == before + 1
    assert value("odh_spawn_stage_duration_seconds_count", profile="unit-test-profile",
                 stage="credentials") == stage_before + 1
    issued, failed = value("odh_credentials_issued_total"), value("odh_credentials_failures_total")
    hub.record_credentials(True)
    hub.record_credentials(False)
    assert (value("odh_credentials_issued_total"), value("odh_credentials_failures_total")) == (issued + 1, failed + 1)
    starts = value("odh_spark_cluster_starts_total", outcome="success")
    hub.record_spark_start(True, 12.0)
    assert value("odh_spark_cluster_starts_total", outcome="success") == starts + 1


def test_rgw_usage_sums_bucket_stats_per_owner_and_ignores_malformed_entries():
    stats = [
        {"bucket": "a", "owner": "odh-alice", "usage": {"rgw.main": {"size": 1000, "size_actual": 4096,
                                                                      "num_objects": 1}}},
        {"bucket": "b", "owner": "odh-alice", "usage": {"rgw.main": {"size": 10, "size_actual": 4096,
                                                                      "num_objects": 2}}},
        {"bucket": "c", "owner": "odh-bob", "usage": {}},
        "not-a-bucket", {"bucket": "d"},
    ]
    assert usage_by_owner(stats) == {"odh-alice": {"bytes": 8192, "objects": 3, "buckets": 2},
                                     "odh-bob": {"bytes": 0, "objects": 0, "buckets": 1}}


def test_usage_is_attributed_to_odh_accounts_only():
    assert slug_of_uid(0) is None  # root is nobody's usage
    assert all(not slug.startswith("odh-") for slug in proc_usage())


def collector_of(snap: Snapshot) -> SnapshotCollector:
    c = SnapshotCollector()
    c.snapshot = snap
    return c
