"""Plain-MLServer serving on Kubernetes (serving_resource = "mlserver": no operator) against the real API server
and the real kube-controller-manager (tests/support/k8s_control_plane.py), run with a ServiceAccount bound to the
chart's own rendered serving Role for `serving.backend: mlserver` (tests/support/chart_rbac.py), not the admin.

The real Deployment controller makes the ReplicaSets and rolls them; the real scheduler binds the pods; the test
kubelet (tests/support/kubelet.py; no container runs) reports them Running/Ready, or Failed on demand, so the
Deployment's status (observedGeneration, updated/available replicas, conditions) is the controller's own. The
containers' commands themselves run for real in test_fetch_and_serve_with_real_rgw_and_mlserver below: the init
container's fetch step against real Ceph RGW, then `mlserver start` on what it wrote, answering an inference."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest
import requests

from odh_spawner.credentials import S3Credentials
from odh_spawner.deploy import fetch
from odh_spawner.deploy.kube import KubeServingBackend
from odh_spawner.deploy.model import BackendFailed, Deployment
from tests.support.chart_rbac import serving_rules
from tests.support.kube_real import apps, core, get, kubelet, make_identity, names, wait_until  # noqa: F401

ACCESS, SECRET = "AKIAALICEEXAMPLE42", "alice/very+secret=key"
ENDPOINT = "http://rgw.ceph.svc:8080"
CREDS = S3Credentials(ACCESS, SECRET, ENDPOINT)
IMAGE = "quay.io/odh-hub/hub:0.1.0"
RESOURCES = {"requests": {"cpu": "100m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "1Gi"}}
URI = "s3://odh-models-alice/odh-deployments/iris/v{}/"
DIGESTS = {"model.joblib": "0a" * 32}


@pytest.fixture
def other_namespace(k8s_control_plane):
    ns = k8s_control_plane.create_namespace("other")
    yield ns
    k8s_control_plane.delete_namespace(ns)


@pytest.fixture
async def platform(k8s_control_plane, k8s_namespace, tmp_path):
    """(token, a KubeServingBackend factory) with the identity of the chart's serving Role for mlserver."""
    token, kubeconfig = make_identity(k8s_control_plane, k8s_namespace, "odh-platform", serving_rules("mlserver"),
                                      tmp_path)
    made = []

    def make(**kw) -> KubeServingBackend:
        settings = {"kubeconfig": kubeconfig, "namespace": k8s_namespace, "serving_resource": "mlserver",
                    "mlserver_image": IMAGE, "resources": RESOURCES, "poll_interval": 0.1, "ready_timeout": 30,
                    "request_timeout": 5, "retry_timeout": 10, **kw}
        made.append(KubeServingBackend(**settings))
        return made[-1]

    yield token, make
    for b in made:
        await b.close()


def subset(built, stored, path="") -> list[str]:
    """Where `stored` (what the API server kept, with its defaults added) differs from what we built."""
    if isinstance(built, dict):
        if not isinstance(stored, dict):
            return [path]
        return [p for k, v in built.items() for p in subset(v, stored.get(k), f"{path}.{k}")]
    if isinstance(built, list):
        if not isinstance(stored, list) or len(stored) != len(built):
            return [path]
        return [p for i, (a, b) in enumerate(zip(built, stored)) for p in subset(a, b, f"{path}[{i}]")]
    return [] if built == stored else [f"{path}: {built!r} != {stored!r}"]


def mlserver_pods(cp, ns, **labels) -> list[dict]:
    selector = ",".join(f"{k}={v}" for k, v in {"odh-hub/mlserver": "alice--iris", **labels}.items())
    r = cp.api("GET", core(ns, "pods") + f"?labelSelector={selector}")
    assert r.ok, r.body
    return [p for p in r.body["items"] if not p["metadata"].get("deletionTimestamp")]


def running(cp, ns, version: int) -> bool:
    """Exactly one pod runs, and it is `version`'s (failed pods a failed version left behind aside)."""
    pods = [p for p in mlserver_pods(cp, ns) if p["status"].get("phase") != "Failed"]
    return (len(pods) == 1 and pods[0]["metadata"]["labels"]["odh-hub/version"] == str(version)
            and pods[0]["status"].get("phase") == "Running")


