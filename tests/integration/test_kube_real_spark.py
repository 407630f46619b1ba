"""A user server's Spark cluster on Kubernetes, against the real API server (tests/support/k8s_control_plane.py):
OdhKubeSpawner creates the per-server anchor ConfigMap and the objects it owns (master/worker Deployments, the
master Service, the cluster's auth Secret; or a SparkConnect against the upstream CRD); the real kube-scheduler
binds the pods, the test kubelet (not a real kubelet: no container runs) reports them ready, the real Deployment
controller counts them, and deleting the anchor at stop lets the real garbage collector remove everything it owns.
The platform service's Spark API (KubeSparkClusters) scales and restarts the cluster with real rollouts."""

import asyncio

import pytest
from tornado import web

from odh_spawner.platform.kube_spark import KubeSparkClusters
from odh_spawner.platform.spark_handlers import NoSparkCluster, SparkBusy
from odh_spawner.profiles.resolve import SparkRequest
from odh_spawner.spark import SparkLimitError
from odh_spawner.spark import kube as spark_kube
from tests.support.k8s_control_plane import crds_available, install_crds
from tests.support.kube_real import (apps, core, create_bound_pvc, get, group, kube_spawner,  # noqa: F401
                                     kubelet, names, wait_until)

SPARKCONNECT_CRD = "sparkconnects.sparkoperator.k8s.io.yaml"
SC = "sparkoperator.k8s.io/v1alpha1"


@pytest.fixture
def data_pvc(k8s_control_plane, k8s_namespace):
    """alice's data volume (the datascience profile mounts the PVC data-{username}), as the admin creates it."""
    pv = create_bound_pvc(k8s_control_plane, k8s_namespace, "data-alice")
    yield pv
    k8s_control_plane.api("DELETE", f"/api/v1/persistentvolumes/{pv}")


def everything_of(cp, ns: str) -> dict[str, list[str]]:
    """The objects of the namespace that odh-hub or the controllers made (not the namespace's own ones)."""
    out = {}
    for kind, path in (("configmaps", core(ns, "configmaps")), ("secrets", core(ns, "secrets")),
                       ("services", core(ns, "services")), ("pods", core(ns, "pods")),
                       ("deployments", apps(ns, "deployments")), ("replicasets", apps(ns, "replicasets")),
                       ("networkpolicies", group("networking.k8s.io/v1", ns, "networkpolicies"))):
        found = [n for n in names(cp, path) if n != "kube-root-ca.crt" and not n.startswith("default-token-")]
        if found:
            out[kind] = found
    return out


async def start_alice(kube_spawner, options, **config):  # noqa: F811
    sp = kube_spawner(**config)
    await sp._apply_odh_options(sp, options)
    url = await asyncio.wait_for(sp.start(), 60)
    return sp, url


