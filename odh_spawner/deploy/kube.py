"""Kubernetes serving backend: one Seldon `SeldonDeployment` (or Seldon Core 2 `Model`, or KServe
`InferenceService`, or — with no operator at all — a plain MLServer `Deployment` and `Service`) per deployment.

The objects come from the pure builders in `manifests`; this module is the thin I/O layer that applies them
with kubernetes_asyncio and reads their status back. The serving operator (Seldon Core, Seldon Core 2 or KServe)
does the real work: pulls the model from S3, runs MLServer, restarts it. Per user there is one storage Secret
(and for KServe one ServiceAccount listing it); it is replaced on every bring-up from the user's current keys and
deleted with the user's last deployment. Credentials only ever travel inside that Secret: never in a custom
resource, never in a log line.

Every API call is a small attempt coroutine with a per-request timeout and an explicit 404/409 policy, retried
with `exponential_backoff` while the API does not answer (the pattern of kubespawner's
`_make_create_*_request`). API errors become `BackendFailed` with a message safe for users.
"""

from __future__ import annotations

import asyncio
import json
import re
from functools import partial
from urllib.parse import urlsplit

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException
from traitlets import Bool, Dict, Enum, Float, List, TraitError, Unicode, default, validate

from odh_spawner.kube.attempts import create_or_update, read_or_none, retry
from odh_spawner.kube.client import KubeApiSettings
from odh_spawner.deploy import manifests
from odh_spawner.deploy.model import AVAILABLE, FAILED, BackendFailed, DeployError, Deployment, Version

# group, version, plural and a readable kind of each serving resource
RESOURCES = {
    "seldon": ("machinelearning.seldon.io", "v1", "seldondeployments", "SeldonDeployment"),
    "seldon-v2": ("mlops.seldon.io", "v1alpha1", "models", "Model"),
    "kserve": ("serving.kserve.io", "v1beta1", "inferenceservices", "InferenceService"),
    "mlserver": ("apps", "v1", "deployments", "Deployment"),  # no operator: the Deployment controller
}
# kinds served by built-in objects, not a custom resource
BUILT_IN = {"mlserver"}
# Kinds whose operator writes no status.observedGeneration (Seldon Core 2's): after we change the spec, a status
# written for the previous spec is told apart by its readiness condition being still the one from before the
# change (see cr_state).
NO_OBSERVED_GENERATION = {"seldon-v2"}
_ENDPOINT_SUFFIX = re.compile(r"/(api/v[0-9.]+/.*|v2/models/.*|v1/models/.*|seldon/.*)$")


# -- pure helpers ------------------------------------------------------------------------------------------------
def cr_state(cr: dict, superseded: dict | None = None) -> dict:
    """`manifests.deployment_state`, except that a status the operator wrote for an older spec counts as still
    "Creating": its `observedGeneration` is below `metadata.generation`, or, for a Seldon Core 2 Model (whose
    operator writes no observedGeneration), its readiness condition is still `superseded`, the one it had when
    we changed the spec. (The operator writes a new condition for every state of the new spec, each with its
    own lastTransitionTime, so an unchanged condition is the old spec's; comparing contents, not times, needs
    no agreement between clocks.)"""
    state = manifests.deployment_state(cr)
    stale = {"state": "Creating", "url": state["url"],
             "message": "The operator has not yet picked up the new version."}
    generation = (cr.get("metadata") or {}).get("generation")
    observed = (cr.get("status") or {}).get("observedGeneration")
    if isinstance(generation, int) and isinstance(observed, int) and observed < generation:
        return stale
    if (superseded and cr.get("kind") == "Model" and state["state"] != "Creating"
            and manifests.model_ready_condition(cr) == superseded):
        return stale
    return state


def endpoint_base(url: str | None) -> str | None:
    """The base URL a V2 request path is appended to: a status URL without a protocol path it may end with
    (`/api/v1.0/predictions`, `/v2/models/...`)."""
    if not url:
        return None
    return _ENDPOINT_SUFFIX.sub("", url.rstrip("/")) or None


