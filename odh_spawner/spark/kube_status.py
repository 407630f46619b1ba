"""What the platform service reports about a user's Spark cluster on Kubernetes. Pure: objects in, JSON out.

The cluster is described by its per-server anchor ConfigMap (shape, type, limits, where the UI is proxied; see
`spark.kube.anchor_configmap`) and by the objects it owns: the standalone master and worker Deployments, or
one kubeflow spark-operator `SparkConnect`. The standalone master's own JSON (`/json/`, through its Service)
gives live counts when the platform service can reach it; otherwise the counts come from the Deployments'
ready replicas, each worker counted with the cores and memory the anchor records.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from odh_spawner.profiles.resolve import SparkRequest
from odh_spawner.spark.api import ClusterLimits, status_json
from odh_spawner.spark.kube import MASTER_UI_PORT, anchor_request
from odh_spawner.spark.status import SparkStatus, WorkerStatus, parse_master_json

CONNECT_STATES = {"Ready": "running", "Provisioning": "starting", "NotReady": "starting", "": "starting",
                  "Failed": "stopped"}


@dataclass(frozen=True)
class AnchorInfo:
    """What an anchor ConfigMap records about its cluster."""

    name: str
    cluster_type: str  # "standalone" | "spark-connect"
    request: SparkRequest
    limits: ClusterLimits
    ui_proxy_url: str
    deleting: bool  # the server stopped: the anchor (and with it the cluster) is being deleted


def anchor_info(anchor: dict) -> AnchorInfo | None:
    """The cluster an anchor records, or None when the object is not a readable anchor."""
    meta = anchor.get("metadata") or {}
    data = anchor.get("data") or {}
    request = anchor_request(anchor)
    if request is None or not meta.get("name"):
        return None
    try:
        limits = json.loads(data["limits"]) if data.get("limits") else None
    except ValueError:
        limits = None
    if not isinstance(limits, dict):
        limits = {"profile_max_workers": request.workers}  # no record: never more than it was started with
    cluster_type = data.get("cluster_type") or "standalone"
    return AnchorInfo(name=meta["name"], cluster_type=cluster_type, request=request,
                      limits=ClusterLimits.from_json(limits), ui_proxy_url=data.get("ui_proxy_url", ""),
                      deleting=bool(meta.get("deletionTimestamp")))


def _ready(deployment: dict | None) -> int:
    status = (deployment or {}).get("status") or {}
    value = status.get("readyReplicas", 0)
    return value if isinstance(value, int) else 0


def _estimated(info: AnchorInfo, workers: int, master_url: str, ui_url: str) -> SparkStatus:
    """A status from ready pods when the master's JSON is out of reach: each worker as the anchor records it."""
    r = info.request
    return SparkStatus(master_url=master_url, ui_url=ui_url, state="ALIVE", applications=(), workers=tuple(
        WorkerStatus(id=f"pod-{i}", host="", port=0, state="ALIVE", cores=r.worker_cores, cores_used=0,
                     memory=r.worker_memory, memory_used=0) for i in range(workers)))


def user_ui_url(info: AnchorInfo, in_cluster_ui: str) -> str:
    """The master UI as the user reaches it: through their own server when it proxies it."""
    return info.ui_proxy_url.rstrip("/") + "/" if info.ui_proxy_url else in_cluster_ui.rstrip("/") + "/"


def standalone_status(info: AnchorInfo, master: dict | None, worker: dict | None, master_json: dict | None, *,
                      master_url: str, in_cluster_ui: str, busy: bool = False) -> dict:
    """The API status of a standalone cluster from its master and worker Deployments (None: missing) and the
    master's JSON (None: not reachable)."""
    ui = user_ui_url(info, in_cluster_ui)
    requested = ((worker or {}).get("spec") or {}).get("replicas", info.request.workers)
    common = dict(master_url=master_url, ui_url=ui, workers_requested=requested,
                  max_workers=info.limits.cluster_max_workers)
    if master is None or info.deleting:
        return status_json(state="stopped", **common)
    if master_json is not None:
        status = parse_master_json(master_json, ui)
        state = "running" if status.state == "ALIVE" and not busy else "starting"
        return status_json(state=state, status=status, **common)
    if _ready(master) < 1:
        return status_json(state="starting", **common)
    ready_workers = _ready(worker)
    state = "running" if ready_workers >= 1 and not busy else "starting"
    return status_json(state=state, status=_estimated(info, ready_workers, master_url, ui), **common)


def connect_status(info: AnchorInfo, connect: dict | None, *, remote_url: str, busy: bool = False) -> dict:
    """The API status of a SparkConnect cluster from the operator's status (state, executors by phase)."""
    spec = (connect or {}).get("spec") or {}
    requested = (spec.get("executor") or {}).get("instances", info.request.workers)
    common = dict(master_url=remote_url, ui_url="", workers_requested=requested,
                  max_workers=info.limits.cluster_max_workers)
    if connect is None or info.deleting:
        return status_json(state="stopped", **common)
    status = connect.get("status") or {}
    state = CONNECT_STATES.get(status.get("state", ""), "starting")
    if busy and state == "running":
        state = "starting"
    executors = status.get("executors") or {}
    running = sum(n for phase, n in executors.items() if str(phase).lower() == "running" and isinstance(n, int))
    estimate = _estimated(info, running, remote_url, "") if state != "stopped" else None
    return status_json(state=state, status=estimate, **common)


def master_ui_base(template: str, master_service: str, namespace: str) -> str:
    """Where the platform service reaches a master's web UI (`template` with {master}, {namespace}, {port})."""
    return template.format(master=master_service, namespace=namespace, port=MASTER_UI_PORT).rstrip("/")