async def test_the_cluster_lives_with_the_server_and_is_garbage_collected_after(
        k8s_control_plane, k8s_namespace, kube_spawner, kubelet, data_pvc):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    sp, url = await start_alice(kube_spawner, {"profile": "datascience", "spark": {"workers": 2, "worker_cores": 2}})
    pod = get(cp, core(ns, "pods", "jupyter-alice"))
    assert url == f"http://{pod['status']['podIP']}:8888" and kubelet.running["jupyter-alice"] == \
        pod["status"]["podIP"]
    assert pod["spec"]["nodeName"] == kubelet.node_name  # the real scheduler bound it (its PVC is bound too)

    anchor = get(cp, core(ns, "configmaps", "spark-anchor-alice"))
    uid = anchor["metadata"]["uid"]
    assert anchor["data"]["workers"] == "2" and "ownerReferences" not in anchor["metadata"]
    owned = {("apps", "deployments", "spark-alice-master"), ("apps", "deployments", "spark-alice-worker"),
             ("core", "services", "spark-alice-master"), ("core", "secrets", "spark-alice-auth")}
    for api, plural, name in owned:
        obj = get(cp, (apps if api == "apps" else core)(ns, plural, name))
        (ref,) = obj["metadata"]["ownerReferences"]
        assert (ref["kind"], ref["name"], ref["uid"]) == ("ConfigMap", "spark-anchor-alice", uid)
    # the cluster's NetworkPolicy (stored by the real server, owned by the anchor) admits its own pods and the
    # pod carrying alice's cluster label, which her notebook pod, and only hers, has
    policy = get(cp, group("networking.k8s.io/v1", ns, "networkpolicies", "spark-alice"))
    (ref,) = policy["metadata"]["ownerReferences"]
    assert (ref["kind"], ref["name"], ref["uid"]) == ("ConfigMap", "spark-anchor-alice", uid)
    assert policy["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "spark",
                                                            "app.kubernetes.io/instance": "spark-alice"}
    assert {"podSelector": {"matchLabels": {"odh-hub/spark-instance": "spark-alice"}}} in \
        policy["spec"]["ingress"][0]["from"]
    assert pod["metadata"]["labels"]["odh-hub/spark-instance"] == "spark-alice"
    # the real Deployment controller made ReplicaSets and pods; the scheduler bound them; the test kubelet made
    # them ready: 1 master + 2 workers ready
    await wait_until(lambda: (get(cp, apps(ns, "deployments", "spark-alice-worker"))["status"].get(
        "readyReplicas") == 2), 30, "2 ready Spark workers")
    await wait_until(lambda: get(cp, apps(ns, "deployments", "spark-alice-master"))["status"].get(
        "readyReplicas") == 1, 30, "a ready Spark master")
    worker = get(cp, apps(ns, "deployments", "spark-alice-worker"))
    assert worker["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "2"
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["SPARK_MASTER_URL"]["value"] == f"spark://spark-alice-master.{ns}.svc:7077"
    assert len(names(cp, core(ns, "pods"))) == 4

    # what JupyterHub's User.stop does: stop(), then the post-stop hook deletes the anchor (Foreground)
    await sp.stop()
    assert get(cp, core(ns, "configmaps", "spark-anchor-alice")) is not None  # stop() alone leaves it
    await sp.run_post_stop_hook()
    # the real garbage collector removes what the anchor owned, then the anchor (Foreground), then the pods of
    # the ReplicaSets; the test kubelet completes the pods' graceful deletion, as a kubelet would
    await wait_until(lambda: everything_of(cp, ns) == {}, 60, "nothing of alice's server left in the namespace")


async def test_a_left_over_anchor_is_taken_over_after_a_hub_crash(
        k8s_control_plane, k8s_namespace, kube_spawner, kubelet, data_pvc):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    sp, _ = await start_alice(kube_spawner, {"profile": "datascience", "spark": {"workers": 1}})
    uid = get(cp, core(ns, "configmaps", "spark-anchor-alice"))["metadata"]["uid"]
    await sp.stop()  # the hub "crashed": no post-stop hook ran, the cluster is still there

    sp2, _ = await start_alice(kube_spawner, {"profile": "datascience", "spark": {"workers": 3}})
    anchor = get(cp, core(ns, "configmaps", "spark-anchor-alice"))
    assert anchor["metadata"]["uid"] == uid and anchor["data"]["workers"] == "3"
    worker = get(cp, apps(ns, "deployments", "spark-alice-worker"))
    assert worker["spec"]["replicas"] == 3 and worker["metadata"]["ownerReferences"][0]["uid"] == uid
    await wait_until(lambda: get(cp, apps(ns, "deployments", "spark-alice-worker"))["status"].get(
        "readyReplicas") == 3, 30, "3 ready workers")
    assert len(names(cp, apps(ns, "deployments"))) == 2  # taken over, not doubled
    await sp2.stop()
    await sp2.run_post_stop_hook()
    await wait_until(lambda: everything_of(cp, ns) == {}, 60, "nothing left")


async def test_the_platform_api_scales_and_restarts_with_real_rollouts(
        k8s_control_plane, k8s_namespace, kube_spawner, kubelet, data_pvc):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    sp, _ = await start_alice(kube_spawner, {"profile": "datascience", "spark": {"workers": 1}},
                              SparkLimits={"max_workers": 4})
    api = KubeSparkClusters(kubeconfig=cp.kubeconfig, namespace=ns, request_timeout=5, retry_timeout=10,
                            master_ui_url="")
    try:
        status = await wait_until_status(api, lambda s: s["state"] == "running", "a running cluster")
        assert (status["workers_alive"], status["workers_requested"], status["max_workers"]) == (1, 1, 3)
        assert await api.status("bob") == {"enabled": False}

        status = await api.scale("alice", "", 3)
        assert status["workers_requested"] == 3
        assert get(cp, core(ns, "configmaps", "spark-anchor-alice"))["data"]["workers"] == "3"
        status = await wait_until_status(api, lambda s: s["workers_alive"] == 3, "3 workers ready")
        with pytest.raises(SparkLimitError, match="4 Spark workers exceed this profile's limit of 3"):
            await api.scale("alice", "", 4)
        with pytest.raises(NoSparkCluster):
            await api.scale("bob", "", 1)

        # restart: the Deployments roll out new pods (new ReplicaSets) through the real controllers
        before = set(names(cp, core(ns, "pods"), **{"app.kubernetes.io/instance": "spark-alice"}))
        assert len(before) == 4
        await api.restart("alice", "")
        for name in ("spark-alice-master", "spark-alice-worker"):
            template = get(cp, apps(ns, "deployments", name))["spec"]["template"]["metadata"]
            assert "kubectl.kubernetes.io/restartedAt" in template["annotations"]

        def rolled():
            now = set(names(cp, core(ns, "pods"), **{"app.kubernetes.io/instance": "spark-alice"}))
            return len(now) == 4 and not now & before

        await wait_until(rolled, 60, "all 4 Spark pods replaced by the rollout")
        assert len(names(cp, apps(ns, "replicasets"))) == 4  # old and new ReplicaSet of both Deployments
        await wait_until_status(api, lambda s: s["state"] == "running" and s["workers_alive"] == 3, "running again")

        await sp.stop()
        await sp.run_post_stop_hook()
        # Foreground deletion: the anchor stays, marked for deletion, until the garbage collector removed what it
        # owns; meanwhile the cluster is reported stopped and cannot be scaled
        status = await api.status("alice")
        assert status == {"enabled": False} or status["state"] == "stopped", status
        with pytest.raises(NoSparkCluster):
            await api.scale("alice", "", 1)
        await wait_until(lambda: everything_of(cp, ns) == {}, 60, "nothing left")
        assert await api.status("alice") == {"enabled": False}
    finally:
        await api.close()


async def wait_until_status(api, predicate, what: str, timeout: float = 30) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        status = await api.status("alice")
        if predicate(status):
            return status
        assert asyncio.get_running_loop().time() < deadline, f"{what}: {status}"
        await asyncio.sleep(0.2)


async def test_spark_limits_count_the_users_other_clusters(k8s_control_plane, k8s_namespace,
                                                           kube_spawner, kubelet, data_pvc):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    other = spark_kube.anchor_configmap(spark_kube.KubeSparkSpec(  # alice's named server "gpu" runs 2 workers
        user="alice", server="gpu", namespace=ns, image="x", request=SparkRequest(2, 1, 2**30)))
    assert cp.api("POST", core(ns, "configmaps"), other).ok
    sp = kube_spawner(SparkLimits={"max_workers": 3})
    await sp._apply_odh_options(sp, {"profile": "datascience", "spark": {"workers": 2}})
    with pytest.raises(web.HTTPError) as e:
        await sp.start()
    assert e.value.status_code == 403
    assert "You already run 2 Spark workers on other servers; 2 more would exceed your limit of 3" in \
        e.value.jupyterhub_message
    assert names(cp, core(ns, "pods")) == [] and get(cp, core(ns, "configmaps", "spark-anchor-alice")) is None


@pytest.mark.skipif(not crds_available(SPARKCONNECT_CRD), reason="upstream CRDs not found beside the repo")
async def test_spark_connect_is_accepted_by_the_upstream_crd_and_collected_with_its_anchor(
        k8s_control_plane, k8s_namespace, kube_spawner, kubelet, data_pvc):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    install_crds(cp, [SPARKCONNECT_CRD])
    sp = kube_spawner(KubeSpark={"cluster_type": "spark-connect"})
    await sp._apply_odh_options(sp, {"profile": "datascience", "spark": {"workers": 2}})
    await asyncio.wait_for(sp.start(), 60)
    uid = get(cp, core(ns, "configmaps", "spark-anchor-alice"))["metadata"]["uid"]
    sc = get(cp, group(SC, ns, "sparkconnects", "spark-alice"))
    assert sc["metadata"]["ownerReferences"][0]["uid"] == uid
    # the server validated it against the upstream structural schema and pruned nothing we sent
    expected = spark_kube.spark_connect(spark_kube.KubeSparkSpec(
        user="alice", server="", namespace=ns, image=sp.plan.image, request=SparkRequest(2, 1, 2**30),
        anchor_uid=uid))
    assert sc["spec"]["executor"]["instances"] == 2 and sc["spec"]["image"] == sp.plan.image
    assert set(sc["spec"]) == set(expected["spec"])
    env = {e["name"]: e.get("value") for e in get(cp, core(ns, "pods", "jupyter-alice"))["spec"]["containers"][0][
        "env"]}
    assert env["SPARK_REMOTE"] == "sc://spark-alice-server.{}.svc.cluster.local:15002".format(ns)

    # the platform API scales the executors; restart is refused (it restarts with the server)
    api = KubeSparkClusters(kubeconfig=cp.kubeconfig, namespace=ns, request_timeout=5, retry_timeout=10,
                            master_ui_url="")
    try:
        await api.scale("alice", "", 3)
        assert get(cp, group(SC, ns, "sparkconnects", "spark-alice"))["spec"]["executor"]["instances"] == 3
        with pytest.raises(SparkBusy):
            await api.restart("alice", "")
    finally:
        await api.close()
    await sp.stop()
    await sp.run_post_stop_hook()
    await wait_until(lambda: get(cp, group(SC, ns, "sparkconnects", "spark-alice")) is None, 60,
                     "the SparkConnect collected with its anchor")


async def test_live_counts_come_from_the_masters_json(k8s_control_plane, k8s_namespace, kube_spawner,  # noqa: F811
                                                      kubelet, data_pvc, tmp_path):
    """The status reads the master's /json/ at `master_ui_url`: a real Spark master on this machine stands where
    the master Service would answer in a cluster (no container runs behind the pods here)."""
    from odh_spawner.spark import LocalSparkCluster

    cp, ns = k8s_control_plane, k8s_namespace
    sp, _ = await start_alice(kube_spawner, {"profile": "datascience", "spark": {"workers": 1}})
    real = LocalSparkCluster(str(tmp_path / "spark"), "real", SparkRequest(1, 1, 512 * 2**20), user="alice")
    api = None
    try:
        await real.start()
        api = KubeSparkClusters(kubeconfig=cp.kubeconfig, namespace=ns, request_timeout=5, retry_timeout=10,
                                master_ui_url=f"http://127.0.0.1:{real.master_ui_port}")
        status = await wait_until_status(api, lambda s: s["state"] == "running", "running from the master's JSON")
        assert (status["workers_alive"], status["cores"], status["memory_mb"]) == (1, 1, 512)
    finally:
        await real.stop()
        if api is not None:
            await api.close()
    await sp.stop()
    await sp.run_post_stop_hook()
