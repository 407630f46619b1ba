"""Kubernetes objects for "deploy a model from a notebook". Pure: plain dicts in, plain dicts out, no I/O.

Three serving backends speak the same inputs:

- Seldon Core v1 `SeldonDeployment` (prepackaged `SKLEARN_SERVER` / `MLFLOW_SERVER`, MLServer via protocol v2)
  reading the model with rclone, whose settings come from a per-user Secret named by `envSecretRefName`
  (rclone's environment variables, `RCLONE_CONFIG_S3_*`);
- Seldon Core 2 `Model` (`mlops.seldon.io/v1alpha1`), scheduled by Seldon onto a shared MLServer `Server` whose
  capabilities cover the model's `requirements`; the Server's agent copies the model with rclone, whose remote
  comes from the per-user Secret named by `secretName` (one data key holding the remote as JSON: `name`, `type`,
  `parameters`; the remote name must be the scheme of `storageUri`, here `s3`);
- KServe `InferenceService` (runtime `kserve-mlserver`) whose storage initializer finds the user's S3 keys
  through the predictor's ServiceAccount, which lists a Secret annotated in KServe's S3 convention;
- plain MLServer, no operator at all: an apps/v1 `Deployment` whose init container (`odh_spawner.deploy.fetch`,
  boto3) copies the model from S3 into an emptyDir with the keys of a per-user Secret (`secretKeyRef`), checks
  the digests recorded at upload and writes MLServer's settings; the model container runs `mlserver start` on
  that folder; a ClusterIP `Service` in front of it.

Credentials only ever live in those Secrets (base64 in `data`); the serving resources name them, never hold them.

Names. `resource_name(owner, name)` is `owner--name` when the owner is a plain DNS label without `--`, which
the first `--` splits back into the pair; anything else becomes a readable prefix plus a hash of the pair,
with no `--` at all, so the two forms never meet. Per-user object names work the other way round: a plain
owner as is, anything else `prefix--hash`.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from urllib.parse import urlsplit

from odh_spawner.kube.labels import label_value

MANAGED_BY = {"app.kubernetes.io/managed-by": "odh-hub"}
SELDON_API_VERSION = "machinelearning.seldon.io/v1"
SELDON_V2_API_VERSION = "mlops.seldon.io/v1alpha1"
KSERVE_API_VERSION = "serving.kserve.io/v1beta1"
SELDON_SERVERS = {"sklearn": "SKLEARN_SERVER", "mlflow": "MLFLOW_SERVER"}
# Seldon Core 2 Model `requirements`: capabilities of its MLServer Server (SELDON_SERVER_CAPABILITIES), from which
# the agent also writes a model-settings.json when the model folder has none
SELDON_V2_REQUIREMENTS = {"sklearn": ["sklearn"], "mlflow": ["mlflow"]}
RCLONE_REMOTE = "s3"  # the rclone remote of the storage Secrets; Seldon v2 requires it to be storageUri's scheme
KSERVE_RUNTIME = "kserve-mlserver"
MLSERVER_HTTP_PORT = 8080  # MLServer's own default ports, in the pod
MLSERVER_GRPC_PORT = 8081
MLSERVER_METRICS_PORT = 8082
MLSERVER_MODEL_DIR = "/mnt/models"
MLSERVER_POD_LABEL = "odh-hub/mlserver"  # on the pods of one Deployment: its name (the Service selects by it)
DNS_LABEL_MAX = 63

_PLAIN = re.compile(r"^[a-z]([a-z0-9]|-(?!-))*(?<!-)$")  # a DNS label that starts with a letter and has no "--"
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


# -- names ------------------------------------------------------------------------------------------------------
def _digest(*parts: str, length: int = 10) -> str:
    return hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:length]


def _readable(text: str, limit: int) -> str:
    """Lower-case alphanumerics joined by single '-', starting with a letter, at most `limit` characters."""
    prefix = _NON_ALNUM.sub("-", text.lower()).strip("-")
    if not prefix[:1].isalpha():
        prefix = ("x-" + prefix).rstrip("-")
    return prefix[:limit].rstrip("-")


def _per_user_name(prefix: str, owner: str) -> str:
    """`prefix` + the owner as is when plain and short enough, else + a readable part, '--' and a hash."""
    room = DNS_LABEL_MAX - len(prefix)
    if _PLAIN.fullmatch(owner) and len(owner) <= room:
        return prefix + owner
    digest = _digest(owner)
    return f"{prefix}{_readable(owner, room - len(digest) - 2)}--{digest}"


def storage_secret_name(owner: str) -> str:
    """The per-user Secret holding the rclone settings Seldon's storage initializer reads."""
    return _per_user_name("odh-model-storage-", owner)


