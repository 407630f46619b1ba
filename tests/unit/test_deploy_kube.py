"""The pure parts of the Kubernetes serving backend: status freshness, endpoint URLs, the per-user storage
objects, the serving resource of a version, the JSON Patch that replaces a spec, and the owner filter."""

import jsonpatch
import kubernetes_validate
import pytest
from traitlets import TraitError

from odh_spawner.kube import client as kube_client
from odh_spawner.deploy import kube, manifests
from odh_spawner.deploy.model import Deployment
from tests.support.kube import K8S_VERSION

ACCESS, SECRET, ENDPOINT = "AKIAEXAMPLE", "very/secret+key", "http://rgw.ceph.svc:8080"


def sdep(status=None, generation=None) -> dict:
    cr = {"kind": "SeldonDeployment", "metadata": {"name": "alice--iris"}}
    if generation is not None:
        cr["metadata"]["generation"] = generation
    if status is not None:
        cr["status"] = status
    return cr


def test_cr_state_follows_deployment_state():
    assert kube.cr_state(sdep({"state": "Available", "address": {"url": "http://x"}})) == \
        {"state": "Available", "url": "http://x", "message": None}
    assert kube.cr_state(sdep({"state": "Failed", "description": "boom"}))["message"] == "boom"
    assert kube.cr_state(sdep())["state"] == "Creating"


@pytest.mark.parametrize("generation,observed,state", [
    (2, 1, "Creating"),  # the operator wrote this status for the previous spec
    (2, 2, "Available"), (2, 3, "Available"),
    (2, None, "Available"),  # no observedGeneration: nothing to compare, trust the status
    (None, 1, "Available"),
])
def test_a_status_for_an_older_spec_is_not_taken_for_the_new_one(generation, observed, state):
    status = {"state": "Available", "address": {"url": "http://x"}}
    if observed is not None:
        status["observedGeneration"] = observed
    assert kube.cr_state(sdep(status, generation))["state"] == state


def condition(status_, message=None, reason=None, when="2026-03-01T12:00:05Z") -> dict:
    c = {"status": status_, "message": message, "reason": reason, "lastTransitionTime": when}
    return {k: v for k, v in c.items() if v is not None}


def model(ready: dict, generation=2) -> dict:
    """A Seldon Core 2 Model whose ModelReady and Ready conditions are `ready` (its operator writes no
    observedGeneration)."""
    return {"kind": "Model", "metadata": {"name": "alice--iris", "generation": generation},
            "status": {"conditions": [{"type": t, **ready} for t in ("ModelReady", "Ready")], "replicas": 1}}


V1_READY = {"type": "ModelReady", **condition("True", "ModelAvailable", when="2026-03-01T11:00:00Z")}
V3_FAILED = {"type": "ModelReady", **condition("False", "ModelFailed", "no model file")}


@pytest.mark.parametrize("ready,superseded,state", [
    # not after a spec change of ours: the status is what it is
    (condition("True", "ModelAvailable", when="2026-03-01T11:00:00Z"), None, "Available"),
    (condition("True", "ModelAvailable", when="2026-03-01T11:00:00Z"), {}, "Available"),
    # our change superseded v1's "True": still that very condition, so not v2's
    (condition("True", "ModelAvailable", when="2026-03-01T11:00:00Z"), V1_READY, "Creating"),
    # the operator's answers for v2: progressing, then a new "True" (a new transition time)
    (condition("False", "ModelProgressing"), V1_READY, "Creating"),
    (condition("True", "ModelAvailable", when="2026-03-01T12:00:07Z"), V1_READY, "Available"),
    (condition("False", "ModelFailed", "no model file", when="2026-03-01T12:00:07Z"), V1_READY, "Failed"),
    # our restore of v2 superseded v3's failure: in the same second, yet not v2's state
    (condition("False", "ModelFailed", "no model file"), V3_FAILED, "Creating"),
    (condition("False", "ModelProgressing", when="2026-03-01T12:00:05Z"), V3_FAILED, "Creating"),
    (condition("True", "ModelAvailable", when="2026-03-01T12:00:05Z"), V3_FAILED, "Available"),
])
def test_a_seldon_v2_status_from_before_our_spec_change_is_not_taken_for_the_new_spec(ready, superseded, state):
    got = kube.cr_state(model(ready), superseded)
    assert got["state"] == state and got["url"] is None
    if superseded and ready == {k: v for k, v in superseded.items() if k != "type"}:
        assert got["message"] == "The operator has not yet picked up the new version."


def test_superseded_only_concerns_models():
    """Kinds whose operators write observedGeneration are judged by it alone."""
    old = {"state": "Available", "address": {"url": "http://x"}}
    assert kube.cr_state(sdep(old, 2), V1_READY)["state"] == "Available"
    assert kube.cr_state(sdep({**old, "observedGeneration": 1}, 2), V1_READY)["state"] == "Creating"
    assert kube.NO_OBSERVED_GENERATION == {"seldon-v2"}


def test_stale_failed_status_is_not_a_failure_of_the_new_version():
    got = kube.cr_state(sdep({"state": "Failed", "description": "old", "observedGeneration": 1}, 2))
    assert got["state"] == "Creating" and "not yet picked up" in got["message"]


