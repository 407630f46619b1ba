"""Kubernetes manifests of a user's Spark cluster: valid (official schemas, strict), owned by the anchor,
labelled, sized from the request, S3 keys only by secretKeyRef; SparkConnect valid against the upstream CRD."""

import json
import os
import re

import jsonschema
import kubernetes_validate
import pytest

from tests.support.kube import unknown_fields
import yaml

from odh_spawner.profiles.resolve import SparkRequest
from odh_spawner.spark import kube
from odh_spawner.spark.naming import SLUG_MAX, cluster_slug, label_value

K8S = kubernetes_validate.utils.latest_version()
REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CRDS = os.path.join(REPO, "..", "shared", "crds")
SPARKCONNECT_CRD = os.path.join(CRDS, "sparkconnects.sparkoperator.k8s.io.yaml")
needs_crds = pytest.mark.skipif(not os.path.isfile(SPARKCONNECT_CRD),
                                reason=f"upstream CRDs not found at {CRDS} (CI has ../shared/crds beside the repo)")
IMAGE = "quay.io/opendatahub/workbench-images@sha256:" + "a" * 64
GI, MI = 2**30, 2**20
SECRET = "c2VjcmV0LW9mLXRoaXMtY2x1c3Rlcg"
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
DNS_1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")


def spec(**kw) -> kube.KubeSparkSpec:
    base = dict(user="alice", server="", namespace="odh", image=IMAGE, request=SparkRequest(3, 2, 4 * GI),
                anchor_uid="6f1c0c52-0000-4000-8000-000000000001", s3_secret="odh-s3-alice",
                s3_endpoint="http://rgw.odh.svc:8080")
    base.update(kw)
    return kube.KubeSparkSpec(**base)


def all_manifests(s) -> list[dict]:
    return [kube.anchor_configmap(s), *kube.standalone_manifests(s, SECRET)]


def containers(manifest) -> list[dict]:
    return manifest["spec"]["template"]["spec"]["containers"] if manifest["kind"] == "Deployment" else []


@pytest.mark.parametrize("user,server", [("alice", ""), ("alice", "gpu"), ("Jane.Doe@example.org", "my server"),
                                         ("a" * 80, "b" * 80)])
def test_every_manifest_is_valid_kubernetes(user, server):
    for m in all_manifests(spec(user=user, server=server)):
        kubernetes_validate.validate(m, K8S, strict=True)
        assert DNS_LABEL.match(m["metadata"]["name"]), m["metadata"]["name"]


