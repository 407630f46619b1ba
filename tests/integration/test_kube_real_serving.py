"""Model serving on Kubernetes (KubeServingBackend) against the real API server (tests/support/k8s_control_plane.py)
with the upstream CRDs installed unedited from ../shared/crds: SeldonDeployment (machinelearning.seldon.io/v1),
Seldon Core 2 Model (mlops.seldon.io/v1alpha1) and KServe InferenceService (serving.kserve.io/v1beta1). The API
server validates every resource against the CRD's structural schema and prunes what it does not declare (so the
tests compare what was stored with what we built); metadata.generation is the server's own.

No operator runs: `operator()` below is a test operator that writes the resource's status through the real
`/status` subresource, as Seldon Core, Seldon Core 2 or KServe would (so the status must fit the CRD too).
Ported from test_kube_emulated.py; what stays there and why is said in that module."""

from __future__ import annotations

import asyncio
import base64
import datetime
import json
import logging

import pytest

from odh_spawner.credentials import S3Credentials
from odh_spawner.deploy import manifests
from odh_spawner.deploy.kube import KubeServingBackend
from odh_spawner.deploy.model import BackendFailed, Deployment
from tests.support.k8s_control_plane import crds_available, install_crds
from tests.support.kube_real import core, get, group

ACCESS, SECRET = "AKIAALICEEXAMPLE42", "alice/very+secret=key"
ENDPOINT = "http://rgw.ceph.svc:8080"
CREDS = S3Credentials(ACCESS, SECRET, ENDPOINT)
SDEP = ("machinelearning.seldon.io/v1", "seldondeployments")
MODEL = ("mlops.seldon.io/v1alpha1", "models")
ISVC = ("serving.kserve.io/v1beta1", "inferenceservices")
CRD_FILES = ["seldondeployments.machinelearning.seldon.io.yaml", "models.mlops.seldon.io.yaml",
             "inferenceservices.serving.kserve.io.yaml"]
pytestmark = pytest.mark.skipif(not crds_available(*CRD_FILES),
                                reason="upstream CRDs not found beside the repo (../shared/crds)")
SELDON_AVAILABLE = {"state": "Available", "address": {"url": "http://alice--iris-default.odh.svc.cluster.local:8000"
                                                             "/api/v1.0/predictions"}}


@pytest.fixture(scope="module")
def serving_crds(k8s_control_plane):
    return install_crds(k8s_control_plane, CRD_FILES)


@pytest.fixture
async def make_backend(k8s_control_plane, k8s_namespace, serving_crds):
    made = []

    def make(**kw) -> KubeServingBackend:
        settings = {"kubeconfig": k8s_control_plane.kubeconfig, "namespace": k8s_namespace, "poll_interval": 0.05,
                    "ready_timeout": 10, "request_timeout": 5, "retry_timeout": 10, **kw}
        b = KubeServingBackend(**settings)
        made.append(b)
        return b

    yield make
    for b in made:
        await b.close()


def cr_path(ns: str, resource: tuple, name: str = "") -> str:
    return group(resource[0], ns, resource[1], name)


def new_deployment(backend, owner="alice", name="iris", uri="s3://odh-models-alice/odh-deployments/iris/v1/"):
    d = Deployment(owner=owner, name=name, backend=backend.name, model_name=backend.model_name_for(owner, name))
    return d, d.add_version(uri, "sklearn")


def set_status(cp, ns: str, resource: tuple, name: str, status: dict) -> dict:
    """What an operator does: write the resource's status through its /status subresource."""
    r = cp.api("PATCH", cr_path(ns, resource, name) + "/status", {"status": status})
    assert r.ok, (r.status, r.body)
    return r.body


async def operator(cp, ns, resource, name, version: int, status: dict, observed_generation=True):
    """A test operator: once the resource asks for `version`, answer with `status` (observedGeneration: the
    resource's real generation, unless the operator is one that writes none)."""
    while True:
        cr = get(cp, cr_path(ns, resource, name))
        if cr and cr["metadata"]["labels"].get("odh-hub/version") == str(version):
            break
        await asyncio.sleep(0.02)
    observed = {"observedGeneration": cr["metadata"]["generation"]} if observed_generation else {}
    set_status(cp, ns, resource, name, {**status, **observed})