def seldon_v2_storage_secret_name(owner: str) -> str:
    """The per-user Secret holding the rclone remote a Seldon Core 2 Server's agent reads a Model with."""
    return _per_user_name("odh-seldon2-storage-", owner)


def kserve_storage_secret_name(owner: str) -> str:
    """The per-user Secret holding S3 keys in KServe's convention."""
    return _per_user_name("odh-kserve-storage-", owner)


def mlserver_storage_secret_name(owner: str) -> str:
    """The per-user Secret holding the S3 keys and endpoint the plain-MLServer init container reads."""
    return _per_user_name("odh-mlserver-storage-", owner)


def kserve_service_account_name(owner: str) -> str:
    """The per-user ServiceAccount KServe predictors run as (it lists the storage Secret)."""
    return _per_user_name("odh-model-serving-", owner)


def resource_name(owner: str, name: str) -> str:
    """The SeldonDeployment/Model/InferenceService name for `owner`'s deployment `name` (a DNS label of ≤ 40
    chars).

    A DNS-1123 label of at most 63 characters starting with a letter, distinct for every (owner, name) pair."""
    plain = f"{owner}--{name}"
    if _PLAIN.fullmatch(owner) and len(plain) <= DNS_LABEL_MAX:
        return plain
    digest = _digest(owner, name)
    readable = _readable(f"{owner}-{name}", DNS_LABEL_MAX - len(digest) - 1)
    return f"{readable}-{digest}"


# -- labels and metadata ----------------------------------------------------------------------------------------
def owner_labels(owner: str, component: str, labels: dict | None = None) -> dict:
    """Labels every object carries: who manages it, whose it is (label-safe), and what it is."""
    return {**MANAGED_BY, "odh-hub/user": label_value(owner), "app.kubernetes.io/component": component,
            **(labels or {})}


def _deployment_metadata(owner: str, name: str, namespace: str, version: int, labels: dict | None) -> dict:
    return {
        "name": resource_name(owner, name),
        "namespace": namespace,
        "labels": owner_labels(owner, "model-serving", {"odh-hub/deployment": name,
                                                        "odh-hub/version": str(version), **(labels or {})}),
        "annotations": {"hub.jupyter.org/username": owner, "odh-hub/deployment": name,
                        "odh-hub/version": str(version)},
    }


def _check_model(model_uri: str, framework: str) -> None:
    if framework not in SELDON_SERVERS:
        raise ValueError(f"Unsupported model framework {framework!r}; choose one of {sorted(SELDON_SERVERS)}.")
    if not model_uri.startswith("s3://") or len(model_uri) <= len("s3://"):
        raise ValueError(f"Model URI must be an s3:// URI, got {model_uri!r}.")


def _b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


def _split_endpoint(endpoint: str) -> tuple[str, bool]:
    """(host[:port], uses https) of an http(s) endpoint URL."""
    parts = urlsplit(endpoint)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ValueError(f"S3 endpoint must be an http:// or https:// URL, got {endpoint!r}.")
    return parts.netloc, parts.scheme == "https"


