"""What only an emulated Kubernetes API can show: kmock's KubernetesEmulator (an in-memory, Kubernetes-like
HTTP API on a free random port of 127.0.0.1), kept for the two tests below. Everything else about the Kubernetes
I/O layers runs against the real API server (tests/integration/test_kube_real_*.py; tests/support/
k8s_control_plane.py), which is better in every way but two, and these two tests need exactly those:

- a request log: the emulator records every request in order, with its query (the real API server keeps no such
  log for a test to read), so `test_kube_spark_cluster_...` can assert that the anchor is created before what it
  owns, everything before the notebook pod, and that the anchor is deleted with propagationPolicy=Foreground;
- scripted hostile answers: a real API server never echoes a Secret's value in an error, so only a scripted 403
  whose message carries the secret shows that our logs and messages would not pass it on anyway.

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
from traitlets.config import Config

from odh_spawner.credentials import S3Credentials
from odh_spawner.deploy.kube import KubeServingBackend
from odh_spawner.deploy.model import BackendFailed, Deployment
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


SELDON_AVAILABLE = {"state": "Available", "address": {"url": "http://alice--iris-default.odh.svc.cluster.local:8000"
                                                             "/api/v1.0/predictions"}}


# -- (a) model serving -------------------------------------------------------------------------------------------


async def test_api_errors_become_user_safe_messages(emulator, make_backend, caplog):
    """Emulator only: the scripted 403 echoes the secret (a real server's does not; the real RBAC refusal is in
    test_kube_real_rbac.py)."""
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

    from odh_spawner.spawners.kube import OdhKubeSpawner

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
    """Emulator only for the request log (order of creation, the delete's propagationPolicy); the same lifetime
    with real garbage collection is test_kube_real_spark.py."""
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

    # order: the anchor before what it owns (those at once); the notebook pod is created beside the cluster
    posts = [path for method, path, _ in emulator.sent if method == "POST"]
    owned = ["/apis/networking.k8s.io/v1/namespaces/odh/networkpolicies", "/api/v1/namespaces/odh/secrets",
             "/apis/apps/v1/namespaces/odh/deployments", "/api/v1/namespaces/odh/services",
             "/apis/apps/v1/namespaces/odh/deployments"]
    assert sorted(posts) == sorted(["/api/v1/namespaces/odh/configmaps", *owned, "/api/v1/namespaces/odh/pods"])
    anchor_at = posts.index("/api/v1/namespaces/odh/configmaps")
    assert all(i > anchor_at for i, path in enumerate(posts) if path in owned), posts
    pod = stored(emulator, "v1/pods", "jupyter-alice")
    env = env_of(pod)
    # the notebook reads the cluster's secret from the mounted Secret (its SPARK_CONF_DIR), never from a value
    (volume,) = [v for v in pod["spec"]["volumes"] if v["name"] == "spark-auth"]
    assert volume["secret"]["secretName"] == "spark-alice-auth" and env["SPARK_CONF_DIR"] == "/etc/odh/spark"
    assert {"name": "spark-auth", "mountPath": "/etc/odh/spark", "readOnly": True} in \
        pod["spec"]["containers"][0]["volumeMounts"]
    assert env["SPARK_MASTER_URL"] == "spark://spark-alice-master.odh.svc:7077" and env["SPARK_EXECUTOR_CORES"] == "2"
    messages = [e["message"] for e in sp._odh_events]
    assert "Creating your Spark cluster: 2 worker(s), 2 core(s) and 1 GiB each" in messages
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


