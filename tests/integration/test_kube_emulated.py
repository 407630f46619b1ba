"""The Kubernetes I/O layers against an emulated Kubernetes API: kmock's KubernetesEmulator (an in-memory,
Kubernetes-like HTTP API on a free random port of 127.0.0.1). It is an emulator, not a cluster: no controllers,
no kubelet, no garbage collector, no admission or schema checks. What each test shows is what our code *sends*
and how it reacts to what a real API server and operator would answer; the answers of the operators (Seldon,
Seldon Core 2, KServe) and of the kubelet are written by small tasks in this file, through the same HTTP API.

Every object we send (POST/PUT bodies) and every state an object reaches (after our patches) is validated:
core kinds against the official Kubernetes schema (kubernetes-validate, strict), custom resources against the
upstream CRDs in ../shared/crds (jsonschema + no undeclared fields).

kmock 0.8 gaps that matter here, and what `ApiServerEmulator` below adds (only these):

1. Created objects get no `metadata.uid`, `resourceVersion`, `creationTimestamp`, `generation`, and no
   `metadata.namespace` when the body lacks it; pods get no `status`. The spawner needs the anchor's uid *in
   the create response*, and KubeSpawner's pod reflector keys pods by namespace, so the emulator fills these
   in on create, as the API server does (and `status.phase: Pending` for pods).
2. Watches are recognised only with `?watch=true`; kubernetes_asyncio sends `watch=True`, which kmock answers
   with a list, so every watch fails ("Malformed JSON") and KubeSpawner's reflector degrades to re-listing.
   The emulator treats `watch=True` as a watch (the API server parses booleans case-insensitively).
3. No PUT (replace): kmock answers 404 "Endpoint Not Found". The emulator stores the body as the new state
   (keeping uid and creationTimestamp), 404 when the object does not exist.
4. Patches do not bump `resourceVersion`/`generation`; the emulator bumps both (generation when `spec` changes)
   so that the status-freshness rule (`observedGeneration`) can be exercised.

Not added, so not tested here: label/field selectors (kmock ignores them; our code filters again by the exact
annotation), propagationPolicy and garbage collection through ownerReferences (kmock deletes only the named
object; we assert the delete call and its policy), strategic-merge semantics (kmock applies every dict patch as
a JSON merge patch; we send JSON Patches), subresource separation (a patch to /status merges into the object),
and create answers 200 where the API server answers 201 (CustomObjectsApi.create_* then returns None; our code
never relies on that return value). A reaction that answers an error for a create still stores the object.
Listing a resource of which no object was ever created answers 404 unless the resource is declared
(`kmock.resources[...]`, done in the fixture: it stands for "the CRD is installed").
"""

from __future__ import annotations

import asyncio
import base64
import copy
import datetime
import itertools
import json
import logging
import os
import uuid

import aiohttp.web
import attrs
import kmock
import kubernetes_validate
import pytest
from jupyterhub.objects import Hub
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.config import kube_config
from tornado import web
from traitlets.config import Config

from odh_spawner.credentials import S3Credentials
from odh_spawner.deploy import manager as manager_module
from odh_spawner.deploy import manifests
from odh_spawner.deploy.kube import KubeServingBackend
from odh_spawner.deploy.manager import DeploymentManager
from odh_spawner.deploy.model import AVAILABLE, BackendFailed, Deployment
from odh_spawner.deploy.store import DeploymentStore
from odh_spawner.spark import kube as spark_kube
from tests.conftest import ROOT
from tests.support.kube import K8S_VERSION, Group, HubUser
from tests.unit.test_deploy_manifests import CRDS, crd_schema, unknown_fields

DEMO = os.path.join(ROOT, "config", "demo", "profiles.yaml")
NS = "odh"
ACCESS, SECRET = "AKIAALICEEXAMPLE42", "alice/very+secret=key"
ENDPOINT = "http://rgw.ceph.svc:8080"
SDEP = "machinelearning.seldon.io/v1/seldondeployments"
MODEL = "mlops.seldon.io/v1alpha1/models"
ISVC = "serving.kserve.io/v1beta1/inferenceservices"
SPARKCONNECT = "sparkoperator.k8s.io/v1alpha1/sparkconnects"
CRD_FILES = {
    "SeldonDeployment": ("seldondeployments.machinelearning.seldon.io.yaml", "v1"),
    "Model": ("models.mlops.seldon.io.yaml", "v1alpha1"),
    "InferenceService": ("inferenceservices.serving.kserve.io.yaml", "v1beta1"),
    "SparkConnect": ("sparkconnects.sparkoperator.k8s.io.yaml", "v1alpha1"),
}
needs_crds = pytest.mark.skipif(not all((CRDS / f).is_file() for f, _ in CRD_FILES.values()),
                                reason=f"upstream CRDs not found at {CRDS} (CI has ../shared/crds beside the repo)")


