"""Plain-MLServer serving on Kubernetes (serving_resource = "mlserver", no operator): the literal Deployment,
Service and storage Secret, valid Kubernetes (strict schemas); the state read from a Deployment's status and its
pods; the backend's manifest settings; the fetch step's settings and refusals (its S3 side runs against real RGW
in tests/integration/test_kube_real_mlserver.py)."""

import base64
import json

import kubernetes_validate
import pytest

from odh_spawner.deploy import fetch
from odh_spawner.deploy import manifests as m
from odh_spawner.deploy.kube import KubeServingBackend, serving_manifest, storage_names, storage_objects
from odh_spawner.deploy.model import DeployError, Deployment
from tests.support.kube import K8S_VERSION

pytestmark = pytest.mark.unit

ACCESS, SECRET = "AKIAEXAMPLEACCESS42", "very/secret+key=0123456789"
ENDPOINT = "http://rgw.ceph.svc:8080"
URI = "s3://odh-models-alice/odh-deployments/iris/v3/"
IMAGE = "quay.io/odh-hub/hub:0.1.0"
DIGESTS = {"model.joblib": "ab" * 32}
RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
LOCKED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True}
LOCKED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
LABELS = {"app.kubernetes.io/managed-by": "odh-hub", "odh-hub/user": "alice",
          "app.kubernetes.io/component": "model-serving", "odh-hub/deployment": "iris", "odh-hub/version": "3"}
ANNOTATIONS = {"hub.jupyter.org/username": "alice", "odh-hub/deployment": "iris", "odh-hub/version": "3"}


def deployment(**kw) -> dict:
    args = {"model_uri": URI, "framework": "sklearn", "secret_name": "odh-mlserver-storage-alice", "version": 3,
            "image": IMAGE, "digests": DIGESTS, "resources": RESOURCES, "progress_deadline": 120}
    return m.mlserver_deployment("alice", "iris", "odh", **{**args, **kw})


def secret_ref(key: str) -> dict:
    return {"name": key, "valueFrom": {"secretKeyRef": {"name": "odh-mlserver-storage-alice", "key": key}}}


def test_mlserver_deployment_literal():
    mount = [{"name": "models", "mountPath": "/mnt/models"}]
    assert deployment() == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": "alice--iris", "namespace": "odh", "labels": LABELS, "annotations": ANNOTATIONS},
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {"odh-hub/mlserver": "alice--iris"}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "progressDeadlineSeconds": 120,
            "revisionHistoryLimit": 2,
            "template": {
                "metadata": {"labels": {**LABELS, "odh-hub/mlserver": "alice--iris"}, "annotations": ANNOTATIONS},
                "spec": {
                    "automountServiceAccountToken": False,
                    "securityContext": LOCKED_POD,
                    "initContainers": [{
                        "name": "fetch", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                        "command": ["python", "-m", "odh_spawner.deploy.fetch"],
                        "env": [{"name": "MODEL_URI", "value": URI}, {"name": "MODEL_NAME", "value": "alice--iris"},
                                {"name": "MODEL_FRAMEWORK", "value": "sklearn"},
                                {"name": "MODEL_VERSION", "value": "3"},
                                {"name": "MODEL_SHA256", "value": json.dumps(DIGESTS)},
                                {"name": "MODEL_DIR", "value": "/mnt/models"},
                                {"name": "MLSERVER_HTTP_PORT", "value": "8080"},
                                {"name": "MLSERVER_GRPC_PORT", "value": "8081"},
                                {"name": "MLSERVER_METRICS_PORT", "value": "8082"},
                                secret_ref("AWS_ACCESS_KEY_ID"), secret_ref("AWS_SECRET_ACCESS_KEY"),
                                secret_ref("S3_ENDPOINT_URL")],
                        "volumeMounts": mount,
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                        "resources": RESOURCES,
                        "securityContext": LOCKED_CONTAINER,
                    }],
                    "containers": [{
                        "name": "mlserver", "image": IMAGE, "imagePullPolicy": "IfNotPresent",
                        "command": ["mlserver", "start", "/mnt/models"],
                        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"},
                                  {"name": "grpc", "containerPort": 8081, "protocol": "TCP"}],
                        "readinessProbe": {"httpGet": {"path": "/v2/models/alice--iris/ready", "port": "http"},
                                           "periodSeconds": 5, "failureThreshold": 3},
                        "volumeMounts": mount,
                        "terminationMessagePolicy": "FallbackToLogsOnError",
                        "resources": RESOURCES,
                        "securityContext": LOCKED_CONTAINER,
                    }],
                    "volumes": [{"name": "models", "emptyDir": {}}],
                },
            },
        },
    }