async def test_mlserver_served_rolled_failed_restored_torn_down_with_the_charts_role(
        k8s_control_plane, k8s_namespace, kubelet, platform, other_namespace):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    token, make = platform
    backend = make()
    d = Deployment(owner="alice", name="iris", backend=backend.name, model_name=backend.model_name_for("alice", "iris"))
    v1 = d.add_version(URI.format(1), "sklearn", None, DIGESTS)
    stages = []
    await asyncio.wait_for(backend.bring_up(d, v1, CREDS, [], "/nonexistent", stages.append), 60)

    # served: the Service's in-cluster URL, V2 paths
    url = f"http://alice--iris.{ns}.svc.cluster.local:8080"
    assert stages == ["starting"] and d.url == d.upstream == url
    assert d.infer_url == f"{url}/v2/models/alice--iris/infer"
    assert d.runtime == {"resource": "mlserver", "name": "alice--iris", "namespace": ns}
    dep = get(cp, apps(ns, "deployments", "alice--iris"))
    built = backend.manifest("mlserver", d, v1)
    assert subset(built["spec"], dep["spec"]) == [] and subset(built["metadata"], dep["metadata"]) == []
    assert dep["status"]["availableReplicas"] == 1 and dep["status"]["observedGeneration"] == 1
    assert ACCESS not in json.dumps(dep) and SECRET not in json.dumps(dep)
    service = get(cp, core(ns, "services", "alice--iris"))
    assert service["spec"]["selector"] == {"odh-hub/mlserver": "alice--iris"} and service["spec"]["clusterIP"]
    assert service["spec"]["ports"][0]["port"] == 8080
    secret = get(cp, core(ns, "secrets", "odh-mlserver-storage-alice"))
    assert base64.b64decode(secret["data"]["AWS_SECRET_ACCESS_KEY"]).decode() == SECRET
    assert base64.b64decode(secret["data"]["S3_ENDPOINT_URL"]).decode() == ENDPOINT
    (pod,) = mlserver_pods(cp, ns)
    assert pod["metadata"]["name"] in kubelet.running and pod["status"]["phase"] == "Running"
    assert pod["metadata"]["annotations"]["hub.jupyter.org/username"] == "alice"
    assert pod["spec"]["automountServiceAccountToken"] is False
    assert pod["spec"]["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    # the Service's endpoints are the Ready pod (the real endpoints controller)
    ip = kubelet.running[pod["metadata"]["name"]]
    await wait_until(lambda: ip in json.dumps(get(cp, core(ns, "endpoints", "alice--iris")) or {}), 20,
                     "the Service's endpoints")
    policies = cp.api("GET", f"/apis/networking.k8s.io/v1/namespaces/{ns}/networkpolicies").body["items"]
    assert [p["spec"]["podSelector"] for p in policies] == [
        {"matchExpressions": [{"key": "odh-hub/mlserver", "operator": "Exists"}]}]
    assert await backend.check(d) is None

    # a second version rolls the Deployment: a new ReplicaSet, the old pod replaced
    d.serving = 1
    v2 = d.add_version(URI.format(2), "sklearn", None, {"model.joblib": "0b" * 32})
    await asyncio.wait_for(backend.bring_up(d, v2, CREDS, [], "/nonexistent", lambda stage: None), 60)
    dep = get(cp, apps(ns, "deployments", "alice--iris"))
    assert dep["metadata"]["generation"] == 2 and dep["metadata"]["labels"]["odh-hub/version"] == "2"
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["initContainers"][0]["env"]}
    assert env["MODEL_URI"] == v2.model_uri and json.loads(env["MODEL_SHA256"]) == v2.sha256
    assert len(names(cp, apps(ns, "replicasets"), **{"odh-hub/mlserver": "alice--iris"})) == 2
    await wait_until(lambda: running(cp, ns, 2), 30, "only v2's pod running")
    d.serving = 2

    # a third version whose pods fail: Failed with the container's message, v2 rolled back in
    kubelet.fail_labelled({"odh-hub/mlserver": "alice--iris", "odh-hub/version": "3"},
                          message=fetch.CHANGED, exit_code=1)
    v3 = d.add_version(URI.format(3), "sklearn", None, {"model.joblib": "0c" * 32})
    with pytest.raises(BackendFailed, match=r"^The Deployment failed: The container mlserver of pod alice--iris-\S+ "
                                            r"exited with code 1: The model file changed after upload; deploy it "
                                            r"again\.$"):
        await asyncio.wait_for(backend.bring_up(d, v3, CREDS, [], "/nonexistent", lambda stage: None), 60)
    dep = get(cp, apps(ns, "deployments", "alice--iris"))
    assert dep["metadata"]["labels"]["odh-hub/version"] == "2" and dep["metadata"]["generation"] == 4
    env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["initContainers"][0]["env"]}
    assert env["MODEL_URI"] == v2.model_uri
    # v2's pod served throughout (no pod unavailable during a rollout) and serves on; v3's pods failed
    await wait_until(lambda: running(cp, ns, 2), 30, "v2's pod running")
    failed = mlserver_pods(cp, ns, **{"odh-hub/version": "3"})
    assert failed and {p["status"]["phase"] for p in failed} == {"Failed"}
    assert all(p["metadata"]["name"] in kubelet.failed for p in failed)

    async def settled():
        return await backend.check(d) is None
    for _ in range(100):
        if await settled():
            break
        await asyncio.sleep(0.1)
    assert await backend.check(d) is None and d.url == url
    assert await backend.adopt(d) is True

    # a restarted platform adopts it; a Deployment deleted behind its back comes back with recover
    again = make()
    assert await again.adopt(d) is True
    assert cp.api("DELETE", apps(ns, "deployments", "alice--iris")).ok
    assert await again.check(d) == "Its Deployment alice--iris no longer exists in the cluster."
    with pytest.raises(BackendFailed, match="was missing and has been created again"):
        await again.recover(d, v2)
    await wait_until(lambda: running(cp, ns, 2), 30, "the recreated Deployment's pod")

    # the Role allows exactly this kind's objects in this namespace, nothing else
    pod_body = {"metadata": {"name": "x"}, "spec": {"containers": [{"name": "x", "image": "x"}]}}
    for method, path, body in (
            ("POST", core(ns, "pods"), pod_body),
            ("DELETE", core(ns, "pods", mlserver_pods(cp, ns)[0]["metadata"]["name"]), None),
            ("GET", core(ns, "pods", mlserver_pods(cp, ns)[0]["metadata"]["name"]) + "/log", None),
            ("GET", core(ns, "secrets", "odh-mlserver-storage-alice"), None),
            ("GET", core(ns, "services", "alice--iris"), None),
            ("PATCH", core(ns, "services", "alice--iris"), {"spec": {"type": "NodePort"}}),
            ("GET", apps(other_namespace, "deployments"), None),
            ("POST", apps(other_namespace, "deployments"), built),
            ("POST", apps(ns, "replicasets"), {"metadata": {"name": "x"}}),
            ("POST", core(ns, "configmaps"), {"metadata": {"name": "x"}}),
            ("GET", "/api/v1/nodes", None)):
        r = cp.api(method, path, body, token=token)
        assert r.status == 403, (method, path, r.status, r.body)
        assert "forbidden" in json.dumps(r.body).lower(), r.body

    # teardown removes everything: Deployment (its ReplicaSets and pods by the garbage collector), Service, Secret
    await again.teardown(d)
    assert d.url is None
    for path in (apps(ns, "deployments", "alice--iris"), core(ns, "services", "alice--iris"),
                 core(ns, "secrets", "odh-mlserver-storage-alice")):
        assert get(cp, path) is None, path
    await wait_until(lambda: not names(cp, apps(ns, "replicasets"), **{"odh-hub/mlserver": "alice--iris"}), 30,
                     "the ReplicaSets collected")
    await wait_until(lambda: not mlserver_pods(cp, ns), 30, "the pods gone")
    await again.teardown(d)  # again: already gone is fine
    assert await again.adopt(d) is False