# -- the emulator ------------------------------------------------------------------------------------------------
class ApiServerEmulator(kmock.KubernetesEmulator):
    """kmock's KubernetesEmulator plus the API-server behaviour listed in the module docstring (1-4)."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.sent: list[tuple[str, str, object]] = []  # (method, path, body as sent) of every write
        self._versions = itertools.count(1)

    def _now(self) -> str:
        return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")

    def _stored(self, request):
        key = (request.resource, request.namespace, request.name)
        obj = dict(self.objects.items()).get(key)
        return None if obj is None or obj.deleted else obj

    async def _handle(self, request):
        if request.resource is None:
            return await super()._handle(request)
        if request.method in (kmock.method.POST, kmock.method.PUT, kmock.method.PATCH):
            self.sent.append((request.method.value, request.url.path, copy.deepcopy(request.data)))
        if (request.method == kmock.method.GET and request.name is None and request.action != kmock.action.WATCH
                and str(request.params.get("watch", "")).lower() in ("true", "1")):  # (2)
            watch = attrs.evolve(request, action=kmock.action.WATCH)
            self._requests[:] = [watch if r is request else r for r in self._requests]
            request = watch
        if request.action == kmock.action.CREATE and isinstance(request.data, dict):  # (1)
            meta = request.data.setdefault("metadata", {})
            meta.setdefault("namespace", request.namespace)
            meta.update(uid=str(uuid.uuid4()), resourceVersion=str(next(self._versions)),
                        creationTimestamp=self._now())
            if "spec" in request.data:
                meta["generation"] = 1
            if request.resource.plural == "pods":
                request.data.setdefault("status", {}).setdefault("phase", "Pending")
        elif request.method == kmock.method.PUT and request.name and not request.subresource:  # (3)
            return await self._replace(request)
        elif request.action == kmock.action.UPDATE and not request.subresource:  # (4)
            obj = self._stored(request)
            if obj is not None:
                changes = {"resourceVersion": str(next(self._versions))}
                data = request.data
                touches_spec = ("spec" in data if isinstance(data, dict)
                                else any(op.get("path", "").startswith("/spec") for op in data or []))
                if touches_spec and "generation" in obj.get("metadata", {}):
                    changes["generation"] = obj["metadata"]["generation"] + 1
                if isinstance(data, dict):
                    data.setdefault("metadata", {}).update(changes)
                elif isinstance(data, list):
                    data.extend({"op": "add", "path": f"/metadata/{k}", "value": v} for k, v in changes.items())
        return await super()._handle(request)

    async def _replace(self, request):
        async with self._lock:
            obj = self._stored(request)
            if obj is None:
                raise kmock.KubernetesObjectNotFoundError()
            old, body = obj.raw, copy.deepcopy(request.data)
            meta = body.setdefault("metadata", {})
            meta.update(namespace=request.namespace, uid=old["metadata"]["uid"],
                        creationTimestamp=old["metadata"]["creationTimestamp"],
                        resourceVersion=str(next(self._versions)))
            obj.create(body)  # a new version in the object's history
            await self._buses[request.resource].put({"type": "MODIFIED", "object": body})
        return aiohttp.web.json_response(body)


def stored(k: ApiServerEmulator, resource: str, name: str, namespace: str = NS) -> dict | None:
    """The current state of an object in the emulator, or None."""
    key = (kmock.resource(resource), namespace, name)
    obj = dict(k.objects.items()).get(key)
    return None if obj is None or obj.deleted else obj.raw


def requests_to(k: ApiServerEmulator, method: str, path_part: str) -> list:
    return [r for r in k if r.method.value == method and path_part in r.url.path]


async def wait_stored(k, resource, name, timeout=5.0) -> dict:
    deadline = asyncio.get_running_loop().time() + timeout
    while (obj := stored(k, resource, name)) is None:
        assert asyncio.get_running_loop().time() < deadline, f"{resource} {name} never appeared"
        await asyncio.sleep(0.01)
    return obj


async def set_status(k, resource: str, name: str, status: dict) -> None:
    """What an operator does: write the resource's status (through the API, so watchers see it)."""
    r = await k.patch(f"/apis/{resource.rsplit('/', 1)[0]}/namespaces/{NS}/{resource.rsplit('/', 1)[1]}/{name}/status",
                      json={"status": status})
    assert r.status == 200, await r.text()


async def fake_kubelet(k: ApiServerEmulator) -> None:
    """Reports every new notebook pod Running and ready, as a kubelet would once its container started."""
    while True:
        for (res, ns, name), obj in list(k.objects.items()):
            if res.plural == "pods" and not obj.deleted and obj.get("status", {}).get("phase") == "Pending":
                c = obj["spec"]["containers"][0]
                status = {"phase": "Running", "podIP": "10.0.0.7", "startTime": k._now(), "containerStatuses": [
                    {"name": c["name"], "ready": True, "started": True, "restartCount": 0, "image": c["image"],
                     "imageID": c["image"], "state": {"running": {"startedAt": k._now()}}}]}
                await k.patch(f"/api/v1/namespaces/{ns}/pods/{name}/status", json={"status": status})
        await asyncio.sleep(0.02)


# -- validation of everything sent -------------------------------------------------------------------------------
_crd_validators: dict = {}


def validate_object(obj: dict) -> None:
    kind = obj.get("kind")
    if kind in CRD_FILES:
        if kind not in _crd_validators:
            f, version = CRD_FILES[kind]
            _crd_validators[kind] = crd_schema(CRDS / f, version)
        _, schema, validator = _crd_validators[kind]
        validator.validate(obj)
        assert unknown_fields(obj, schema) == [], f"{kind} has fields its CRD does not declare"
    else:
        kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def validate_everything(k: ApiServerEmulator) -> int:
    """Every full object we sent (POST/PUT) and every state an object reached. Returns how many were checked."""
    checked = 0
    for method, path, body in k.sent:
        if method in ("POST", "PUT") and isinstance(body, dict) and body.get("kind"):
            validate_object(body)
            checked += 1
    for obj in k.objects.values():
        for version in obj.history:
            if version is not None and version.get("kind"):
                validate_object(version.raw)
                checked += 1
    return checked


