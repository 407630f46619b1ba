"""Per-group quotas (profiles.quotas): validation, the largest-of-your-groups rule, the refusal messages; the
usage API's assembly and CPU running totals (platform.usage); quotas in platform.yaml. Pure."""

from __future__ import annotations

import json

import pytest

from odh_spawner.localplatform.settings import SettingsError, parse_settings
from odh_spawner.metrics.platform import Snapshot
from odh_spawner.platform.usage import accumulate, assemble
from odh_spawner.profiles.quotas import (Limit, OdhQuotas, QuotaError, count_refusal, over, parse_quotas,
                                         resolve_quotas, storage_refusal)
from odh_spawner.spark.limits import SparkLimits, SparkUsage, check_request
from odh_spawner.spark.errors import SparkLimitError
from odh_spawner.profiles.resolve import SparkRequest

pytestmark = pytest.mark.unit

CONFIG = {
    "default": {"storage": "10Gi", "spark_workers": 4, "deployments": 20},
    "groups": {"students": {"storage": "1Gi", "deployments": 3, "spark_workers": 1},
               "power-users": {"storage": "50Gi", "spark_workers": 16}},
}
FALLBACKS = {"storage": None, "spark_workers": 4, "deployments": 20, "ingestions": 10}


def test_no_groups_get_the_default_then_the_older_setting():
    q = resolve_quotas(parse_quotas(CONFIG), [], FALLBACKS)
    assert q.storage == Limit(10 * 2**30) and q.storage.source == "the platform default"
    assert q.deployments == Limit(20)
    assert q.ingestions == Limit(10)  # not in `default`: the older setting (max_ingestions_per_user)


def test_a_group_replaces_the_default_even_when_smaller():
    q = resolve_quotas(parse_quotas(CONFIG), ["students", "unrelated"], FALLBACKS)
    assert q.storage == Limit(2**30, "students") and q.storage.source == "group students"
    assert q.deployments == Limit(3, "students")
    assert q.ingestions == Limit(10)


def test_the_largest_of_the_users_groups_wins_limit_by_limit():
    q = resolve_quotas(parse_quotas(CONFIG), ["students", "power-users"], FALLBACKS)
    assert q.storage == Limit(50 * 2**30, "power-users")
    assert q.spark_workers == Limit(16, "power-users")
    assert q.deployments == Limit(3, "students")  # power-users says nothing about deployments


def test_without_quotas_everything_is_the_older_settings():
    q = resolve_quotas(parse_quotas(None), ["students"], FALLBACKS)
    assert (q.storage, q.spark_workers, q.deployments, q.ingestions) == (Limit(None), Limit(4), Limit(20), Limit(10))
    assert not over(q.storage, 10**12)


@pytest.mark.parametrize("data, field, words", [
    ({"default": {"storage": "10Gx"}}, "quotas.default.storage", "Invalid memory quantity '10Gx'"),
    ({"default": {"storage": True}}, "quotas.default.storage", "Must be a size like '10Gi'"),
    ({"groups": {"students": {"deployments": -1}}}, "quotas.groups.students.deployments", "Must be a whole number"),
    ({"groups": {"students": {"deployments": "3"}}}, "quotas.groups.students.deployments", "Must be a whole number"),
    ({"groups": {"students": {"gpus": 1}}}, "quotas.groups.students", "Unknown limit 'gpus'"),
    ({"groups": ["students"]}, "quotas.groups", "Must be a mapping of group names"),
    ({"defaults": {}}, "quotas", "Unknown key 'defaults'"),
    ("10Gi", "quotas", "Must be a mapping"),
])
def test_bad_quotas_are_refused_naming_the_field(data, field, words):
    with pytest.raises(QuotaError) as e:
        parse_quotas(data, source="platform.yaml")
    assert e.value.field == field and words in str(e.value) and str(e.value).startswith("platform.yaml: ")


