"""Users' CPU and memory on Kubernetes (platform.kube_usage.KubePodUsage), against the real API server of
tests/support/k8s_control_plane.py, with a ServiceAccount bound to the chart's own rendered `-platform-usage`
Role (never a hand copy).

Without metrics-server the real API server does not serve metrics.k8s.io, and the platform says so. There is no
kubelet here, so no metrics-server can run: the test then plays metrics-server's part — a LABELLED STAND-IN, a
CRD `pods.metrics.k8s.io` on the same real API server, holding PodMetrics objects in metrics-server's shape that
the test writes with the admin token. Everything else is real: OdhKubeSpawner's pods (and the Spark pods the real
controller manager makes from the cluster's Deployments), the RBAC authorizer, the HTTP path and the join."""

import asyncio
import time

import pytest

from odh_spawner.kube.podmetrics import PodMetricsUnavailable
from odh_spawner.platform.kube_usage import KubePodUsage
from tests.support.chart_rbac import role_rules
from tests.support.kube_real import core, create_bound_pvc, get, kube_spawner, kubelet, make_identity  # noqa: F401
from tests.support.kube_real import names, wait_until

pytestmark = pytest.mark.integration

CRD = "pods.metrics.k8s.io"
STAND_IN_CRD = {  # metrics-server's API, as a CRD: a stand-in (no kubelet here for metrics-server to read)
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": CRD, "labels": {"odh-hub/test-stand-in": "metrics-server"},
                 "annotations": {"api-approved.kubernetes.io": "unapproved, a test stand-in for metrics-server"}},
    "spec": {"group": "metrics.k8s.io", "scope": "Namespaced",
             "names": {"plural": "pods", "singular": "podmetrics", "kind": "PodMetrics", "listKind": "PodMetricsList"},
             "versions": [{"name": "v1beta1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]}}
MIB = 2**20


def metrics_path(ns: str, name: str = "") -> str:
    return f"/apis/metrics.k8s.io/v1beta1/namespaces/{ns}/pods" + (f"/{name}" if name else "")


def write_pod_metrics(cp, ns: str, pod: str, cpu: str, memory: str) -> None:
    """What metrics-server would serve for `pod` (one container), written as the stand-in's object."""
    body = {"apiVersion": "metrics.k8s.io/v1beta1", "kind": "PodMetrics",
            "metadata": {"name": pod, "namespace": ns},
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "window": "30s",
            "containers": [{"name": "main", "usage": {"cpu": cpu, "memory": memory}}]}
    r = cp.api("POST", metrics_path(ns), body)
    assert r.ok, (r.status, r.body)


@pytest.fixture
def stand_in_metrics_api(k8s_control_plane):
    cp = k8s_control_plane
    r = cp.api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions", STAND_IN_CRD)
    assert r.status in (201, 409), (r.status, r.body)
    deadline = time.monotonic() + 60
    while cp.api("GET", metrics_path("default")).status != 200:
        assert time.monotonic() < deadline, "the stand-in PodMetrics API was never served"
        time.sleep(0.2)
    yield
    cp.api("DELETE", f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{CRD}")
    deadline = time.monotonic() + 60
    while cp.api("GET", metrics_path("default")).status != 404:  # the next test finds the cluster as it was
        assert time.monotonic() < deadline, "the stand-in PodMetrics API was not removed"
        time.sleep(0.2)


async def test_users_cpu_and_memory_come_from_their_pods_metrics_with_the_charts_role(
        k8s_control_plane, k8s_namespace, kube_spawner, kubelet, tmp_path, request):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    token, kubeconfig = make_identity(cp, ns, "odh-platform-usage", role_rules("-platform-usage"), tmp_path)
    usage = KubePodUsage(kubeconfig=kubeconfig, namespace=ns, request_timeout=5)
    pv = create_bound_pvc(cp, ns, "data-alice")
    spawners = []
    try:
        alice = kube_spawner("alice")
        await alice._apply_odh_options(alice, {"profile": "datascience", "spark": {"workers": 1}})
        bob = kube_spawner("bob")
        await bob._apply_odh_options(bob, {"profile": "minimal"})
        for sp in (alice, bob):
            await asyncio.wait_for(sp.start(), 60)
            spawners.append(sp)
        # the controller manager makes the Spark pods from the cluster's Deployments (the test kubelet runs them)
        await wait_until(lambda: len([n for n in names(cp, core(ns, "pods")) if "spark" in n]) >= 2, 60,
                         "alice's Spark master and worker pods")
        pods = {p["metadata"]["name"]: p for p in cp.api("GET", core(ns, "pods")).body["items"]}
        spark_pods = sorted(n for n in pods if "spark" in n)
        for n in spark_pods:  # the pod template's annotation reached the pods: they count as alice's
            assert pods[n]["metadata"]["annotations"]["hub.jupyter.org/username"] == "alice", pods[n]["metadata"]
        assert pods["jupyter-alice"]["metadata"]["annotations"]["hub.jupyter.org/username"] == "alice"

        # 1. no metrics-server: the real API server has no metrics.k8s.io, and the platform says what to do
        with pytest.raises(PodMetricsUnavailable, match="metrics.k8s.io/v1beta1 not found.*Install metrics-server"):
            await usage.usage()
        assert "Install metrics-server" in usage.problem

        # 2. with pod metrics (the stand-in): each pod counts for the user its annotation names
        request.getfixturevalue("stand_in_metrics_api")
        write_pod_metrics(cp, ns, "jupyter-alice", "250000000n", "300Mi")
        for n in spark_pods:
            write_pod_metrics(cp, ns, n, "500m", "100Mi")
        write_pod_metrics(cp, ns, "jupyter-bob", "100m", "50Mi")
        write_pod_metrics(cp, ns, "not-a-hub-pod", "4", "4Gi")  # a pod that names no user (or is gone)
        first = await usage.usage()
        t0 = time.monotonic()
        assert usage.problem is None
        assert first == {"alice": {"cpu_seconds": 0.0, "memory_bytes": (300 + 100 * len(spark_pods)) * MIB},
                         "bob": {"cpu_seconds": 0.0, "memory_bytes": 50 * MIB}}
        await asyncio.sleep(1.0)
        second = await usage.usage()
        elapsed = time.monotonic() - t0
        rate = 0.25 + 0.5 * len(spark_pods)
        # CPU seconds: each pod's rate times the time between the two readings (alice's three pods, bob's one)
        assert rate * 0.9 <= second["alice"]["cpu_seconds"] <= rate * (elapsed + 0.5), (second, elapsed)
        assert 0.09 <= second["bob"]["cpu_seconds"] <= 0.1 * (elapsed + 0.5), (second, elapsed)

        # 3. the chart's Role reads pods and PodMetrics in this namespace and nothing else
        other = cp.create_namespace("usage-other")
        try:
            for path in (metrics_path(other), core(other, "pods"), core(ns, "secrets"),
                         core(ns, "pods", "jupyter-alice")):
                r = cp.api("GET", path, token=token)
                assert r.status == 403, (path, r.status, r.body)
            r = cp.api("DELETE", metrics_path(ns, "jupyter-alice"), token=token)
            assert r.status == 403 and "cannot delete resource \"pods\" in API group \"metrics.k8s.io\"" in \
                r.body["message"], r.body
        finally:
            cp.delete_namespace(other)
    finally:
        for sp in spawners:
            await sp.stop()
            await sp.run_post_stop_hook()
        await usage.close()
        cp.api("DELETE", f"/api/v1/persistentvolumes/{pv}")
    await wait_until(lambda: get(cp, core(ns, "pods", "jupyter-alice")) is None, 60, "alice's pod gone")
