"""Screening users' model servers' metrics before the platform re-exposes them (odh_spawner.metrics.modelservers,
pure): MLServer's own families pass with the owner's slug and the deployment set on every sample; what a model
server running its owner's code could say to pass as someone else, or as the platform, does not. The real
exposition is tests/fixtures/mlserver-1.7.1-metrics.txt, read from a real MLServer 1.7.1 (parallel_workers 0,
one sklearn model `m`, after one prediction)."""

from __future__ import annotations

import pathlib
import time

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from odh_spawner.metrics.modelservers import FAMILIES, FamiliesCollector, Scrape, families, screen
from odh_spawner.localplatform.prometheus import MODEL_METRICS, prometheus_config

pytestmark = pytest.mark.unit

REAL = (pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "mlserver-1.7.1-metrics.txt").read_text()


def render(scrapes) -> str:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FamiliesCollector(families(scrapes)))
    return generate_latest(registry).decode()


def parsed(text: str) -> dict:
    """{(sample name, frozenset(labels)): value}, parsed back as Prometheus would read it."""
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def L(**labels):
    return frozenset(labels.items())


def test_a_real_mlserver_exposition_keeps_mlservers_families_labelled_with_owner_and_deployment():
    got = screen(REAL, "alice", "churn", "alice.churn", 1000)
    names = {row[0] for row in got.rows}
    assert names == {"model_infer_request_success", "model_infer_request_failure", "model_infer_request_duration",
                     "rest_server_requests_in_progress", "rest_server_requests", "rest_server_request_duration_seconds",
                     "process_virtual_memory_bytes", "process_resident_memory_bytes", "process_start_time_seconds",
                     "process_cpu_seconds", "process_open_fds", "process_max_fds"}
    assert all(r[2]["owner"] == "alice" and r[2]["deployment"] == "churn" for r in got.rows)
    # python_* (4 families, 10 samples) and the five _created gauges are not re-exposed
    assert got.dropped == 10 + 5
    out = parsed(render([Scrape("alice", "churn", True, 0.01, got)]))
    assert out[("model_infer_request_success_total", L(model="alice.churn", version="None", owner="alice",
                                                       deployment="churn"))] == 1.0
    assert out[("rest_server_request_duration_seconds_bucket",
                L(app_name="mlserver", le="+Inf", method="POST", path="/v2/models/{model_name}/infer",
                  status_code="200", owner="alice", deployment="churn"))] == 1.0
    assert out[("odh_model_server_scrape_up", L(owner="alice", deployment="churn"))] == 1.0
    assert out[("odh_model_server_scrape_samples_dropped", L(owner="alice", deployment="churn"))] == 15.0
    assert not any(name.startswith("python_") or name.endswith("_created") for name, _ in out)


def test_a_model_server_cannot_claim_another_owner_or_deployment_or_model():
    text = ('# TYPE model_infer_request_success_total counter\n'
            'model_infer_request_success_total{model="bob.fraud",version="v1",owner="bob",deployment="fraud"} 99\n'
            'model_infer_request_success_total{model="alice.churn",version="v1"} 3\n'
            '# TYPE rest_server_requests_in_progress gauge\n'
            'rest_server_requests_in_progress{job="odh-platform",instance="x:1",method="POST"} 2\n')
    got = parsed(render([Scrape("alice", "churn", True, 0.0, screen(text, "alice", "churn", "alice.churn", 100))]))
    rows = {k: v for k, v in got.items() if k[0] == "model_infer_request_success_total"}
    # the spoofed owner/deployment/model labels became alice's; the two samples collide, the first is kept
    assert rows == {("model_infer_request_success_total",
                     L(model="alice.churn", version="v1", owner="alice", deployment="churn")): 99.0}
    assert not any(dict(labels).get("owner") == "bob" for _, labels in got)
    assert got[("rest_server_requests_in_progress", L(method="POST", owner="alice", deployment="churn"))] == 2.0
    assert got[("odh_model_server_scrape_samples_dropped", L(owner="alice", deployment="churn"))] == 1.0


def test_odh_series_and_other_families_are_never_re_exposed():
    text = ('# TYPE odh_deployment_up gauge\nodh_deployment_up{owner="bob",deployment="fraud"} 0\n'
            'odh_model_server_scrape_up{owner="bob",deployment="fraud"} 0\n'
            '# TYPE odh_user_cpu_seconds_total counter\nodh_user_cpu_seconds_total{owner="bob"} 1e9\n'
            'up{job="odh-platform"} 0\n'
            '# TYPE my_custom gauge\nmy_custom 1\n'
            '# TYPE process_open_fds gauge\nprocess_open_fds 12\n')
    s = screen(text, "alice", "churn", "alice.churn", 100)
    assert [(r[1], r[3]) for r in s.rows] == [("process_open_fds", 12.0)]
    assert s.dropped == 5
    out = render([Scrape("alice", "churn", True, 0.0, s), Scrape("bob", "fraud", False, 2.0, None, "timeout")])
    got = parsed(out)
    assert got[("odh_model_server_scrape_up", L(owner="bob", deployment="fraud"))] == 0.0  # ours, not alice's
    assert not any(name in ("odh_deployment_up", "odh_user_cpu_seconds_total", "up", "my_custom")
                   for name, _ in got)
    assert out.count("# TYPE odh_model_server_scrape_up ") == 1