def storage_objects(kind: str, owner: str, namespace: str, *, access_key: str, secret_key: str,
                    endpoint: str) -> list[dict]:
    """The per-user objects a serving resource reads the model with (Secret; KServe: + ServiceAccount)."""
    keys = {"access_key": access_key, "secret_key": secret_key, "endpoint": endpoint}
    if kind == "seldon":
        return [manifests.rclone_storage_secret(owner, namespace, **keys)]
    if kind == "seldon-v2":
        return [manifests.seldon_v2_storage_secret(owner, namespace, **keys)]
    if kind == "mlserver":
        return [manifests.mlserver_storage_secret(owner, namespace, **keys)]
    secret = manifests.kserve_storage_secret(owner, namespace, **keys)
    return [secret, manifests.kserve_service_account(owner, namespace, secret["metadata"]["name"])]


def storage_names(kind: str, owner: str) -> list[tuple[str, str]]:
    """(API resource, name) of the per-user storage objects of `kind`, in the order they are deleted."""
    if kind == "seldon":
        return [("secret", manifests.storage_secret_name(owner))]
    if kind == "seldon-v2":
        return [("secret", manifests.seldon_v2_storage_secret_name(owner))]
    if kind == "mlserver":
        return [("secret", manifests.mlserver_storage_secret_name(owner))]
    return [("service_account", manifests.kserve_service_account_name(owner)),
            ("secret", manifests.kserve_storage_secret_name(owner))]


def serving_manifest(kind: str, d: Deployment, v: Version, namespace: str, resources: dict | None = None,
                     mlserver: dict | None = None) -> dict:
    """The SeldonDeployment / Model / InferenceService / MLServer Deployment serving version `v` of `d`.
    `resources` are those of the model server container; a Seldon Core 2 Model has none (it runs on a shared
    Server the Seldon admin sizes). `mlserver`: the plain-MLServer settings (image, image_pull_policy,
    progress_deadline)."""
    args = {"model_uri": v.model_uri, "framework": v.framework, "version": v.version}
    if kind == "mlserver":
        return manifests.mlserver_deployment(d.owner, d.name, namespace,
                                             secret_name=manifests.mlserver_storage_secret_name(d.owner),
                                             digests=v.sha256, resources=resources or None, **args,
                                             **(mlserver or {}))
    if kind == "seldon-v2":
        return manifests.seldon_v2_model(d.owner, d.name, namespace,
                                         secret_name=manifests.seldon_v2_storage_secret_name(d.owner), **args)
    args["resources"] = resources or None
    if kind == "seldon":
        return manifests.seldon_deployment(d.owner, d.name, namespace,
                                           secret_name=manifests.storage_secret_name(d.owner), **args)
    return manifests.inference_service(d.owner, d.name, namespace,
                                       service_account=manifests.kserve_service_account_name(d.owner), **args)


def spec_patch(cr: dict) -> list[dict]:
    """A JSON Patch that makes an existing resource serve `cr`: `spec` replaced as a whole (a merge patch would
    keep keys the new spec drops), our labels and annotations set, other keys of theirs left alone."""
    def pointer(key: str) -> str:
        return key.replace("~", "~0").replace("/", "~1")

    ops = [{"op": "add", "path": "/spec", "value": cr["spec"]}]
    for field in ("labels", "annotations"):
        ops += [{"op": "add", "path": f"/metadata/{field}/{pointer(k)}", "value": val}
                for k, val in cr["metadata"].get(field, {}).items()]
    return ops


def owned_by(items: list[dict], owner: str, exclude: str = "") -> list[str]:
    """Names of live resources (not being deleted) of `owner` among `items`, except `exclude`. The label
    selector of the list call narrows by the label-safe owner; the annotation holds the exact name."""
    return [i["metadata"]["name"] for i in items
            if (i.get("metadata") or {}).get("annotations", {}).get("hub.jupyter.org/username") == owner
            and not i["metadata"].get("deletionTimestamp") and i["metadata"]["name"] != exclude]


