"""Kafka ingestion on Kubernetes (KubeIngestBackend) against the real API server (tests/support/k8s_control_plane.py)
with the upstream Strimzi KafkaConnector CRD (0.51.0: v1 and v1beta2 served) installed from ../shared/crds.

The backend runs with a ServiceAccount bound to the chart's own rendered Role for its mode (chart_rbac.ingest_rules),
so these tests also show that Role suffices. The server validates every object (Deployment, Secret, Role,
RoleBinding, and the KafkaConnector against the CRD's schema, pruning what it does not declare: stored == built
shows nothing was dropped). No kubelet runs containers (the test kubelet only reports pods Running), and no Kafka
Connect or Strimzi operator runs: `operator` writes the KafkaConnector's /status as Strimzi would."""

from __future__ import annotations

import asyncio

import pytest

from odh_spawner.credentials import S3Credentials
from odh_spawner.ingest import kube_manifests as km
from odh_spawner.ingest import kube_strimzi as ks
from odh_spawner.ingest.kube import KubeIngestBackend
from odh_spawner.ingest.model import Ingestion
from odh_spawner.ingest.spec import build_spec
from tests.support.k8s_control_plane import crds_available, install_crds
from tests.support.chart_rbac import ingest_rules
from tests.support.kube_real import apps, core, get, group, kubelet, make_identity, names, wait_until  # noqa: F401

ACCESS, SECRET = "AKIAINGESTALICE42", "alice/ingest+secret=key"
CREDS = S3Credentials(ACCESS, SECRET, "http://rgw.ceph.svc:8080")
CRD_FILES = ["kafkaconnectors.kafka.strimzi.io.yaml"]
pytestmark = pytest.mark.skipif(not crds_available(*CRD_FILES),
                                reason="upstream CRDs not found beside the repo (../shared/crds)")
# what manage_connect_rbac needs on top (not granted by the chart): RBAC objects, and `get` on Secrets, which the
# per-ingestion Role grants the Connect pods (the API server lets a Role grant only what its creator holds)
CONNECT_RBAC_RULES = [{"apiGroups": ["rbac.authorization.k8s.io"], "resources": ["roles", "rolebindings"],
                       "verbs": ["create", "update", "delete"]},
                      {"apiGroups": [""], "resources": ["secrets"], "verbs": ["get"]}]
RBAC = "rbac.authorization.k8s.io/v1"


@pytest.fixture(scope="module")
def strimzi_crds(k8s_control_plane):
    return install_crds(k8s_control_plane, CRD_FILES)


@pytest.fixture
async def make_backend(k8s_control_plane, k8s_namespace, strimzi_crds, tmp_path):
    made = []

    def make(rules, **kw) -> KubeIngestBackend:
        _, kubeconfig = make_identity(k8s_control_plane, k8s_namespace, "odh-platform", rules, tmp_path)
        b = KubeIngestBackend(**{"kubeconfig": kubeconfig, "namespace": k8s_namespace, "request_timeout": 5,
                                 "retry_timeout": 10, "worker_image": "quay.io/odh/hub:test",
                                 "connect_cluster": "connect", **kw})
        made.append(b)
        return b

    yield make
    for b in made:
        await b.close()


def ingestion(owner="alice", name="clicks", **spec) -> Ingestion:
    return Ingestion(owner=owner, name=name, spec=build_spec({"topic": "clicks", "bucket": "raw",
                                                             "prefix": "clicks/", **spec}))


def contains(stored, built, path="") -> list[str]:
    """Where `stored` differs from `built` (the server may add defaults, never drop or change what we set)."""
    if isinstance(built, dict):
        if not isinstance(stored, dict):
            return [path]
        return [d for k, v in built.items() for d in contains(stored.get(k), v, f"{path}.{k}")]
    if isinstance(built, list):
        if not isinstance(stored, list) or len(stored) != len(built):
            return [path]
        return [d for i, (s, b) in enumerate(zip(stored, built)) for d in contains(s, b, f"{path}[{i}]")]
    return [] if stored == built else [f"{path}: {stored!r} != {built!r}"]


def can(cp, ns: str, user: str, verb: str, resource: str, name: str) -> bool:
    r = cp.api("POST", "/apis/authorization.k8s.io/v1/subjectaccessreviews", {
        "apiVersion": "authorization.k8s.io/v1", "kind": "SubjectAccessReview",
        "spec": {"user": user, "resourceAttributes": {"namespace": ns, "verb": verb, "resource": resource,
                                                      "name": name}}})
    assert r.ok, r.body
    return r.body["status"].get("allowed", False)