def _rclone_s3_parameters(access_key: str, secret_key: str, endpoint: str) -> dict:
    """rclone's settings of an `s3` remote on Ceph RGW with these keys (rclone config names, all strings)."""
    _split_endpoint(endpoint)
    return {"provider": "Ceph", "env_auth": "false", "access_key_id": access_key, "secret_access_key": secret_key,
            "endpoint": endpoint}


def _storage_secret(name: str, owner: str, namespace: str, data: dict, labels: dict | None) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {"name": name, "namespace": namespace, "labels": owner_labels(owner, "model-storage", labels),
                     "annotations": {"hub.jupyter.org/username": owner}},
        "data": {key: _b64(value) for key, value in data.items()},
    }


# -- Seldon Core v1 ---------------------------------------------------------------------------------------------
def rclone_storage_secret(owner: str, namespace: str, *, access_key: str, secret_key: str, endpoint: str,
                          labels: dict | None = None) -> dict:
    """The Secret a SeldonDeployment's `envSecretRefName` points at: rclone's `s3` remote for Ceph RGW, as the
    environment variables `RCLONE_CONFIG_S3_<SETTING>` the storage initializer is started with."""
    settings = {"type": "s3", **_rclone_s3_parameters(access_key, secret_key, endpoint)}
    env = {f"RCLONE_CONFIG_{RCLONE_REMOTE.upper()}_{key.upper()}": value for key, value in settings.items()}
    return _storage_secret(storage_secret_name(owner), owner, namespace, env, labels)


# Users' pickles run in the model-serving pods: no ServiceAccount token, not root, no capabilities, no privilege
# escalation, the runtime's default seccomp profile (the operators' own init containers keep their settings).
POD_SECURITY = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}
CONTAINER_SECURITY = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True}


def _locked_pod_spec(container: dict) -> dict:
    """Pod-spec fields every model-serving pod gets, with its model container `container` (name, resources)."""
    return {"automountServiceAccountToken": False, "securityContext": dict(POD_SECURITY),
            "containers": [{**container, "securityContext": json.loads(json.dumps(CONTAINER_SECURITY))}]}


def seldon_deployment(owner: str, name: str, namespace: str, *, model_uri: str, framework: str, secret_name: str,
                      version: int, resources: dict | None = None, labels: dict | None = None) -> dict:
    """A SeldonDeployment serving one sklearn/MLflow model from S3 with MLServer (protocol v2)."""
    _check_model(model_uri, framework)
    predictor: dict = {
        "name": "default",
        "replicas": 1,
        "graph": {
            "name": name,
            "implementation": SELDON_SERVERS[framework],
            "modelUri": model_uri,
            "envSecretRefName": secret_name,
            "children": [],
        },
    }
    container = {"name": name, **({"resources": resources} if resources else {})}
    predictor["componentSpecs"] = [{"spec": _locked_pod_spec(container)}]  # merged by name with Seldon's
    return {
        "apiVersion": SELDON_API_VERSION,
        "kind": "SeldonDeployment",
        "metadata": _deployment_metadata(owner, name, namespace, version, labels),
        "spec": {"protocol": "v2", "predictors": [predictor]},
    }


# -- Seldon Core 2 ----------------------------------------------------------------------------------------------
def seldon_v2_storage_secret(owner: str, namespace: str, *, access_key: str, secret_key: str, endpoint: str,
                             labels: dict | None = None) -> dict:
    """The Secret a Seldon Core 2 Model's `secretName` points at: exactly one data key holding rclone's `s3`
    remote for Ceph RGW as {"name", "type", "parameters"} (the agent parses it as JSON, else YAML; JSON with
    string values only, as its parameters are a map of strings)."""
    remote = {"name": RCLONE_REMOTE, "type": "s3", "parameters": _rclone_s3_parameters(access_key, secret_key,
                                                                                       endpoint)}
    return _storage_secret(seldon_v2_storage_secret_name(owner), owner, namespace,
                           {RCLONE_REMOTE: json.dumps(remote, sort_keys=True)}, labels)