async def test_a_first_version_past_its_progress_deadline_fails_and_is_removed(
        k8s_control_plane, k8s_namespace, platform):
    """No kubelet reports the pod: the real Deployment controller reports ProgressDeadlineExceeded after the
    Deployment's progressDeadlineSeconds (ready_timeout), the user reads its reason, a first version leaves
    nothing behind."""
    cp, ns = k8s_control_plane, k8s_namespace
    _, make = platform
    backend = make(ready_timeout=2)
    d = Deployment(owner="alice", name="iris", backend=backend.name, model_name="alice--iris")
    v = d.add_version(URI.format(1), "sklearn")
    started = time.monotonic()
    with pytest.raises(BackendFailed, match=r'^The Deployment failed: ReplicaSet "alice--iris-\w+" has timed out '
                                            r'progressing\.$'):
        await asyncio.wait_for(backend.bring_up(d, v, CREDS, [], "/nonexistent", lambda stage: None), 60)
    assert time.monotonic() - started < 12  # the controller's deadline, before our own
    for path in (apps(ns, "deployments", "alice--iris"), core(ns, "services", "alice--iris"),
                 core(ns, "secrets", "odh-mlserver-storage-alice")):
        assert get(cp, path) is None, path


async def test_teardown_keeps_the_secret_while_the_user_has_other_deployments_and_bob_is_apart(
        k8s_control_plane, k8s_namespace, kubelet, platform):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    _, make = platform
    backend = make()
    deployments = []
    for owner, name in (("alice", "iris"), ("alice", "churn"), ("bob", "iris")):
        d = Deployment(owner=owner, name=name, backend=backend.name, model_name=f"{owner}--{name}")
        v = d.add_version(f"s3://odh-models-{owner}/odh-deployments/{name}/v1/", "sklearn")
        await asyncio.wait_for(backend.bring_up(d, v, CREDS, [], "/nonexistent", lambda stage: None), 60)
        deployments.append(d)
    iris, churn, bob = deployments
    assert bob.url == f"http://bob--iris.{ns}.svc.cluster.local:8080"
    await backend.teardown(iris)  # alice's other deployment still reads its model with her Secret
    assert get(cp, core(ns, "secrets", "odh-mlserver-storage-alice")) is not None
    assert get(cp, apps(ns, "deployments", "bob--iris")) is not None
    await backend.teardown(churn)
    assert get(cp, core(ns, "secrets", "odh-mlserver-storage-alice")) is None
    assert get(cp, core(ns, "secrets", "odh-mlserver-storage-bob")) is not None
    assert await backend.check(bob) is None
    await backend.teardown(bob)
    assert names(cp, apps(ns, "deployments")) == [] and names(cp, core(ns, "secrets"), **{
        "app.kubernetes.io/managed-by": "odh-hub"}) == []


