"""The platform service's Spark API on Kubernetes (KubeSparkClusters) against the emulated API server of
test_kube_emulated.py: the cluster OdhKubeSpawner created is reported, scaled within the limits recorded at
spawn, restarted, and kept from other users. kmock is not a cluster: no Deployment controller runs, so the
test writes the Deployments' ready replicas itself (as the controller would); no pods or Spark run in it.
Live counts from a master's JSON are read from a real Spark standalone master on this machine."""

import asyncio
import json

import pytest

from odh_spawner.errors import OptionsError
from odh_spawner.platform.kube_spark import KubeSparkClusters
from odh_spawner.platform.spark_handlers import NoSparkCluster, SparkBusy, SparkUnavailable
from odh_spawner.resolve import SparkRequest
from odh_spawner.spark import LocalSparkCluster, SparkLimitError
from odh_spawner.spark import kube as spark_kube
from tests.integration.test_kube_emulated import (NS, emulator, kube_spawner, kubeconfig,  # noqa: F401 (fixtures)
                                                  kubelet, stored, validate_everything)

DEPLOYMENTS = "apps/v1/deployments"
UI_PATH = "/user/alice/odh/spark-ui"


async def deployment_ready(k, name: str, replicas: int) -> None:
    """What the Deployment controller reports once `replicas` pods are ready."""
    r = await k.patch(f"/apis/apps/v1/namespaces/{NS}/deployments/{name}/status",
                      json={"status": {"replicas": replicas, "readyReplicas": replicas}})
    assert r.status == 200, await r.text()


@pytest.fixture
async def clusters(kubeconfig):  # noqa: F811
    made = []

    def make(**kw) -> KubeSparkClusters:
        c = KubeSparkClusters(**{"kubeconfig": kubeconfig, "namespace": NS, "request_timeout": 2,
                                 "retry_timeout": 3, "master_ui_url": "", **kw})
        made.append(c)
        return c

    yield make
    for c in made:
        await c.close()


async def start_alice(kube_spawner, workers=1, **config):  # noqa: F811
    sp = kube_spawner(SparkLimits={"max_workers": 4}, **config)
    await sp._apply_odh_options(sp, {"profile": "datascience", "spark": {"workers": workers}})
    await asyncio.wait_for(sp.start(), 15)
    return sp


async def test_status_scale_and_restart_of_the_callers_own_cluster(emulator, kube_spawner, kubelet,  # noqa: F811
                                                                   clusters):
    sp = await start_alice(kube_spawner)
    anchor = stored(emulator, "v1/configmaps", "spark-anchor-alice")
    assert json.loads(anchor["data"]["limits"]) == {"profile_max_workers": 3, "max_workers": 4,
                                                    "max_total_workers": None}
    assert anchor["data"]["ui_proxy_url"] == UI_PATH and anchor["data"]["cluster_type"] == "standalone"
    master = stored(emulator, DEPLOYMENTS, "spark-alice-master")
    env = {e["name"]: e.get("value") for e in master["spec"]["template"]["spec"]["containers"][0]["env"]}
    assert f"-Dspark.ui.reverseProxyUrl={UI_PATH}" in env["SPARK_MASTER_OPTS"]

    api = clusters()
    status = await api.status("alice")
    assert (status["state"], status["workers_requested"], status["max_workers"]) == ("starting", 1, 3)
    assert status["master_url"] == "spark://spark-alice-master.odh.svc:7077" and status["ui_url"] == UI_PATH + "/"
    await deployment_ready(emulator, "spark-alice-master", 1)
    await deployment_ready(emulator, "spark-alice-worker", 1)
    status = await api.status("alice")
    assert (status["state"], status["workers_alive"], status["cores"], status["memory_mb"]) == \
        ("running", 1, 1, 1024)
    assert await api.status("bob") == {"enabled": False}

    # scale within the profile's limit: the worker Deployment and the anchor's record follow
    status = await api.scale("alice", "", 3)
    assert stored(emulator, DEPLOYMENTS, "spark-alice-worker")["spec"]["replicas"] == 3
    assert stored(emulator, "v1/configmaps", "spark-anchor-alice")["data"]["workers"] == "3"
    assert status["workers_requested"] == 3
    with pytest.raises(SparkLimitError, match="4 Spark workers exceed this profile's limit of 3"):
        await api.scale("alice", "", 4)
    with pytest.raises(OptionsError):
        await api.scale("alice", "", 0)
    with pytest.raises(NoSparkCluster):  # bob has none, and cannot reach alice's
        await api.scale("bob", "", 1)
    assert (await api.scale("alice", "", 2))["workers_requested"] == 2
    assert stored(emulator, DEPLOYMENTS, "spark-alice-worker")["spec"]["replicas"] == 2

    # restart: what `kubectl rollout restart` writes, on master and workers
    await api.restart("alice", "")
    for name in ("spark-alice-master", "spark-alice-worker"):
        template = stored(emulator, DEPLOYMENTS, name)["spec"]["template"]["metadata"]
        assert "kubectl.kubernetes.io/restartedAt" in template["annotations"]
        assert template["labels"]["app.kubernetes.io/instance"] == "spark-alice"
    with pytest.raises(NoSparkCluster):
        await api.restart("bob", "")
    assert validate_everything(emulator) >= 10

    # the server stops: the anchor goes (the garbage collector takes the rest); the API says so
    await sp.stop()
    await sp.run_post_stop_hook()
    assert await api.status("alice") == {"enabled": False}
    with pytest.raises(NoSparkCluster):
        await api.scale("alice", "", 1)


