"""Kubernetes I/O for one user server's Spark cluster: the thin layer over the pure builders in `spark.kube`.

Lifetime: `start_cluster` creates the per-server anchor ConfigMap, reads its `metadata.uid`, then creates the
cluster's objects (standalone master/worker Deployments + master Service, or one SparkConnect) with
`ownerReferences` to that uid. `delete_anchor` (from the spawner's post-stop hook) deletes the anchor with a
propagation policy; Kubernetes' garbage collector then deletes everything the anchor owns.

Every API call is a small attempt coroutine with a per-request timeout and an explicit 404/409 policy, retried
with `exponential_backoff` while the API does not answer (kubespawner's `_make_create_*_request` pattern):

- anchor 409: a previous run of this server left it. Being deleted -> wait until it is gone, then create;
  else reuse it (its uid) and update its data;
- owned object 409: left by that run -> JSON Patch: `spec` (a Secret's `data`) and `ownerReferences` replaced
  whole, our labels set;
- delete 404: already gone, fine.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from kubernetes_asyncio.client.rest import ApiException
from traitlets import Bool, Dict, Enum, Float, Integer, TraitError, Unicode, Union, validate
from traitlets.config import LoggingConfigurable

from odh_spawner.tasks import gather_all
from odh_spawner.kube.attempts import create_or_update, read_or_none, retry
from odh_spawner.quantities import parse_memory
from odh_spawner.spark import kube
from odh_spawner.spark.errors import SparkError

ANCHOR_SELECTOR = "app.kubernetes.io/managed-by=odh-hub,app.kubernetes.io/component=spark-anchor"
SPARK_CONNECT = kube.SPARK_CONNECT_API.split("/") + ["sparkconnects"]  # group, version, plural


class KubeSpark(LoggingConfigurable):
    """How OdhKubeSpawner runs a profile's Spark cluster on Kubernetes."""

    cluster_type = Enum(
        ["standalone", "spark-connect"],
        default_value="standalone",
        config=True,
        help=""""standalone": a Spark master Deployment + Service and a worker Deployment started from the
        profile's image with Spark's own `spark-class` (no operator needed). "spark-connect": one kubeflow
        spark-operator `SparkConnect` (sparkoperator.k8s.io/v1alpha1); the operator must be installed.""",
    )
    spark_class = Unicode(
        "spark-class",
        config=True,
        help="""Command that starts Spark daemons in the profile's image: `spark-class` on PATH for images with a
        pip-installed pyspark, `/opt/spark/bin/spark-class` for apache/spark images.""",
    )
    spark_version = Unicode("4.3.0", config=True, help="Spark version of the images (SparkConnect's sparkVersion).")
    master_cpu = Float(0.5, min=0.1, config=True, help="CPU request of the standalone master (its limit is at least 1).")
    master_memory = Union(
        [Integer(), Unicode()],
        default_value=768 * 2**20,
        config=True,
        help="Memory of the standalone master pod: bytes or a quantity like '1Gi'.",
    )
    network_policy = Bool(
        True,
        config=True,
        help="""Give each cluster a NetworkPolicy (owned by its anchor) admitting only the cluster's own pods, its
        owner's notebook pod and, on the master's UI port, the platform service's pods (`platform_pod_labels`):
        a colleague's pod can neither submit to the cluster nor reach Spark Connect or the UIs. Needs a network
        plugin that enforces NetworkPolicies (the chart sets it from networkPolicy.enabled).""",
    )
    platform_pod_labels = Dict(
        {"app.kubernetes.io/name": "odh-hub", "app.kubernetes.io/component": "platform"},
        config=True,
        help="Labels of the platform service's pods, which read the standalone master's status on its UI port.",
    )
    delete_propagation = Enum(
        ["Foreground", "Background"],
        default_value="Foreground",
        config=True,
        help="""Propagation policy when the anchor is deleted at server stop. "Foreground" keeps the anchor
        (marked for deletion) until the garbage collector has deleted what it owns, so a quick restart of the
        server waits for the old cluster to go; "Background" deletes the anchor at once.""",
    )

    @validate("master_memory")
    def _valid_memory(self, proposal):
        try:
            return parse_memory(proposal["value"])
        except ValueError as e:
            raise TraitError(f"KubeSpark.master_memory: {e}") from None