async def test_worker_deployment_runs_pauses_reports_and_is_deleted(k8s_control_plane, k8s_namespace, make_backend,
                                                                     kubelet):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    backend = make_backend(ingest_rules("deployment"))
    alice, bob = ingestion(), ingestion(owner="Alice.B", format="parquet", flush_records=500)
    rt = await backend.start(alice, CREDS, "kafka.odh.svc:9092")
    rt_bob = await backend.start(bob, CREDS, "kafka.odh.svc:9092")
    alice.runtime, bob.runtime = rt, rt_bob  # what the manager records
    name = "odh-ingest.alice.clicks"
    assert rt["name"] == name and rt["mode"] == "deployment" and rt_bob["name"] != name
    assert rt_bob["name"] == km.resource_name("Alice.B", "clicks") and "--" in rt_bob["name"]

    # stored as built: the server accepted every field and dropped none
    cfg = km.worker_config(alice, CREDS, "kafka.odh.svc:9092", 64 * 2**20)
    built = km.worker_deployment(alice, ns, image="quay.io/odh/hub:test", cfg_hash=km.config_hash(cfg),
                                 memory="320Mi")
    stored = get(cp, apps(ns, "deployments", name))
    assert contains(stored["spec"], built["spec"]) == []
    assert contains(stored["metadata"], {k: built["metadata"][k] for k in ("labels", "annotations")}) == []
    secret = get(cp, core(ns, "secrets", name))
    assert set(secret["data"]) == {"config.json"}
    for obj in (stored, get(cp, apps(ns, "deployments", rt_bob["name"]))):
        assert ACCESS not in str(obj) and SECRET not in str(obj)

    # the real Deployment controller makes a pod, the scheduler binds it, the test kubelet reports it running
    def state(ing, r):
        return backend.status(r).get("state")

    async def refreshed(want, ing=alice, r=rt):
        async def check():
            await backend.refresh([ing], "")
            return state(ing, r) == want
        deadline = asyncio.get_running_loop().time() + 30
        while not await check():
            assert asyncio.get_running_loop().time() < deadline, (want, backend.status(r), get(
                cp, apps(ns, "deployments", r["name"])).get("status"), [e["message"] for e in cp.api("GET", core(ns, "events")).body["items"]], [
                p["status"] for p in cp.api("GET", core(ns, "pods")).body["items"]])
            await asyncio.sleep(0.2)

    await refreshed("running")
    assert backend.alive(rt)
    (pod,) = names(cp, core(ns, "pods"), **{"odh-hub/user": "alice", "odh-hub/ingestion": "clicks"})

    # the worker fails (as a kubelet reports a crash loop): its termination message reaches the user
    crash = {"status": {"conditions": [{"type": "Ready", "status": "False"}], "containerStatuses": [{
        "name": "worker", "ready": False, "restartCount": 3, "image": "quay.io/odh/hub:test", "imageID": "",
        "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 3, "reason": "Error",
                                     "message": "No permission to write into bucket 'raw' with your keys.",
                                     "startedAt": "2026-01-01T00:00:00Z", "finishedAt": "2026-01-01T00:00:01Z"}}}]}}
    r = cp.api("PATCH", core(ns, "pods", pod) + "/status", crash)
    assert r.ok, r.body
    await refreshed("restarting")
    st = backend.status(rt)
    assert "No permission to write into bucket 'raw'" in st["last_error"] and st["restarts"] == 3

    # pause (scale to 0), resume (1 replica again, same objects)
    await backend.stop(rt, desired="paused")
    assert get(cp, apps(ns, "deployments", name))["spec"]["replicas"] == 0
    await refreshed("stopped")
    await backend.start(alice, CREDS, "kafka.odh.svc:9092")
    assert get(cp, apps(ns, "deployments", name))["spec"]["replicas"] == 1

    # delete: alice's objects go (her pods with them), Bob's stay
    await backend.remove(rt)
    assert get(cp, apps(ns, "deployments", name)) is None and get(cp, core(ns, "secrets", name)) is None
    assert not backend.alive(rt)
    await wait_until(lambda: not names(cp, core(ns, "pods"), **{"odh-hub/user": "alice"}), 30,
                     "alice's worker pods to be deleted")
    assert get(cp, apps(ns, "deployments", rt_bob["name"])) and get(cp, core(ns, "secrets", rt_bob["name"]))
    await backend.remove(rt_bob)
    assert names(cp, apps(ns, "deployments")) == []