def seldon_v2_model(owner: str, name: str, namespace: str, *, model_uri: str, framework: str, secret_name: str,
                    version: int, labels: dict | None = None) -> dict:
    """A Seldon Core 2 Model serving one sklearn/MLflow model from S3 on an MLServer Server (Open Inference
    Protocol). Seldon schedules it onto a Server whose capabilities include its `requirements`; the Servers, and
    so the resources models run with, are the Seldon admin's."""
    _check_model(model_uri, framework)
    return {
        "apiVersion": SELDON_V2_API_VERSION,
        "kind": "Model",
        "metadata": _deployment_metadata(owner, name, namespace, version, labels),
        "spec": {"storageUri": model_uri, "requirements": list(SELDON_V2_REQUIREMENTS[framework]),
                 "secretName": secret_name},
    }


# -- KServe -----------------------------------------------------------------------------------------------------
def kserve_storage_secret(owner: str, namespace: str, *, access_key: str, secret_key: str, endpoint: str,
                          labels: dict | None = None) -> dict:
    """S3 keys in KServe's convention: AWS_* keys, endpoint and TLS settings as `serving.kserve.io/` annotations."""
    host, https = _split_endpoint(endpoint)
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": kserve_storage_secret_name(owner),
            "namespace": namespace,
            "labels": owner_labels(owner, "model-storage", labels),
            "annotations": {
                "hub.jupyter.org/username": owner,
                "serving.kserve.io/s3-endpoint": host,
                "serving.kserve.io/s3-usehttps": "1" if https else "0",
                "serving.kserve.io/s3-verifyssl": "1",
                "serving.kserve.io/s3-region": "us-east-1",
            },
        },
        "data": {"AWS_ACCESS_KEY_ID": _b64(access_key), "AWS_SECRET_ACCESS_KEY": _b64(secret_key)},
    }


def kserve_service_account(owner: str, namespace: str, secret_name: str, labels: dict | None = None) -> dict:
    """The ServiceAccount a user's predictors run as; KServe takes S3 keys from the Secrets it lists."""
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": {"name": kserve_service_account_name(owner), "namespace": namespace,
                     "labels": owner_labels(owner, "model-serving", labels),
                     "annotations": {"hub.jupyter.org/username": owner}},
        "secrets": [{"name": secret_name}],
    }


def inference_service(owner: str, name: str, namespace: str, *, model_uri: str, framework: str,
                      service_account: str, version: int, resources: dict | None = None,
                      labels: dict | None = None) -> dict:
    """A KServe InferenceService serving one sklearn/MLflow model from S3 with MLServer (protocol v2)."""
    _check_model(model_uri, framework)
    model: dict = {"modelFormat": {"name": framework}, "protocolVersion": "v2", "runtime": KSERVE_RUNTIME,
                   "storageUri": model_uri}
    if resources:
        model["resources"] = resources
    model["securityContext"] = json.loads(json.dumps(CONTAINER_SECURITY))
    return {
        "apiVersion": KSERVE_API_VERSION,
        "kind": "InferenceService",
        "metadata": _deployment_metadata(owner, name, namespace, version, labels),
        "spec": {"predictor": {"serviceAccountName": service_account, "automountServiceAccountToken": False,
                               "securityContext": dict(POD_SECURITY), "model": model}},
    }


# -- plain MLServer (no operator) --------------------------------------------------------------------------------
def mlserver_storage_secret(owner: str, namespace: str, *, access_key: str, secret_key: str, endpoint: str,
                            labels: dict | None = None) -> dict:
    """The per-user Secret the plain-MLServer init container takes its S3 keys and endpoint from (`secretKeyRef`:
    the Deployment names the keys, never holds them)."""
    _split_endpoint(endpoint)
    return _storage_secret(mlserver_storage_secret_name(owner), owner, namespace,
                           {"AWS_ACCESS_KEY_ID": access_key, "AWS_SECRET_ACCESS_KEY": secret_key,
                            "S3_ENDPOINT_URL": endpoint}, labels)