async def bring_up_with_operator(cp, ns, backend, d, v, resource, status, observed_generation=True):
    stages = []
    up = asyncio.ensure_future(backend.bring_up(d, v, CREDS, [], "/nonexistent", stages.append))
    op = asyncio.ensure_future(operator(cp, ns, resource, manifests.resource_name(d.owner, d.name), v.version,
                                        status, observed_generation))
    try:
        await asyncio.wait_for(asyncio.gather(up, op), 20)
    finally:
        for t in (up, op):
            t.cancel()
    return stages


def strip_server_fields(meta: dict) -> dict:
    return {k: meta[k] for k in ("name", "namespace", "labels", "annotations") if k in meta}


async def test_seldon_deployment_accepted_as_built_then_served_and_adopted_after_a_restart(
        k8s_control_plane, k8s_namespace, make_backend, caplog):
    cp, ns = k8s_control_plane, k8s_namespace
    caplog.set_level(logging.DEBUG, logger="traitlets")
    backend = make_backend(serving_resource="seldon")
    d, v = new_deployment(backend)
    stages = await bring_up_with_operator(cp, ns, backend, d, v, SDEP, SELDON_AVAILABLE)
    assert stages == ["starting"]
    assert d.url == "http://alice--iris-default.odh.svc.cluster.local:8000"
    assert d.runtime == {"resource": "seldon", "name": "alice--iris", "namespace": ns}

    secret = get(cp, core(ns, "secrets", "odh-model-storage-alice"))
    expected_secret = manifests.rclone_storage_secret("alice", ns, access_key=ACCESS, secret_key=SECRET,
                                                      endpoint=ENDPOINT)
    assert secret["data"] == expected_secret["data"]
    assert base64.b64decode(secret["data"]["RCLONE_CONFIG_S3_SECRET_ACCESS_KEY"]).decode() == SECRET

    # the server validated the SeldonDeployment against the upstream CRD and pruned nothing of what we built
    cr = get(cp, cr_path(ns, SDEP, "alice--iris"))
    expected = manifests.seldon_deployment("alice", "iris", ns, model_uri=v.model_uri, framework="sklearn",
                                           secret_name="odh-model-storage-alice", version=1)
    assert cr["spec"] == expected["spec"] and strip_server_fields(cr["metadata"]) == expected["metadata"]
    assert cr["metadata"]["generation"] == 1 and cr["status"]["observedGeneration"] == 1
    assert ACCESS not in json.dumps(cr) and SECRET not in json.dumps(cr)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name == "traitlets")
    assert f"Applied SeldonDeployment {ns}/alice--iris for alice/iris v1" in ours and SECRET not in ours

    # the platform service restarts: a new backend adopts the live resource and finds its URL again
    await backend.close()
    again = make_backend(serving_resource="seldon")
    d2 = Deployment.from_json(json.loads(json.dumps(d.to_json())))  # as the store reloads it
    d2.url = d2.upstream = None
    assert await again.adopt(d2) is True and d2.url == "http://alice--iris-default.odh.svc.cluster.local:8000"
    assert await again.check(d2) is None

    await again.teardown(d2)
    assert get(cp, cr_path(ns, SDEP, "alice--iris")) is None
    assert get(cp, core(ns, "secrets", "odh-model-storage-alice")) is None
    assert await again.adopt(d2) is False


async def test_seldon_failed_status_removes_a_first_version(k8s_control_plane, k8s_namespace, make_backend):
    cp, ns = k8s_control_plane, k8s_namespace
    backend = make_backend()
    d, v = new_deployment(backend)
    failed = {"state": "Failed", "description": "Model load failed: rclone could not read s3://odh-models-alice"}
    with pytest.raises(BackendFailed, match="SeldonDeployment failed: Model load failed: rclone could not read"):
        await bring_up_with_operator(cp, ns, backend, d, v, SDEP, failed)
    assert get(cp, cr_path(ns, SDEP, "alice--iris")) is None
    assert get(cp, core(ns, "secrets", "odh-model-storage-alice")) is None