# -- fixtures ----------------------------------------------------------------------------------------------------
@pytest.fixture
async def emulator():
    async with ApiServerEmulator() as k, kmock.Server(k):  # Server: 127.0.0.1, a free random port
        # lists of a resource nobody created an object of yet answer 404 unless it is declared (CRDs "installed")
        for resource in ("v1/pods", "v1/events", "v1/configmaps", "v1/secrets", SDEP, MODEL, ISVC, SPARKCONNECT):
            k.resources[resource] = {}
        yield k
        assert k.errors == [] or all(isinstance(e, kmock.KubernetesError) for e in k.errors), k.errors


@pytest.fixture
def kubeconfig(emulator, tmp_path) -> str:
    """A kubeconfig whose cluster is the emulator (plain http, a dummy token)."""
    path = tmp_path / "kubeconfig"
    path.write_text(f"""apiVersion: v1
kind: Config
clusters: [{{name: emulator, cluster: {{server: "{str(emulator.url).rstrip('/')}"}}}}]
users: [{{name: emulator, user: {{token: not-a-real-token}}}}]
contexts: [{{name: emulator, context: {{cluster: emulator, user: emulator, namespace: {NS}}}}}]
current-context: emulator
""")
    return str(path)


@pytest.fixture
async def make_backend(kubeconfig):
    made = []

    def make(**kw) -> KubeServingBackend:
        settings = {"kubeconfig": kubeconfig, "namespace": NS, "poll_interval": 0.02, "ready_timeout": 5,
                    "request_timeout": 2, "retry_timeout": 3, **kw}
        b = KubeServingBackend(proxy=object(), public_url="http://hub.example", **settings)
        made.append(b)
        return b

    yield make
    for b in made:
        await b.close()


CREDS = S3Credentials(ACCESS, SECRET, ENDPOINT)


def new_deployment(backend, owner="alice", name="iris", uri="s3://odh-models-alice/odh-deployments/iris/v1/"):
    d = Deployment(owner=owner, name=name, backend=backend.name, model_name=backend.model_name_for(owner, name))
    return d, d.add_version(uri, "sklearn")


async def bring_up_with_operator(k, backend, d, v, resource, status, observed_generation=True):
    """bring_up while a fake operator answers version `v` with `status` once the resource asks for it (with the
    resource's generation as `observedGeneration`, unless the operator is one that writes none)."""
    stages = []

    async def operator():
        name = manifests.resource_name(d.owner, d.name)
        while (cr := stored(k, resource, name)) is None or cr["metadata"]["labels"]["odh-hub/version"] != \
                str(v.version):
            await asyncio.sleep(0.01)
        observed = {"observedGeneration": cr["metadata"]["generation"]} if observed_generation else {}
        await set_status(k, resource, name, {**status, **observed})

    up = asyncio.ensure_future(backend.bring_up(d, v, CREDS, [], "/nonexistent", stages.append))
    op = asyncio.ensure_future(operator())
    try:
        await asyncio.wait_for(asyncio.gather(up, op), 10)
    finally:
        for t in (up, op):
            t.cancel()
    return stages


SELDON_AVAILABLE = {"state": "Available", "address": {"url": "http://alice--iris-default.odh.svc.cluster.local:8000"
                                                             "/api/v1.0/predictions"}}


# -- (a) model serving -------------------------------------------------------------------------------------------
@needs_crds
async def test_seldon_bring_up_creates_secret_and_resource_then_serves(emulator, make_backend, caplog):
    caplog.set_level(logging.DEBUG, logger="traitlets")
    backend = make_backend(serving_resource="seldon")
    d, v = new_deployment(backend)
    stages = await bring_up_with_operator(emulator, backend, d, v, SDEP, SELDON_AVAILABLE)

    assert stages == ["starting"]
    assert d.url == "http://alice--iris-default.odh.svc.cluster.local:8000"
    assert d.infer_url == d.url + "/v2/models/iris/infer" and d.model_name == "iris"
    assert d.runtime == {"resource": "seldon", "name": "alice--iris", "namespace": NS}

    secret = stored(emulator, "v1/secrets", "odh-model-storage-alice")
    expected_secret = manifests.rclone_storage_secret("alice", NS, access_key=ACCESS, secret_key=SECRET,
                                                      endpoint=ENDPOINT)
    assert {k: v for k, v in secret.items() if k != "metadata"} == \
        {k: v for k, v in expected_secret.items() if k != "metadata"}
    assert {k: secret["metadata"][k] for k in ("name", "namespace", "labels", "annotations")} == \
        expected_secret["metadata"]
    assert base64.b64decode(secret["data"]["RCLONE_CONFIG_S3_SECRET_ACCESS_KEY"]).decode() == SECRET

    cr = stored(emulator, SDEP, "alice--iris")
    expected = manifests.seldon_deployment("alice", "iris", NS, model_uri=v.model_uri, framework="sklearn",
                                           secret_name="odh-model-storage-alice", version=1)
    assert cr["spec"] == expected["spec"]
    assert {k: cr["metadata"][k] for k in ("name", "namespace", "labels", "annotations")} == expected["metadata"]
    graph = cr["spec"]["predictors"][0]["graph"]
    assert graph["envSecretRefName"] == "odh-model-storage-alice" and graph["modelUri"] == v.model_uri
    sent = json.dumps([body for _, path, body in emulator.sent if "seldondeployments" in path])
    assert ACCESS not in sent and SECRET not in sent and "AWS_" not in sent
    assert validate_everything(emulator) >= 3

    assert await backend.check(d) is None
    assert await backend.adopt(d) is True
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name == "traitlets")
    assert "Applied SeldonDeployment odh/alice--iris for alice/iris v1" in ours and SECRET not in ours