@dataclass(frozen=True)
class Apis:
    """The API clients the cluster objects need (kubernetes_asyncio CoreV1Api, AppsV1Api, CustomObjectsApi,
    NetworkingV1Api)."""

    core: Any
    apps: Any
    custom: Any
    net: Any = None  # NetworkingV1Api: for the cluster's NetworkPolicy


@dataclass(frozen=True)
class Timeouts:
    request: float = 10.0  # one API request
    retry: float = 30.0  # retrying requests that time out, and waiting for a terminating anchor to go


# -- pure helpers --------------------------------------------------------------------------------------------------
def owned_manifests(spec: kube.KubeSparkSpec, cluster_type: str, secret: str = "",
                    network_policy: bool = True) -> list[dict]:
    """The objects the anchor owns, in creation order (`spec.anchor_uid` must be set; `secret`: the standalone
    cluster's spark.authenticate secret); with `network_policy`, the cluster's NetworkPolicy first, so that no
    pod of the cluster is ever reachable by others."""
    policy = [kube.network_policy(spec)] if network_policy else []
    if cluster_type == "spark-connect":
        return [*policy, kube.spark_connect(spec)]
    if not secret:
        raise ValueError("A standalone cluster needs its secret (spark.auth.new_secret()).")
    return [*policy, *kube.standalone_manifests(spec, secret)]


def notebook_env(spec: kube.KubeSparkSpec, cluster_type: str) -> dict[str, str]:
    return kube.spark_connect_env(spec) if cluster_type == "spark-connect" else kube.notebook_env(spec)


def replace_patch(manifest: dict) -> list[dict]:
    """A JSON Patch that makes an existing object equal `manifest` where it matters: `spec` and
    `ownerReferences` replaced whole, our labels and annotations set (others' left alone). A Service's spec is
    set key by key instead: the API server allocated its `clusterIP`/`clusterIPs` and refuses to unset them
    (422 "primary clusterIP can not be unset"), which replacing the spec whole would do."""
    def pointer(key: str) -> str:
        return key.replace("~", "~0").replace("/", "~1")

    meta = manifest["metadata"]
    body = "data" if manifest["kind"] == "Secret" else "spec"
    if manifest["kind"] == "Service":
        ops = [{"op": "add", "path": f"/spec/{pointer(k)}", "value": v} for k, v in manifest["spec"].items()]
    else:
        ops = [{"op": "add", "path": f"/{body}", "value": manifest[body]}]
    if "ownerReferences" in meta:
        ops.append({"op": "add", "path": "/metadata/ownerReferences", "value": meta["ownerReferences"]})
    for field in ("labels", "annotations"):
        ops += [{"op": "add", "path": f"/metadata/{field}/{pointer(k)}", "value": v}
                for k, v in meta.get(field, {}).items()]
    return ops


def _as_dict(api, obj) -> dict:
    """A kubernetes_asyncio model (or a dict) -> a dict with the API's camelCase keys."""
    return obj if isinstance(obj, dict) else api.api_client.sanitize_for_serialization(obj)


# -- attempts (something truthy when done, False to try again) ------------------------------------------------
async def _anchor_attempt(apis: Apis, anchor: dict, t: Timeouts) -> str | bool:
    """Create the anchor, or reuse one a previous run left (updating its data). Returns its uid."""
    ns, name = anchor["metadata"]["namespace"], anchor["metadata"]["name"]
    try:
        try:
            created = await asyncio.wait_for(apis.core.create_namespaced_config_map(ns, anchor), t.request)
            return _as_dict(apis.core, created)["metadata"]["uid"]
        except ApiException as e:
            if e.status != 409:
                raise
        existing = _as_dict(apis.core, await asyncio.wait_for(apis.core.read_namespaced_config_map(name, ns),
                                                               t.request))
        if existing["metadata"].get("deletionTimestamp"):
            return False  # the old cluster is still being garbage-collected: wait for it
        await asyncio.wait_for(apis.core.patch_namespaced_config_map(name, ns, {"data": anchor["data"]}), t.request)
        return existing["metadata"]["uid"]
    except TimeoutError:
        return False
    except ApiException as e:
        if e.status == 404:  # gone between our create and read: create again
            return False
        raise