def _secret_env(secret_name: str, *keys: str) -> list[dict]:
    return [{"name": key, "valueFrom": {"secretKeyRef": {"name": secret_name, "key": key}}} for key in keys]


def mlserver_deployment(owner: str, name: str, namespace: str, *, model_uri: str, framework: str, secret_name: str,
                        version: int, image: str, digests: dict | None = None, resources: dict | None = None,
                        progress_deadline: int = 600, image_pull_policy: str = "IfNotPresent",
                        labels: dict | None = None) -> dict:
    """An apps/v1 Deployment serving one sklearn/MLflow model from S3 with MLServer (protocol v2), no operator.

    The init container `fetch` (python -m odh_spawner.deploy.fetch, in `image`) downloads the model into an
    emptyDir with the keys of `secret_name`, refuses a file whose SHA-256 is not the one recorded at upload
    (`digests`) and writes settings.json / model-settings.json; the container `mlserver` serves the folder.
    A new version rolls the pod (one surge pod, none unavailable: the old version serves until the new is
    Ready); `progress_deadline` seconds without progress make the Deployment controller report
    ProgressDeadlineExceeded."""
    _check_model(model_uri, framework)
    meta = _deployment_metadata(owner, name, namespace, version, labels)
    rname = meta["name"]
    pod_labels = {**meta["labels"], MLSERVER_POD_LABEL: rname}
    resources_field = {"resources": resources} if resources else {}
    volume_mount = [{"name": "models", "mountPath": MLSERVER_MODEL_DIR}]
    fetch = {
        "name": "fetch",
        "image": image,
        "imagePullPolicy": image_pull_policy,
        "command": ["python", "-m", "odh_spawner.deploy.fetch"],
        "env": [{"name": "MODEL_URI", "value": model_uri}, {"name": "MODEL_NAME", "value": rname},
                {"name": "MODEL_FRAMEWORK", "value": framework}, {"name": "MODEL_VERSION", "value": str(version)},
                {"name": "MODEL_SHA256", "value": json.dumps(digests or {}, sort_keys=True)},
                {"name": "MODEL_DIR", "value": MLSERVER_MODEL_DIR},
                {"name": "MLSERVER_HTTP_PORT", "value": str(MLSERVER_HTTP_PORT)},
                {"name": "MLSERVER_GRPC_PORT", "value": str(MLSERVER_GRPC_PORT)},
                {"name": "MLSERVER_METRICS_PORT", "value": str(MLSERVER_METRICS_PORT)},
                *_secret_env(secret_name, "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "S3_ENDPOINT_URL")],
        "volumeMounts": volume_mount,
        "terminationMessagePolicy": "FallbackToLogsOnError",  # the fetch step writes why it refused
        **resources_field,
        "securityContext": json.loads(json.dumps(CONTAINER_SECURITY)),
    }
    server = {
        "name": "mlserver",
        "image": image,
        "imagePullPolicy": image_pull_policy,
        "command": ["mlserver", "start", MLSERVER_MODEL_DIR],
        "ports": [{"name": "http", "containerPort": MLSERVER_HTTP_PORT, "protocol": "TCP"},
                  {"name": "grpc", "containerPort": MLSERVER_GRPC_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": f"/v2/models/{rname}/ready", "port": "http"},
                           "periodSeconds": 5, "failureThreshold": 3},
        "volumeMounts": volume_mount,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        **resources_field,
    }
    pod_spec = _locked_pod_spec(server)
    pod_spec["initContainers"] = [fetch]
    pod_spec["volumes"] = [{"name": "models", "emptyDir": {}}]
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": 1,
            "selector": {"matchLabels": {MLSERVER_POD_LABEL: rname}},
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0}},
            "progressDeadlineSeconds": max(1, int(progress_deadline)),
            "revisionHistoryLimit": 2,
            "template": {"metadata": {"labels": pod_labels, "annotations": dict(meta["annotations"])},
                         "spec": pod_spec},
        },
    }