@needs_crds
async def test_seldon_failed_status_raises_backend_failed_and_removes_a_first_version(emulator, make_backend):
    backend = make_backend()
    d, v = new_deployment(backend)
    failed = {"state": "Failed", "description": "Model load failed: rclone could not read s3://odh-models-alice"}
    with pytest.raises(BackendFailed, match="SeldonDeployment failed: Model load failed: rclone could not read"):
        await bring_up_with_operator(emulator, backend, d, v, SDEP, failed)
    # nothing served before: the resource and the user's storage Secret are gone again
    assert stored(emulator, SDEP, "alice--iris") is None
    assert stored(emulator, "v1/secrets", "odh-model-storage-alice") is None
    assert validate_everything(emulator) >= 3


@needs_crds
async def test_seldon_new_version_failing_puts_the_served_version_back(emulator, make_backend):
    backend = make_backend()
    d, v1 = new_deployment(backend)
    await bring_up_with_operator(emulator, backend, d, v1, SDEP, SELDON_AVAILABLE)
    d.serving = 1  # what the manager records once v1 is up
    v2 = d.add_version("s3://odh-models-alice/odh-deployments/iris/v2/", "sklearn")

    up = asyncio.ensure_future(backend.bring_up(d, v2, CREDS, [], "/nonexistent", lambda stage: None))
    cr = await wait_stored(emulator, SDEP, "alice--iris")
    while cr["metadata"]["generation"] < 2:  # the JSON Patch of v2 arrived
        await asyncio.sleep(0.01)
        cr = stored(emulator, SDEP, "alice--iris")
    assert cr["spec"]["predictors"][0]["graph"]["modelUri"] == v2.model_uri
    assert cr["metadata"]["labels"]["odh-hub/version"] == "2"
    await asyncio.sleep(0.1)  # the old status (observedGeneration 1) is not taken for v2
    assert not up.done()
    await set_status(emulator, SDEP, "alice--iris", {"state": "Failed", "description": "bad model",
                                                    "observedGeneration": 2})
    with pytest.raises(BackendFailed, match="bad model"):
        await asyncio.wait_for(up, 5)
    cr = stored(emulator, SDEP, "alice--iris")
    assert cr["spec"]["predictors"][0]["graph"]["modelUri"] == v1.model_uri  # v1 is served again
    assert cr["metadata"]["labels"]["odh-hub/version"] == "1" and cr["metadata"]["generation"] == 3
    patches = [body for method, path, body in emulator.sent if method == "PATCH" and not path.endswith("/status")]
    assert len(patches) == 2 and all(isinstance(p, list) and p[0]["path"] == "/spec" for p in patches)
    assert validate_everything(emulator) >= 5


@needs_crds
async def test_check_recover_and_teardown_keep_the_secret_while_the_user_has_other_deployments(
        emulator, make_backend):
    backend = make_backend()
    iris, v = new_deployment(backend)
    churn, w = new_deployment(backend, name="churn", uri="s3://odh-models-alice/odh-deployments/churn/v1/")
    bob, b = new_deployment(backend, owner="bob", uri="s3://odh-models-bob/odh-deployments/iris/v1/")
    for d, version in ((iris, v), (churn, w), (bob, b)):
        status = {**SELDON_AVAILABLE, "address": {"url": f"http://{d.owner}--{d.name}.odh.svc:8000"}}
        await bring_up_with_operator(emulator, backend, d, version, SDEP, status)

    await set_status(emulator, SDEP, "alice--churn", {"state": "Failed", "description": "OOMKilled"})
    assert await backend.check(churn) == "The SeldonDeployment is Failed: OOMKilled."
    with pytest.raises(BackendFailed, match="OOMKilled"):
        await backend.recover(churn, w)

    await backend.teardown(iris)
    assert stored(emulator, SDEP, "alice--iris") is None and iris.url is None
    assert stored(emulator, "v1/secrets", "odh-model-storage-alice") is not None  # churn still reads with it
    assert await backend.adopt(iris) is False
    assert await backend.check(iris) == "Its SeldonDeployment alice--iris no longer exists in the cluster."
    await backend.teardown(iris)  # a second teardown: 404 is fine

    await backend.teardown(churn)
    assert stored(emulator, "v1/secrets", "odh-model-storage-alice") is None
    assert stored(emulator, "v1/secrets", "odh-model-storage-bob") is not None  # bob's is bob's
    deletes = requests_to(emulator, "DELETE", "/seldondeployments/")
    assert [r.params.get("propagationPolicy") for r in deletes] == ["Background"] * 3

    # a resource deleted behind the platform's back is created again by recover
    await emulator.delete(f"/apis/{SDEP.rsplit('/', 1)[0]}/namespaces/{NS}/seldondeployments/bob--iris")
    with pytest.raises(BackendFailed, match="created again"):
        await backend.recover(bob, b)
    assert stored(emulator, SDEP, "bob--iris")["spec"]["predictors"][0]["graph"]["modelUri"] == b.model_uri
    validate_everything(emulator)


