"""The pure parts of the Spark cluster's Kubernetes I/O: which objects the anchor owns, the notebook's
environment, the JSON Patch that takes over a left-over object, and usage counted from anchors."""

import jsonpatch
import pytest
from traitlets import TraitError

from odh_spawner.profiles.resolve import SparkRequest
from odh_spawner.spark import kube, kube_io
from odh_spawner.spawners import kube_spark
from odh_spawner.spark.limits import SparkUsage

GI = 2**30
IMAGE = "quay.io/opendatahub/workbench-images@sha256:" + "a" * 64


def spec(**kw) -> kube.KubeSparkSpec:
    base = {"user": "alice", "server": "", "namespace": "odh", "image": IMAGE, "request": SparkRequest(2, 1, GI),
            "anchor_uid": "6f1c0c52-0000-4000-8000-000000000001"}
    return kube.KubeSparkSpec(**{**base, **kw})


def anchor(user="alice", server="", workers=2, deleting=False, **kw) -> dict:
    a = kube.anchor_configmap(spec(user=user, server=server, request=SparkRequest(workers, 1, GI), **kw))
    if deleting:
        a["metadata"]["deletionTimestamp"] = "2026-01-01T00:00:00Z"
    return a


def test_owned_manifests_per_cluster_type():
    s = spec()
    assert [m["kind"] for m in kube_io.owned_manifests(s, "standalone", "s3cr3t")] == \
        ["NetworkPolicy", "Secret", "Deployment", "Service", "Deployment"]  # the policy before any pod
    assert [m["kind"] for m in kube_io.owned_manifests(s, "standalone", "s3cr3t", network_policy=False)] == \
        ["Secret", "Deployment", "Service", "Deployment"]
    policy, sc = kube_io.owned_manifests(s, "spark-connect")
    assert sc["kind"] == "SparkConnect" and sc["metadata"]["ownerReferences"][0]["uid"] == s.anchor_uid
    assert policy["kind"] == "NetworkPolicy" and policy["metadata"]["ownerReferences"][0]["uid"] == s.anchor_uid
    with pytest.raises(ValueError, match="`anchor_uid` is required"):
        kube_io.owned_manifests(spec(anchor_uid=""), "standalone", "s3cr3t")
    with pytest.raises(ValueError, match="needs its secret"):
        kube_io.owned_manifests(s, "standalone")


def test_notebook_env_per_cluster_type():
    assert kube_io.notebook_env(spec(), "standalone")["MASTER"] == "spark://spark-alice-master.odh.svc:7077"
    assert kube_io.notebook_env(spec(), "spark-connect") == {
        "SPARK_REMOTE": "sc://spark-alice-server.odh.svc.cluster.local:15002"}


def test_replace_patch_takes_over_a_left_over_object():
    old = kube.worker_deployment(spec(request=SparkRequest(1, 1, GI), anchor_uid="old-uid"))
    old["metadata"]["labels"]["theirs"] = "kept"
    new = kube.worker_deployment(spec(request=SparkRequest(3, 2, 2 * GI), anchor_uid="new-uid"))
    patched = jsonpatch.apply_patch(old, kube_io.replace_patch(new))
    assert patched["spec"] == new["spec"]
    assert patched["metadata"]["ownerReferences"] == new["metadata"]["ownerReferences"]  # not merged by uid
    assert patched["metadata"]["labels"] == {**new["metadata"]["labels"], "theirs": "kept"}


def test_replace_patch_keeps_the_cluster_ip_the_server_allocated_to_a_service():
    """A real API server refuses a Service update that unsets spec.clusterIP (found against kube-apiserver 1.20,
    tests/integration/test_kube_real_spark.py): the Service's spec is set key by key."""
    new = kube.master_service(spec(anchor_uid="new-uid"))
    old = kube.master_service(spec(anchor_uid="old-uid"))
    old["spec"].update(clusterIP="10.96.0.59", clusterIPs=["10.96.0.59"], sessionAffinity="None",
                       ports=[{"name": "old", "port": 1}])
    patched = jsonpatch.apply_patch(old, kube_io.replace_patch(new))
    assert patched["spec"] == {**new["spec"], "clusterIP": "10.96.0.59", "clusterIPs": ["10.96.0.59"],
                               "sessionAffinity": "None"}
    assert patched["metadata"]["ownerReferences"] == new["metadata"]["ownerReferences"]


def test_replace_patch_takes_over_a_left_over_secret():
    old = kube.auth_secret(spec(anchor_uid="old-uid"), "old-secret")
    new = kube.auth_secret(spec(), "new-secret")
    patched = jsonpatch.apply_patch(old, kube_io.replace_patch(new))
    assert patched["data"] == new["data"] and "spec" not in patched
    assert patched["metadata"]["ownerReferences"] == new["metadata"]["ownerReferences"]


class FakeSpawner:  # only the two traits mount_notebook_conf touches
    def __init__(self):
        self.volumes = [{"name": "data", "emptyDir": {}}]
        self.volume_mounts = [{"name": "data", "mountPath": "/data"}]


def test_the_notebook_pod_mounts_its_clusters_conf_once():
    sp = FakeSpawner()
    kube_spark.mount_notebook_conf(sp, spec())
    kube_spark.mount_notebook_conf(sp, spec())  # a second start of the same server: replaced, not added
    assert [v["name"] for v in sp.volumes] == ["data", "spark-auth"]
    assert sp.volumes[1]["secret"]["secretName"] == "spark-alice-auth"
    assert sp.volume_mounts[1] == {"name": "spark-auth", "mountPath": "/etc/odh/spark", "readOnly": True}
    kube_spark.mount_notebook_conf(sp, None)  # now without a standalone cluster
    assert [v["name"] for v in sp.volumes] == ["data"] and [m["name"] for m in sp.volume_mounts] == ["data"]


def test_anchor_request_reads_the_recorded_shape():
    assert kube.anchor_request(anchor(workers=3)) == SparkRequest(3, 1, GI)
    assert kube.anchor_request({"data": {"workers": "x"}}) is None
    assert kube.anchor_request({}) is None


def test_usage_from_anchors():
    anchors = [anchor("alice", "", 2), anchor("alice", "gpu", 1), anchor("bob", "", 3),
               anchor("alice", "old", 5, deleting=True), {"metadata": {"name": "unrelated", "labels": {}}},
               {**anchor("carol", "", 1), "data": {"workers": "broken"}}]
    assert kube.usage_from_anchors(anchors, "alice") == SparkUsage(user_workers=3, total_workers=6)
    assert kube.usage_from_anchors(anchors, "alice", exclude="spark-anchor-alice") == \
        SparkUsage(user_workers=1, total_workers=4)
    assert kube.usage_from_anchors(anchors, "bob") == SparkUsage(user_workers=3, total_workers=6)
    assert kube.usage_from_anchors([], "alice") == SparkUsage()


def test_users_are_told_apart_by_the_exact_name_not_the_label():
    long_a, long_b = "x" * 70 + "a", "x" * 70 + "b"  # label values would be hashes; annotations are exact
    anchors = [anchor(long_a, "", 2), anchor(long_b, "", 1)]
    assert kube.usage_from_anchors(anchors, long_a) == SparkUsage(user_workers=2, total_workers=3)


def test_kube_spark_settings():
    s = kube_io.KubeSpark(master_memory="1Gi")
    assert (s.cluster_type, s.delete_propagation, s.master_memory) == ("standalone", "Foreground", GI)
    with pytest.raises(TraitError):
        kube_io.KubeSpark(master_memory="lots")
    with pytest.raises(TraitError):
        kube_io.KubeSpark(delete_propagation="Orphan")
