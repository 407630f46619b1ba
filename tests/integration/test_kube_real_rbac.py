"""Least privilege, enforced by the real API server's RBAC authorizer (tests/support/k8s_control_plane.py): the
hub (OdhKubeSpawner) and the platform service (KubeServingBackend, KubeSparkClusters) run with ServiceAccount
tokens bound to the Helm chart's own rendered Roles (tests/support/chart_rbac.py: hub_rules, platform_rules),
not with the admin token. What they need is allowed; anything else (other namespaces' Secrets, cluster-scoped
objects, RBAC objects, exec into pods) is forbidden (403). An API that refuses becomes a message for users."""

import asyncio
import logging

import pytest
from tornado import web

from odh_spawner.credentials import S3Credentials
from odh_spawner.deploy.kube import KubeServingBackend
from odh_spawner.deploy.model import BackendFailed, Deployment
from odh_spawner.naming import secret_name
from odh_spawner.platform.kube_spark import KubeSparkClusters
from tests.support.k8s_control_plane import crds_available, install_crds
from tests.support.chart_rbac import hub_rules, platform_rules
from tests.support.kube_real import (core, create_bound_pvc, get, kube_spawner,  # noqa
                                     kubelet, make_identity, names, wait_until)

SECRET = "alice/very+secret=key"
CREDS = S3Credentials("AKIAALICEEXAMPLE42", SECRET, "http://rgw.ceph.svc:8080")
SDEP_CRD = "seldondeployments.machinelearning.seldon.io.yaml"


@pytest.fixture
def other_namespace(k8s_control_plane):
    ns = k8s_control_plane.create_namespace("other")
    assert k8s_control_plane.api("POST", core(ns, "secrets"), {"metadata": {"name": "theirs"},
                                                               "stringData": {"k": "v"}}).ok
    yield ns
    k8s_control_plane.delete_namespace(ns)


def forbidden(cp, token: str, method: str, path: str, body=None) -> bool:
    r = cp.api(method, path, body, token=token)
    assert r.status == 403, (method, path, r.status, r.body)
    return True


