"""The real Kubernetes control plane the Kubernetes tests run against (tests/support/k8s_control_plane.py):
kube-apiserver, kube-controller-manager and kube-scheduler v1.20.2 on etcd 3.4, local processes on loopback.
What it does for real is shown here once; it has no kubelet (tests/support/kubelet.py is a test kubelet)."""

import json

from tests.support.kube_real import apps, core, get, kubelet, names, wait_until  # noqa: F401 (fixture)


def test_a_real_v1_20_2_api_server_with_rbac_and_an_admin_kubeconfig(k8s_control_plane):
    cp = k8s_control_plane
    version = cp.api("GET", "/version").body
    assert version["gitVersion"] == "v1.20.2" and version["minor"] == "20"
    assert cp.server.startswith("https://127.0.0.1:") and cp.api("GET", "/readyz", raw=True).status == 200
    # no anonymous access, a wrong token is 401, RBAC is the authorizer
    assert cp.api("GET", "/api/v1/namespaces", token="not-a-token").status == 401
    assert get(cp, "/apis/rbac.authorization.k8s.io/v1/clusterroles/cluster-admin") is not None
    # kubectl 1.20 (Debian's kubernetes-client) with the admin kubeconfig
    out = json.loads(cp.kubectl("version", "-o", "json").stdout)
    assert out["serverVersion"]["gitVersion"] == "v1.20.2" and out["clientVersion"]["minor"] == "20"
    rss = cp.rss()
    assert set(rss) == {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler"}
    print(f"control plane: API server ready after {cp.ready_seconds:.1f}s; RSS MB "
          f"{ {k: round(v / 2**20) for k, v in rss.items()} } total {round(sum(rss.values()) / 2**20)}")


async def test_owner_references_are_garbage_collected(k8s_control_plane, k8s_namespace):
    cp, ns = k8s_control_plane, k8s_namespace
    owner = cp.api("POST", core(ns, "configmaps"), {"metadata": {"name": "owner"}, "data": {}}).body
    ref = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner", "uid": owner["metadata"]["uid"]}]
    assert cp.api("POST", core(ns, "secrets"), {"metadata": {"name": "owned", "ownerReferences": ref}}).ok
    assert cp.api("DELETE", core(ns, "configmaps", "owner")).ok
    await wait_until(lambda: get(cp, core(ns, "secrets", "owned")) is None, 30, "the garbage collector")


async def test_deployments_get_ready_replicas_through_the_test_kubelet(k8s_control_plane, k8s_namespace, kubelet):
    """The real Deployment and ReplicaSet controllers and scheduler; the test kubelet reports the pods ready."""
    cp, ns = k8s_control_plane, k8s_namespace
    labels = {"app": "web"}
    assert cp.api("POST", apps(ns, "deployments"), {
        "metadata": {"name": "web"}, "spec": {"replicas": 2, "selector": {"matchLabels": labels}, "template": {
            "metadata": {"labels": labels},
            "spec": {"containers": [{"name": "web", "image": "example.org/web@sha256:" + "a" * 64}]}}}}).ok
    dep = await wait_until(lambda: (d := get(cp, apps(ns, "deployments", "web")))["status"].get(
        "readyReplicas") == 2 and d, 30, "2 ready replicas")
    assert dep["status"]["availableReplicas"] == 2
    pods = cp.api("GET", core(ns, "pods") + "?labelSelector=app=web").body["items"]
    assert {p["spec"]["nodeName"] for p in pods} == {kubelet.node_name}  # bound by the real scheduler
    assert sorted(kubelet.running) == sorted(p["metadata"]["name"] for p in pods)
    # scale down: the ReplicaSet deletes a pod gracefully; the test kubelet completes the deletion
    assert cp.api("PATCH", apps(ns, "deployments", "web"), {"spec": {"replicas": 1}}).ok
    await wait_until(lambda: len(names(cp, core(ns, "pods"), app="web")) == 1, 30, "one pod left")