def test_mlserver_deployment_without_digests_resources_or_extra_labels():
    d = deployment(framework="mlflow", digests=None, resources=None, image_pull_policy="Always", progress_deadline=0.5)
    spec = d["spec"]["template"]["spec"]
    assert "resources" not in spec["containers"][0] and "resources" not in spec["initContainers"][0]
    env = {e["name"]: e.get("value") for e in spec["initContainers"][0]["env"]}
    assert env["MODEL_SHA256"] == "{}" and env["MODEL_FRAMEWORK"] == "mlflow"  # records from before digests
    assert {c["imagePullPolicy"] for c in (*spec["containers"], *spec["initContainers"])} == {"Always"}
    assert d["spec"]["progressDeadlineSeconds"] == 1  # the API's minimum


def test_mlserver_service_and_secret_literal():
    assert m.mlserver_service("alice", "iris", "odh") == {
        "apiVersion": "v1", "kind": "Service",
        "metadata": {"name": "alice--iris", "namespace": "odh",
                     "labels": {k: v for k, v in LABELS.items() if k != "odh-hub/version"},
                     "annotations": {"hub.jupyter.org/username": "alice", "odh-hub/deployment": "iris"}},
        "spec": {"type": "ClusterIP", "selector": {"odh-hub/mlserver": "alice--iris"},
                 "ports": [{"name": "http", "port": 8080, "targetPort": "http", "protocol": "TCP"}]},
    }
    secret = m.mlserver_storage_secret("alice", "odh", access_key=ACCESS, secret_key=SECRET, endpoint=ENDPOINT)
    assert secret == {
        "apiVersion": "v1", "kind": "Secret", "type": "Opaque",
        "metadata": {"name": "odh-mlserver-storage-alice", "namespace": "odh",
                     "labels": {"app.kubernetes.io/managed-by": "odh-hub", "odh-hub/user": "alice",
                                "app.kubernetes.io/component": "model-storage"},
                     "annotations": {"hub.jupyter.org/username": "alice"}},
        "data": {"AWS_ACCESS_KEY_ID": base64.b64encode(ACCESS.encode()).decode(),
                 "AWS_SECRET_ACCESS_KEY": base64.b64encode(SECRET.encode()).decode(),
                 "S3_ENDPOINT_URL": base64.b64encode(ENDPOINT.encode()).decode()},
    }
    assert m.mlserver_url("alice--iris", "odh") == "http://alice--iris.odh.svc.cluster.local:8080"


def test_no_credential_in_the_deployment_or_service():
    text = json.dumps([deployment(), m.mlserver_service("alice", "iris", "odh")])
    assert ACCESS not in text and SECRET not in text


@pytest.mark.parametrize("k8s", ["1.30", K8S_VERSION])
@pytest.mark.parametrize("owner", ["alice", "Jane.Doe@example.org", "", "x" * 200])
def test_mlserver_objects_are_valid_kubernetes(owner, k8s):
    secret = m.mlserver_storage_secret(owner, "odh", access_key=ACCESS, secret_key=SECRET, endpoint=ENDPOINT)
    dep = m.mlserver_deployment(owner, "iris", "odh", model_uri=URI, framework="sklearn", version=1, image=IMAGE,
                                secret_name=secret["metadata"]["name"], resources=RESOURCES, digests=DIGESTS)
    for obj in (secret, dep, m.mlserver_service(owner, "iris", "odh")):
        kubernetes_validate.validate(obj, k8s, strict=True)
    # the Service's selector is the Deployment's, which selects its own pod template
    selector = dep["spec"]["selector"]["matchLabels"]
    assert m.mlserver_service(owner, "iris", "odh")["spec"]["selector"] == selector
    assert selector.items() <= dep["spec"]["template"]["metadata"]["labels"].items()


def test_a_mistake_fails_the_strict_schema():
    bad = deployment()
    bad["spec"]["template"]["spec"]["containers"][0]["securityContext"]["dropCapabilities"] = ["ALL"]
    with pytest.raises(kubernetes_validate.ValidationError, match="dropCapabilities"):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