async def test_the_hub_spawns_with_its_service_account_and_may_do_nothing_else(
        k8s_control_plane, k8s_namespace, kube_spawner, kubelet, ceph, other_namespace, tmp_path):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    token, kubeconfig = make_identity(cp, ns, "odh-hub", hub_rules(), tmp_path)
    pv = create_bound_pvc(cp, ns, "data-alice")
    try:
        sp = kube_spawner(kubeconfig=kubeconfig, OdhStorage={"admin_endpoint": ceph.endpoint,
                                                             "admin_keys_file": ceph.admin_keys_file})
        sp.api_token = "f0e1d2c3b4a5968778695a4b3c2d1e0f"
        await sp._apply_odh_options(sp, {"profile": "datascience", "spark": {"workers": 1}})
        await asyncio.wait_for(sp.start(), 60)  # credentials Secret, token Secret, Spark cluster, pod: allowed
        assert get(cp, core(ns, "pods", "jupyter-alice"))["status"]["phase"] == "Running"
        assert get(cp, core(ns, "configmaps", "spark-anchor-alice")) is not None
        await sp.stop()
        await sp.run_post_stop_hook()
        await wait_until(lambda: names(cp, core(ns, "pods")) == [], 60, "the pods gone")
        assert get(cp, core(ns, "configmaps", "spark-anchor-alice")) is None
    finally:
        cp.api("DELETE", f"/api/v1/persistentvolumes/{pv}")

    rbac = "/apis/rbac.authorization.k8s.io/v1"
    assert forbidden(cp, token, "GET", core(other_namespace, "secrets", "theirs"))
    assert forbidden(cp, token, "GET", core(other_namespace, "secrets"))
    assert forbidden(cp, token, "POST", core(other_namespace, "pods"), {"metadata": {"name": "x"}, "spec": {
        "containers": [{"name": "x", "image": "x"}]}})
    assert forbidden(cp, token, "GET", core(ns, "secrets"))  # its own namespace's Secrets: by name only
    assert forbidden(cp, token, "POST", f"{rbac}/clusterroles", {"metadata": {"name": "mine"}, "rules": []})
    assert forbidden(cp, token, "POST", f"{rbac}/namespaces/{ns}/rolebindings", {
        "metadata": {"name": "escalate"}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                                      "name": "cluster-admin"},
        "subjects": [{"kind": "ServiceAccount", "name": "odh-hub", "namespace": ns}]})
    assert forbidden(cp, token, "GET", "/api/v1/nodes")
    assert forbidden(cp, token, "POST", "/api/v1/namespaces", {"metadata": {"name": "mine"}})
    assert forbidden(cp, token, "POST", core(ns, "pods", "jupyter-alice") + "/exec?command=sh&stdout=true")
    assert forbidden(cp, token, "GET", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions")
    # and Kubernetes confirms it from the RBAC objects: SelfSubjectAccessReview answers for the token itself
    review = cp.api("POST", "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews", {
        "spec": {"resourceAttributes": {"namespace": other_namespace, "verb": "get", "resource": "secrets"}}},
        token=token).body
    assert review["status"]["allowed"] is False


@pytest.mark.skipif(not crds_available(SDEP_CRD), reason="upstream CRDs not found beside the repo")
async def test_the_platform_service_serves_and_scales_with_its_service_account(
        k8s_control_plane, k8s_namespace, kube_spawner, kubelet, other_namespace, tmp_path):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    install_crds(cp, [SDEP_CRD])
    token, kubeconfig = make_identity(cp, ns, "odh-platform", platform_rules(), tmp_path)
    backend = KubeServingBackend(kubeconfig=kubeconfig, namespace=ns, poll_interval=0.05, ready_timeout=10,
                                 request_timeout=5, retry_timeout=10)
    try:
        d = Deployment(owner="alice", name="iris", backend=backend.name, model_name="iris")
        v = d.add_version("s3://odh-models-alice/odh-deployments/iris/v1/", "sklearn")
        up = asyncio.ensure_future(backend.bring_up(d, v, CREDS, [], "/nonexistent", lambda stage: None))
        path = f"/apis/machinelearning.seldon.io/v1/namespaces/{ns}/seldondeployments/alice--iris"
        await wait_until(lambda: get(cp, path), 20, "the SeldonDeployment")
        r = cp.api("PATCH", path + "/status", {"status": {"state": "Available", "observedGeneration": 1,
                                                          "address": {"url": "http://alice--iris.svc:8000"}}})
        assert r.ok, r.body  # the test operator (admin token) writes the status
        await asyncio.wait_for(up, 20)
        assert d.url == "http://alice--iris.svc:8000"
        await backend.teardown(d)
        assert get(cp, path) is None and get(cp, core(ns, "secrets", "odh-model-storage-alice")) is None
    finally:
        await backend.close()

    # the Spark API with the platform's identity: the cluster the hub (admin here) started is scaled
    pv = create_bound_pvc(cp, ns, "data-alice")
    clusters = KubeSparkClusters(kubeconfig=kubeconfig, namespace=ns, request_timeout=5, retry_timeout=10,
                                 master_ui_url="")
    try:
        sp = kube_spawner(SparkLimits={"max_workers": 3})
        await sp._apply_odh_options(sp, {"profile": "datascience", "spark": {"workers": 1}})
        await asyncio.wait_for(sp.start(), 60)
        assert (await clusters.scale("alice", "", 2))["workers_requested"] == 2
        await clusters.restart("alice", "")
        await sp.stop()
        await sp.run_post_stop_hook()
    finally:
        await clusters.close()
        cp.api("DELETE", f"/api/v1/persistentvolumes/{pv}")

    assert forbidden(cp, token, "POST", core(ns, "pods"), {"metadata": {"name": "x"}, "spec": {
        "containers": [{"name": "x", "image": "x"}]}})
    assert forbidden(cp, token, "GET", core(ns, "secrets", "default-token-x"))
    assert forbidden(cp, token, "GET", core(other_namespace, "secrets", "theirs"))
    assert forbidden(cp, token, "DELETE", core(ns, "configmaps", "kube-root-ca.crt"))


async def test_a_refused_secret_becomes_a_user_safe_message(k8s_control_plane, k8s_namespace, tmp_path, caplog):
    """Ported from the emulator (where a 403 was scripted): here RBAC really refuses."""
    cp, ns = k8s_control_plane, k8s_namespace
    caplog.set_level(logging.DEBUG, logger="traitlets")
    rules = [r for r in platform_rules() if "secrets" not in r["resources"]]
    _, kubeconfig = make_identity(cp, ns, "no-secrets", rules, tmp_path)
    backend = KubeServingBackend(kubeconfig=kubeconfig, namespace=ns, request_timeout=5, retry_timeout=10)
    try:
        d = Deployment(owner="alice", name="iris", backend=backend.name, model_name="iris")
        v = d.add_version("s3://odh-models-alice/odh-deployments/iris/v1/", "sklearn")
        with pytest.raises(BackendFailed, match=r"refused the Secret odh-model-storage-alice \(403 Forbidden\)"):
            await backend.bring_up(d, v, CREDS, [], "/nonexistent", lambda stage: None)
    finally:
        await backend.close()
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name == "traitlets")
    assert "odh-model-storage-alice: Kubernetes API error 403 Forbidden" in ours and SECRET not in ours
    assert get(cp, core(ns, "secrets", "odh-model-storage-alice")) is None