@dataclass(frozen=True)
class Calls:
    """The API calls on objects of one kind: create(namespace, body), read(name, namespace),
    patch(name, namespace, body)."""

    create: Callable
    read: Callable
    patch: Callable


def _calls(apis: Apis, kind: str) -> Calls:
    """The calls for the kinds a cluster is made of (anchor ConfigMap, Deployment, Service, Secret, NetworkPolicy,
    SparkConnect)."""
    if kind == "ConfigMap":
        c = apis.core
        return Calls(c.create_namespaced_config_map, c.read_namespaced_config_map, c.patch_namespaced_config_map)
    if kind == "Deployment":
        a = apis.apps
        return Calls(a.create_namespaced_deployment, a.read_namespaced_deployment, a.patch_namespaced_deployment)
    if kind == "Service":
        c = apis.core
        return Calls(c.create_namespaced_service, c.read_namespaced_service, c.patch_namespaced_service)
    if kind == "Secret":
        c = apis.core
        return Calls(c.create_namespaced_secret, c.read_namespaced_secret, c.patch_namespaced_secret)
    if kind == "NetworkPolicy":
        n = apis.net
        return Calls(n.create_namespaced_network_policy, n.read_namespaced_network_policy,
                     n.patch_namespaced_network_policy)
    if kind == "SparkConnect":
        custom, (group, version, plural) = apis.custom, SPARK_CONNECT
        return Calls(
            lambda namespace, body: custom.create_namespaced_custom_object(group, version, namespace, plural, body),
            lambda name, namespace: custom.get_namespaced_custom_object(group, version, namespace, plural, name),
            lambda name, namespace, body: custom.patch_namespaced_custom_object(group, version, namespace, plural,
                                                                                name, body))
    raise ValueError(f"Unexpected kind {kind!r}.")


async def _owned_attempt(apis: Apis, manifest: dict, t: Timeouts) -> bool:
    calls = _calls(apis, manifest["kind"])
    ns, name = manifest["metadata"]["namespace"], manifest["metadata"]["name"]
    return await create_or_update(lambda: calls.create(ns, manifest),
                                  lambda: calls.patch(name, ns, replace_patch(manifest)), t.request)


async def _delete_attempt(core, namespace: str, name: str, propagation: str, t: Timeouts) -> tuple[bool] | bool:
    try:
        await asyncio.wait_for(core.delete_namespaced_config_map(name, namespace, propagation_policy=propagation),
                               t.request)
    except TimeoutError:
        return False
    except ApiException as e:
        if e.status == 404:
            return (False,)  # nothing to delete
        raise
    return (True,)


async def _list_attempt(core, namespace: str, t: Timeouts) -> tuple[list[dict]] | bool:
    try:
        found = await asyncio.wait_for(core.list_namespaced_config_map(namespace, label_selector=ANCHOR_SELECTOR),
                                       t.request)
    except TimeoutError:
        return False
    return (_as_dict(core, found).get("items") or [],)


async def _read_attempt(apis: Apis, kind: str, namespace: str, name: str, t: Timeouts) -> tuple[dict | None] | bool:
    read = _calls(apis, kind).read
    found = await read_or_none(lambda: read(name, namespace), t.request)
    return found and (None if found[0] is None else _as_dict(apis.core, found[0]),)


