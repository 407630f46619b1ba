"""Users' CPU and memory on Kubernetes (kube.podmetrics): PodMetrics in the shape metrics-server serves
(metrics.k8s.io/v1beta1, as `kubectl get --raw /apis/metrics.k8s.io/v1beta1/namespaces/NS/pods` prints it) joined
to the pods' user annotation; the chart grants the platform exactly the reads it needs."""

import pytest

from odh_spawner.kube.podmetrics import CpuIntegrator, join, pod_owners, pod_usage
from odh_spawner.naming import user_slug
from odh_spawner.platform.app import PlatformService
from odh_spawner.platform.kube_usage import KubePodUsage
from tests.support.helm import template

pytestmark = pytest.mark.unit


def pod(name, user=None, uid=None, ns="odh"):
    meta = {"name": name, "namespace": ns, "uid": uid or f"uid-{name}"}
    if user is not None:
        meta["annotations"] = {"hub.jupyter.org/username": user}
    return {"metadata": meta}


def metrics(name, *containers, ns="odh"):
    return {"metadata": {"name": name, "namespace": ns, "creationTimestamp": "2026-12-08T00:00:00Z",
                         "labels": {"component": "singleuser-server"}},
            "timestamp": "2026-12-08T00:00:00Z", "window": "30s",
            "containers": [{"name": f"c{i}", "usage": {"cpu": cpu, "memory": mem}}
                           for i, (cpu, mem) in enumerate(containers)]}


def test_a_pod_counts_for_the_user_its_annotation_names_by_slug():
    owners = pod_owners([pod("jupyter-alice", "alice"), pod("jupyter-odd", "Odd User@x"), pod("kube-dns"),
                         pod("spark-master", "alice", ns="other")])
    assert owners == {("odh", "jupyter-alice"): ("uid-jupyter-alice", "alice"),
                      ("odh", "jupyter-odd"): ("uid-jupyter-odd", user_slug("Odd User@x")),
                      ("other", "spark-master"): ("uid-spark-master", "alice")}


def test_a_pods_usage_is_the_sum_of_its_containers_in_base_units():
    assert pod_usage(metrics("p", ("250m", "300Mi"), ("1500000n", "1Gi"))) == (0.2515, 300 * 2**20 + 2**30)
    assert pod_usage(metrics("p", ("2", "1000Ki"))) == (2.0, 1024000)
    assert pod_usage(metrics("p", ("0", "0"), ("12u", "1k"))) == (0.000012, 1000)
    # a value that does not parse counts as 0, the other container still counts
    assert pod_usage(metrics("p", ("lots", "1Mi"), ("1", "bad"))) == (1.0, 2**20)
    assert pod_usage({"metadata": {"name": "p"}}) == (0.0, 0)


def test_only_pods_of_hub_users_are_joined_by_namespace_and_name():
    pods = [pod("jupyter-alice", "alice"), pod("kube-dns"), pod("model", "bob", ns="serving")]
    items = [metrics("jupyter-alice", ("500m", "100Mi")), metrics("kube-dns", ("1", "1Gi")),
             metrics("model", ("100m", "10Mi"), ns="serving"), metrics("model", ("9", "9Gi")),  # another ns's pod
             metrics("gone", ("1", "1Gi"))]  # PodMetrics of a pod already deleted
    assert join(pods, items) == {"uid-jupyter-alice": ("alice", 0.5, 100 * 2**20),
                                 "uid-model": ("bob", 0.1, 10 * 2**20)}


def test_cpu_seconds_are_the_rates_integrated_over_time_and_stay_after_a_pod_goes():
    cpu = CpuIntegrator(max_gap=60)
    first = cpu.add({"a1": ("alice", 0.5, 100), "b1": ("bob", 2.0, 50)}, now=100.0)
    assert first == {"alice": {"cpu_seconds": 0.0, "memory_bytes": 100}, "bob": {"cpu_seconds": 0.0,
                                                                                "memory_bytes": 50}}
    second = cpu.add({"a1": ("alice", 0.5, 120), "a2": ("alice", 1.0, 30), "b1": ("bob", 2.0, 50)}, now=110.0)
    assert second == {"alice": {"cpu_seconds": 5.0, "memory_bytes": 150}, "bob": {"cpu_seconds": 20.0,
                                                                                 "memory_bytes": 50}}
    # bob's pod went: his seconds stay (a counter never drops), his memory is 0
    third = cpu.add({"a1": ("alice", 0.5, 120), "a2": ("alice", 1.0, 30)}, now=120.0)
    assert third == {"alice": {"cpu_seconds": 20.0, "memory_bytes": 150}, "bob": {"cpu_seconds": 20.0,
                                                                                 "memory_bytes": 0}}
    # a pod not read for 10 minutes is credited with max_gap at most; one read again after a miss starts afresh
    assert cpu.add({"a1": ("alice", 1.0, 1)}, now=720.0)["alice"]["cpu_seconds"] == 80.0
    assert cpu.add({"a1": ("alice", 1.0, 1), "a2": ("alice", 1.0, 1)}, now=730.0)["alice"]["cpu_seconds"] == 90.0


def test_the_chart_lets_the_platform_list_pods_and_pod_metrics_where_users_pods_run_and_nothing_more():
    docs = template(None, {"serving.namespace": "models", "kafka.bootstrap": "kafka:9092"})
    roles = {(d["kind"], d["metadata"]["namespace"]): d for d in docs if d["metadata"]["name"] == "t-odh-hub-platform-usage"}
    assert set(roles) == {("Role", "odh"), ("Role", "models"), ("RoleBinding", "odh"), ("RoleBinding", "models")}
    for ns in ("odh", "models"):
        assert roles[("Role", ns)]["rules"] == [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]},
                                               {"apiGroups": ["metrics.k8s.io"], "resources": ["pods"],
                                                "verbs": ["list"]}]
        assert roles[("RoleBinding", ns)]["subjects"] == [{"kind": "ServiceAccount", "name": "t-odh-hub-platform",
                                                          "namespace": "odh"}]
    (platform,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "t-odh-hub-platform"]
    args = platform["spec"]["template"]["spec"]["containers"][0]["args"]
    assert "--PlatformService.pod_usage_class=odh_spawner.platform.kube_usage.KubePodUsage" in args
    assert [a for a in args if a.startswith("--KubePodUsage.namespaces=")] == [
        "--KubePodUsage.namespaces=odh", "--KubePodUsage.namespaces=models"]
    # the platform service reads them as the chart means: the class, and both namespaces
    app = PlatformService()
    app.parse_command_line([a for a in args if "Usage" in a or "pod_usage" in a])
    assert app.pod_usage_class is KubePodUsage
    assert KubePodUsage.for_platform(app).namespaces == ["odh", "models"]


def test_without_pod_usage_the_chart_grants_and_passes_nothing_for_it():
    docs = template(None, {"metrics.podUsage.enabled": False})
    assert not [d for d in docs if d["metadata"]["name"].endswith("-platform-usage")]
    (platform,) = [d for d in docs if d["kind"] == "Deployment" and d["metadata"]["name"] == "t-odh-hub-platform"]
    assert not [a for a in platform["spec"]["template"]["spec"]["containers"][0]["args"] if "Usage" in a]
