"""Kubernetes objects for Kafka ingestions, and their status read back in users' words. Pure: dicts in, dicts out.

Two ways an ingestion runs on Kubernetes:

- `deployment`: the platform's own worker (`python -m odh_spawner.ingest.worker --config FILE`) as a one-replica
  Deployment (strategy Recreate: never two workers of one ingestion) whose configuration — with the owner's S3
  keys — is a file of a per-ingestion Secret volume; pause/stop scale it to 0 replicas.
- `strimzi`: a Strimzi `KafkaConnector` (see kube_strimzi).

Names. Every object of an ingestion is named `odh-ingest.<user slug>.<name>` (model.base_name): a slug and a
name hold no '.', and slugs are injective (naming.user_slug), so the name is injective in (owner, name). A DNS
subdomain of at most 11 + 28 + 1 + 40 = 80 characters. The names are public; the consumer group is not one of
them: in "deployment" mode the worker's group and static member id are the ones in the ingestion's record
(model.group_id, model.member_id: each with a random token).

Credentials only ever live in the Secrets (`stringData`): no Deployment, KafkaConnector, Role or label holds them.
"""

from __future__ import annotations

import hashlib
import json

from odh_spawner.credentials.model import S3_CLIENT_SETTINGS
from odh_spawner.naming import user_slug
from odh_spawner.ingest.model import RUNNING, STOPPED, Ingestion, base_name

MANAGED_BY = {"app.kubernetes.io/managed-by": "odh-hub"}
COMPONENT = "kafka-ingest"
CONFIG_DIR = "/etc/odh-ingest"
CONFIG_FILE = "config.json"
RUN_DIR = "/run/odh-ingest"
TERMINATION_LOG = "/dev/termination-log"


# -- names and labels -------------------------------------------------------------------------------------------
def resource_name(owner: str, name: str) -> str:
    """The name of every Kubernetes object of `owner`'s ingestion `name` (injective; see the module docstring)."""
    return base_name(owner, name)


def labels(owner: str, name: str) -> dict:
    return {**MANAGED_BY, "app.kubernetes.io/component": COMPONENT, "odh-hub/user": user_slug(owner),
            "odh-hub/ingestion": name}


def selector(owner: str, name: str) -> dict:
    return {"odh-hub/user": user_slug(owner), "odh-hub/ingestion": name}


LIST_SELECTOR = f"app.kubernetes.io/managed-by=odh-hub,app.kubernetes.io/component={COMPONENT}"


def metadata(owner: str, name: str, namespace: str, extra_labels: dict | None = None) -> dict:
    return {"name": resource_name(owner, name), "namespace": namespace,
            "labels": {**labels(owner, name), **(extra_labels or {})},
            "annotations": {"hub.jupyter.org/username": owner, "odh-hub/ingestion": name}}


# -- deployment mode --------------------------------------------------------------------------------------------
def worker_config(ing: Ingestion, creds, bootstrap: str, max_buffer_bytes: int, endpoint: str = "") -> dict:
    """What the worker reads from its config file: the local backend's configuration (local.worker_config), with
    paths inside the pod, the pod's S3 endpoint and where it leaves its last error."""
    from odh_spawner.ingest.local import worker_config as local_config

    cfg = local_config(ing, creds, bootstrap, RUN_DIR, max_buffer_bytes)
    cfg["s3"]["endpoint"] = endpoint or creds.endpoint
    cfg["termination_log"] = TERMINATION_LOG
    return cfg


def config_hash(cfg: dict) -> str:
    """A digest of the worker's configuration for the pod template: a change of settings or keys rolls the pod.
    (SHA-256 of the whole file: it reveals nothing of the keys.)"""
    return hashlib.sha256(json.dumps(cfg, sort_keys=True).encode()).hexdigest()[:16]


def worker_secret(ing: Ingestion, namespace: str, cfg: dict) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": metadata(ing.owner, ing.name, namespace),
            "stringData": {CONFIG_FILE: json.dumps(cfg)}}


def memory_limit(max_buffer_bytes: int, overhead_bytes: int) -> str:
    """The container's memory limit: what the worker may buffer, once more for encoding a batch (a parquet
    table is built from the records), plus the interpreter's and librdkafka's own."""
    return f"{(2 * max_buffer_bytes + overhead_bytes) // 2**20}Mi"