def mlserver_service(owner: str, name: str, namespace: str, labels: dict | None = None) -> dict:
    """The ClusterIP Service in front of a plain-MLServer Deployment's pods (HTTP on port 8080)."""
    rname = resource_name(owner, name)
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": rname, "namespace": namespace,
                     "labels": owner_labels(owner, "model-serving", {"odh-hub/deployment": name,
                                                                    **(labels or {})}),
                     "annotations": {"hub.jupyter.org/username": owner, "odh-hub/deployment": name}},
        "spec": {"type": "ClusterIP", "selector": {MLSERVER_POD_LABEL: rname},
                 "ports": [{"name": "http", "port": MLSERVER_HTTP_PORT, "targetPort": "http", "protocol": "TCP"}]},
    }


def mlserver_url(service_name: str, namespace: str) -> str:
    """The in-cluster base URL of a plain-MLServer deployment's Service."""
    return f"http://{service_name}.{namespace}.svc.cluster.local:{MLSERVER_HTTP_PORT}"


# container waiting reasons that do not resolve by waiting
MLSERVER_STUCK = ("CrashLoopBackOff", "ErrImagePull", "ImagePullBackOff", "InvalidImageName",
                  "CreateContainerConfigError", "CreateContainerError", "RunContainerError")


def _pod_failure(pod: dict) -> str | None:
    """Why a pod of a plain-MLServer Deployment will not serve, or None while it may still come up."""
    status = pod.get("status") or {}
    name = (pod.get("metadata") or {}).get("name", "?")
    for kind in ("initContainerStatuses", "containerStatuses"):
        for c in status.get(kind) or []:
            for state in (c.get("state") or {}, c.get("lastState") or {}):
                done = state.get("terminated") or {}
                if done and done.get("exitCode", 0) != 0:
                    detail = (done.get("message") or done.get("reason") or "").strip()
                    return (f"the container {c.get('name')} of pod {name} exited with code {done['exitCode']}"
                            + (f": {detail}" if detail else ""))
            waiting = (c.get("state") or {}).get("waiting") or {}
            if waiting.get("reason") in MLSERVER_STUCK:
                detail = (waiting.get("message") or "").strip()
                return f"the container {c.get('name')} of pod {name} is in {waiting['reason']}" + (
                    f": {detail}" if detail else "")
    if status.get("phase") == "Failed":
        return f"pod {name} failed: " + (status.get("message") or status.get("reason") or "no reason given")
    return None


def mlserver_state(deployment: dict, pods: list[dict] | None = None) -> dict:
    """{"state", "url": None, "message"} of a plain-MLServer Deployment and its pods: Available once the
    Deployment controller has seen the current spec (observedGeneration), every replica is updated and
    available and no old one is left (its new ReplicaSet is available); Failed when the controller reports
    ProgressDeadlineExceeded, or a pod of the current version failed (a container exited non-zero — the fetch
    step's refusal is its termination message — or is stuck in CrashLoopBackOff, image-pull errors, ...);
    else Creating. The URL is the Service's, which the backend knows."""
    meta, spec, status = deployment.get("metadata") or {}, deployment.get("spec") or {}, deployment.get("status") or {}
    version = (meta.get("labels") or {}).get("odh-hub/version")
    wanted = spec.get("replicas", 1)
    conditions = {c.get("type"): c for c in status.get("conditions") or []}
    progressing = conditions.get("Progressing") or {}
    if isinstance(meta.get("generation"), int) and status.get("observedGeneration", 0) < meta["generation"]:
        return _state("Creating", None, "The Deployment controller has not yet picked up the new version.")
    if progressing.get("status") == "False" and progressing.get("reason") == "ProgressDeadlineExceeded":
        return _state("Failed", None, progressing.get("message") or "ProgressDeadlineExceeded")
    for pod in pods or []:
        pod_meta = pod.get("metadata") or {}
        if pod_meta.get("deletionTimestamp") or (pod_meta.get("labels") or {}).get("odh-hub/version") != version:
            continue
        failure = _pod_failure(pod)
        if failure:
            return _state("Failed", None, failure[0].upper() + failure[1:])
    if (status.get("updatedReplicas", 0) >= wanted and status.get("availableReplicas", 0) >= wanted
            and status.get("replicas", 0) <= wanted and (conditions.get("Available") or {}).get("status") == "True"):
        return _state("Available")
    return _state("Creating", None, progressing.get("message") or "Waiting for the model server pod.")