def test_a_family_declared_with_another_type_or_foreign_sample_names_is_dropped():
    # alice declares MLServer's counter a gauge (which would clash with bob's real counter in one exposition)
    text = ('# TYPE model_infer_request_success gauge\nmodel_infer_request_success{model="x"} 5\n'
            '# TYPE rest_server_request_duration_seconds histogram\n'
            'rest_server_request_duration_seconds_bucket{le="+Inf"} 1\n'
            'rest_server_request_duration_seconds_count 1\nrest_server_request_duration_seconds_sum 0.1\n')
    alice = screen(text, "alice", "churn", "alice.churn", 100)
    assert {r[0] for r in alice.rows} == {"rest_server_request_duration_seconds"} and alice.dropped == 1
    bob = screen(REAL, "bob", "fraud", "bob.fraud", 1000)
    out = render([Scrape("alice", "churn", True, 0.0, alice), Scrape("bob", "fraud", True, 0.0, bob)])
    types = {f.name: f.type for f in text_string_to_metric_families(out)}
    assert types["model_infer_request_success"] == "counter"
    assert out.count("# TYPE rest_server_request_duration_seconds histogram") == 1
    got = parsed(out)
    assert got[("rest_server_request_duration_seconds_count", L(owner="alice", deployment="churn"))] == 1.0
    assert got[("model_infer_request_success_total", L(model="bob.fraud", version="None", owner="bob",
                                                       deployment="fraud"))] == 1.0


@pytest.mark.parametrize("labels", ['{"odh x"="1"}', '{a="' + "v" * 300 + '"}',
                                    "{" + ",".join(f'l{i}="x"' for i in range(17)) + "}"])
def test_malformed_or_oversized_labels_drop_the_sample(labels):
    s = screen(f"# TYPE process_open_fds gauge\nprocess_open_fds{labels} 1\nprocess_max_fds 9\n", "alice", "churn",
               "alice.churn", 100)
    assert s.rows == [] and s.dropped == 2  # (process_max_fds has no TYPE of its own here: an unknown family)


@pytest.mark.parametrize("labels, error", [('{__name__="odh_deployment_up"}', "metric name specified more than once"),
                                           ('{__meta_owner="bob"}', "Invalid labels")])
def test_reserved_label_names_do_not_parse(labels, error):
    """`{__name__=...}` would rename the sample, `__*` labels are Prometheus's: prometheus_client's parser
    refuses both, so the whole answer is reported unread (up 0) rather than half-read."""
    with pytest.raises(ValueError, match=error):
        screen(f"# TYPE process_open_fds gauge\nprocess_open_fds{labels} 1\n", "alice", "churn", "alice.churn", 100)


def test_huge_output_is_capped_per_deployment_by_whole_series():
    lines = ["# TYPE rest_server_request_duration_seconds histogram"]
    for i in range(5000):
        for le in ("0.1", "+Inf"):
            lines.append(f'rest_server_request_duration_seconds_bucket{{path="/p{i}",le="{le}"}} 1')
        lines.append(f'rest_server_request_duration_seconds_count{{path="/p{i}"}} 1')
    lines.append("# TYPE process_open_fds gauge\nprocess_open_fds 3")
    began = time.perf_counter()
    s = screen("\n".join(lines) + "\n", "alice", "churn", "alice.churn", 100)
    took = time.perf_counter() - began
    paths = {r[2]["path"] for r in s.rows}
    assert len(paths) == 100 and paths == {f"/p{i}" for i in range(100)}
    assert len(s.rows) == 300  # each kept series whole: two buckets and the count
    assert s.dropped == 5000 * 3 - 300 + 1  # the rest, and everything after the cap
    assert took < 5, took


def test_an_exposition_that_does_not_parse_raises_value_error():
    with pytest.raises(ValueError):
        screen('process_open_fds{a="1" 3\n', "alice", "churn", "alice.churn", 100)


def test_a_down_model_server_shows_up_zero_with_no_samples():
    got = parsed(render([Scrape("alice", "churn", False, 2.0, None, "did not answer")]))
    assert got == {("odh_model_server_scrape_up", L(owner="alice", deployment="churn")): 0.0,
                   ("odh_model_server_scrape_duration_seconds", L(owner="alice", deployment="churn")): 2.0}


def test_every_allowlisted_family_has_a_type_prometheus_knows():
    assert set(FAMILIES.values()) <= {"counter", "gauge", "summary", "histogram"}
    assert not any(name.startswith("odh_") for name in FAMILIES)


def test_the_local_prometheus_scrapes_the_model_servers_through_the_platform():
    jobs = {j["job_name"]: j for j in prometheus_config("http://127.0.0.1:1", "http://127.0.0.1:2", "/t", [])[
        "scrape_configs"]}
    assert jobs["odh-models"]["metrics_path"] == MODEL_METRICS == "/services/odh-platform/metrics/models"
    assert jobs["odh-models"]["static_configs"] == jobs["odh-platform"]["static_configs"]
    assert jobs["odh-models"]["authorization"] == {"credentials_file": "/t"}