def test_quotas_in_platform_yaml_are_validated_at_load():
    s = parse_settings({"quotas": CONFIG}, "/tmp")
    assert s.quotas == CONFIG
    with pytest.raises(SettingsError) as e:
        parse_settings({"quotas": {"groups": {"students": {"storage": "lots"}}}}, "/tmp", "cfg/platform.yaml")
    assert e.value.field == "quotas.groups.students.storage"
    assert str(e.value).startswith("cfg/platform.yaml: field 'quotas.groups.students.storage': Invalid memory")
    with pytest.raises(SettingsError, match="Unknown key"):
        parse_settings({"quotas": {"group": {}}}, "/tmp")
    assert parse_settings({}, "/tmp").quotas == {}


def test_the_traitlets_setting_refuses_a_bad_value_at_start():
    assert OdhQuotas(quotas=CONFIG).for_groups(["students"], FALLBACKS).deployments == Limit(3, "students")
    with pytest.raises(QuotaError, match="OdhQuotas.quotas"):
        OdhQuotas(quotas={"default": {"spark_workers": 2.5}})


def test_refusals_name_the_limit_and_where_it_came_from():
    assert count_refusal(Limit(3, "students"), "deployment") == \
        "You may have at most 3 deployments (group students); delete one first."
    assert count_refusal(Limit(1), "ingestion") == \
        "You may have at most 1 ingestion (the platform default); delete one first."
    assert count_refusal(Limit(0, "guests"), "deployment") == \
        "You may have no deployments (group guests); ask your platform admin for a quota."
    assert storage_refusal(Limit(2**30, "students")) == \
        "Your storage quota of 1 GiB (group students) is full; delete objects first."
    assert over(Limit(3), 3) and not over(Limit(3), 2)


def test_spark_refusal_names_the_group():
    limits = SparkLimits(max_workers=1)
    limits.limit_source = "group students"
    with pytest.raises(SparkLimitError) as e:
        check_request(limits, SparkRequest(workers=2, worker_cores=1, worker_memory=2**30), SparkUsage())
    assert str(e.value) == "2 Spark workers exceed your limit of 1 (group students)."
    with pytest.raises(SparkLimitError) as e:
        check_request(limits, SparkRequest(workers=1, worker_cores=1, worker_memory=2**30), SparkUsage(1, 1))
    assert str(e.value).endswith("would exceed your limit of 1 (group students).")


def test_cpu_totals_add_positive_differences_and_survive_a_counter_reset():
    t = accumulate({}, {"alice": 10.0})
    assert t["alice"]["cpu_seconds"] == 10.0
    t = accumulate(t, {"alice": 25.0, "bob": 3.0})
    assert t["alice"]["cpu_seconds"] == 25.0 and t["bob"]["cpu_seconds"] == 3.0
    t = accumulate(t, {"alice": 4.0})  # alice's server restarted (or an ingestion's group went): a new base
    assert t["alice"] == {"cpu_seconds": 25.0, "last": 4.0}
    t = accumulate(t, {"alice": 10.0})
    assert t["alice"]["cpu_seconds"] == 31.0  # counted from the new base, nothing twice
    assert t["bob"] == {"cpu_seconds": 3.0, "last": 3.0}  # no reading of bob's now: kept as it was
    t = accumulate(t, {"alice": 10.0, "bob": 3.5})  # a reading missed once is not counted twice
    assert t["alice"]["cpu_seconds"] == 31.0 and t["bob"]["cpu_seconds"] == 3.5