@pytest.mark.parametrize("url,base", [
    ("http://alice--iris-default.odh.svc.cluster.local:8000/api/v1.0/predictions",
     "http://alice--iris-default.odh.svc.cluster.local:8000"),
    ("http://a.odh.svc:8000/v2/models/iris/infer", "http://a.odh.svc:8000"),
    ("http://alice--iris.odh.example.com", "http://alice--iris.odh.example.com"),
    ("http://alice--iris.odh.example.com/", "http://alice--iris.odh.example.com"),
    ("https://gw.example.com/seldon/odh/alice--iris/api/v1.0/predictions", "https://gw.example.com"),
    (None, None), ("", None),
])
def test_endpoint_base(url, base):
    assert kube.endpoint_base(url) == base


def test_storage_objects_are_the_manifest_builders_and_valid():
    (secret,) = kube.storage_objects("seldon", "alice", "odh", access_key=ACCESS, secret_key=SECRET,
                                     endpoint=ENDPOINT)
    assert secret == manifests.rclone_storage_secret("alice", "odh", access_key=ACCESS, secret_key=SECRET,
                                                     endpoint=ENDPOINT)
    secret, sa = kube.storage_objects("kserve", "alice", "odh", access_key=ACCESS, secret_key=SECRET,
                                      endpoint=ENDPOINT)
    assert sa["secrets"] == [{"name": secret["metadata"]["name"]}]
    for obj in (secret, sa):
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)
    (secret,) = kube.storage_objects("seldon-v2", "alice", "odh", access_key=ACCESS, secret_key=SECRET,
                                     endpoint=ENDPOINT)
    assert secret == manifests.seldon_v2_storage_secret("alice", "odh", access_key=ACCESS, secret_key=SECRET,
                                                        endpoint=ENDPOINT)
    kubernetes_validate.validate(secret, K8S_VERSION, strict=True)
    for kind in kube.RESOURCES:
        with pytest.raises(ValueError):
            kube.storage_objects(kind, "alice", "odh", access_key=ACCESS, secret_key=SECRET, endpoint="")


def test_storage_names_match_the_objects():
    names = {}
    for kind in kube.RESOURCES:
        objects = kube.storage_objects(kind, "Jane.Doe@example.org", "odh", access_key="a", secret_key="b",
                                       endpoint=ENDPOINT)
        names[kind] = {n for _, n in kube.storage_names(kind, "Jane.Doe@example.org")}
        assert names[kind] == {o["metadata"]["name"] for o in objects}
    # each kind has its own objects: a switch of serving_resource never mixes two Secret formats under one name
    assert not (names["seldon"] & names["seldon-v2"]) and not (names["seldon-v2"] & names["kserve"])


def test_serving_manifest_of_a_version():
    d = Deployment(owner="alice", name="iris")
    v = d.add_version("s3://odh-models-alice/iris/", "mlflow")
    assert kube.serving_manifest("seldon", d, v, "odh") == manifests.seldon_deployment(
        "alice", "iris", "odh", model_uri=v.model_uri, framework="mlflow", secret_name="odh-model-storage-alice",
        version=1)
    res = {"limits": {"cpu": "1"}}
    assert kube.serving_manifest("kserve", d, v, "odh", res) == manifests.inference_service(
        "alice", "iris", "odh", model_uri=v.model_uri, framework="mlflow",
        service_account="odh-model-serving-alice", version=1, resources=res)
    # a Seldon Core 2 Model has no container of its own: the resources are the Server's
    assert kube.serving_manifest("seldon-v2", d, v, "odh", res) == manifests.seldon_v2_model(
        "alice", "iris", "odh", model_uri=v.model_uri, framework="mlflow", secret_name="odh-seldon2-storage-alice",
        version=1)
    for kind, (group, version, _, label) in kube.RESOURCES.items():
        cr = kube.serving_manifest(kind, d, v, "odh", res, {"image": "quay.io/odh-hub/hub:0.1.0"})  # mlserver's
        assert (cr["apiVersion"], cr["kind"]) == (f"{group}/{version}", label)


def test_spec_patch_replaces_the_spec_and_sets_our_metadata_only():
    d = Deployment(owner="alice", name="iris")
    v1 = d.add_version("s3://b/v1/", "sklearn")
    old = kube.serving_manifest("kserve", d, v1, "odh", {"limits": {"cpu": "1"}})
    old["metadata"]["labels"]["team"] = "theirs"
    old["metadata"]["annotations"]["kubectl.kubernetes.io/last-applied-configuration"] = "{}"
    v2 = d.add_version("s3://b/v2/", "sklearn")
    new = kube.serving_manifest("kserve", d, v2, "odh")  # no resources this time
    patched = jsonpatch.apply_patch(old, kube.spec_patch(new))
    assert patched["spec"] == new["spec"]  # "resources" gone: a merge patch would have kept it
    assert patched["metadata"]["labels"] == {**new["metadata"]["labels"], "team": "theirs"}
    assert patched["metadata"]["annotations"]["odh-hub/version"] == "2"
    assert "kubectl.kubernetes.io/last-applied-configuration" in patched["metadata"]["annotations"]
    paths = [op["path"] for op in kube.spec_patch(new)]
    assert "/metadata/labels/app.kubernetes.io~1managed-by" in paths