async def _patch_attempt(apis: Apis, kind: str, namespace: str, name: str, patch: list[dict],
                         t: Timeouts) -> tuple[bool] | bool:
    apply = _calls(apis, kind).patch
    try:
        await asyncio.wait_for(apply(name, namespace, patch), t.request)
    except TimeoutError:
        return False
    except ApiException as e:
        if e.status == 404:
            return (False,)  # gone meanwhile (the server stopped)
        raise
    return (True,)


async def _retry(attempt, what: str, t: Timeouts, log, timeout_message: str = ""):
    """Run an attempt until it returns something truthy. SparkError (safe for users) when it cannot."""
    return await retry(attempt, what, t.retry, log, SparkError, timeout_message)


# -- operations ------------------------------------------------------------------------------------------------
async def list_anchors(apis: Apis, namespace: str, t: Timeouts, log) -> list[dict]:
    """Every Spark anchor ConfigMap in `namespace` (one per running cluster)."""
    (anchors,) = await _retry(partial(_list_attempt, apis.core, namespace, t), "listing Spark anchors", t, log)
    return anchors


async def current_usage(apis: Apis, namespace: str, user: str, exclude: str, t: Timeouts, log) -> kube.SparkUsage:
    """Workers running in `namespace` now (from the anchors' data), for `user` and for everyone."""
    return kube.usage_from_anchors(await list_anchors(apis, namespace, t, log), user, exclude)


async def read_object(apis: Apis, kind: str, namespace: str, name: str, t: Timeouts, log) -> dict | None:
    """The object (ConfigMap, Deployment or SparkConnect) as a dict, or None when there is none."""
    (obj,) = await _retry(partial(_read_attempt, apis, kind, namespace, name, t), f"reading the {kind} {name}", t,
                          log)
    return obj


async def patch_object(apis: Apis, kind: str, namespace: str, name: str, patch: list[dict], t: Timeouts,
                       log) -> bool:
    """Apply a JSON Patch to an object; False when the object is gone."""
    (done,) = await _retry(partial(_patch_attempt, apis, kind, namespace, name, patch, t),
                           f"changing the {kind} {name}", t, log)
    return done


async def start_cluster(apis: Apis, spec: kube.KubeSparkSpec, cluster_type: str, t: Timeouts, log,
                        progress: Callable[[str], None] = lambda message: None,
                        secret: str = "", network_policy: bool = True) -> kube.KubeSparkSpec:
    """Create the anchor, then the objects it owns, those at once. Returns `spec` with the anchor's uid. When an
    owned object cannot be created (or the start is cancelled) the anchor is deleted again, taking the rest with
    it."""
    anchor = kube.anchor_configmap(spec)
    name = anchor["metadata"]["name"]
    uid = await _retry(partial(_anchor_attempt, apis, anchor, t), f"the ConfigMap {name}", t, log,
                       "Your previous Spark cluster is still being removed; try again in a minute.")
    spec = replace(spec, anchor_uid=uid)
    manifests = owned_manifests(spec, cluster_type, secret, network_policy)
    progress("Creating " + ", ".join(f"the {m['kind']} {m['metadata']['name']}" for m in manifests))
    try:  # they need the anchor, not each other
        await gather_all([_retry(partial(_owned_attempt, apis, m, t), f"the {m['kind']} {m['metadata']['name']}",
                                 t, log) for m in manifests])
    except BaseException:
        try:
            await delete_anchor(apis, spec.namespace, name, "Background", t, log)
        except SparkError:
            log.error("Spark anchor %s/%s left behind after a failed start", spec.namespace, name)
        raise
    log.info("Spark cluster %s/%s (%s, %d worker(s)) created for %s", spec.namespace, name, cluster_type,
             spec.request.workers, spec.user)
    return spec


async def delete_anchor(apis: Apis, namespace: str, name: str, propagation: str, t: Timeouts, log) -> bool:
    """Delete the anchor (the garbage collector deletes what it owns). False when there was none."""
    (deleted,) = await _retry(partial(_delete_attempt, apis.core, namespace, name, propagation, t),
                              f"deleting the ConfigMap {name}", t, log)
    return deleted