async def test_a_refused_spark_cluster_deletes_its_anchor_and_tells_the_user(
        k8s_control_plane, k8s_namespace, kube_spawner, kubelet, tmp_path):  # noqa: F811
    """Ported from the emulator: a hub Role without Deployments; the real API answers 403."""
    cp, ns = k8s_control_plane, k8s_namespace
    rules = [r for r in hub_rules() if "deployments" not in r["resources"]]
    _, kubeconfig = make_identity(cp, ns, "no-deployments", rules, tmp_path)
    sp = kube_spawner(kubeconfig=kubeconfig)
    await sp._apply_odh_options(sp, {"profile": "datascience", "spark": True})
    with pytest.raises(web.HTTPError) as e:
        await sp.start()
    assert e.value.status_code == 503
    assert e.value.jupyterhub_message == ("Your Spark cluster could not be created: The cluster refused the "
                                          "Deployment spark-alice-master (403 Forbidden); tell your platform admin.")
    await wait_until(lambda: get(cp, core(ns, "configmaps", "spark-anchor-alice")) is None, 30, "the anchor gone")
    assert names(cp, core(ns, "pods")) == [] and sp._odh_done
    # the cluster's auth Secret was owned by the anchor: garbage-collected with it
    await wait_until(lambda: get(cp, core(ns, "secrets", "spark-alice-auth")) is None, 30, "the auth Secret gone")
    assert get(cp, core(ns, "secrets", secret_name("alice"))) is None  # storage is off in this test


async def test_a_refused_scale_becomes_a_503_message(k8s_control_plane, k8s_namespace, kube_spawner,  # noqa: F811
                                                     kubelet, tmp_path):
    """Ported from the emulator: a platform Role that may read but not patch Deployments; the real API answers
    403 and the Spark API says so, recording nothing."""
    from odh_spawner.platform.spark_handlers import SparkUnavailable

    cp, ns = k8s_control_plane, k8s_namespace
    rules = [({**r, "verbs": ["get"]} if "deployments" in r["resources"] else r) for r in platform_rules()]
    _, kubeconfig = make_identity(cp, ns, "no-patch", rules, tmp_path)
    pv = create_bound_pvc(cp, ns, "data-alice")
    clusters = KubeSparkClusters(kubeconfig=kubeconfig, namespace=ns, request_timeout=5, retry_timeout=10,
                                 master_ui_url="")
    try:
        sp = kube_spawner()
        await sp._apply_odh_options(sp, {"profile": "datascience", "spark": {"workers": 1}})
        await asyncio.wait_for(sp.start(), 60)
        with pytest.raises(SparkUnavailable, match=r"refused changing the Deployment spark-alice-worker \(403"):
            await clusters.scale("alice", "", 2)
        assert get(cp, core(ns, "configmaps", "spark-anchor-alice"))["data"]["workers"] == "1"  # nothing recorded
        await sp.stop()
        await sp.run_post_stop_hook()
    finally:
        await clusters.close()
        cp.api("DELETE", f"/api/v1/persistentvolumes/{pv}")