@needs_crds
async def test_kserve_variant(emulator, make_backend):
    backend = make_backend(serving_resource="kserve", resources={"requests": {"cpu": "500m", "memory": "1Gi"}})
    d, v = new_deployment(backend)
    assert d.model_name == "alice--iris"  # KServe's MLServer serves the model under the InferenceService name
    ready = {"url": "http://alice--iris.odh.example.com",
             "conditions": [{"type": "Ready", "status": "True", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    await bring_up_with_operator(emulator, backend, d, v, ISVC, ready)
    assert d.url == "http://alice--iris.odh.example.com"
    assert d.infer_url == "http://alice--iris.odh.example.com/v2/models/alice--iris/infer"

    secret = stored(emulator, "v1/secrets", "odh-kserve-storage-alice")
    assert base64.b64decode(secret["data"]["AWS_SECRET_ACCESS_KEY"]).decode() == SECRET
    assert secret["metadata"]["annotations"]["serving.kserve.io/s3-endpoint"] == "rgw.ceph.svc:8080"
    sa = stored(emulator, "v1/serviceaccounts", "odh-model-serving-alice")
    assert sa["secrets"] == [{"name": "odh-kserve-storage-alice"}]
    isvc = stored(emulator, ISVC, "alice--iris")
    assert isvc["spec"] == {"predictor": {"serviceAccountName": "odh-model-serving-alice", "model": {
        "modelFormat": {"name": "sklearn"}, "protocolVersion": "v2", "runtime": "kserve-mlserver",
        "storageUri": v.model_uri, "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}}}}}
    assert SECRET not in json.dumps(isvc) and ACCESS not in json.dumps(isvc)
    validate_everything(emulator)

    # a second bring-up replaces the Secret (PUT) with the user's current keys
    await bring_up_with_operator(emulator, backend, d, d.add_version(v.model_uri, "sklearn"), ISVC, ready)
    assert len(requests_to(emulator, "PUT", "/secrets/odh-kserve-storage-alice")) == 1

    failed = {"conditions": [{"type": "PredictorReady", "status": "False", "reason": "ModelLoadFailed",
                              "message": "sklearn: no model file", "lastTransitionTime": "2026-01-01T00:00:00Z"}]}
    await set_status(emulator, ISVC, "alice--iris", failed)
    assert await backend.check(d) == "The InferenceService is Failed: sklearn: no model file."

    await backend.teardown(d)
    for resource, name in ((ISVC, "alice--iris"), ("v1/secrets", "odh-kserve-storage-alice"),
                           ("v1/serviceaccounts", "odh-model-serving-alice")):
        assert stored(emulator, resource, name) is None, name
    validate_everything(emulator)


def model_status(ready: str, state: str, reason: str = "") -> dict:
    """A Model status as Seldon Core 2's operator writes it: ModelReady and Ready alike, the scheduler's state as
    their message and its explanation as their reason, whole-second times, no observedGeneration."""
    when = datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    condition = {"status": ready, "message": state, "lastTransitionTime": when, **({"reason": reason} if reason else {})}
    return {"conditions": [{"type": t, **condition} for t in ("ModelReady", "Ready")], "replicas": 1,
            "availableReplicas": 1 if ready == "True" else 0, "modelgwReady": "ModelAvailable",
            "selector": "server=mlserver"}


@needs_crds
async def test_seldon_v2_variant(emulator, make_backend, caplog):
    """Seldon Core 2: Secret + Model; Available from the ModelReady condition; the URL is the seldon-mesh one; a new
    version is not taken for ready on the previous version's status, nor a restored one for failed on the failed
    version's; teardown removes both."""
    caplog.set_level(logging.DEBUG, logger="traitlets")
    backend = make_backend(serving_resource="seldon-v2")
    d, v1 = new_deployment(backend)
    assert d.model_name == "alice--iris"  # the mesh routes /v2/models/<Model name>/... to the Model
    v1_ready = model_status("True", "ModelAvailable")
    stages = await bring_up_with_operator(emulator, backend, d, v1, MODEL, v1_ready, observed_generation=False)
    assert stages == ["starting"]
    assert d.url == "http://seldon-mesh.odh.svc.cluster.local"
    assert d.infer_url == "http://seldon-mesh.odh.svc.cluster.local/v2/models/alice--iris/infer"
    assert d.runtime == {"resource": "seldon-v2", "name": "alice--iris", "namespace": NS}

    secret = stored(emulator, "v1/secrets", "odh-seldon2-storage-alice")
    expected_secret = manifests.seldon_v2_storage_secret("alice", NS, access_key=ACCESS, secret_key=SECRET,
                                                         endpoint=ENDPOINT)
    assert secret["data"] == expected_secret["data"] and list(secret["data"]) == ["s3"]
    remote = json.loads(base64.b64decode(secret["data"]["s3"]))
    assert remote["name"] == "s3" and remote["parameters"]["secret_access_key"] == SECRET
    assert remote["parameters"]["endpoint"] == ENDPOINT
    model = stored(emulator, MODEL, "alice--iris")
    assert model["spec"] == {"storageUri": v1.model_uri, "requirements": ["sklearn"],
                             "secretName": "odh-seldon2-storage-alice"}
    sent = json.dumps([body for _, path, body in emulator.sent if "/models" in path])
    for value in (ACCESS, SECRET):
        assert value not in sent and base64.b64encode(value.encode()).decode() not in sent
    assert validate_everything(emulator) >= 3
    assert await backend.check(d) is None and await backend.adopt(d) is True

    # a new version: until the operator reports on it, v1's "True" does not count (though maybe of the same second)
    d.serving = 1
    v2 = d.add_version("s3://odh-models-alice/odh-deployments/iris/v2/", "sklearn")
    up = asyncio.ensure_future(backend.bring_up(d, v2, CREDS, [], "/nonexistent", lambda stage: None))
    while (model := stored(emulator, MODEL, "alice--iris"))["metadata"]["generation"] < 2:
        await asyncio.sleep(0.01)
    assert model["spec"]["storageUri"] == v2.model_uri and model["metadata"]["labels"]["odh-hub/version"] == "2"
    await asyncio.sleep(0.2)
    assert not up.done()
    await set_status(emulator, MODEL, "alice--iris", model_status("False", "ModelProgressing"))
    await asyncio.sleep(0.1)
    assert not up.done()
    # the operator has answered for v2, so what it writes next is for v2, even a "True" equal to v1's (same second)
    await set_status(emulator, MODEL, "alice--iris", v1_ready)
    await asyncio.wait_for(up, 5)
    assert d.infer_url == "http://seldon-mesh.odh.svc.cluster.local/v2/models/alice--iris/infer"
    assert len(requests_to(emulator, "PUT", "/secrets/odh-seldon2-storage-alice")) == 1  # the user's current keys
    d.serving = 2

    # a version that fails to load: v2's spec is put back, and v3's failure is not taken for v2's state
    v3 = d.add_version("s3://odh-models-alice/odh-deployments/iris/v3/", "sklearn")
    failed = model_status("False", "ModelFailed", "Failed to download from s3://odh-models-alice/... any files")
    with pytest.raises(BackendFailed, match=r"^The Model failed: Failed to download from s3://odh-models-alice"):
        await bring_up_with_operator(emulator, backend, d, v3, MODEL, failed, observed_generation=False)
    model = stored(emulator, MODEL, "alice--iris")
    assert model["spec"]["storageUri"] == v2.model_uri and model["metadata"]["generation"] == 4
    assert await backend.check(d) == "The Model is Creating: the operator has not yet picked up the new version."
    await set_status(emulator, MODEL, "alice--iris", model_status("True", "ModelAvailable"))
    assert await backend.check(d) is None

    reason = "failed to schedule model alice--iris. [no matching servers are available]"
    await set_status(emulator, MODEL, "alice--iris", model_status("False", "ScheduleFailed", reason))
    assert await backend.check(d) == f"The Model is Failed: {reason}."
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name == "traitlets")
    assert "Applied Model odh/alice--iris for alice/iris v3" in ours and SECRET not in ours

    await backend.teardown(d)
    assert stored(emulator, MODEL, "alice--iris") is None and d.url is None
    assert stored(emulator, "v1/secrets", "odh-seldon2-storage-alice") is None
    (delete,) = requests_to(emulator, "DELETE", "/models/alice--iris")
    assert delete.params["propagationPolicy"] == "Background"
    assert validate_everything(emulator) >= 8


@needs_crds
async def test_through_the_deployment_manager(emulator, make_backend, tmp_path, monkeypatch):
    """The real DeploymentManager over the Kubernetes backend: create -> Available -> watch -> delete. Listing
    the model in S3 is the one step replaced (real RGW is tested in test_deploy.py)."""
    monkeypatch.setattr(manager_module.artifacts, "list_model", lambda *a, **kw: [])
    backend = make_backend()

    async def credentials_for(owner):
        return CREDS

    manager = DeploymentManager(backend, DeploymentStore(str(tmp_path / "store")), credentials_for)
    d = await manager.create("alice", "iris", "s3://odh-models-alice/odh-deployments/iris/v1/")
    await wait_stored(emulator, SDEP, "alice--iris")
    await set_status(emulator, SDEP, "alice--iris", SELDON_AVAILABLE)
    for _ in range(200):
        if d.state == AVAILABLE:
            break
        await asyncio.sleep(0.02)
    assert (d.state, d.stage, d.serving, d.backend) == (AVAILABLE, "ready", 1, "kubernetes")
    assert d.to_api()["infer_url"].endswith("/v2/models/iris/infer")
    await manager.watch_once()
    assert d.state == AVAILABLE and d.restarts == 0
    await manager.delete("alice", "iris")
    assert stored(emulator, SDEP, "alice--iris") is None
    assert stored(emulator, "v1/secrets", "odh-model-storage-alice") is None
    await manager.close()
    validate_everything(emulator)


@needs_crds
async def test_a_version_that_never_becomes_ready_times_out_and_is_removed(emulator, make_backend):
    backend = make_backend(ready_timeout=0.3)  # no operator answers
    d, v = new_deployment(backend)
    with pytest.raises(BackendFailed, match=r"^The model did not become ready within 0.3 s \(the SeldonDeployment "
                                            r"is still Creating\)\.$"):
        await backend.bring_up(d, v, CREDS, [], "/nonexistent", lambda stage: None)
    assert stored(emulator, SDEP, "alice--iris") is None
    assert stored(emulator, "v1/secrets", "odh-model-storage-alice") is None
    validate_everything(emulator)


async def test_api_errors_become_user_safe_messages(emulator, make_backend, caplog):
    caplog.set_level(logging.DEBUG, logger="traitlets")  # our classes' logger outside a JupyterHub app
    backend = make_backend()
    d, v = new_deployment(backend)
    emulator["post", kmock.resource("v1/secrets")] << 403 << {
        "kind": "Status", "apiVersion": "v1", "code": 403, "status": "Failure", "reason": "Forbidden",
        "message": f"secrets is forbidden: {SECRET}"}
    with pytest.raises(BackendFailed, match=r"refused the Secret odh-model-storage-alice \(403 Forbidden\)"):
        await backend.bring_up(d, v, CREDS, [], "/nonexistent", lambda stage: None)
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name == "traitlets")
    assert "odh-model-storage-alice: Kubernetes API error 403 Forbidden" in ours
    assert SECRET not in ours and base64.b64encode(SECRET.encode()).decode() not in ours
    assert stored(emulator, SDEP, "alice--iris") is None  # nothing applied after the failed Secret
    # kmock stores a created object even when a reaction answers an error; the clean-up deletes it again
    assert stored(emulator, "v1/secrets", "odh-model-storage-alice") is None


# -- (b) the Spark cluster of a KubeSpawner server ----------------------------------------------------------------
@pytest.fixture
async def kube_spawner(kubeconfig, monkeypatch):
    """OdhKubeSpawner objects whose Kubernetes client comes from a kubeconfig pointing at the emulator."""
    import kubespawner.clients

    from odh_spawner.kube_spawner import OdhKubeSpawner

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", kubeconfig)
    monkeypatch.setattr(kubespawner.clients, "_client_cache", {})  # clients of earlier tests point elsewhere
    kubespawner.clients.load_config.cache_clear()
    default = k8s_client.Configuration.get_default_copy()

    def make(user="alice", groups=("data-science",), **config):
        c = Config()
        c.OdhKubeSpawner.profiles_path = DEMO
        c.OdhKubeSpawner.namespace = NS
        c.OdhKubeSpawner.start_timeout = 10
        for section, values in config.items():
            for k, val in values.items():
                setattr(getattr(c, section), k, val)
        return OdhKubeSpawner(config=c, user=HubUser(user, [Group(g) for g in groups]), hub=Hub(),
                              orm_spawner=None)

    yield make
    await OdhKubeSpawner._stop_all_reflectors()  # before the emulator stops: watches hold its connections
    kubespawner.clients.load_config.cache_clear()
    k8s_client.Configuration.set_default(default)


@pytest.fixture
async def kubelet(emulator):
    task = asyncio.ensure_future(fake_kubelet(emulator))
    yield task
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)


def env_of(pod: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}


async def test_kube_spawner_spark_cluster_lives_and_dies_with_the_server(emulator, kube_spawner, kubelet):
    sp = kube_spawner()
    await sp._apply_odh_options(sp, {"profile": "datascience", "spark": {"workers": 2, "worker_cores": 2}})
    url = await asyncio.wait_for(sp.start(), 15)
    assert url == "http://10.0.0.7:8888"

    anchor = stored(emulator, "v1/configmaps", "spark-anchor-alice")
    uid = anchor["metadata"]["uid"]
    assert anchor["data"]["workers"] == "2" and anchor["metadata"]["labels"]["app.kubernetes.io/component"] == \
        "spark-anchor" and "ownerReferences" not in anchor["metadata"]
    owner_ref = [{"apiVersion": "v1", "kind": "ConfigMap", "name": "spark-anchor-alice", "uid": uid}]
    master = stored(emulator, "apps/v1/deployments", "spark-alice-master")
    worker = stored(emulator, "apps/v1/deployments", "spark-alice-worker")
    service = stored(emulator, "v1/services", "spark-alice-master")
    auth = stored(emulator, "v1/secrets", "spark-alice-auth")  # the cluster's own spark.authenticate secret
    for obj in (master, worker, service, auth):
        assert obj["metadata"]["ownerReferences"] == owner_ref
    assert worker["spec"]["replicas"] == 2
    assert worker["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]["cpu"] == "2"
    assert master["spec"]["template"]["spec"]["containers"][0]["image"] == sp.plan.image

    # order: the anchor before what it owns, everything before the notebook pod
    posts = [path for method, path, _ in emulator.sent if method == "POST"]
    assert posts == ["/api/v1/namespaces/odh/configmaps", "/api/v1/namespaces/odh/secrets",
                     "/apis/apps/v1/namespaces/odh/deployments", "/api/v1/namespaces/odh/services",
                     "/apis/apps/v1/namespaces/odh/deployments", "/api/v1/namespaces/odh/pods"]
    pod = stored(emulator, "v1/pods", "jupyter-alice")
    env = env_of(pod)
    # the notebook reads the cluster's secret from the mounted Secret (its SPARK_CONF_DIR), never from a value
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "spark-auth"]
    assert volume["secret"]["secretName"] == "spark-alice-auth" and env["SPARK_CONF_DIR"] == "/etc/odh/spark"
    assert {"name": "spark-auth", "mountPath": "/etc/odh/spark", "readOnly": True} in \
        pod["spec"]["containers"][0]["volumeMounts"]
    assert env["SPARK_MASTER_URL"] == "spark://spark-alice-master.odh.svc:7077" and env["SPARK_EXECUTOR_CORES"] == "2"
    messages = [e["message"] for e in sp._odh_events]
    assert "Creating your Spark cluster: 2 worker(s), 2 core(s) and 1Gi each" in messages
    assert "Spark cluster created; Kubernetes is starting its pods" in messages and sp._odh_done
    assert validate_everything(emulator) >= 10

    # what JupyterHub's User.stop does: the spawner's stop(), then the post-stop hook
    await sp.stop()
    assert stored(emulator, "v1/configmaps", "spark-anchor-alice") is not None  # stop() alone leaves it
    await sp.run_post_stop_hook()
    assert stored(emulator, "v1/configmaps", "spark-anchor-alice") is None
    (delete,) = requests_to(emulator, "DELETE", "/configmaps/spark-anchor-alice")
    assert delete.params["propagationPolicy"] == "Foreground"
    # Deleting what the anchor owns is the Kubernetes garbage collector's job (ownerReferences -> uid). kmock has
    # no garbage collector, so the owned objects are still in the emulator; on a cluster they would now go.
    assert stored(emulator, "apps/v1/deployments", "spark-alice-master")["metadata"]["ownerReferences"] == owner_ref

    # the same spawner object starts again (as JupyterHub reuses it), this time without Spark
    await sp._apply_odh_options(sp, {"profile": "datascience"})
    await asyncio.wait_for(sp.start(), 15)
    pod = stored(emulator, "v1/pods", "jupyter-alice")
    assert not [k for k in env_of(pod) if k.startswith("SPARK_") or k == "MASTER"]
    for field in ("volumes",):
        names = [v["name"] for v in pod["spec"][field]]
        assert len(names) == len(set(names)), names
    mounts = [m["name"] for m in pod["spec"]["containers"][0]["volumeMounts"]]
    assert len(mounts) == len(set(mounts)), mounts
    assert len(requests_to(emulator, "POST", "/configmaps")) == 1  # no second cluster
    await sp.stop()
    await sp.run_post_stop_hook()  # no anchor this time: the 404 is fine
    assert len(requests_to(emulator, "DELETE", "/configmaps/spark-anchor-alice")) == 2
    validate_everything(emulator)


async def test_a_restart_reuses_a_left_over_anchor_and_updates_its_objects(emulator, kube_spawner, kubelet):
    """After a hub crash the anchor and cluster of a server may still exist: they are taken over, not doubled."""
    sp = kube_spawner()
    await sp._apply_odh_options(sp, {"profile": "datascience", "spark": {"workers": 1}})
    await asyncio.wait_for(sp.start(), 15)
    uid = stored(emulator, "v1/configmaps", "spark-anchor-alice")["metadata"]["uid"]
    await sp.stop()  # the hub "crashed": no post-stop hook ran

    sp2 = kube_spawner()
    await sp2._apply_odh_options(sp2, {"profile": "datascience", "spark": {"workers": 3}})
    await asyncio.wait_for(sp2.start(), 15)
    anchor = stored(emulator, "v1/configmaps", "spark-anchor-alice")
    assert anchor["metadata"]["uid"] == uid and anchor["data"]["workers"] == "3"
    worker = stored(emulator, "apps/v1/deployments", "spark-alice-worker")
    assert worker["spec"]["replicas"] == 3
    assert worker["metadata"]["ownerReferences"][0]["uid"] == uid
    patches = [body for method, path, body in emulator.sent if method == "PATCH" and "/deployments/" in path]
    assert len(patches) == 2
    assert all([op["path"] for op in p[:2]] == ["/spec", "/metadata/ownerReferences"] for p in patches)
    await sp2.stop()
    await sp2.run_post_stop_hook()
    validate_everything(emulator)


async def test_spark_limits_count_the_users_other_clusters(emulator, kube_spawner, kubelet):
    other = spark_kube.anchor_configmap(spark_kube.KubeSparkSpec(
        user="alice", server="gpu", namespace=NS, image="x", request=manifests_request(2)))
    r = await emulator.post(f"/api/v1/namespaces/{NS}/configmaps", json=other)
    assert r.status == 200
    sp = kube_spawner(SparkLimits={"max_workers": 3})
    await sp._apply_odh_options(sp, {"profile": "datascience", "spark": {"workers": 2}})
    with pytest.raises(web.HTTPError) as e:
        await sp.start()
    assert e.value.status_code == 403
    assert "You already run 2 Spark workers on other servers; 2 more would exceed your limit of 3" in \
        e.value.jupyterhub_message
    assert requests_to(emulator, "POST", "/pods") == [] and stored(emulator, "v1/configmaps", "spark-anchor-alice") \
        is None


async def test_a_failed_cluster_start_deletes_its_anchor_and_tells_the_user(emulator, kube_spawner, kubelet):
    emulator["post", kmock.resource("apps/v1/deployments")] << 403 << {
        "kind": "Status", "apiVersion": "v1", "code": 403, "status": "Failure", "reason": "Forbidden",
        "message": "deployments.apps is forbidden"}
    sp = kube_spawner()
    await sp._apply_odh_options(sp, {"profile": "datascience", "spark": True})
    with pytest.raises(web.HTTPError) as e:
        await sp.start()
    assert e.value.status_code == 503
    assert e.value.jupyterhub_message == ("Your Spark cluster could not be created: The cluster refused the "
                                          "Deployment spark-alice-master (403 Forbidden).")
    (delete,) = requests_to(emulator, "DELETE", "/configmaps/spark-anchor-alice")
    assert delete.params["propagationPolicy"] == "Background"
    assert stored(emulator, "v1/configmaps", "spark-anchor-alice") is None
    assert requests_to(emulator, "POST", "/pods") == []
    assert sp._odh_done


@needs_crds
async def test_spark_connect_cluster_type(emulator, kube_spawner, kubelet):
    sp = kube_spawner(KubeSpark={"cluster_type": "spark-connect", "delete_propagation": "Background"})
    await sp._apply_odh_options(sp, {"profile": "datascience", "spark": True})
    await asyncio.wait_for(sp.start(), 15)
    uid = stored(emulator, "v1/configmaps", "spark-anchor-alice")["metadata"]["uid"]
    sc = stored(emulator, SPARKCONNECT, "spark-alice")
    assert sc["metadata"]["ownerReferences"][0]["uid"] == uid
    assert sc["spec"]["executor"]["instances"] == 1 and sc["spec"]["image"] == sp.plan.image
    assert stored(emulator, "apps/v1/deployments", "spark-alice-master") is None
    env = env_of(stored(emulator, "v1/pods", "jupyter-alice"))
    assert env["SPARK_REMOTE"] == "sc://spark-alice-server.odh.svc.cluster.local:15002"
    validate_everything(emulator)
    await sp.stop()
    await sp.run_post_stop_hook()
    (delete,) = requests_to(emulator, "DELETE", "/configmaps/spark-anchor-alice")
    assert delete.params["propagationPolicy"] == "Background"


def manifests_request(workers: int):
    from odh_spawner.resolve import SparkRequest

    return SparkRequest(workers, 1, 2**30)