class KubeServingBackend(KubeApiSettings):
    name = "kubernetes"

    serving_resource = Enum(
        ["seldon", "seldon-v2", "kserve", "mlserver"],
        default_value="seldon",
        config=True,
        help="""Which operator serves models: "seldon" (Seldon Core v1 SeldonDeployment with its prepackaged
        MLServer servers), "seldon-v2" (Seldon Core 2 Model, mlops.seldon.io/v1alpha1, scheduled onto an MLServer
        Server with the sklearn/mlflow capabilities and reached through the seldon-mesh Service, see `mesh_url`;
        the SeldonRuntime must run in `namespace`) — both Business Source License since 2024 — or "kserve"
        (KServe InferenceService with the kserve-mlserver runtime; Apache-2.0): the operator and its CRD must be
        installed in the cluster. "mlserver" needs no operator: a Deployment running MLServer (`mlserver_image`)
        whose init container fetches the model from S3, and a ClusterIP Service the model gateway forwards to.
        Existing deployments keep the kind they were created with.""",
    )
    mlserver_image = Unicode(
        "",
        config=True,
        help="""Image of the plain-MLServer pods (serving_resource = "mlserver"): it must carry mlserver with its
        sklearn/mlflow runtimes, boto3 and odh-hub (the init container runs `python -m odh_spawner.deploy.fetch`)
        — the hub image does. Required for that kind.""",
    )
    mlserver_image_pull_policy = Enum(
        ["Always", "IfNotPresent", "Never"], default_value="IfNotPresent", config=True,
        help="imagePullPolicy of the plain-MLServer pods.",
    )
    mesh_url = Unicode(
        config=True,
        help="""Base URL of Seldon Core 2's inference entry point, the `seldon-mesh` Service (Envoy; port 80
        serves HTTP) that the SeldonRuntime creates in its namespace; used with serving_resource = "seldon-v2",
        whose Model status reports no URL. A deployment's inference URL is this plus
        `/v2/models/<Model name>/infer`: the mesh takes the `Seldon-Model` routing header from that path, so the
        URL must reach the mesh with the path unchanged. Defaults to
        http://seldon-mesh.<namespace>.svc.cluster.local.""",
    )

    @default("mesh_url")
    def _default_mesh_url(self):
        return f"http://seldon-mesh.{self.namespace}.svc.cluster.local"

    @validate("mesh_url")
    def _valid_mesh_url(self, proposal):
        url = proposal["value"].rstrip("/")
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise TraitError(f"KubeServingBackend.mesh_url must be an http:// or https:// URL, got {url!r}.")
        return url

    ready_timeout = Float(
        600, config=True,
        help="""Seconds a new version may take to become Available (image pulls, model download, load) before
        its deployment fails and the version served before is restored.""",
    )
    poll_interval = Float(2.0, config=True, help="Seconds between status reads while a version comes up.")
    s3_endpoint = Unicode(
        "",
        config=True,
        help="""S3 endpoint URL the serving pods fetch models from (e.g. http://rgw.ceph.svc:8080). Empty: the
        endpoint of the user's credentials.""",
    )
    resources = Dict(
        {},
        config=True,
        help="""Kubernetes resources of each model server container, e.g.
        {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}; empty leaves
        them to the operator's defaults. Not used for "seldon-v2": Seldon Core 2 loads models onto shared Servers,
        sized on their Server/ServerConfig resources.""",
    )
    public_url = Unicode(
        "",
        config=True,
        help="""Unused (kept for old configurations): a deployment's public URL is the hub's, through the
        platform's model gateway (PlatformService.public_url); the operator's URL is only the gateway's
        upstream.""",
    )
    network_policy = Bool(
        True,
        config=True,
        help="""Apply a NetworkPolicy (one per serving kind, in `namespace`) that lets only the platform
        service's pods reach the model-serving pods, so a model is reachable only through the model gateway,
        which checks credentials. Needs a network plugin that enforces NetworkPolicies.""",
    )
    platform_pod_labels = Dict(
        {"app.kubernetes.io/name": "odh-hub", "app.kubernetes.io/component": "platform"},
        config=True,
        help="""Labels of the platform service's pods: the only peers (besides `network_policy_extra_from`) the
        NetworkPolicy lets reach the model-serving pods.""",
    )
    platform_namespace = Unicode(
        "",
        config=True,
        help="""Namespace of the platform service's pods, when it is not `namespace` (the NetworkPolicy's peer
        then selects it by its kubernetes.io/metadata.name label).""",
    )
    serving_pod_selector = Dict(
        {},
        config=True,
        help="""Label selector of the model-serving pods the NetworkPolicy protects, instead of the kind's
        default (Seldon Core v1: pods with `seldon-deployment-id`; KServe: pods with
        `serving.kserve.io/inferenceservice`). Required for "seldon-v2" (the labels of its Server and mesh pods);
        without it no policy is applied for that kind and a warning is logged.""",
    )
    network_policy_extra_from = List(
        [],
        config=True,
        help="""More NetworkPolicy peers allowed to reach the model-serving pods, e.g. the operator's own
        components that must call them ({"namespaceSelector": {"matchLabels": {...}}}).""",
    )

    network_policy_egress_to = List(
        [],
        config=True,
        help="""NetworkPolicy peers that are the object store (e.g. {"namespaceSelector": {"matchLabels":
        {"kubernetes.io/metadata.name": "rook-ceph"}}}). When set, the model-serving pods may reach only these
        (on `network_policy_egress_ports`) and DNS (on `network_policy_dns_ports`): users' models run there and
        must not call out. Empty: egress is not restricted. On the command line, one JSON object per
        `--KubeServingBackend.network_policy_egress_to=...`.""",
    )

    @validate("network_policy_egress_to")
    def _peers(self, proposal):
        peers = []
        for peer in proposal["value"]:
            if isinstance(peer, str):  # from the command line (the chart): one JSON object each
                try:
                    peer = json.loads(peer)
                except ValueError:
                    raise TraitError(f"A network_policy_egress_to peer is not JSON ({peer[:80]!r}); give each as a "
                                    "JSON object.") from None
            if not isinstance(peer, dict) or not peer:
                raise TraitError("Each network_policy_egress_to peer is a NetworkPolicy peer (a mapping).")
            peers.append(peer)
        return peers

    @validate("network_policy_egress_ports", "network_policy_dns_ports")
    def _ports(self, proposal):
        """Port numbers (from the command line they arrive as text)."""
        ports = []
        for port in proposal["value"]:
            if isinstance(port, bool) or not (str(port).isascii() and str(port).isdigit()) or not 0 < int(port) < 65536:
                raise TraitError(f"In {proposal['trait'].name}, {str(port)[:20]!r} is not a port number.")
            ports.append(int(port))
        return ports
    network_policy_egress_ports = List(
        [80], config=True,
        help="TCP ports of the object store, for `network_policy_egress_to` (empty: any port of those peers).",
    )
    network_policy_dns_ports = List(
        [53], config=True,
        help="Ports of the cluster DNS the model-serving pods may reach (UDP and TCP) when egress is restricted.",
    )

    def __init__(self, proxy=None, public_url: str = "", **kw):
        super().__init__(**kw)  # no proxy routes on Kubernetes: the operator exposes the model
        if public_url:
            self.public_url = public_url
        self._owner_locks: dict[str, asyncio.Lock] = {}
        # kinds in NO_OBSERVED_GENERATION: resource name -> its readiness condition when we last changed its spec
        self._superseded: dict[str, dict] = {}
        self._policies: set[str] = set()  # serving kinds whose NetworkPolicy this process applied

    # -- API access ----------------------------------------------------------------------------------------
    async def _core(self) -> client.CoreV1Api:
        return client.CoreV1Api(await self.api())

    async def _custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(await self.api())

    async def _apps(self) -> client.AppsV1Api:
        return client.AppsV1Api(await self.api())

    async def _plain(self, call) -> dict:
        """A typed API answer as the plain dict the API sent (camelCase field names, no unset fields)."""
        return (await self.api()).sanitize_for_serialization(await call)

    def _mlserver_settings(self) -> dict:
        return {"image": self.mlserver_image, "image_pull_policy": self.mlserver_image_pull_policy,
                "progress_deadline": max(1, int(self.ready_timeout))}

    def manifest(self, kind: str, d: Deployment, v: Version) -> dict:
        """serving_manifest with this backend's settings; DeployError when the kind cannot be served here."""
        if kind == "mlserver" and not self.mlserver_image:
            raise DeployError("Model serving is not configured on this platform (no MLServer image); tell your "
                              "platform admin.")
        return serving_manifest(kind, d, v, self.namespace, self.resources, self._mlserver_settings())

    async def _retry(self, attempt, what: str):
        """Run an attempt coroutine until it returns something truthy; API errors become BackendFailed."""
        return await retry(attempt, what, self.retry_timeout, self.log, BackendFailed)

    # -- attempts (True / a tuple when done, False to try again) --------------------------------------------
    async def _create_or_replace(self, kind: str, manifest: dict) -> bool:
        core, name = await self._core(), manifest["metadata"]["name"]
        create, replace = getattr(core, f"create_namespaced_{kind}"), getattr(core, f"replace_namespaced_{kind}")
        return await create_or_update(lambda: create(self.namespace, manifest),
                                      lambda: replace(name, self.namespace, manifest), self.request_timeout)

    async def _create_or_patch(self, kind: str, cr: dict) -> bool:
        group, version, plural, _ = RESOURCES[kind]
        name = cr["metadata"]["name"]
        if kind in BUILT_IN:
            apps = await self._apps()
            return await create_or_update(
                lambda: apps.create_namespaced_deployment(self.namespace, cr),
                lambda: apps.patch_namespaced_deployment(name, self.namespace, spec_patch(cr),
                                                         _content_type="application/json-patch+json"),
                self.request_timeout)
        custom = await self._custom()
        return await create_or_update(
            lambda: custom.create_namespaced_custom_object(group, version, self.namespace, plural, cr),
            lambda: custom.patch_namespaced_custom_object(group, version, self.namespace, plural, name,
                                                          spec_patch(cr)),
            self.request_timeout)

    async def _get(self, kind: str, name: str) -> tuple[dict | None] | bool:
        group, version, plural, _ = RESOURCES[kind]
        if kind in BUILT_IN:
            apps = await self._apps()

            async def read():  # plain dicts (API field names), as the custom objects API answers
                return await self._plain(apps.read_namespaced_deployment(name, self.namespace))

            return await read_or_none(read, self.request_timeout)
        custom = await self._custom()
        return await read_or_none(lambda: custom.get_namespaced_custom_object(group, version, self.namespace,
                                                                             plural, name), self.request_timeout)

    async def _pods(self, name: str) -> tuple[list[dict]] | bool:
        """The pods of a plain-MLServer Deployment (by the label its pod template gives them)."""
        core = await self._core()
        try:
            found = await asyncio.wait_for(self._plain(core.list_namespaced_pod(
                self.namespace, label_selector=f"{manifests.MLSERVER_POD_LABEL}={name}")), self.request_timeout)
        except TimeoutError:
            return False
        return (found.get("items") or [],)

    async def _create_service(self, service: dict) -> bool:
        """Create the Service of a plain-MLServer Deployment; one already there is the same (it never changes
        between versions)."""
        core = await self._core()
        try:
            await asyncio.wait_for(core.create_namespaced_service(self.namespace, service), self.request_timeout)
        except TimeoutError:
            return False
        except ApiException as e:
            if e.status != 409:
                raise
        return True

    async def _delete(self, delete, name: str, **kw) -> bool:
        try:
            await asyncio.wait_for(delete(name=name, namespace=self.namespace, **kw), self.request_timeout)
        except TimeoutError:
            return False
        except ApiException as e:
            if e.status != 404:  # already gone is what we wanted
                raise
        return True

    async def _list_names(self, kind: str, owner: str, exclude: str) -> tuple[list[str]] | bool:
        group, version, plural, _ = RESOURCES[kind]
        custom = await self._custom()
        selector = (f"app.kubernetes.io/managed-by=odh-hub,app.kubernetes.io/component=model-serving,"
                    f"odh-hub/user={manifests.label_value(owner)}")
        if kind in BUILT_IN:
            apps = await self._apps()
            try:
                found = await asyncio.wait_for(self._plain(apps.list_namespaced_deployment(
                    self.namespace, label_selector=selector)), self.request_timeout)
            except TimeoutError:
                return False
            return (owned_by(found.get("items") or [], owner, exclude),)
        try:
            found = await asyncio.wait_for(custom.list_namespaced_custom_object(
                group, version, self.namespace, plural, label_selector=selector), self.request_timeout)
        except TimeoutError:
            return False
        return (owned_by(found.get("items") or [], owner, exclude),)

    # -- operations ------------------------------------------------------------------------------------------
    def _owner_lock(self, owner: str) -> asyncio.Lock:
        """Serialises a user's storage objects: a bring-up's apply against a teardown's delete."""
        return self._owner_locks.setdefault(owner, asyncio.Lock())

    async def read(self, kind: str, name: str) -> dict | None:
        (cr,) = await self._retry(partial(self._get, kind, name), f"reading {RESOURCES[kind][3]} {name}")
        return cr

    async def apply_storage(self, kind: str, owner: str, creds) -> None:
        endpoint = self.s3_endpoint or getattr(creds, "endpoint", "")
        try:
            objects = storage_objects(kind, owner, self.namespace, access_key=creds.access_key,
                                      secret_key=creds.secret_key, endpoint=endpoint)
        except ValueError:
            raise DeployError("Model storage is not configured for deployments on this platform (no S3 "
                              "endpoint); tell your platform admin.") from None
        for obj in objects:
            resource = "secret" if obj["kind"] == "Secret" else "service_account"
            await self._retry(partial(self._create_or_replace, resource, obj),
                              f"the {obj['kind']} {obj['metadata']['name']}")

    def network_policy_manifest(self, kind: str) -> dict | None:
        """The NetworkPolicy for `kind` from the settings; None when disabled or (seldon-v2) not configured."""
        if not self.network_policy:
            return None
        try:
            return manifests.serving_network_policy(
                self.namespace, kind, platform_pod_labels=self.platform_pod_labels,
                platform_namespace=self.platform_namespace or None, pod_selector=self.serving_pod_selector or None,
                extra_from=self.network_policy_extra_from, egress_to=self.network_policy_egress_to,
                egress_ports=self.network_policy_egress_ports, dns_ports=self.network_policy_dns_ports)
        except ValueError as e:
            self.log.warning("No NetworkPolicy for %s model servers: %s", kind, e)
            return None

    async def apply_network_policy(self, kind: str) -> None:
        """Once per kind and process (create or replace): only the platform reaches the model servers."""
        if kind in self._policies:
            return
        policy = self.network_policy_manifest(kind)
        if policy is not None:
            net, name = client.NetworkingV1Api(await self.api()), policy["metadata"]["name"]

            async def attempt():
                return await create_or_update(
                    lambda: net.create_namespaced_network_policy(self.namespace, policy),
                    lambda: net.replace_namespaced_network_policy(name, self.namespace, policy),
                    self.request_timeout)

            await self._retry(attempt, f"the NetworkPolicy {name}")
        self._policies.add(kind)

    async def apply(self, kind: str, cr: dict) -> None:
        await self._retry(partial(self._create_or_patch, kind, cr), f"the {cr['kind']} {cr['metadata']['name']}")

    async def apply_serving(self, kind: str, cr: dict) -> None:
        """Apply a serving resource. For kinds in NO_OBSERVED_GENERATION, remember which status is not yet for
        `cr` (see cr_state): over a different spec, the readiness condition it had before; a new resource has
        none; over the same spec, what held before still holds (the operator has nothing new to report)."""
        name = cr["metadata"]["name"]
        if kind == "mlserver":
            await self.apply(kind, cr)
            labels = cr["metadata"]["labels"]
            service = manifests.mlserver_service(cr["metadata"]["annotations"]["hub.jupyter.org/username"],
                                                 labels["odh-hub/deployment"], self.namespace)
            await self._retry(partial(self._create_service, service), f"the Service {service['metadata']['name']}")
            return
        if kind not in NO_OBSERVED_GENERATION:
            await self.apply(kind, cr)
            return
        current = await self.read(kind, name)
        await self.apply(kind, cr)
        if current is None:
            self._superseded.pop(name, None)
        elif current.get("spec") != cr["spec"]:
            self._superseded[name] = manifests.model_ready_condition(current)

    def _cr_state(self, cr: dict) -> dict:
        """cr_state, with the condition our last spec change of the resource superseded when its kind needs it.
        Once the condition has moved on, every later one is the operator's answer to the change too: forgotten,
        so that a new condition equal to the superseded one (an A-B-A within a second) is not taken for stale."""
        name = (cr.get("metadata") or {}).get("name")
        superseded = self._superseded.get(name)
        state = cr_state(cr, superseded)
        if superseded is not None and manifests.model_ready_condition(cr) != superseded:
            del self._superseded[name]
        return state

    async def _state(self, kind: str, cr: dict) -> dict:
        """The state of a serving resource: for a plain-MLServer Deployment from its status and its pods', else
        _cr_state."""
        if kind not in BUILT_IN:
            return self._cr_state(cr)
        name = cr["metadata"]["name"]
        (pods,) = await self._retry(partial(self._pods, name), f"listing the pods of the Deployment {name}")
        return manifests.mlserver_state(cr, pods)

    async def delete_resource(self, kind: str, name: str) -> None:
        group, version, plural, label = RESOURCES[kind]
        if kind in BUILT_IN:  # the Deployment (the garbage collector removes its ReplicaSets and pods), its Service
            apps, core = await self._apps(), await self._core()
            await self._retry(partial(self._delete, partial(apps.delete_namespaced_deployment,
                                                            propagation_policy="Background"), name),
                              f"deleting the Deployment {name}")
            await self._retry(partial(self._delete, core.delete_namespaced_service, name),
                              f"deleting the Service {name}")
            return
        delete = partial((await self._custom()).delete_namespaced_custom_object, group, version, plural=plural,
                         propagation_policy="Background")
        await self._retry(partial(self._delete, delete, name), f"deleting the {label} {name}")
        self._superseded.pop(name, None)

    async def delete_storage_if_unused(self, kind: str, owner: str, exclude: str) -> None:
        (others,) = await self._retry(partial(self._list_names, kind, owner, exclude),
                                      f"listing the {RESOURCES[kind][3]}s of {owner}")
        if others:
            return  # the user's other deployments still read their models with it
        core = await self._core()
        for resource, name in storage_names(kind, owner):
            await self._retry(partial(self._delete, getattr(core, f"delete_namespaced_{resource}"), name),
                              f"deleting the {resource.replace('_', ' ')} {name}")

    async def wait_available(self, kind: str, name: str) -> dict:
        """Poll the resource's status until Available; BackendFailed when Failed, gone or too slow."""
        label = RESOURCES[kind][3]
        loop = asyncio.get_running_loop()
        # a Deployment's own progress deadline is ready_timeout: a little longer here, so that the controller's
        # reason (ProgressDeadlineExceeded) is what the user reads
        deadline = loop.time() + self.ready_timeout + (10 if kind in BUILT_IN else 0)
        while True:
            cr = await self.read(kind, name)
            if cr is None:
                raise BackendFailed(f"The {label} {name} was deleted while the model was starting.")
            state = await self._state(kind, cr)
            if state["state"] == AVAILABLE:
                return state
            if state["state"] == FAILED:
                raise BackendFailed(f"The {label} failed: {(state['message'] or 'no reason given').rstrip('.')}.")
            if loop.time() >= deadline:
                detail = f": {state['message'].rstrip('.')}" if state["message"] else ""
                raise BackendFailed(f"The model did not become ready within {self.ready_timeout:g} s (the "
                                    f"{label} is still {state['state']}{detail}).")
            await asyncio.sleep(self.poll_interval)

    def _target(self, d: Deployment) -> tuple[str, str]:
        kind = d.runtime.get("resource") or self.serving_resource
        return kind, d.runtime.get("name") or manifests.resource_name(d.owner, d.name)

    def _url(self, kind: str, state: dict, name: str = "") -> str | None:
        """The endpoint base of an Available resource: the seldon-mesh URL for a Seldon Core 2 Model (its status
        has none), the Service's in-cluster URL for plain MLServer, else the URL the operator reports, without a
        protocol path."""
        if kind == "mlserver":
            return manifests.mlserver_url(name, self.namespace)
        return self.mesh_url if kind == "seldon-v2" else endpoint_base(state["url"])

    @staticmethod
    def _serve_at(d: Deployment, url: str | None) -> None:
        """Record where the operator serves the model (the gateway's upstream; also the URL when no gateway
        routes are configured: the manager replaces it with the gateway's public URL otherwise)."""
        if url:
            d.upstream = d.url = url

    # -- the backend interface the DeploymentManager uses --------------------------------------------------
    def supports(self, framework: str) -> bool:
        return framework in manifests.SELDON_SERVERS

    def model_name_for(self, owner: str, name: str) -> str:
        """The name the model is called by in inference URLs: Seldon's graph node (the deployment name), or the
        Model's name (Seldon Core 2's mesh routes by it) or the InferenceService's name (KServe)."""
        return name if self.serving_resource == "seldon" else manifests.resource_name(owner, name)

    async def bring_up(self, d: Deployment, v: Version, creds, objects: list[dict], version_dir: str,
                       report) -> None:
        """Serve version `v`: the user's storage Secret from `creds`, then the serving resource pointing at the
        version's model URI; wait until the operator reports it Available. On failure the version served
        before is put back (or, for a first version, the resource is removed). `objects`/`version_dir` are
        for backends that copy the model themselves: here the operator fetches it."""
        kind = d.runtime.get("resource") or self.serving_resource
        cr = self.manifest(kind, d, v)
        name = cr["metadata"]["name"]
        d.runtime.update(resource=kind, name=name, namespace=self.namespace)
        try:
            await self.apply_network_policy(kind)
            async with self._owner_lock(d.owner):
                await self.apply_storage(kind, d.owner, creds)
                await self.apply_serving(kind, cr)
        except DeployError:
            await self._restore(d, kind, name)
            raise
        self.log.info("Applied %s %s/%s for %s/%s v%d", cr["kind"], self.namespace, name, d.owner, d.name, v.version)
        report("starting")
        try:
            state = await self.wait_available(kind, name)
        except BackendFailed:
            await self._restore(d, kind, name)
            raise
        self._serve_at(d, self._url(kind, state, name))

    async def _restore(self, d: Deployment, kind: str, name: str) -> None:
        """After a failed bring-up: serve the previous version again, or remove a first version's resource."""
        try:
            if d.serving:
                await self.apply_serving(kind, self.manifest(kind, d, d.version_of(d.serving)))
            else:
                async with self._owner_lock(d.owner):
                    await self.delete_resource(kind, name)
                    await self.delete_storage_if_unused(kind, d.owner, exclude=name)
        except DeployError as e:
            self.log.error("Could not clean up after the failed bring-up of %s/%s: %s", d.owner, d.name, e.message)

    async def check(self, d: Deployment) -> str | None:
        """None while the operator reports the resource Available; else what is wrong."""
        kind, name = self._target(d)
        label = RESOURCES[kind][3]
        try:
            cr = await self.read(kind, name)
            state = await self._state(kind, cr) if cr is not None else None
        except BackendFailed as e:  # the API, not the model, is in trouble: say nothing about the model
            self.log.warning("Cannot check %s/%s: %s", d.owner, d.name, e.message)
            return None
        if cr is None:
            return f"Its {label} {name} no longer exists in the cluster."
        if state["state"] == AVAILABLE:
            self._serve_at(d, self._url(kind, state, name))
            return None
        detail = f": {state['message'].rstrip('.')}" if state["message"] else ""
        return f"The {label} is {state['state']}{detail}."

    async def recover(self, d: Deployment, v: Version) -> None:
        """Nothing to restart here: the operator restarts model servers. Re-read the state; a resource deleted
        behind our back is created again. BackendFailed until the operator reports Available again."""
        kind, name = self._target(d)
        label = RESOURCES[kind][3]
        cr = await self.read(kind, name)
        if cr is None:
            await self.apply_serving(kind, self.manifest(kind, d, v))
            raise BackendFailed(f"The {label} {name} was missing and has been created again; it is starting.")
        state = await self._state(kind, cr)
        if state["state"] == FAILED:
            raise BackendFailed(f"The {label} failed: {(state['message'] or 'no reason given').rstrip('.')}.")
        if state["state"] != AVAILABLE:
            raise BackendFailed(f"The {label} is not ready yet ({state['state']}); the operator is working on it.")
        self._serve_at(d, self._url(kind, state, name))

    async def adopt(self, d: Deployment) -> bool:
        """After a restart of the service: live when the resource still exists."""
        kind, name = self._target(d)
        cr = await self.read(kind, name)
        if cr is None:
            return False
        state = await self._state(kind, cr)
        if state["state"] == AVAILABLE:
            self._serve_at(d, self._url(kind, state, name))
        return True

    async def teardown(self, d: Deployment) -> None:
        """Delete the serving resource (already gone is fine) and, with the user's last deployment, the user's
        storage objects."""
        kind, name = self._target(d)
        async with self._owner_lock(d.owner):
            await self.delete_resource(kind, name)
            await self.delete_storage_if_unused(kind, d.owner, exclude=name)
        self.log.info("Deleted %s %s/%s of %s/%s", RESOURCES[kind][3], self.namespace, name, d.owner, d.name)
        d.url = d.upstream = None