@pytest.mark.parametrize("version, manage_rbac", [("v1", True), ("v1beta2", False)])
async def test_kafka_connector_applied_paused_reported_and_deleted(k8s_control_plane, k8s_namespace, make_backend,
                                                                   version, manage_rbac):
    cp, ns = k8s_control_plane, k8s_namespace
    rules = ingest_rules("strimzi") + (CONNECT_RBAC_RULES if manage_rbac else [])
    backend = make_backend(rules, ingest_mode="strimzi", strimzi_api_version=version, manage_connect_rbac=manage_rbac)
    alice = ingestion(partition_by="hour", flush_seconds=30)
    bob = ingestion(owner="bob", format="parquet")
    rt = await backend.start(alice, CREDS, "kafka.odh.svc:9092")
    rt_bob = await backend.start(bob, CREDS, "kafka.odh.svc:9092")
    alice.runtime, bob.runtime = rt, rt_bob
    name, path = rt["name"], group(f"kafka.strimzi.io/{version}", ns, "kafkaconnectors", rt["name"])
    assert rt["mode"] == "strimzi" and rt_bob["name"] == "odh-ingest.bob.clicks"

    built = ks.kafka_connector(alice, ns, cluster="connect", endpoint=CREDS.endpoint, api_version=version)
    cr = get(cp, path)
    assert cr["spec"] == built["spec"]  # nothing pruned by the CRD's schema, nothing changed
    assert cr["metadata"]["labels"]["strimzi.io/cluster"] == "connect"
    assert cr["spec"]["config"]["aws.secret.access.key"] == f"${{secrets:{ns}/{name}:aws_secret_access_key}}"
    assert ACCESS not in str(cr) and SECRET not in str(cr)
    secret = get(cp, core(ns, "secrets", name))
    assert set(secret["data"]) == {"aws_access_key_id", "aws_secret_access_key"}
    connect_sa = f"system:serviceaccount:{ns}:connect-connect"
    if manage_rbac:  # the Connect cluster's ServiceAccount may read this ingestion's Secret and no other
        assert can(cp, ns, connect_sa, "get", "secrets", name)
        assert can(cp, ns, connect_sa, "get", "secrets", rt_bob["name"])  # bob's own Role, bound to the same SA
        assert not can(cp, ns, connect_sa, "get", "secrets", "odh-s3-alice")
        assert not can(cp, ns, connect_sa, "list", "secrets", "")
    else:  # the chart's way: no Role of the platform's; the chart's own Role grants the Connect pods
        assert get(cp, group(RBAC, ns, "roles", name)) is None
        assert not can(cp, ns, connect_sa, "get", "secrets", name)

    await backend.refresh([alice, bob])
    assert backend.status(rt)["state"] == "starting" and backend.alive(rt)

    async def operator(status: dict) -> None:
        """Strimzi's part: write the KafkaConnector's status for its current generation."""
        gen = get(cp, path)["metadata"]["generation"]
        r = cp.api("PATCH", path + "/status", {"status": {"observedGeneration": gen, **status}})
        assert r.ok, r.body

    await operator({"conditions": [{"type": "NotReady", "status": "True", "reason": "ConnectRestException",
                                    "message": "Failed to find any class that implements Connector and which "
                                               "name matches io.confluent.connect.s3.S3SinkConnector"}]})
    await backend.refresh([alice])
    st = backend.status(rt)
    assert st["state"] == "failed"
    assert st["last_error"].startswith("Kafka Connect does not run the connector: Failed to find any class")

    await operator({"conditions": [{"type": "Ready", "status": "True"}], "tasksMax": 1, "topics": ["clicks"],
                    "connectorStatus": {"name": name, "connector": {"state": "RUNNING", "worker_id": "c-0:8083"},
                                        "tasks": [{"id": 0, "state": "RUNNING", "worker_id": "c-0:8083"}]}})
    await backend.refresh([alice])
    assert backend.status(rt) == {"state": "running", "last_error": None, "tasks": [
        {"id": 0, "state": "RUNNING", "trace": []}]}

    # pause / resume / stop are spec.state; a spec change is "starting" until the operator catches up
    await backend.stop(rt, desired="paused")
    assert get(cp, path)["spec"]["state"] == "paused"
    await backend.refresh([alice])
    assert backend.status(rt)["state"] == "starting"  # observedGeneration < generation
    await operator({"conditions": [{"type": "Ready", "status": "True"}],
                    "connectorStatus": {"connector": {"state": "PAUSED"}, "tasks": []}})
    await backend.refresh([alice])
    assert backend.status(rt)["state"] == "paused"
    await backend.start(alice, CREDS, "kafka.odh.svc:9092")
    assert get(cp, path)["spec"]["state"] == "running"
    await backend.stop(rt, desired="stopped")
    assert get(cp, path)["spec"]["state"] == "stopped"
    assert get(cp, group(f"kafka.strimzi.io/{version}", ns, "kafkaconnectors", rt_bob["name"]))["spec"][
        "state"] == "running"

    # delete: the connector, its Secret, Role and RoleBinding; bob's stay
    await backend.remove(rt)
    assert get(cp, path) is None and get(cp, core(ns, "secrets", name)) is None
    assert get(cp, group(RBAC, ns, "roles", name)) is None and get(cp, group(RBAC, ns, "rolebindings", name)) is None
    assert not can(cp, ns, connect_sa, "get", "secrets", name) and not can(cp, ns, connect_sa, "get", "secrets", "x")
    await backend.refresh([alice, bob])
    assert not backend.alive(rt) and backend.alive(rt_bob)
    await backend.remove(rt_bob)
    assert names(cp, group(f"kafka.strimzi.io/{version}", ns, "kafkaconnectors")) == []
    assert names(cp, group(RBAC, ns, "roles")) == ["odh-platform"]