async def test_seldon_new_version_failing_puts_the_served_version_back(k8s_control_plane, k8s_namespace,
                                                                       make_backend):
    """The server's own metadata.generation tells a status for the old spec from one for the new."""
    cp, ns = k8s_control_plane, k8s_namespace
    backend = make_backend()
    d, v1 = new_deployment(backend)
    await bring_up_with_operator(cp, ns, backend, d, v1, SDEP, SELDON_AVAILABLE)
    d.serving = 1
    v2 = d.add_version("s3://odh-models-alice/odh-deployments/iris/v2/", "sklearn")
    up = asyncio.ensure_future(backend.bring_up(d, v2, CREDS, [], "/nonexistent", lambda stage: None))
    while (cr := get(cp, cr_path(ns, SDEP, "alice--iris")))["metadata"]["generation"] < 2:
        await asyncio.sleep(0.02)
    assert cr["spec"]["predictors"][0]["graph"]["modelUri"] == v2.model_uri
    assert cr["metadata"]["labels"]["odh-hub/version"] == "2"
    await asyncio.sleep(0.3)  # the old status (observedGeneration 1, state Available) is not taken for v2
    assert not up.done()
    set_status(cp, ns, SDEP, "alice--iris", {"state": "Failed", "description": "bad model", "observedGeneration": 2})
    with pytest.raises(BackendFailed, match="bad model"):
        await asyncio.wait_for(up, 10)
    cr = get(cp, cr_path(ns, SDEP, "alice--iris"))
    assert cr["spec"]["predictors"][0]["graph"]["modelUri"] == v1.model_uri  # v1 is served again
    assert cr["metadata"]["labels"]["odh-hub/version"] == "1" and cr["metadata"]["generation"] == 3
    await backend.teardown(d)


async def test_teardown_keeps_the_secret_while_the_user_has_other_deployments(k8s_control_plane, k8s_namespace,
                                                                              make_backend):
    cp, ns = k8s_control_plane, k8s_namespace
    backend = make_backend()
    iris, v = new_deployment(backend)
    churn, w = new_deployment(backend, name="churn", uri="s3://odh-models-alice/odh-deployments/churn/v1/")
    bob, b = new_deployment(backend, owner="bob", uri="s3://odh-models-bob/odh-deployments/iris/v1/")
    for d, version in ((iris, v), (churn, w), (bob, b)):
        status = {**SELDON_AVAILABLE, "address": {"url": f"http://{d.owner}--{d.name}.{ns}.svc:8000"}}
        await bring_up_with_operator(cp, ns, backend, d, version, SDEP, status)

    set_status(cp, ns, SDEP, "alice--churn", {"state": "Failed", "description": "OOMKilled"})
    assert await backend.check(churn) == "The SeldonDeployment is Failed: OOMKilled."
    with pytest.raises(BackendFailed, match="OOMKilled"):
        await backend.recover(churn, w)

    await backend.teardown(iris)  # the label selector of the real server finds alice's other deployment
    assert get(cp, cr_path(ns, SDEP, "alice--iris")) is None
    assert get(cp, core(ns, "secrets", "odh-model-storage-alice")) is not None
    await backend.teardown(iris)  # a second teardown: 404 is fine
    await backend.teardown(churn)
    assert get(cp, core(ns, "secrets", "odh-model-storage-alice")) is None
    assert get(cp, core(ns, "secrets", "odh-model-storage-bob")) is not None

    # a resource deleted behind the platform's back is created again by recover
    assert cp.api("DELETE", cr_path(ns, SDEP, "bob--iris")).ok
    with pytest.raises(BackendFailed, match="created again"):
        await backend.recover(bob, b)
    assert get(cp, cr_path(ns, SDEP, "bob--iris"))["spec"]["predictors"][0]["graph"]["modelUri"] == b.model_uri
    await backend.teardown(bob)