async def test_usage_over_all_of_a_users_clusters_counts_at_scale(emulator, kube_spawner, kubelet,  # noqa: F811
                                                                  clusters):
    sp = await start_alice(kube_spawner, workers=2)
    other = spark_kube.anchor_configmap(spark_kube.KubeSparkSpec(  # alice's named server "gpu" runs 2 workers
        user="alice", server="gpu", namespace=NS, image="x", request=SparkRequest(2, 1, 2**30),
        ui_proxy_url="/user/alice/gpu/odh/spark-ui"))
    assert (await emulator.post(f"/api/v1/namespaces/{NS}/configmaps", json=other)).status == 200
    with pytest.raises(SparkLimitError, match="exceed your limit of 4"):
        await clusters().scale("alice", "", 3)
    assert stored(emulator, DEPLOYMENTS, "spark-alice-worker")["spec"]["replicas"] == 2
    status = await clusters().status("alice", "gpu")
    assert status["workers_requested"] == 2 and status["ui_url"] == "/user/alice/gpu/odh/spark-ui/"
    await sp.stop()
    await sp.run_post_stop_hook()


async def test_spark_connect_scales_executors_and_restarts_with_the_server(emulator, kube_spawner, kubelet,  # noqa: F811
                                                                            clusters):
    sp = await start_alice(kube_spawner, KubeSpark={"cluster_type": "spark-connect"})
    api = clusters()
    assert (await api.status("alice"))["state"] == "starting"
    r = await emulator.patch(f"/apis/sparkoperator.k8s.io/v1alpha1/namespaces/{NS}/sparkconnects/spark-alice/status",
                             json={"status": {"state": "Ready", "executors": {"running": 1}}})
    assert r.status == 200
    status = await api.status("alice")
    assert (status["state"], status["workers_alive"], status["ui_url"]) == ("running", 1, "")
    assert status["master_url"] == "sc://spark-alice-server.odh.svc.cluster.local:15002"
    await api.scale("alice", "", 2)
    assert stored(emulator, "sparkoperator.k8s.io/v1alpha1/sparkconnects", "spark-alice")["spec"]["executor"][
        "instances"] == 2
    with pytest.raises(SparkBusy, match="restarts with your server"):
        await api.restart("alice", "")
    validate_everything(emulator)
    await sp.stop()
    await sp.run_post_stop_hook()


async def test_an_api_that_refuses_becomes_a_503_message(emulator, kube_spawner, kubelet, clusters):  # noqa: F811
    sp = await start_alice(kube_spawner)
    import kmock

    emulator["patch", kmock.resource(DEPLOYMENTS)] << 403 << {
        "kind": "Status", "apiVersion": "v1", "code": 403, "status": "Failure", "reason": "Forbidden",
        "message": "deployments.apps is forbidden"}
    with pytest.raises(SparkUnavailable, match=r"refused changing the Deployment spark-alice-worker \(403"):
        await clusters().scale("alice", "", 2)
    assert stored(emulator, "v1/configmaps", "spark-anchor-alice")["data"]["workers"] == "1"  # nothing recorded
    await sp.stop()
    await sp.run_post_stop_hook()


async def test_live_counts_come_from_the_masters_json(emulator, kube_spawner, kubelet, clusters,  # noqa: F811
                                                      tmp_path):
    """The status reads the master's /json/ at `master_ui_url`: here a real Spark master on this machine stands
    where the master Service would answer in a cluster."""
    sp = await start_alice(kube_spawner)
    await deployment_ready(emulator, "spark-alice-master", 1)
    real = LocalSparkCluster(str(tmp_path / "spark"), "real", SparkRequest(1, 1, 512 * 2**20), user="alice")
    try:
        await real.start()
        api = clusters(master_ui_url=f"http://127.0.0.1:{real.master_ui_port}")
        status = await api.status("alice")
        assert (status["state"], status["workers_alive"], status["cores"], status["memory_mb"]) == \
            ("running", 1, 1, 512)
    finally:
        await real.stop()
    status = await api.status("alice")  # the master went away: counts from ready pods (none of the workers)
    assert (status["state"], status["workers_alive"]) == ("starting", 0)
    await sp.stop()
    await sp.run_post_stop_hook()