def test_names_and_labels():
    s = spec(server="gpu")
    anchor, secret, master, service, worker = all_manifests(s)
    assert anchor["metadata"]["name"] == "spark-anchor-alice---gpu"
    assert secret["metadata"]["name"] == "spark-alice---gpu-auth"
    assert (master["metadata"]["name"], service["metadata"]["name"]) == ("spark-alice---gpu-master",) * 2
    assert worker["metadata"]["name"] == "spark-alice---gpu-worker"
    components = {m["kind"] + "/" + m["metadata"]["name"]: m["metadata"]["labels"]["app.kubernetes.io/component"]
                  for m in (anchor, master, service, worker)}
    assert sorted(components.values()) == ["spark-anchor", "spark-master", "spark-master", "spark-worker"]
    for m in (anchor, master, service, worker):
        labels = m["metadata"]["labels"]
        assert labels["odh-hub/user"] == "alice" and labels["odh-hub/server"] == "gpu"
        assert labels["app.kubernetes.io/managed-by"] == "odh-hub" and m["metadata"]["namespace"] == "odh"
    for d in (master, worker):  # pods carry the same labels; the selector is a stable subset of them
        pod_labels = d["spec"]["template"]["metadata"]["labels"]
        assert d["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
        assert pod_labels["odh-hub/user"] == "alice"
    assert service["spec"]["selector"] == master["spec"]["selector"]["matchLabels"]


def test_unsafe_user_names_get_safe_distinct_slugs_and_labels():
    slugs = {cluster_slug(u, srv) for u, srv in [("a-b", "c"), ("a", "b-c"), ("a--b", ""), ("a", "b"), ("A", ""),
                                                 ("a", ""), ("x" * 60, ""), ("x" * 61, "")]}
    assert len(slugs) == 8 and all(len(s) <= SLUG_MAX and DNS_1123_LABEL.match(s) for s in slugs)
    assert cluster_slug("a", "b") == "a---b" and cluster_slug("A", "").startswith("a--")
    value = label_value("Jane.Doe@example.org")
    assert value != "Jane.Doe@example.org" and len(value) <= 63 and re.match(r"^[A-Za-z0-9][-A-Za-z0-9_.]*$", value)
    assert label_value("") == "" and label_value("jane.doe") == "jane.doe"


def test_everything_but_the_anchor_is_owned_by_the_anchor():
    s = spec()
    anchor, *owned = all_manifests(s)
    assert "ownerReferences" not in anchor["metadata"]
    for m in owned + [kube.spark_connect(s)]:
        assert m["metadata"]["ownerReferences"] == [{"apiVersion": "v1", "kind": "ConfigMap",
                                                     "name": "spark-anchor-alice", "uid": s.anchor_uid}]
    with pytest.raises(ValueError, match="anchor_uid"):
        kube.master_deployment(spec(anchor_uid=""))


def test_workers_are_sized_from_the_request():
    s = spec(request=SparkRequest(3, 2, 4 * GI))
    worker = kube.worker_deployment(s)
    assert worker["spec"]["replicas"] == 3
    (c,) = containers(worker)
    expected_memory = 4 * GI + 256 * MI + 4 * GI // 10  # executors + worker JVM + executor overhead (10%)
    assert c["resources"]["requests"] == c["resources"]["limits"] == {
        "cpu": "2", "memory": f"{-(-expected_memory // MI)}Mi"}
    args = c["args"]
    assert args[args.index("--cores") + 1] == "2" and args[args.index("--memory") + 1] == "4096m"
    assert args[-1] == "spark://spark-alice-master.odh.svc:7077" == kube.master_url(s)
    assert c["command"] == ["spark-class", "org.apache.spark.deploy.worker.Worker"] and c["image"] == IMAGE
    small = containers(kube.worker_deployment(spec(request=SparkRequest(1, 1, 512 * MI))))[0]
    assert small["resources"]["limits"]["memory"] == "1152Mi"  # 512Mi + 256Mi + the 384Mi minimum overhead


def test_master_ports_probes_and_service():
    s = spec()
    master, service = kube.master_deployment(s), kube.master_service(s)
    (c,) = containers(master)
    assert {p["name"]: p["containerPort"] for p in c["ports"]} == {"spark": 7077, "http": 8080}
    assert c["command"][1] == "org.apache.spark.deploy.master.Master" and "$(SPARK_LOCAL_IP)" in c["args"]
    assert c["readinessProbe"]["httpGet"] == {"path": "/json/", "port": "http"}
    assert {p["name"]: p["port"] for p in service["spec"]["ports"]} == {"spark": 7077, "http": 8080}
    assert master["spec"]["replicas"] == 1


def test_pods_are_locked_down():
    for m in kube.standalone_manifests(spec(), SECRET):
        if m["kind"] != "Deployment":
            continue
        pod = m["spec"]["template"]["spec"]
        assert pod["automountServiceAccountToken"] is False and pod["securityContext"]["runAsNonRoot"] is True
        for c in pod["containers"]:
            assert c["securityContext"] == {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _env_entries(obj):
    if isinstance(obj, dict):
        for k, v in obj.items():
            if k == "env":
                yield from v
            else:
                yield from _env_entries(v)
    elif isinstance(obj, list):
        for v in obj:
            yield from _env_entries(v)


def test_s3_keys_only_by_secret_reference():
    s = spec()
    manifests = all_manifests(s) + [kube.spark_connect(s)]
    env = list(_env_entries(manifests))
    refs = [e for e in env if e["name"] in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")]
    assert len(refs) == 2 * 3  # the worker pods, the connect server and its executors
    for e in refs:
        assert "value" not in e and e["valueFrom"] == {"secretKeyRef": {"name": "odh-s3-alice", "key": e["name"]}}
    sensitive = re.compile(r"SECRET|PASSWORD|TOKEN|ACCESS_KEY|CREDENTIAL", re.I)
    assert not [e for e in env if sensitive.search(e["name"]) and "value" in e]
    worker_env = {e["name"]: e.get("value") for e in containers(kube.worker_deployment(s))[0]["env"]}
    assert worker_env["S3_ENDPOINT_URL"] == "http://rgw.odh.svc:8080"
    assert worker_env["AWS_REQUEST_CHECKSUM_CALCULATION"] == "WHEN_REQUIRED"
    # the master runs no user code: it gets no credentials at all
    assert not [e for e in containers(kube.master_deployment(s))[0]["env"] if e["name"].startswith("AWS_")]
    # without a Secret there are no S3 settings at all
    assert not [e for e in _env_entries(all_manifests(spec(s3_secret=""))) if e["name"].startswith("AWS_")]


def test_notebook_env():
    s = spec()
    env = kube.notebook_env(s)
    assert env["SPARK_MASTER_URL"] == env["MASTER"] == "spark://spark-alice-master.odh.svc:7077"
    assert env["SPARK_EXECUTOR_MEMORY"] == "4096m" and env["SPARK_EXECUTOR_CORES"] == "2"
    assert env["ODH_SPARK_UI_URL"] == "http://spark-alice-master.odh.svc:8080"
    assert kube.spark_connect_env(s) == {"SPARK_REMOTE": "sc://spark-alice-server.odh.svc.cluster.local:15002"}


# -- SparkConnect (kubeflow spark-operator) against the upstream CRD --------------------------------------------
@pytest.fixture(scope="module")
def sparkconnect_crd():
    with open(SPARKCONNECT_CRD) as f:
        return yaml.safe_load(f)


@needs_crds
def test_spark_connect_matches_the_upstream_crd(sparkconnect_crd):
    s = spec()
    sc = kube.spark_connect(s)
    group, kind = sparkconnect_crd["spec"]["group"], sparkconnect_crd["spec"]["names"]["kind"]
    (version,) = [v for v in sparkconnect_crd["spec"]["versions"] if f"{group}/{v['name']}" == sc["apiVersion"]]
    assert sc["kind"] == kind and version["served"]
    schema = version["schema"]["openAPIV3Schema"]
    jsonschema.validate(sc, schema)
    assert unknown_fields(sc, schema) == []
    assert sc["spec"]["executor"] == {**sc["spec"]["executor"], "instances": 3, "cores": 2, "memory": "4096m"}
    assert sc["spec"]["hadoopConf"]["fs.s3a.endpoint"] == s.s3_endpoint
    assert not [k for k in json.dumps(sc["spec"]["hadoopConf"]).split('"') if "secret" in k.lower()]


@needs_crds
def test_spark_connect_pod_templates_are_valid_pods():
    sc = kube.spark_connect(spec())
    for role, container in (("server", "spark-kubernetes-driver"), ("executor", "spark-kubernetes-executor")):
        template = sc["spec"][role]["template"]
        pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "t", **template["metadata"]},
               "spec": template["spec"]}
        kubernetes_validate.validate(pod, K8S, strict=True)
        assert template["spec"]["containers"][0]["name"] == container
    metadata_holder = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": sc["metadata"]}
    kubernetes_validate.validate(metadata_holder, K8S, strict=True)  # the CRD leaves metadata to the API server


@needs_crds
def test_an_invalid_spark_connect_is_caught(sparkconnect_crd):
    """The checks above can fail: a misspelt field and a wrong type are both reported."""
    schema = sparkconnect_crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    bad = kube.spark_connect(spec())
    bad["spec"]["executor"]["replicas"] = bad["spec"]["executor"].pop("instances")
    assert unknown_fields(bad, schema) == [".spec.executor.replicas"]
    bad["spec"]["executor"]["cores"] = "two"
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(bad, schema)


def test_the_clusters_network_policy_admits_only_its_pods_its_owners_notebook_and_the_platform():
    s = spec(server="gpu", platform_pod_labels={"app.kubernetes.io/component": "platform"})
    policy = kube.network_policy(s)
    instance = {"app.kubernetes.io/name": "spark", "app.kubernetes.io/instance": "spark-alice---gpu"}
    assert policy["metadata"]["name"] == "spark-alice---gpu"
    assert policy["metadata"]["ownerReferences"][0]["uid"] == s.anchor_uid  # collected with the anchor
    assert policy["spec"] == {
        "podSelector": {"matchLabels": instance},
        "policyTypes": ["Ingress"],
        "ingress": [
            {"from": [{"podSelector": {"matchLabels": instance}},
                      {"podSelector": {"matchLabels": {"odh-hub/spark-instance": "spark-alice---gpu"}}}]},
            {"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "platform"}}}],
             "ports": [{"port": 8080, "protocol": "TCP"}]},
        ],
    }
    assert kube.notebook_labels(s) == {"odh-hub/spark-instance": "spark-alice---gpu"}
    # every pod of the cluster is selected; a colleague's notebook label never matches
    for m in all_manifests(s):
        if m["kind"] == "Deployment":
            assert instance.items() <= m["spec"]["template"]["metadata"]["labels"].items()
    assert kube.notebook_labels(spec(user="bob", server="gpu")) != kube.notebook_labels(s)
    assert len(kube.network_policy(spec())["spec"]["ingress"]) == 1  # no platform labels: no platform rule


@pytest.mark.parametrize("user,server", [("alice", ""), ("Jane.Doe@example.org", "my server"), ("a" * 80, "b" * 80)])
def test_the_network_policy_is_valid_kubernetes(user, server):
    policy = kube.network_policy(spec(user=user, server=server, platform_pod_labels={"a": "b"}))
    kubernetes_validate.validate(policy, K8S, strict=True)
    assert DNS_LABEL.match(policy["metadata"]["name"])
    (label,) = kube.notebook_labels(spec(user=user, server=server)).values()
    assert len(label) <= 63 and DNS_LABEL.match(label)  # a valid label value