# -- status -----------------------------------------------------------------------------------------------------
def _state(state: str, url: str | None = None, message: str | None = None) -> dict:
    return {"state": state, "url": url or None, "message": message or None}


# The states of a model in Seldon Core 2's scheduler (scheduler.proto, ModelStatus.ModelState). The operator
# writes the state as the Model's ModelReady/Ready condition's *message* and the scheduler's explanation as its
# *reason* (operator/scheduler/model.go: CreateAndSetCondition(ModelReady, ok, state, reason)).
SELDON_V2_MODEL_STATES = ("ModelStateUnknown", "ModelProgressing", "ModelAvailable", "ModelFailed",
                          "ModelTerminating", "ModelTerminated", "ModelTerminateFailed", "ScheduleFailed",
                          "ModelScaledDown", "ModelCreate", "ModelTerminate")
# states that stay until the Model (or the Servers) change: no Server fits, the model did not load
SELDON_V2_FAILED = ("ModelFailed", "ScheduleFailed", "ModelTerminateFailed")


def model_ready_condition(cr: dict) -> dict:
    """The condition a Seldon Core 2 Model's readiness is read from: `ModelReady`, else the summary `Ready`
    (knative-style; both are set together), else {}."""
    conditions = {c.get("type"): c for c in (cr.get("status") or {}).get("conditions") or []}
    return conditions.get("ModelReady") or conditions.get("Ready") or {}


def seldon_v2_state(cr: dict) -> dict:
    """{"state", "url": None, "message"} of a Seldon Core 2 Model: Available when its ModelReady condition is
    "True"; Failed when it is "False" in a state that does not resolve by waiting (ModelFailed, ScheduleFailed,
    ModelTerminateFailed); else Creating. The status has no URL: Models are reached through the seldon-mesh
    Service, which the backend knows. The message is the scheduler's explanation, else the state's name."""
    ready = model_ready_condition(cr)
    texts = [t for t in (ready.get("message"), ready.get("reason")) if t]
    state = next((t for t in texts if t in SELDON_V2_MODEL_STATES), None)
    detail = next((t for t in texts if t != state), state)
    if ready.get("status") == "True":
        return _state("Available")
    if ready.get("status") == "False" and state in SELDON_V2_FAILED:
        return _state("Failed", None, detail)
    return _state("Creating", None, detail)


def deployment_state(cr: dict) -> dict:
    """{"state": "Available"|"Creating"|"Failed", "url", "message"} of a SeldonDeployment, a Seldon Core 2 Model
    or an InferenceService."""
    status = cr.get("status") or {}
    if cr.get("kind") == "Model":
        return seldon_v2_state(cr)
    if cr.get("kind") == "SeldonDeployment":
        state = status.get("state")
        return _state(state if state in ("Available", "Failed") else "Creating",
                      (status.get("address") or {}).get("url"), status.get("description"))
    if cr.get("kind") == "Deployment":
        return mlserver_state(cr)
    if cr.get("kind") == "InferenceService":
        conditions = status.get("conditions") or []
        url = status.get("url") or (status.get("address") or {}).get("url")
        ready = next((c for c in conditions if c.get("type") == "Ready"), {})
        if ready.get("status") == "True":
            return _state("Available", url)
        failed = [c for c in conditions if c.get("status") == "False" and "Fail" in (c.get("reason") or "")]
        if failed:
            return _state("Failed", url, failed[0].get("message") or failed[0]["reason"])
        return _state("Creating", url, ready.get("message"))
    raise ValueError(f"Not a SeldonDeployment, Model or InferenceService: {cr.get('kind')!r}.")