# -- the pod's own commands, for real: the fetch step on real RGW, then MLServer on what it wrote ------------------
def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def upload_model(ceph, prefix: str):
    """A small sklearn model uploaded with the RGW admin's keys: (s3 client, bucket, its bytes, its digests)."""
    import boto3
    import joblib
    from sklearn.linear_model import LogisticRegression

    admin = ceph.admin
    s3 = boto3.client("s3", endpoint_url=ceph.endpoint, aws_access_key_id=admin.access_key,
                      aws_secret_access_key=admin.secret_key, region_name="us-east-1")
    bucket = "odh-models-mlkube"
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    model = LogisticRegression().fit([[0.0], [1.0], [2.0], [3.0]], [0, 0, 1, 1])
    buf = io.BytesIO()
    joblib.dump(model, buf)
    blob = buf.getvalue()
    s3.put_object(Bucket=bucket, Key=f"{prefix}model.joblib", Body=blob)
    return s3, bucket, blob, {"model.joblib": hashlib.sha256(blob).hexdigest()}


def start_mlserver(model_root, log_path) -> subprocess.Popen:
    mlserver = os.path.join(os.path.dirname(sys.executable), "mlserver")
    with open(log_path, "ab") as log:
        return subprocess.Popen([mlserver, "start", str(model_root)], stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_ready(url: str, proc: subprocess.Popen, log_path, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            if requests.get(url, timeout=2).status_code == 200:
                return
        except requests.ConnectionError:
            pass
        assert proc.poll() is None, open(log_path).read()[-3000:]
        assert time.monotonic() < deadline, f"MLServer not ready in {timeout:.0f} s"
        time.sleep(0.5)


def test_fetch_and_serve_with_real_rgw_and_mlserver(ceph, tmp_path):
    admin = ceph.admin
    s3, bucket, blob, digests = upload_model(ceph, "odh-deployments/iris/v1/")
    http, grpc, metrics = free_port(), free_port(), free_port()
    # the init container's environment, as the Deployment gives it (keys from the Secret)
    env = {"MODEL_URI": f"s3://{bucket}/odh-deployments/iris/v1/", "MODEL_NAME": "alice--iris",
           "MODEL_FRAMEWORK": "sklearn", "MODEL_VERSION": "1", "MODEL_SHA256": json.dumps(digests),
           "MODEL_DIR": str(tmp_path / "models"), "MLSERVER_HTTP_PORT": str(http), "MLSERVER_GRPC_PORT": str(grpc),
           "MLSERVER_METRICS_PORT": str(metrics), "MLSERVER_HOST": "127.0.0.1", "S3_ENDPOINT_URL": ceph.endpoint,
           "AWS_ACCESS_KEY_ID": admin.access_key, "AWS_SECRET_ACCESS_KEY": admin.secret_key}
    (tmp_path / "models").mkdir()
    done = subprocess.run([sys.executable, "-m", "odh_spawner.deploy.fetch"], env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "Model ready in" in done.stdout and admin.secret_key not in done.stdout + done.stderr
    model_dir = tmp_path / "models" / "alice--iris"
    assert (model_dir / "model.joblib").read_bytes() == blob
    assert json.loads((model_dir / "model-settings.json").read_text())["implementation"] == \
        "mlserver_sklearn.SKLearnModel"

    # the model container's command on that folder answers a V2 inference
    proc = start_mlserver(tmp_path / "models", tmp_path / "mlserver.log")
    try:
        base = f"http://127.0.0.1:{http}/v2/models/alice--iris"
        wait_ready(base + "/ready", proc, tmp_path / "mlserver.log")
        started = time.monotonic()
        r = requests.post(base + "/infer", timeout=30, json={"inputs": [
            {"name": "x", "shape": [2, 1], "datatype": "FP64", "data": [0.0, 3.0]}]})
        print(f"MLServer inference: {1000 * (time.monotonic() - started):.0f} ms")
        assert r.status_code == 200, r.text
        assert r.json()["outputs"][0]["data"] == [0, 1] and r.json()["model_version"] == "v1"
    finally:
        stop(proc)

    # the file changed after upload: refused, not written, the reason in the termination message
    s3.put_object(Bucket=bucket, Key="odh-deployments/iris/v1/model.joblib", Body=blob + b"tampered")
    refused_dir = tmp_path / "refused"
    refused_dir.mkdir()
    with pytest.raises(fetch.FetchError, match=r"^The model file changed after upload; deploy it again\.$"):
        fetch.run({**env, "MODEL_DIR": str(refused_dir)})
    assert not (refused_dir / "alice--iris" / "model.joblib").exists()
    # a recorded file that is gone
    with pytest.raises(fetch.FetchError, match="changed after upload"):
        fetch.run({**env, "MODEL_DIR": str(refused_dir), "MODEL_SHA256": json.dumps({"other.pkl": "0" * 64})})
    # someone else's keys (wrong secret): access denied, and the keys are not in the message
    with pytest.raises(fetch.FetchError, match=r"^Cannot read s3://odh-models-mlkube/odh-deployments/iris/v1/"
                                               r"model.joblib: access denied with the owner's keys\.$"):
        fetch.run({**env, "MODEL_DIR": str(refused_dir), "AWS_SECRET_ACCESS_KEY": "wrong" * 8})
    # without digests (records from before them) every file under the prefix is fetched
    assert fetch.run({**env, "MODEL_DIR": str(refused_dir), "MODEL_SHA256": "{}"})
    assert (refused_dir / "alice--iris" / "model.joblib").read_bytes() == blob + b"tampered"


async def test_the_pods_own_commands_fetch_from_rgw_and_answer_through_the_service_path(
        k8s_control_plane, k8s_namespace, platform, ceph, tmp_path):
    """The test plays the container runtime for the one pod the real Deployment controller made: its init
    container's command with its own environment (the Secret's keys resolved through the API server: the user's
    keys, here the RGW admin's) fetches from real RGW, then its model container's command serves, on the pod's
    address (the test kubelet's, on loopback). The only remapping is what a container runtime provides: the
    emptyDir's mount path and the pod's ports (free ones here, on a shared machine)."""
    from tests.support import secretscan
    from tests.support.kubelet import TestKubelet

    cp, ns = k8s_control_plane, k8s_namespace
    admin = ceph.admin
    _, bucket, blob, digests = upload_model(ceph, "odh-deployments/churn/v1/")
    _, make = platform
    backend = make(s3_endpoint=ceph.endpoint)
    d = Deployment(owner="alice", name="churn", backend=backend.name,
                   model_name=backend.model_name_for("alice", "churn"))
    v = d.add_version(f"s3://{bucket}/odh-deployments/churn/v1/", "sklearn", None, digests)
    creds = S3Credentials(admin.access_key, admin.secret_key, "http://unused.example")
    async with TestKubelet(cp.kubeconfig, ns, pod_cidr="127.0.0.0/24") as k:
        await asyncio.wait_for(backend.bring_up(d, v, creds, [], "/nonexistent", lambda stage: None), 60)
        (pod,) = [p for p in (get(cp, core(ns, "pods")) or {})["items"]
                  if p["metadata"]["labels"].get("odh-hub/mlserver") == "alice--churn"]
        assert pod["metadata"]["name"] in k.running
    ip = pod["status"]["podIP"]
    assert ip.startswith("127.0.0.")

    def env_of(container: dict) -> dict:
        env = {}
        for e in container.get("env", []):
            if "value" in e:
                env[e["name"]] = e["value"]
            else:
                ref = e["valueFrom"]["secretKeyRef"]
                secret = get(cp, core(ns, "secrets", ref["name"]))
                env[e["name"]] = base64.b64decode(secret["data"][ref["key"]]).decode()
                secretscan.register_secret(env[e["name"]], f"pod-env-{e['name']}")
        return env

    (init,), (server,) = pod["spec"]["initContainers"], pod["spec"]["containers"]
    (volume,) = pod["spec"]["volumes"]
    assert "emptyDir" in volume and init["volumeMounts"] == server["volumeMounts"]
    mount = init["volumeMounts"][0]["mountPath"]
    empty_dir = tmp_path / "emptydir"
    empty_dir.mkdir()
    ports = {"MLSERVER_HTTP_PORT": free_port(), "MLSERVER_GRPC_PORT": free_port(),
             "MLSERVER_METRICS_PORT": free_port()}
    env = env_of(init)
    assert env["S3_ENDPOINT_URL"] == ceph.endpoint and env["AWS_ACCESS_KEY_ID"] == admin.access_key
    assert env["MODEL_DIR"] == mount
    env.update({"MODEL_DIR": str(empty_dir), "MLSERVER_HOST": ip, **{k_: str(p) for k_, p in ports.items()}})
    assert init["command"][:2] == ["python", "-m"]
    done = subprocess.run([sys.executable, *init["command"][1:]], env={**os.environ, **env}, capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert server["command"] == ["mlserver", "start", mount]
    proc = start_mlserver(empty_dir, tmp_path / "pod-mlserver.log")
    try:
        port = ports["MLSERVER_HTTP_PORT"]
        probe = server["readinessProbe"]["httpGet"]
        wait_ready(f"http://{ip}:{port}{probe['path']}", proc, tmp_path / "pod-mlserver.log")
        # the inference URL the platform's gateway forwards to: the Service's, whose path is the model's
        assert d.infer_url == f"http://alice--churn.{ns}.svc.cluster.local:8080/v2/models/alice--churn/infer"
        path = d.infer_url.split(":8080", 1)[1]
        r = requests.post(f"http://{ip}:{port}{path}", timeout=30, json={"inputs": [
            {"name": "x", "shape": [3, 1], "datatype": "FP64", "data": [0.0, 2.9, 3.0]}]})
        assert r.status_code == 200, r.text
        assert r.json()["model_name"] == "alice--churn" and r.json()["outputs"][0]["data"] == [0, 1, 1]
    finally:
        stop(proc)
    await backend.teardown(d)
    assert get(cp, core(ns, "secrets", "odh-mlserver-storage-alice")) is None


async def test_through_the_deployment_manager_with_real_rgw(k8s_control_plane, k8s_namespace, kubelet,  # noqa: F811
                                                            platform, ceph, tmp_path):
    """The real DeploymentManager over the mlserver kind, the model listed and its bucket's owner checked on real
    RGW: create -> Available; a new version; a rollback puts v1's spec back (the controller rolls back to its
    ReplicaSet); a restarted manager adopts it from its store; delete leaves nothing."""
    from odh_spawner.deploy.manager import DeploymentManager
    from odh_spawner.deploy.model import AVAILABLE
    from odh_spawner.deploy.store import DeploymentStore

    cp, ns = k8s_control_plane, k8s_namespace
    _, bucket, _, digests = upload_model(ceph, "odh-deployments/fraud/v1/")
    upload_model(ceph, "odh-deployments/fraud/v2/")
    creds = S3Credentials(ceph.admin.access_key, ceph.admin.secret_key, ceph.endpoint)

    async def credentials_for(owner):
        return creds

    async def settled(m, version):
        d = m.get("alice", "fraud")
        await wait_until(lambda: d.state == AVAILABLE and d.serving == version and d.stage == "ready", 60,
                         f"v{version} served")
        dep = get(cp, apps(ns, "deployments", "alice--fraud"))
        env = {e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["initContainers"][0]["env"]}
        assert env["MODEL_URI"] == f"s3://{bucket}/odh-deployments/fraud/v{version}/"
        assert json.loads(env["MODEL_SHA256"]) == digests  # the digests recorded at upload reach the pod
        await wait_until(lambda: running_named(cp, ns, "alice--fraud", version), 30, f"v{version}'s pod")
        return d

    _, make = platform
    manager = DeploymentManager(make(), DeploymentStore(str(tmp_path / "store")), credentials_for)
    await manager.create("alice", "fraud", f"s3://{bucket}/odh-deployments/fraud/v1/", model_sha256=digests)
    d = await settled(manager, 1)
    assert d.backend == "kubernetes" and d.model_name == "alice--fraud"
    assert d.upstream == f"http://alice--fraud.{ns}.svc.cluster.local:8080"
    await manager.add_version("alice", "fraud", f"s3://{bucket}/odh-deployments/fraud/v2/", model_sha256=digests)
    await settled(manager, 2)
    await manager.rollback("alice", "fraud")
    await settled(manager, 1)
    await manager.watch_once()
    assert manager.get("alice", "fraud").restarts == 0
    await manager.close()

    again = DeploymentManager(make(), DeploymentStore(str(tmp_path / "store")), credentials_for)
    await again.adopt_all()
    adopted = again.get("alice", "fraud")
    assert (adopted.state, adopted.serving, adopted.upstream) == (AVAILABLE, 1, d.upstream)
    await again.delete("alice", "fraud")
    for path in (apps(ns, "deployments", "alice--fraud"), core(ns, "services", "alice--fraud"),
                 core(ns, "secrets", "odh-mlserver-storage-alice")):
        assert get(cp, path) is None, path
    await again.close()


def running_named(cp, ns, name: str, version: int) -> bool:
    r = cp.api("GET", core(ns, "pods") + f"?labelSelector=odh-hub/mlserver={name}")
    pods = [p for p in r.body["items"] if not p["metadata"].get("deletionTimestamp")
            and p["status"].get("phase") != "Failed"]
    return (len(pods) == 1 and pods[0]["metadata"]["labels"]["odh-hub/version"] == str(version)
            and pods[0]["status"].get("phase") == "Running")
