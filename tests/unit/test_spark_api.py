"""The Spark REST API's pure layer: limits recorded with a cluster, scale checks, the status object, state files."""

import json

import pytest

from odh_spawner.errors import OptionsError
from odh_spawner.profiles.resolve import SparkRequest
from odh_spawner.spark import SparkLimitError, SparkLimits, SparkUsage, parse_master_json
from odh_spawner.spark.api import DISABLED, ClusterLimits, check_scale_request, cluster_state, status_json
from odh_spawner.spark.state import ClusterState, ProcessRecord, read_state, user_clusters, write_state

GI = 2**30
TWO = SparkRequest(workers=2, worker_cores=1, worker_memory=GI)
MASTER_JSON = {
    "url": "spark://127.0.0.1:7077",
    "status": "ALIVE",
    "workers": [
        {"id": "w1", "host": "127.0.0.1", "port": 40001, "cores": 2, "coresused": 1, "memory": 1024,
         "memoryused": 512, "state": "ALIVE"},
        {"id": "w2", "host": "127.0.0.1", "port": 40002, "cores": 2, "coresused": 0, "memory": 1024,
         "memoryused": 0, "state": "ALIVE"},
        {"id": "old", "host": "127.0.0.1", "port": 40003, "cores": 2, "memory": 1024, "state": "DEAD"},
    ],
    "activeapps": [{"id": "app-1", "name": "etl", "cores": 1, "memoryperexecutor": 512, "user": "alice",
                    "state": "RUNNING", "duration": 10}],
}


# -- ClusterLimits ---------------------------------------------------------------------------------
def test_limits_recorded_at_spawn_round_trip():
    limits = ClusterLimits.of(SparkLimits(max_workers=4, max_total_workers=10), profile_max_workers=3)
    assert limits.to_json() == {"profile_max_workers": 3, "max_workers": 4, "max_total_workers": 10}
    assert ClusterLimits.from_json(json.loads(json.dumps(limits.to_json()))) == limits
    assert limits.cluster_max_workers == 3
    assert ClusterLimits(profile_max_workers=5, max_workers=2).cluster_max_workers == 2


def test_limits_missing_or_malformed_fall_back_to_the_admin_defaults():
    default = SparkLimits().max_workers
    assert ClusterLimits.from_json({}) == ClusterLimits(default, default, None)
    assert ClusterLimits.from_json(None) == ClusterLimits(default, default, None)
    bad = ClusterLimits.from_json({"profile_max_workers": "3", "max_workers": True, "max_total_workers": 0})
    assert bad == ClusterLimits(default, default, None)


# -- check_scale_request ---------------------------------------------------------------------------
def test_scale_within_every_limit():
    limits = ClusterLimits(profile_max_workers=3, max_workers=4)
    assert check_scale_request(limits, TWO, 3, SparkUsage(2, 2)) == SparkRequest(3, 1, GI)


def test_scale_above_the_profile_maximum_is_403_with_the_number():
    with pytest.raises(SparkLimitError, match=r"^4 Spark workers exceed this profile's limit of 3\.$") as e:
        check_scale_request(ClusterLimits(3, 10), TWO, 4, SparkUsage(2, 2))
    assert e.value.status_code == 403


def test_scale_counts_the_users_other_clusters_and_the_hub():
    # alice runs 2 workers on another server: 2 + 3 > 4
    with pytest.raises(SparkLimitError, match="You already run 2 Spark workers on other servers; 3 more would "
                                              "exceed your limit of 4"):
        check_scale_request(ClusterLimits(3, 4), TWO, 3, SparkUsage(user_workers=4, total_workers=4))
    # the hub-wide cap: 9 running (2 of them this cluster's), room for 1 more
    with pytest.raises(SparkLimitError, match=r"The hub runs 9 of at most 10 Spark workers; 2 more do not fit "
                                              r"\(1 free\)"):
        check_scale_request(ClusterLimits(5, 5, 10), TWO, 4, SparkUsage(user_workers=2, total_workers=9))


def test_scale_down_is_always_allowed_and_bad_numbers_are_400():
    lowered = ClusterLimits(profile_max_workers=1, max_workers=1, max_total_workers=1)
    assert check_scale_request(lowered, SparkRequest(3, 1, GI), 2, SparkUsage(3, 50)).workers == 2
    for bad in (0, -1, "2", 2.0, True, None):
        with pytest.raises(OptionsError) as e:
            check_scale_request(lowered, TWO, bad, SparkUsage(2, 2))
        assert e.value.status_code == 400


# -- status -----------------------------------------------------------------------------------------
def test_cluster_state():
    alive = parse_master_json(MASTER_JSON)
    assert cluster_state(False, alive) == "stopped"
    assert cluster_state(True, None) == "starting"
    assert cluster_state(True, parse_master_json({"status": "STANDBY"})) == "starting"
    assert cluster_state(True, alive, busy=True) == "starting"
    assert cluster_state(True, alive) == "running"