async def test_kserve_inference_service(k8s_control_plane, k8s_namespace, make_backend):
    cp, ns = k8s_control_plane, k8s_namespace
    backend = make_backend(serving_resource="kserve", resources={"requests": {"cpu": "500m", "memory": "1Gi"}})
    d, v = new_deployment(backend)
    assert d.model_name == "alice--iris"
    ready = {"url": f"http://alice--iris.{ns}.example.com",
             "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    await bring_up_with_operator(cp, ns, backend, d, v, ISVC, ready)
    assert d.infer_url == f"http://alice--iris.{ns}.example.com/v2/models/alice--iris/infer"

    secret = get(cp, core(ns, "secrets", "odh-kserve-storage-alice"))
    assert base64.b64decode(secret["data"]["AWS_SECRET_ACCESS_KEY"]).decode() == SECRET
    assert secret["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"] == "rgw.ceph.svc:8080"
    sa = get(cp, core(ns, "serviceaccounts", "odh-model-serving-alice"))
    assert {"name": "odh-kserve-storage-alice"} in sa["secrets"]
    isvc = get(cp, cr_path(ns, ISVC, "alice--iris"))
    # stored as built (the CRD's structural schema prunes nothing): locked-down pod fields included
    assert isvc["spec"] == {"predictor": {
        "serviceAccountName": "odh-model-serving-alice", "automountServiceAccountToken": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "model": {"modelFormat": {"name": "sklearn"}, "protocolVersion": "v2", "runtime": "kserve-mlserver",
                  "storageUri": v.model_uri, "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}},
                  "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                      "runAsNonRoot": True}}}}

    # a second bring-up replaces the Secret with the user's current keys
    await bring_up_with_operator(cp, ns, backend, d, d.add_version(v.model_uri, "sklearn"), ISVC, ready)
    failed = {"conditions": [{"type": "PredictorReady", "status": "False", "reason": "ModelLoadFailed",
                              "message": "sklearn: no model file", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    set_status(cp, ns, ISVC, "alice--iris", failed)
    assert await backend.check(d) == "The InferenceService is Failed: sklearn: no model file."

    await backend.teardown(d)
    for path in (cr_path(ns, ISVC, "alice--iris"), core(ns, "secrets", "odh-kserve-storage-alice"),
                 core(ns, "serviceaccounts", "odh-model-serving-alice")):
        assert get(cp, path) is None, path


def model_status(ready: str, state: str, reason: str = "") -> dict:
    """A Model status as Seldon Core 2's operator writes it (see test_kube_emulated.model_status)."""
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    condition = {"status": ready, "message": state, "lastTransitionTime": when, **({"reason": reason} if reason else {})}
    return {"conditions": [{"type": t, **condition} for t in ("ModelReady", "Ready")], "replicas": 1,
            "availableReplicas": 1 if ready == "True" else 0, "modelgwReady": "ModelAvailable",
            "selector": "server=mlserver"}


async def test_seldon_v2_model(k8s_control_plane, k8s_namespace, make_backend):
    cp, ns = k8s_control_plane, k8s_namespace
    backend = make_backend(serving_resource="seldon-v2")
    d, v1 = new_deployment(backend)
    v1_ready = model_status("True", "ModelAvailable")
    await bring_up_with_operator(cp, ns, backend, d, v1, MODEL, v1_ready, observed_generation=False)
    assert d.infer_url == f"http://seldon-mesh.{ns}.svc.cluster.local/v2/models/alice--iris/infer"
    secret = get(cp, core(ns, "secrets", "odh-seldon2-storage-alice"))
    assert json.loads(base64.b64decode(secret["data"]["s3"]))["parameters"]["secret_access_key"] == SECRET
    model = get(cp, cr_path(ns, MODEL, "alice--iris"))
    assert model["spec"] == {"storageUri": v1.model_uri, "requirements": ["sklearn"],
                             "secretName": "odh-seldon2-storage-alice"}
    assert model["status"]["conditions"][0]["type"] == "ModelReady"  # the status fits the CRD: kept
    assert await backend.check(d) is None and await backend.adopt(d) is True

    # a new version: v1's Ready does not count until the operator wrote a status for v2
    d.serving = 1
    v2 = d.add_version("s3://odh-models-alice/odh-deployments/iris/v2/", "sklearn")
    up = asyncio.ensure_future(backend.bring_up(d, v2, CREDS, [], "/nonexistent", lambda stage: None))
    while (model := get(cp, cr_path(ns, MODEL, "alice--iris")))["metadata"]["generation"] < 2:
        await asyncio.sleep(0.02)
    await asyncio.sleep(0.3)
    assert not up.done()
    set_status(cp, ns, MODEL, "alice--iris", model_status("False", "ModelProgressing"))
    await asyncio.sleep(0.2)
    assert not up.done()
    set_status(cp, ns, MODEL, "alice--iris", v1_ready)
    await asyncio.wait_for(up, 10)
    d.serving = 2

    reason = "failed to schedule model alice--iris. [no matching servers are available]"
    set_status(cp, ns, MODEL, "alice--iris", model_status("False", "ScheduleFailed", reason))
    assert await backend.check(d) == f"The Model is Failed: {reason}."
    await backend.teardown(d)
    assert get(cp, cr_path(ns, MODEL, "alice--iris")) is None
    assert get(cp, core(ns, "secrets", "odh-seldon2-storage-alice")) is None


async def test_a_version_that_never_becomes_ready_times_out_and_is_removed(k8s_control_plane, k8s_namespace,
                                                                           make_backend):
    cp, ns = k8s_control_plane, k8s_namespace
    backend = make_backend(ready_timeout=0.5)  # no operator answers
    d, v = new_deployment(backend)
    with pytest.raises(BackendFailed, match=r"^The model did not become ready within 0.5 s \(the SeldonDeployment "
                                            r"is still Creating\)\.$"):
        await backend.bring_up(d, v, CREDS, [], "/nonexistent", lambda stage: None)
    assert get(cp, cr_path(ns, SDEP, "alice--iris")) is None
    assert get(cp, core(ns, "secrets", "odh-model-storage-alice")) is None


async def test_the_network_policy_is_accepted(k8s_control_plane, k8s_namespace, make_backend):
    cp, ns = k8s_control_plane, k8s_namespace
    backend = make_backend(serving_resource="kserve")
    d, v = new_deployment(backend)
    ready = {"url": "http://x.example", "conditions": [{"type": "Ready", "status": "True",
                                                        "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    await bring_up_with_operator(cp, ns, backend, d, v, ISVC, ready)
    policies = cp.api("GET", f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies").body["items"]
    assert [p["spec"] for p in policies] == [backend.network_policy_manifest("kserve")["spec"]]
    await backend.teardown(d)


def test_the_upstream_crds_go_in_with_only_the_1_20_adaptations():
    """What install_crds changes in the upstream files, and nothing else (see tests/support/k8s_control_plane.py
    adapt_crd): the SeldonDeployment's recursive graph.children (untyped, which no API server accepts) and the
    empty-string defaults kube-apiserver 1.20 cannot read."""
    import yaml

    from tests.support.k8s_control_plane import adapt_crd, crd_path

    changed = {f: adapt_crd(yaml.load(crd_path(f).read_text(), Loader=yaml.CSafeLoader)) for f in CRD_FILES}
    sdep, model, isvc = (changed[f] for f in CRD_FILES)
    assert sdep["preserve_unknown"] == [f"{v}:.spec.predictors[].graph.children[]"
                                        for v in ("v1", "v1alpha2", "v1alpha3")]
    assert model == {"preserve_unknown": [], "empty_default_dropped": []}
    assert isvc["preserve_unknown"] == []
    for dropped in (sdep["empty_default_dropped"], isvc["empty_default_dropped"]):
        assert dropped and all(p.rsplit(".", 1)[1] in ("name", "service", "targetModelState") for p in dropped), dropped[:5]


async def test_seldon_v2_a_failing_version_puts_the_served_one_back(k8s_control_plane, k8s_namespace, make_backend):
    """A version that fails to load: the served version's spec is put back (generation 3 on the real server), and
    the failed version's status is not taken for the restored one's."""
    cp, ns = k8s_control_plane, k8s_namespace
    backend = make_backend(serving_resource="seldon-v2")
    d, v1 = new_deployment(backend)
    await bring_up_with_operator(cp, ns, backend, d, v1, MODEL, model_status("True", "ModelAvailable"),
                                 observed_generation=False)
    d.serving = 1
    v2 = d.add_version("s3://odh-models-alice/odh-deployments/iris/v2/", "sklearn")
    failed = model_status("False", "ModelFailed", "Failed to download from s3://odh-models-alice/... any files")
    with pytest.raises(BackendFailed, match=r"^The Model failed: Failed to download from s3://odh-models-alice"):
        await bring_up_with_operator(cp, ns, backend, d, v2, MODEL, failed, observed_generation=False)
    model = get(cp, cr_path(ns, MODEL, "alice--iris"))
    assert model["spec"]["storageUri"] == v1.model_uri and model["metadata"]["generation"] == 3
    assert await backend.check(d) == "The Model is Creating: The operator has not yet picked up the new version."
    set_status(cp, ns, MODEL, "alice--iris", model_status("True", "ModelAvailable"))
    assert await backend.check(d) is None
    await backend.teardown(d)


async def test_through_the_deployment_manager_and_its_restart(k8s_control_plane, k8s_namespace, make_backend,
                                                              tmp_path, monkeypatch):
    """The real DeploymentManager over the Kubernetes backend: create -> Available -> watch -> a new manager
    (the platform service restarted) adopts it from its store -> delete. Listing the model in S3 and checking the
    bucket's owner are the steps replaced (both are tested on real RGW in test_deploy.py)."""
    from odh_spawner.deploy import manager as manager_module
    from odh_spawner.deploy.manager import DeploymentManager
    from odh_spawner.deploy.model import AVAILABLE
    from odh_spawner.deploy.store import DeploymentStore

    cp, ns = k8s_control_plane, k8s_namespace
    monkeypatch.setattr(manager_module.artifacts, "list_model", lambda *a, **kw: [])
    monkeypatch.setattr(manager_module.artifacts, "check_owned", lambda *a, **kw: None)  # RGW: test_deploy.py

    async def credentials_for(owner):
        return CREDS

    manager = DeploymentManager(make_backend(), DeploymentStore(str(tmp_path / "store")), credentials_for)
    d = await manager.create("alice", "iris", "s3://odh-models-alice/odh-deployments/iris/v1/")
    await operator(cp, ns, SDEP, "alice--iris", 1, SELDON_AVAILABLE)
    for _ in range(200):
        if d.state == AVAILABLE:
            break
        await asyncio.sleep(0.05)
    assert (d.state, d.stage, d.serving, d.backend) == (AVAILABLE, "ready", 1, "kubernetes")
    await manager.watch_once()
    assert d.state == AVAILABLE and d.restarts == 0
    await manager.close()

    again = DeploymentManager(make_backend(), DeploymentStore(str(tmp_path / "store")), credentials_for)
    await again.adopt_all()
    adopted = again.get("alice", "iris")
    assert (adopted.state, adopted.serving) == (AVAILABLE, 1)
    assert adopted.url == "http://alice--iris-default.odh.svc.cluster.local:8000"
    await again.delete("alice", "iris")
    assert get(cp, cr_path(ns, SDEP, "alice--iris")) is None
    assert get(cp, core(ns, "secrets", "odh-model-storage-alice")) is None
    await again.close()