@pytest.mark.parametrize("kw, message", [
    ({"framework": "pytorch"}, "Unsupported model framework 'pytorch'"),
    ({"model_uri": "https://example.org/model"}, "Model URI must be an s3:// URI"),
])
def test_bad_models_are_refused(kw, message):
    with pytest.raises(ValueError, match=message):
        deployment(**kw)


def test_the_network_policy_selects_the_mlserver_pods():
    policy = m.serving_network_policy("odh", "mlserver", platform_pod_labels={"app.kubernetes.io/name": "odh-hub"})
    assert policy["metadata"]["name"] == "odh-model-serving-mlserver"
    assert policy["spec"]["podSelector"] == {"matchExpressions": [{"key": "odh-hub/mlserver", "operator": "Exists"}]}
    assert "odh-hub/mlserver" in deployment()["spec"]["template"]["metadata"]["labels"]
    kubernetes_validate.validate(policy, K8S_VERSION, strict=True)


# -- state ------------------------------------------------------------------------------------------------------
def dep_status(generation=2, observed=2, replicas=1, updated=1, available=1, conditions=()):
    d = deployment(version=2)
    d["metadata"]["generation"] = generation
    d["status"] = {"observedGeneration": observed, "replicas": replicas, "updatedReplicas": updated,
                   "availableReplicas": available, "conditions": list(conditions)}
    return d


AVAILABLE = {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}
PROGRESSING = {"type": "Progressing", "status": "True", "reason": "ReplicaSetUpdated",
               "message": 'ReplicaSet "alice--iris-5d8f" is progressing.'}