def test_owned_by_uses_the_exact_user_name_and_skips_deleted_and_excluded():
    def item(name, user, deleting=False):
        meta = {"name": name, "annotations": {"hub.jupyter.org/username": user}}
        if deleting:
            meta["deletionTimestamp"] = "2026-01-01T00:00:00Z"
        return {"metadata": meta}

    items = [item("alice--a", "alice"), item("alice--b", "alice", deleting=True), item("x-1", "Alice"),
             item("alice--c", "alice"), {"metadata": {"name": "no-annotations"}}]
    assert kube.owned_by(items, "alice") == ["alice--a", "alice--c"]
    assert kube.owned_by(items, "alice", exclude="alice--a") == ["alice--c"]
    assert kube.owned_by(items, "Alice") == ["x-1"]


def test_backend_interface_basics(monkeypatch):
    monkeypatch.setattr(kube_client, "SA_NAMESPACE_FILE", "/nonexistent")
    monkeypatch.setenv("POD_NAMESPACE", "odh-platform")
    b = kube.KubeServingBackend(proxy=object(), public_url="http://hub")
    assert (b.name, b.namespace, b.serving_resource, b.public_url) == ("kubernetes", "odh-platform", "seldon",
                                                                       "http://hub")
    assert b.supports("sklearn") and b.supports("mlflow") and not b.supports("xgboost")
    assert b.model_name_for("alice", "iris") == "iris"
    b.serving_resource = "kserve"
    assert b.model_name_for("alice", "iris") == "alice--iris"
    b.serving_resource = "seldon-v2"
    assert b.model_name_for("alice", "iris") == "alice--iris"  # the mesh routes by the Model's name
    with pytest.raises(TraitError):
        b.serving_resource = "triton"


def test_mesh_url(monkeypatch):
    monkeypatch.setattr(kube_client, "SA_NAMESPACE_FILE", "/nonexistent")
    monkeypatch.setenv("POD_NAMESPACE", "odh-platform")
    b = kube.KubeServingBackend()
    assert b.mesh_url == "http://seldon-mesh.odh-platform.svc.cluster.local"
    assert kube.KubeServingBackend(namespace="models").mesh_url == "http://seldon-mesh.models.svc.cluster.local"
    b.mesh_url = "https://mesh.example.org/"
    assert b.mesh_url == "https://mesh.example.org"
    for bad in ("seldon-mesh.odh", "ftp://mesh", "http://"):
        with pytest.raises(TraitError, match="mesh_url must be an http"):
            b.mesh_url = bad
    available = {"state": "Available", "url": None, "message": None}
    assert b._url("seldon-v2", available) == "https://mesh.example.org"
    assert b._url("seldon", {**available, "url": "http://a.odh.svc:8000/api/v1.0/predictions"}) == \
        "http://a.odh.svc:8000"
    d = Deployment(owner="alice", name="iris", model_name="alice--iris", url=b._url("seldon-v2", available))
    assert d.infer_url == "https://mesh.example.org/v2/models/alice--iris/infer"


def test_network_policy_from_the_settings(monkeypatch, caplog):
    monkeypatch.setattr(kube_client, "SA_NAMESPACE_FILE", "/nonexistent")
    b = kube.KubeServingBackend(namespace="models", platform_namespace="odh")
    policy = b.network_policy_manifest("seldon")
    assert policy == manifests.serving_network_policy(
        "models", "seldon", platform_pod_labels={"app.kubernetes.io/name": "odh-hub",
                                                 "app.kubernetes.io/component": "platform"},
        platform_namespace="odh")
    kubernetes_validate.validate(policy, K8S_VERSION, strict=True)
    assert b.network_policy_manifest("seldon-v2") is None  # no default selector: warned, not applied
    assert "No NetworkPolicy for seldon-v2" in caplog.text
    b.serving_pod_selector = {"matchLabels": {"app.kubernetes.io/name": "seldon-envoy"}}
    assert b.network_policy_manifest("seldon-v2")["spec"]["podSelector"] == b.serving_pod_selector
    b.network_policy = False
    assert b.network_policy_manifest("kserve") is None


def test_the_gateway_url_replaces_the_operators_url():
    """The operator's URL is the gateway's upstream; users get the hub's URL (deploy.routing)."""
    from odh_spawner.deploy.routing import ModelRoutes

    d = Deployment(owner="alice", name="iris", model_name="iris")
    kube.KubeServingBackend._serve_at(d, "http://iris-default.odh.svc.cluster.local:8000")
    assert d.upstream == d.url == "http://iris-default.odh.svc.cluster.local:8000"
    routes = ModelRoutes("http://odh-platform.odh.svc:10101/", proxy=object(), public_url="https://hub.example/")
    assert routes.base_url == "https://hub.example" and routes.path(d) == "/v2/models/iris"
    assert ModelRoutes("http://odh-platform.odh.svc:10101").base_url == "http://odh-platform.odh.svc:10101"