def worker_deployment(ing: Ingestion, namespace: str, *, image: str, cfg_hash: str, memory: str,
                      replicas: int = 1, cpu_request: str = "100m", uid: int = 1000, gid: int = 1000,
                      stop_timeout: int = 30, image_pull_policy: str = "IfNotPresent",
                      pod_labels: dict | None = None) -> dict:
    meta = metadata(ing.owner, ing.name, namespace)
    pod_meta = {"labels": {**labels(ing.owner, ing.name), **(pod_labels or {})},
                "annotations": {"odh-hub/config-hash": cfg_hash, "hub.jupyter.org/username": ing.owner}}
    container = {
        "name": "worker",
        "image": image,
        "imagePullPolicy": image_pull_policy,
        "command": ["python", "-m", "odh_spawner.ingest.worker", "--config", f"{CONFIG_DIR}/{CONFIG_FILE}"],
        "env": [{"name": k, "value": v} for k, v in {**S3_CLIENT_SETTINGS, "PYTHONUNBUFFERED": "1",
                                                      "HOME": RUN_DIR}.items()],
        "resources": {"requests": {"cpu": cpu_request, "memory": memory}, "limits": {"memory": memory}},
        "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": gid,
                            "allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}, "seccompProfile": {"type": "RuntimeDefault"}},
        "terminationMessagePath": TERMINATION_LOG,
        "terminationMessagePolicy": "FallbackToLogsOnError",
        "volumeMounts": [{"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
                         {"name": "run", "mountPath": RUN_DIR}],
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": meta,
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},  # never two workers of one ingestion
            "selector": {"matchLabels": selector(ing.owner, ing.name)},
            "template": {
                "metadata": pod_meta,
                "spec": {
                    "hostname": "odh-ingest",  # the pod name holds dots, a host name may not
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": stop_timeout,
                    "securityContext": {"runAsNonRoot": True, "runAsUser": uid, "runAsGroup": gid,
                                        "fsGroup": gid, "seccompProfile": {"type": "RuntimeDefault"}},
                    "containers": [container],
                    "volumes": [
                        {"name": "config", "secret": {"secretName": meta["name"], "defaultMode": 0o400,
                                                      "items": [{"key": CONFIG_FILE, "path": CONFIG_FILE}]}},
                        {"name": "run", "emptyDir": {"sizeLimit": "16Mi"}},
                    ],
                },
            },
        },
    }


def replicas_patch(replicas: int) -> dict:
    return {"spec": {"replicas": replicas}}


def _container_problem(cs: dict) -> tuple[str, str] | None:
    """(state, message) when a container status shows trouble, else None."""
    waiting = (cs.get("state") or {}).get("waiting") or {}
    last = (cs.get("state") or {}).get("terminated") or (cs.get("lastState") or {}).get("terminated") or {}
    reason = waiting.get("reason") or ""
    said = (last.get("message") or "").strip()
    if reason in ("ImagePullBackOff", "ErrImagePull", "InvalidImageName"):
        return "failed", f"The worker's image cannot be pulled ({reason}); tell your platform admin."
    if reason in ("CreateContainerConfigError", "CreateContainerError"):
        return "failed", f"The worker cannot start ({reason}: {waiting.get('message', '')[:200]})."
    if reason == "CrashLoopBackOff" or last:
        if last.get("reason") == "OOMKilled":
            return "restarting", "The worker ran out of memory and is restarted; lower flush_records."
        detail = said.splitlines()[-1][:300] if said else f"exit code {last.get('exitCode', '?')}"
        return "restarting", f"The worker stopped ({detail}); Kubernetes restarts it."
    return None


def worker_status(deployment: dict | None, pods: list[dict]) -> dict:
    """The worker's state from its Deployment and pods: `exists`, `state` (starting, running, restarting,
    failed, waiting, stopped), `last_error` (a sentence for the user or None), `restarts`."""
    if deployment is None:
        return {"exists": False, "state": None, "last_error": None, "restarts": 0}
    spec, st = deployment.get("spec") or {}, deployment.get("status") or {}
    restarts = sum(cs.get("restartCount", 0) for p in pods for cs in (p.get("status") or {}).get(
        "containerStatuses") or [])
    out = {"exists": True, "state": "starting", "last_error": None, "restarts": restarts}
    if spec.get("replicas", 1) == 0:
        out["state"] = STOPPED
        return out
    if st.get("readyReplicas", 0) >= 1:  # a pod that failed before may linger beside the one that runs now
        out["state"] = RUNNING
        return out
    for p in pods:
        pst = p.get("status") or {}
        for cond in pst.get("conditions") or []:
            if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
                out.update(state="waiting", last_error="The worker waits for room in the cluster "
                                                       f"({(cond.get('message') or cond.get('reason') or '')[:200]}).")
        for cs in pst.get("containerStatuses") or []:
            problem = _container_problem(cs)
            if problem:
                out["state"], out["last_error"] = problem
                return out
    return out