DEADLINE = {"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "alice--iris-5d8f" has timed out progressing.'}


def pod(version="2", **status) -> dict:
    return {"metadata": {"name": f"alice--iris-v{version}", "labels": {"odh-hub/version": version}}, "status": status}


def terminated(name, code, message=None, where="state") -> dict:
    return {"name": name, where: {"terminated": {"exitCode": code, "reason": "Error",
                                                 **({"message": message} if message else {})}}}


@pytest.mark.parametrize("deployment_, pods, expected", [
    (dep_status(conditions=[AVAILABLE, PROGRESSING]), [], ("Available", None)),
    (dep_status(observed=1, conditions=[AVAILABLE]), [],
     ("Creating", "The Deployment controller has not yet picked up the new version.")),
    # the old pod still there beside the new one (surge): not yet
    (dep_status(replicas=2, conditions=[AVAILABLE, PROGRESSING]), [],
     ("Creating", 'ReplicaSet "alice--iris-5d8f" is progressing.')),
    (dep_status(available=0, conditions=[PROGRESSING]), [],
     ("Creating", 'ReplicaSet "alice--iris-5d8f" is progressing.')),
    (dep_status(updated=0, conditions=[AVAILABLE]), [], ("Creating", "Waiting for the model server pod.")),
    (dep_status(available=0, conditions=[DEADLINE]), [],
     ("Failed", 'ReplicaSet "alice--iris-5d8f" has timed out progressing.')),
    (dep_status(available=0, conditions=[PROGRESSING]),
     [pod(initContainerStatuses=[terminated("fetch", 1, fetch.CHANGED)])],
     ("Failed", f"The container fetch of pod alice--iris-v2 exited with code 1: {fetch.CHANGED}")),
    (dep_status(available=0, conditions=[PROGRESSING]),
     [pod(containerStatuses=[{"name": "mlserver", "state": {"waiting": {"reason": "CrashLoopBackOff",
                                                                        "message": "back-off 10s"}},
                              **terminated("mlserver", 3, where="lastState")}])],
     ("Failed", "The container mlserver of pod alice--iris-v2 exited with code 3: Error")),
    (dep_status(available=0, conditions=[PROGRESSING]),
     [pod(containerStatuses=[{"name": "mlserver", "state": {"waiting": {"reason": "ImagePullBackOff",
                                                                        "message": "pull access denied"}}}])],
     ("Failed", "The container mlserver of pod alice--iris-v2 is in ImagePullBackOff: pull access denied")),
    (dep_status(available=0, conditions=[PROGRESSING]), [pod(phase="Failed", reason="Evicted", message="disk")],
     ("Failed", "Pod alice--iris-v2 failed: disk")),
    # a failed pod of another version (the one a rollback left behind) is not this version's failure
    (dep_status(conditions=[AVAILABLE]), [pod("1", phase="Failed", message="old")], ("Available", None)),
    # a container that exited 0 (the fetch step done) is no failure
    (dep_status(available=0, conditions=[PROGRESSING]), [pod(initContainerStatuses=[terminated("fetch", 0)])],
     ("Creating", 'ReplicaSet "alice--iris-5d8f" is progressing.')),
])
def test_mlserver_state(deployment_, pods, expected):
    state = m.mlserver_state(deployment_, pods)
    assert (state["state"], state["message"]) == expected and state["url"] is None
    if not pods:
        assert m.deployment_state(deployment_) == state  # the generic reader knows the kind


# -- the backend's settings -------------------------------------------------------------------------------------
def test_the_backend_builds_the_deployment_from_its_settings():
    backend = KubeServingBackend(serving_resource="mlserver", namespace="odh", mlserver_image=IMAGE,
                                 ready_timeout=90.5, resources=RESOURCES)
    d = Deployment(owner="alice", name="iris", backend="kubernetes", model_name="alice--iris")
    v = d.add_version(URI, "sklearn", None, DIGESTS)
    built = backend.manifest("mlserver", d, v)
    assert built == serving_manifest("mlserver", d, v, "odh", RESOURCES,
                                     {"image": IMAGE, "image_pull_policy": "IfNotPresent", "progress_deadline": 90})
    assert built == m.mlserver_deployment("alice", "iris", "odh", model_uri=URI, framework="sklearn", version=1,
                                          secret_name="odh-mlserver-storage-alice", image=IMAGE, digests=DIGESTS,
                                          resources=RESOURCES, progress_deadline=90)
    assert backend.model_name_for("alice", "iris") == "alice--iris"
    assert [o["metadata"]["name"] for o in storage_objects("mlserver", "alice", "odh", access_key=ACCESS,
                                                          secret_key=SECRET, endpoint=ENDPOINT)] == \
        ["odh-mlserver-storage-alice"]
    assert storage_names("mlserver", "alice") == [("secret", "odh-mlserver-storage-alice")]
    # without an image the kind cannot serve: a message for the user, not a broken Deployment
    with pytest.raises(DeployError, match="no MLServer image"):
        KubeServingBackend(serving_resource="mlserver", namespace="odh").manifest("mlserver", d, v)


# -- the fetch step ---------------------------------------------------------------------------------------------
def test_fetch_settings(tmp_path):
    (tmp_path / "model.pkl").write_bytes(b"x")
    assert fetch.model_settings("alice--iris", "sklearn", "3", str(tmp_path)) == {
        "name": "alice--iris", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.pkl", "version": "v3"}}
    assert fetch.model_settings("m", "mlflow", "1", str(tmp_path))["parameters"]["uri"] == "./."
    assert fetch.server_settings(8080, 8081, 8082) == {
        "host": "0.0.0.0", "http_port": 8080, "grpc_port": 8081, "metrics_port": 8082, "parallel_workers": 0,
        "load_models_at_startup": True, "debug": False}
    assert fetch.split_uri("s3://bucket/a/b") == ("bucket", "a/b/")
    assert fetch.split_uri("s3://bucket") == ("bucket", "")


@pytest.mark.parametrize("env, message", [
    ({"MODEL_FRAMEWORK": "pytorch"}, "Unsupported model framework 'pytorch'."),
    ({"MODEL_URI": "https://x/y"}, "MODEL_URI must be an s3:// URI, got 'https://x/y'."),
    ({"MODEL_URI": "s3:///y"}, "MODEL_URI must be an s3:// URI"),
    ({"MODEL_SHA256": "{not json"}, "MODEL_SHA256 is not JSON."),
    ({"MODEL_SHA256": "[1]"}, "MODEL_SHA256 must map files to SHA-256 digests."),
])
def test_fetch_refuses_bad_settings(env, message, tmp_path, monkeypatch, capsys):
    base = {"MODEL_URI": URI, "MODEL_NAME": "alice--iris", "MODEL_FRAMEWORK": "sklearn", "MODEL_DIR": str(tmp_path)}
    for k, v in {**base, **env}.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(fetch, "TERMINATION_LOG", str(tmp_path / "termination-log"))
    assert fetch.main() == 1
    assert message in capsys.readouterr().err
    assert message in (tmp_path / "termination-log").read_text()  # what the backend reports


def test_the_pods_fetch_step_says_what_the_platforms_loader_says_of_a_changed_file():
    from odh_spawner.deploy import artifacts

    assert fetch.CHANGED == artifacts.CHANGED  # one sentence for the owner, wherever the model is loaded
