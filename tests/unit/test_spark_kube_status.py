"""The Spark API on Kubernetes, pure parts: what an anchor records (limits, type, proxied UI), the status built
from the cluster's objects (with and without the master's JSON), and the patches that scale and restart it
(applied to the built manifests, the results still valid Kubernetes)."""

import json

import jsonpatch
import kubernetes_validate
import pytest

from odh_spawner.profiles.resolve import SparkRequest
from odh_spawner.spark import kube
from odh_spawner.spark.api import ClusterLimits
from odh_spawner.spark.kube_status import anchor_info, connect_status, master_ui_base, standalone_status
from tests.unit.test_spark_status import MASTER_JSON

K8S = kubernetes_validate.utils.latest_version()
GI = 2**30
IMAGE = "quay.io/opendatahub/workbench-images@sha256:" + "a" * 64
LIMITS = ClusterLimits(profile_max_workers=3, max_workers=4, max_total_workers=20)
UI_PATH = "/user/alice/odh/spark-ui"


def spec(**kw) -> kube.KubeSparkSpec:
    base = dict(user="alice", server="", namespace="odh", image=IMAGE, request=SparkRequest(2, 1, GI),
                anchor_uid="6f1c0c52-0000-4000-8000-000000000001", ui_proxy_url=UI_PATH,
                limits=json.dumps(LIMITS.to_json()))
    return kube.KubeSparkSpec(**{**base, **kw})


def ready(deployment: dict, n: int) -> dict:
    return {**deployment, "status": {"replicas": n, "readyReplicas": n}}


def common(**kw):
    return dict(master_url="spark://spark-alice-master.odh.svc:7077",
                in_cluster_ui="http://spark-alice-master.odh.svc:8080", **kw)


def test_the_anchor_records_type_limits_and_the_proxied_ui():
    a = kube.anchor_configmap(spec())
    kubernetes_validate.validate(a, K8S, strict=True)
    assert a["data"]["cluster_type"] == "standalone" and a["data"]["ui_proxy_url"] == UI_PATH
    info = anchor_info(a)
    assert (info.name, info.cluster_type, info.request, info.limits, info.ui_proxy_url, info.deleting) == \
        ("spark-anchor-alice", "standalone", SparkRequest(2, 1, GI), LIMITS, UI_PATH, False)
    assert info.limits.cluster_max_workers == 3