def test_usage_is_assembled_from_the_snapshot_totals_and_quotas():
    snap = Snapshot(usage={"alice": {"cpu_seconds": 90.0, "memory_bytes": 300 * 2**20}},
                    storage={"alice": 5 * 2**20, "bob": 1},
                    spark=[{"owner": "alice", "phase": "ready", "workers": 2},
                           {"owner": "bob", "phase": "ready", "workers": 3}])
    quotas = resolve_quotas(parse_quotas(CONFIG), ["students"], FALLBACKS)
    got = assemble("alice", "alice", snap, {"alice": {"cpu_seconds": 7200.0, "last": 90.0}}, quotas,
                   deployments=2, ingestions=1, as_of=1000.0)
    assert got == {
        "user": "alice", "cpu_hours": 2.0, "cpu_seconds": 7200.0, "cpu_seconds_now": 90.0, "memory_bytes": 300 * 2**20,
        "storage_bytes": 5 * 2**20, "storage_known": True,
        "storage_quota_bytes": 2**30, "storage_quota_source": "group students",
        "deployments": {"count": 2, "limit": 3, "source": "group students"},
        "ingestions": {"count": 1, "limit": 10, "source": "the platform default"},
        "spark_workers": {"count": 2, "limit": 1, "source": "group students"},
        "as_of": 1000.0,
    }


def test_usage_of_a_user_the_platform_has_not_seen_is_zero():
    quotas = resolve_quotas(parse_quotas(None), [], FALLBACKS)
    got = assemble("carol", "carol", Snapshot(), {}, quotas, deployments=0, ingestions=0, as_of=5.0)
    assert (got["cpu_hours"], got["memory_bytes"], got["storage_bytes"], got["storage_known"]) == (0, 0, 0, False)
    assert got["storage_quota_bytes"] is None and got["spark_workers"] == {
        "count": 0, "limit": 4, "source": "the platform default"}


def test_the_ledger_keeps_cpu_totals_across_a_restart_of_the_service(tmp_path):
    from odh_spawner.platform.usage_handlers import TOTALS_FILE, UsageLedger

    ledger = UsageLedger(str(tmp_path), save_every=0)
    snap = Snapshot(usage={"alice": {"cpu_seconds": 30.0, "memory_bytes": 1}})
    ledger.update(snap)
    ledger.update(snap)  # the same snapshot is counted once
    assert ledger.totals["alice"]["cpu_seconds"] == 30.0 and (tmp_path / TOTALS_FILE).exists()
    again = UsageLedger(str(tmp_path))  # the service restarted: alice's total is still hers
    again.update(Snapshot(usage={"alice": {"cpu_seconds": 42.0, "memory_bytes": 1}}))
    assert again.totals["alice"]["cpu_seconds"] == 42.0
    (tmp_path / TOTALS_FILE).write_text("not json")
    assert UsageLedger(str(tmp_path)).totals == {}  # unreadable: counted from now, the service still starts