def test_status_object_matches_the_api_contract():
    status = parse_master_json(MASTER_JSON, ports=[40001, 40002, 40003])
    d = status_json(state="running", master_url="spark://127.0.0.1:7077", ui_url="/user/alice/odh/spark-ui/",
                    workers_requested=2, max_workers=3, status=status)
    assert d == {
        "enabled": True, "state": "running", "master_url": "spark://127.0.0.1:7077",
        "ui_url": "/user/alice/odh/spark-ui/", "workers_alive": 2, "workers_requested": 2, "max_workers": 3,
        "cores": 4, "cores_used": 1, "memory_mb": 2048, "memory_used_mb": 512,
        "applications": [{"id": "app-1", "name": "etl", "state": "RUNNING", "cores": 1}],
    }
    assert json.loads(json.dumps(d)) == d


def test_status_without_master_answer_or_stopped_has_zero_counts():
    status = parse_master_json(MASTER_JSON)
    for state, given in (("starting", None), ("stopped", status)):
        d = status_json(state=state, master_url="spark://x:1", ui_url="", workers_requested=2, max_workers=3,
                        status=given)
        assert d["state"] == state and d["workers_alive"] == d["cores"] == d["memory_mb"] == 0
        assert d["applications"] == [] and d["workers_requested"] == 2
    with pytest.raises(ValueError):
        status_json(state="exploded", master_url="", ui_url="", workers_requested=0, max_workers=0)
    assert DISABLED == {"enabled": False}


# -- state files --------------------------------------------------------------------------------------
def _state(tmp_path, name, user, server="", **kw) -> ClusterState:
    directory = tmp_path / name
    directory.mkdir()
    return ClusterState(name=name, directory=str(directory), user=user, server=server, **kw)


def test_state_records_what_the_platform_needs_and_lookup_by_user(tmp_path):
    a = _state(tmp_path, "alice", "alice", worker_cores=1, worker_memory=GI, ui_proxy_url="/user/alice/odh/spark-ui",
               limits={"profile_max_workers": 3, "max_workers": 4, "max_total_workers": None},
               processes=[ProcessRecord("master", 10, 5, 7077, 8080), ProcessRecord("worker-1", 11, 5, 1, 2)])
    write_state(a)
    write_state(_state(tmp_path, "alice--gpu", "alice", "gpu"))
    write_state(_state(tmp_path, "bob", "bob"))
    back = read_state(a.directory)
    assert back == a and back.master.pid == 10 and [w.role for w in back.workers] == ["worker-1"]
    assert [s.name for s in user_clusters(str(tmp_path), "alice")] == ["alice", "alice--gpu"]
    assert [s.name for s in user_clusters(str(tmp_path), "alice", "")] == ["alice"]
    assert user_clusters(str(tmp_path), "carol") == []


def test_older_and_newer_state_files_are_readable(tmp_path):
    directory = tmp_path / "c"
    directory.mkdir()
    old = {"version": 1, "name": "c", "directory": str(directory), "user": "u", "workers_requested": 1,
           "processes": [{"role": "master", "pid": 1, "started": 2, "port": 3, "ui_port": 4}],
           "added_later": {"x": 1}}
    (directory / "spark-cluster.json").write_text(json.dumps(old))
    state = read_state(str(directory))
    assert state.worker_cores == 0 and state.limits == {} and state.ui_proxy_url == ""


# -- the notebook side's Spark UI proxy ---------------------------------------------------------------
def test_master_ui_target_comes_from_the_servers_environment(monkeypatch):
    from server_extension.spark import master_ui_url

    monkeypatch.setenv("ODH_SPARK_UI_URL", "http://127.0.0.1:8080")
    assert master_ui_url() == "http://127.0.0.1:8080"
    monkeypatch.setenv("ODH_SPARK_UI_URL", "http://spark-alice-master.ns.svc:8080/some/path")
    assert master_ui_url() == "http://spark-alice-master.ns.svc:8080"
    for bad in ("", "file:///etc/passwd", "spark://127.0.0.1:7077", "http://"):
        monkeypatch.setenv("ODH_SPARK_UI_URL", bad)
        assert master_ui_url() == ""
    monkeypatch.delenv("ODH_SPARK_UI_URL")
    assert master_ui_url() == ""


def test_redirects_to_the_master_stay_behind_the_proxy():
    from server_extension.spark import proxied_location

    target, prefix = "http://127.0.0.1:8080", "/user/alice/odh/spark-ui/"
    assert proxied_location("http://127.0.0.1:8080/proxy/w1/", target, prefix) == prefix + "proxy/w1/"
    assert proxied_location("http://127.0.0.1:8080", target, prefix) == prefix
    assert proxied_location("http://127.0.0.1:80801/x", target, prefix) == "http://127.0.0.1:80801/x"
    assert proxied_location("/user/alice/odh/spark-ui/app/", target, prefix) == "/user/alice/odh/spark-ui/app/"