def test_an_anchor_without_recorded_limits_never_grows_past_its_start():
    a = kube.anchor_configmap(spec(limits="", ui_proxy_url=""))
    assert "limits" not in a["data"] and "ui_proxy_url" not in a["data"]
    assert anchor_info(a).limits.profile_max_workers == 2
    a["data"]["limits"] = "{not json"
    assert anchor_info(a).limits.profile_max_workers == 2
    del a["data"]["cluster_type"]  # written before the type was recorded
    assert anchor_info(a).cluster_type == "standalone"
    a["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    assert anchor_info(a).deleting
    assert anchor_info({"metadata": {"name": "x"}, "data": {"workers": "two"}}) is None
    assert anchor_info({}) is None


def test_standalone_status_from_the_masters_json():
    s = spec()
    info = anchor_info(kube.anchor_configmap(s))
    master, worker = ready(kube.master_deployment(s), 1), ready(kube.worker_deployment(s), 2)
    got = standalone_status(info, master, worker, MASTER_JSON, **common())
    assert got["state"] == "running" and got["ui_url"] == UI_PATH + "/"
    assert (got["workers_alive"], got["cores"], got["workers_requested"], got["max_workers"]) == (3, 11, 2, 3)
    assert got["applications"] == [{"id": "app-1", "name": "etl", "state": "RUNNING", "cores": 1}]
    assert standalone_status(info, master, worker, MASTER_JSON, busy=True, **common())["state"] == "starting"
    assert standalone_status(info, master, worker, {**MASTER_JSON, "status": "RECOVERING"},
                             **common())["state"] == "starting"


def test_standalone_status_from_ready_pods_when_the_master_is_out_of_reach():
    s = spec()
    info = anchor_info(kube.anchor_configmap(s))
    master, worker = kube.master_deployment(s), kube.worker_deployment(s)
    assert standalone_status(info, master, worker, None, **common())["state"] == "starting"  # no pod ready
    assert standalone_status(info, ready(master, 1), ready(worker, 0), None, **common())["state"] == "starting"
    got = standalone_status(info, ready(master, 1), ready(worker, 2), None, **common())
    assert (got["state"], got["workers_alive"], got["cores"], got["memory_mb"], got["applications"]) == \
        ("running", 2, 2, 2048, [])
    # without a proxied path the user gets the in-cluster address
    bare = anchor_info(kube.anchor_configmap(spec(ui_proxy_url="")))
    assert standalone_status(bare, None, None, None, **common())["ui_url"] == "http://spark-alice-master.odh.svc:8080/"


def test_standalone_status_of_a_stopping_or_missing_cluster():
    s = spec()
    a = kube.anchor_configmap(s)
    info = anchor_info(a)
    got = standalone_status(info, None, None, None, **common())
    assert got["state"] == "stopped" and got["workers_alive"] == 0 and got["enabled"] is True
    a["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    master = ready(kube.master_deployment(s), 1)
    assert standalone_status(anchor_info(a), master, None, MASTER_JSON, **common())["state"] == "stopped"


@pytest.mark.parametrize("operator_state,state", [("Ready", "running"), ("Provisioning", "starting"),
                                                  ("NotReady", "starting"), ("", "starting"), ("Failed", "stopped"),
                                                  ("SomethingNew", "starting")])
def test_spark_connect_status_follows_the_operator(operator_state, state):
    s = spec(cluster_type="spark-connect", ui_proxy_url="")
    info = anchor_info(kube.anchor_configmap(s))
    sc = {**kube.spark_connect(s), "status": {"state": operator_state, "executors": {"running": 2, "pending": 1}}}
    got = connect_status(info, sc, remote_url="sc://spark-alice-server.odh.svc.cluster.local:15002")
    assert got["state"] == state and got["workers_requested"] == 2 and got["ui_url"] == ""
    assert got["workers_alive"] == (0 if state == "stopped" else 2)
    assert connect_status(info, None, remote_url="sc://x:1")["state"] == "stopped"


def test_scale_patches_the_worker_deployment_or_the_executors():
    s = spec()
    worker = jsonpatch.apply_patch(kube.worker_deployment(s), kube.scale_patch("standalone", 3))
    assert worker["spec"]["replicas"] == 3
    kubernetes_validate.validate(worker, K8S, strict=True)
    sc = jsonpatch.apply_patch(kube.spark_connect(s), kube.scale_patch("spark-connect", 3))
    assert sc["spec"]["executor"]["instances"] == 3
    a = jsonpatch.apply_patch(kube.anchor_configmap(s), kube.anchor_data_patch(3))
    assert anchor_info(a).request.workers == 3 and kube.usage_from_anchors([a], "alice").user_workers == 3


def test_restart_patch_adds_the_rollout_annotation_and_keeps_others():
    d = kube.master_deployment(spec())
    restarted = jsonpatch.apply_patch(d, kube.restart_patch(d, "2026-11-22T10:00:00Z"))
    assert restarted["spec"]["template"]["metadata"]["annotations"] == {
        "hub.jupyter.org/username": "alice", "hub.jupyter.org/servername": "",
        "kubectl.kubernetes.io/restartedAt": "2026-11-22T10:00:00Z"}
    assert restarted["spec"]["template"]["metadata"]["labels"] == d["spec"]["template"]["metadata"]["labels"]
    kubernetes_validate.validate(restarted, K8S, strict=True)
    again = jsonpatch.apply_patch(
        {**restarted, "spec": {**restarted["spec"], "template": {**restarted["spec"]["template"], "metadata": {
            **restarted["spec"]["template"]["metadata"],
            "annotations": {"theirs": "kept", "kubectl.kubernetes.io/restartedAt": "old"}}}}},
        kube.restart_patch({"spec": {"template": {"metadata": {"annotations": {"theirs": "kept"}}}}}, "new"))
    assert again["spec"]["template"]["metadata"]["annotations"] == {
        "theirs": "kept", "kubectl.kubernetes.io/restartedAt": "new"}


def test_reverse_proxy_mode_when_the_server_proxies_the_ui():
    s = spec()
    master_env = {e["name"]: e.get("value") for e in kube.master_deployment(s)["spec"]["template"]["spec"]
                  ["containers"][0]["env"]}
    worker_env = {e["name"]: e.get("value") for e in kube.worker_deployment(s)["spec"]["template"]["spec"]
                  ["containers"][0]["env"]}
    opts = f"-Dspark.ui.reverseProxy=true -Dspark.ui.reverseProxyUrl={UI_PATH}"
    assert master_env["SPARK_MASTER_OPTS"].endswith(" " + opts)
    assert worker_env["SPARK_WORKER_OPTS"] == "-Dspark.authenticate=true " + opts
    plain = spec(ui_proxy_url="")
    worker_env = {e["name"]: e.get("value") for e in kube.worker_deployment(plain)["spec"]["template"]["spec"]
                  ["containers"][0]["env"]}
    assert worker_env["SPARK_WORKER_OPTS"] == "-Dspark.authenticate=true"
    assert "reverseProxy" not in json.dumps(kube.master_deployment(plain))
    # the notebook's driver too, so the master's links to a running application's UI work through the proxy
    assert kube.notebook_env(s)["SPARK_SUBMIT_OPTS"] == opts and "SPARK_SUBMIT_OPTS" not in kube.notebook_env(plain)


def test_master_ui_base():
    assert master_ui_base("http://{master}.{namespace}.svc:{port}", "spark-alice-master", "odh") == \
        "http://spark-alice-master.odh.svc:8080"
    assert master_ui_base("http://127.0.0.1:4321/", "m", "n") == "http://127.0.0.1:4321"