def test_the_charts_quotas_reach_the_platform_service_and_the_hub():
    from odh_spawner.kubeplatform.hubconfig import configure
    from odh_spawner.platform.app import PlatformService
    from tests.support.helm import template
    from traitlets.config import Config

    docs = template("full-values.yaml")
    dep = next(d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-platform"))
    app = PlatformService()
    app.parse_command_line(dep["spec"]["template"]["spec"]["containers"][0]["args"])
    want = {"default": {"deployments": 10},
            "groups": {"students": {"storage": "1Gi", "spark_workers": 1, "deployments": 2, "ingestions": 1}}}
    q = OdhQuotas(parent=app)
    assert q.quotas == want
    assert SparkLimits(parent=app).max_workers == 6  # spark.limits.maxWorkers: the fallback of spark_workers
    got = q.for_groups(["students"], FALLBACKS)
    assert (got.storage, got.deployments) == (Limit(2**30, "students"), Limit(2, "students"))
    config = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-hub-config"))
    settings = json.loads(config["data"]["settings.json"])
    c = Config()
    configure(c, settings, {})
    assert c.OdhQuotas.quotas == want
    assert {"name": "odh-platform-quotas", "scopes": ["read:users:groups"], "services": ["odh-platform"]} in \
        c.JupyterHub.load_roles


async def test_groups_come_from_the_hub_with_the_services_token_and_survive_a_hub_hiccup():
    from types import SimpleNamespace

    from tornado import web as tweb
    from tornado.httpserver import HTTPServer
    from tornado.testing import bind_unused_port

    from odh_spawner.platform.quotas import UserGroups

    seen = []

    class User(tweb.RequestHandler):
        def get(self, name):
            seen.append(self.request.headers.get("Authorization"))
            if name == "carol":
                self.finish({"name": "carol", "groups": ["students", "a-team"]})
            else:
                self.send_error(404)

    sock, port = bind_unused_port()
    server = HTTPServer(tweb.Application([(r"/hub/api/users/([^/]+)", User)]))
    server.add_sockets([sock])
    groups = UserGroups(SimpleNamespace(api_url=f"http://127.0.0.1:{port}/hub/api", api_token="svc-token"), ttl=0)
    try:
        assert await groups.of("carol") == ["a-team", "students"]
        assert seen == ["token svc-token"]
        assert await groups.of("nobody") == []  # unknown to the hub: the defaults apply
    finally:
        server.stop()
        sock.close()
    assert await groups.of("carol") == ["a-team", "students"]  # the hub is gone: the last answer holds
    assert await groups.of("dave") == []  # never seen, hub gone: the defaults, logged


def test_each_users_own_quota_is_in_the_metrics():
    from prometheus_client import generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from odh_spawner.credentials.rgw import quota_bytes
    from odh_spawner.metrics.platform import SnapshotCollector, registry_with

    assert quota_bytes({"enabled": True, "max_size": 2 * 2**20, "max_size_kb": 2048}) == 2 * 2**20
    assert quota_bytes({"enabled": True, "max_size": -1, "max_size_kb": 2048}) == 2 * 2**20
    assert quota_bytes({"enabled": True, "max_size": -1, "max_size_kb": 0}) is None
    assert quota_bytes({"enabled": False, "max_size": 5}) is None and quota_bytes(None) is None
    collector = SnapshotCollector()
    collector.snapshot = Snapshot(storage={"alice": 1, "carol": 2, "dave": 3}, quota_bytes=10 * 2**30,
                                  quotas={"carol": 2 * 2**20, "dave": None})
    text = generate_latest(registry_with(collector)).decode()
    got = {s.labels["owner"]: s.value for f in text_string_to_metric_families(text)
           if f.name == "odh_user_quota_bytes" for s in f.samples}
    assert got == {"alice": 10 * 2**30, "carol": 2 * 2**20}  # dave: no quota on his RGW user


def test_a_clusters_recorded_limits_keep_their_group_for_a_refused_scale_up():
    from odh_spawner.spark.api import ClusterLimits, check_scale_request

    limits = SparkLimits(max_workers=2)
    limits.limit_source = "group students"
    recorded = ClusterLimits.of(limits, 3).to_json()
    assert recorded["limit_source"] == "group students"
    back = ClusterLimits.from_json(recorded)
    with pytest.raises(SparkLimitError) as e:
        check_scale_request(back, SparkRequest(workers=1, worker_cores=1, worker_memory=2**30), 3, SparkUsage(1, 1))
    assert str(e.value) == "3 Spark workers exceed your limit of 2 (group students)."
    assert "limit_source" not in ClusterLimits.of(SparkLimits(), 3).to_json()  # as before without quotas
    assert ClusterLimits.from_json({"max_workers": 2, "limit_source": 5}).limit_source == ""


def test_the_hub_refuses_bad_chart_quotas_at_load():
    from traitlets.config import Config

    from odh_spawner.kubeplatform.hubconfig import HubSettingsError, configure
    from tests.support.helm import template

    config = next(d for d in template("full-values.yaml")
                  if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-hub-config"))
    settings = json.loads(config["data"]["settings.json"])
    settings["quotas"]["groups"]["students"]["storage"] = "0"
    with pytest.raises(HubSettingsError, match=r"quotas.groups.students.storage': Memory must be positive"):
        configure(Config(), settings, {})