# -- who may reach the model servers -----------------------------------------------------------------------------
# The pods each operator runs a served model in, by a label the operator puts on them: Seldon Core v1 labels
# its predictor pods with the SeldonDeployment (`seldon-deployment-id`), KServe with the InferenceService
# (`serving.kserve.io/inferenceservice`). Seldon Core 2 serves every Model from shared Server pods behind its
# mesh, whose labels depend on the SeldonRuntime: the admin names them (see `serving_network_policy`).
SERVING_POD_SELECTORS = {
    "seldon": {"matchExpressions": [{"key": "seldon-deployment-id", "operator": "Exists"}]},
    "kserve": {"matchExpressions": [{"key": "serving.kserve.io/inferenceservice", "operator": "Exists"}]},
    "mlserver": {"matchExpressions": [{"key": MLSERVER_POD_LABEL, "operator": "Exists"}]},
}
NETWORK_POLICY_NAME = "odh-model-serving"


def serving_network_policy(namespace: str, kind: str, *, platform_pod_labels: dict,
                           platform_namespace: str | None = None, pod_selector: dict | None = None,
                           extra_from: list | None = None, egress_to: list | None = None,
                           egress_ports: list | None = None, dns_ports: list | None = None) -> dict:
    """A NetworkPolicy that lets only the platform service's pods (its model gateway) — and the peers in
    `extra_from`, e.g. the operator's own ingress components an admin needs — reach the model-serving pods of
    `kind` in `namespace`; every other ingress to them is dropped, so a deployment's only way in is the
    gateway, which checks credentials. `pod_selector` overrides the kind's default selector (required for
    "seldon-v2"). `platform_namespace` is needed when the platform runs in another namespace.

    With `egress_to` (the object store's peers, reachable on `egress_ports`) the pods' egress is restricted too:
    to those peers and to DNS on `dns_ports`, nothing else (a model cannot call out with what it holds)."""
    selector = pod_selector if pod_selector is not None else SERVING_POD_SELECTORS.get(kind)
    if selector is None:
        raise ValueError(f"No default selector for the model-serving pods of {kind!r}: give pod_selector (the "
                         "labels of the Seldon Core 2 Server and mesh pods).")
    if not platform_pod_labels:
        raise ValueError("`platform_pod_labels` must name the platform service's pods.")
    platform = {"podSelector": {"matchLabels": dict(platform_pod_labels)}}
    if platform_namespace and platform_namespace != namespace:
        platform["namespaceSelector"] = {"matchLabels": {"kubernetes.io/metadata.name": platform_namespace}}
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": f"{NETWORK_POLICY_NAME}-{kind}", "namespace": namespace,
                     "labels": {**MANAGED_BY, "app.kubernetes.io/component": "model-serving"}},
        "spec": {
            "podSelector": selector,
            "policyTypes": ["Ingress", "Egress"] if egress_to else ["Ingress"],
            "ingress": [{"from": [platform, *(extra_from or [])]}],
            **({"egress": _egress(egress_to, egress_ports or [], dns_ports or [])} if egress_to else {}),
        },
    }


def _egress(peers: list, ports: list, dns_ports: list) -> list:
    rules = [{"to": list(peers), **({"ports": [{"port": p, "protocol": "TCP"} for p in ports]} if ports else {})}]
    if dns_ports:
        rules.insert(0, {"ports": [{"port": p, "protocol": proto} for p in dns_ports for proto in ("UDP", "TCP")]})
    return rules
