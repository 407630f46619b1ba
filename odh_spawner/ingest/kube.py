"""Kubernetes ingestion backend: the objects of `kube_manifests`, applied with kubernetes_asyncio.

`ingest_mode` chooses what runs an ingestion: "deployment" (the platform's own worker as a Deployment, its
configuration and the owner's keys in a Secret volume) or "strimzi" (a Strimzi KafkaConnector on the admin's
KafkaConnect, the keys in a Secret read through the KubernetesSecretConfigProvider).

Status. The IngestionManager asks `alive`/`status` synchronously; this backend answers from what `refresh` (the
manager's watch loop, every few seconds) last read: one list of the managed Deployments and their pods, or of
the KafkaConnectors. In "deployment" mode the worker gets no API access (no ServiceAccount token) and writes
nothing the platform trusts: its state comes from its pod (ready, waiting reason, restarts, and its last error
as the container's termination message), and its progress from Kafka — the consumer group's committed offsets
against the partitions' end offsets (the worker commits only after an object is durably written, so the
committed offsets are what has landed; the objects are listed with the owner's keys by `objects()`). In
"strimzi" mode the operator's `.status.conditions` and `.status.connectorStatus` are the status.
"""

from __future__ import annotations

import asyncio
import time
from functools import partial

from kubernetes_asyncio import client
from kubernetes_asyncio.client.rest import ApiException
from traitlets import Bool, Dict, Enum, Float, Int, Unicode, default

from odh_spawner.kube.attempts import create_or_update, read_or_none, retry
from odh_spawner.kube.client import KubeApiSettings
from odh_spawner.ingest import kube_manifests as km
from odh_spawner.ingest import kube_strimzi as ks
from odh_spawner.ingest.model import PAUSED, RUNNING, STOPPED, Ingestion
from odh_spawner.ingest.progress import group_progress
from odh_spawner.ingest.spec import IngestError, IngestUnavailable


class KubeIngestBackend(KubeApiSettings):
    name = "kubernetes"

    ingest_mode = Enum(
        ["deployment", "strimzi"], default_value="deployment", config=True,
        help="""What runs an ingestion: "deployment" (the platform's worker, odh_spawner.ingest.worker, as a
        one-replica Deployment per ingestion in `namespace`, with the owner's keys in a per-ingestion Secret
        volume; exactly once: it commits offsets only after each object is written) or "strimzi" (a Strimzi
        KafkaConnector with an S3 sink connector on the admin's KafkaConnect `connect_cluster`).""",
    )
    worker_image = Unicode(
        "", config=True,
        help="Image of the worker pods (\"deployment\" mode): the hub's image, which holds odh_spawner.")
    image_pull_policy = Unicode("IfNotPresent", config=True, help="imagePullPolicy of the worker pods.")
    worker_uid = Int(1000, config=True, help="runAsUser/runAsGroup of the worker pods (never root).")
    worker_cpu_request = Unicode("100m", config=True, help="CPU request of each worker pod.")
    max_buffer_mb = Int(64, config=True, help="Memory (MiB of records) a worker buffers before it writes early.")
    memory_overhead_mb = Int(
        192, config=True,
        help="""MiB added to twice max_buffer_mb for a worker pod's memory limit (Python, librdkafka, pyarrow);
        the limit is the ingestion's memory bound.""")
    stop_timeout = Int(30, config=True, help="Seconds a worker pod gets to write and commit on SIGTERM.")
    worker_pod_labels = Dict({}, config=True, help="Extra labels of worker pods (e.g. for NetworkPolicies).")
    s3_endpoint = Unicode(
        "", config=True,
        help="S3 endpoint the worker pods / Kafka Connect write to. Empty: the endpoint of the user's credentials.")
    connect_cluster = Unicode(
        "", config=True,
        help="""("strimzi" mode) Name of the admin's KafkaConnect: each KafkaConnector gets the label
        strimzi.io/cluster=<this>. The KafkaConnect needs the annotation strimzi.io/use-connector-resources:
        "true", the S3 sink plugin, and config.providers: secrets with config.providers.secrets.class:
        io.strimzi.kafka.KubernetesSecretConfigProvider.""")
    connect_namespace = Unicode(
        "", config=True, help="(\"strimzi\" mode) Namespace of the KafkaConnect. Empty: `namespace`.")
    connect_service_account = Unicode(
        "", config=True,
        help="""("strimzi" mode) ServiceAccount of the Connect pods, granted `get` on each ingestion's Secret (by
        a Role naming that Secret only). Empty: "<connect_cluster>-connect", Strimzi's name.""")
    manage_connect_rbac = Bool(
        False, config=True,
        help="""("strimzi" mode) Create, per ingestion, a Role allowing `get` on that ingestion's Secret only and a
        RoleBinding of it to connect_service_account (then this service needs create/delete on roles and
        rolebindings in connect_namespace, and `get` on Secrets there: Kubernetes lets a Role grant only what
        its creator holds). False (the chart's choice): the admin lets the Connect pods read
        Secrets in connect_namespace (the chart does, with a Role of its own).""")
    strimzi_api_version = Enum(
        list(ks.STRIMZI_API_VERSIONS), default_value="v1", config=True,
        help="""kafka.strimzi.io version of KafkaConnector: "v1" (Strimzi 0.49 and later; the only one from 1.0)
        or "v1beta2" (older Strimzi).""")
    connector_class = Unicode(
        ks.CONFLUENT_S3_SINK, config=True,
        help="""spec.class of the KafkaConnectors. The config mapping is the Confluent S3 sink's
        (io.confluent.connect.s3.S3SinkConnector, Confluent Community License; the plugin must be in the
        KafkaConnect's image); another class with the same config keys may be given.""")
    connector_config = Dict(
        {}, config=True,
        help="""Extra connector config for every KafkaConnector, e.g. converters:
        {"value.converter": "org.apache.kafka.connect.json.JsonConverter", "value.converter.schemas.enable":
        "false"} (parquet needs records with a schema). Keys the platform sets cannot be overridden.""")
    s3_region = Unicode("us-east-1", config=True, help="(\"strimzi\" mode) s3.region of the connector.")
    offsets_interval = Float(
        10, config=True, help="Seconds between reads of a running ingestion's committed offsets from Kafka.")

    @default("connect_namespace")
    def _default_connect_ns(self):
        return self.namespace

    @default("connect_service_account")
    def _default_connect_sa(self):
        return f"{self.connect_cluster}-connect"

    def __init__(self, **kw):
        super().__init__(**kw)
        self._seen: dict[str, dict] = {}  # resource name -> status from the last refresh
        self._progress: dict[str, tuple[float, dict]] = {}
        self.bootstrap = ""

    # -- API access -------------------------------------------------------------------------------------
    async def _retry(self, attempt, what: str):
        """Run an attempt coroutine until it returns something truthy; API errors become IngestUnavailable."""
        return await retry(attempt, what, self.retry_timeout, self.log, IngestUnavailable)

    @property
    def ns(self) -> str:
        return self.connect_namespace if self.ingest_mode == "strimzi" else self.namespace

    async def _apply(self, kind: str, obj: dict) -> None:
        """Create or replace a core/apps/rbac object (`kind`: e.g. "secret", "deployment", "role")."""
        a = await self.api()
        api = {"secret": client.CoreV1Api, "deployment": client.AppsV1Api, "role": client.RbacAuthorizationV1Api,
               "role_binding": client.RbacAuthorizationV1Api}[kind](a)
        name = obj["metadata"]["name"]
        create, replace = getattr(api, f"create_namespaced_{kind}"), getattr(api, f"replace_namespaced_{kind}")
        await self._retry(lambda: create_or_update(lambda: create(self.ns, obj), lambda: replace(name, self.ns, obj),
                                                   self.request_timeout), f"the {obj['kind']} {name}")

    async def _custom(self) -> client.CustomObjectsApi:
        return client.CustomObjectsApi(await self.api())

    def _cr_args(self) -> tuple:
        return (ks.STRIMZI_GROUP, self.strimzi_api_version, self.ns, "kafkaconnectors")

    # -- the backend interface of IngestionManager -------------------------------------------------------
    def identity(self, owner: str):
        return None  # pods run as worker_uid; ownership is the per-ingestion Secret with the owner's keys

    def _endpoint(self, creds) -> str:
        endpoint = self.s3_endpoint or getattr(creds, "endpoint", "")
        if not endpoint:
            raise IngestError("No S3 endpoint is configured for ingestions on this platform; tell your admin.")
        return endpoint

    async def start(self, ing: Ingestion, creds, bootstrap: str, run_dir: str = "") -> dict:
        """Create or update the ingestion's objects, running."""
        self.bootstrap = bootstrap
        name = km.resource_name(ing.owner, ing.name)
        if self.ingest_mode == "strimzi":
            await self._start_connector(ing, creds)
        else:
            if not self.worker_image:
                raise IngestError("No worker image is configured for ingestions on this platform; tell your admin.")
            bytes_ = self.max_buffer_mb * 2**20
            cfg = km.worker_config(ing, creds, bootstrap, bytes_, self._endpoint(creds))
            await self._apply("secret", km.worker_secret(ing, self.ns, cfg))
            await self._apply("deployment", km.worker_deployment(
                ing, self.ns, image=self.worker_image, cfg_hash=km.config_hash(cfg),
                memory=km.memory_limit(bytes_, self.memory_overhead_mb * 2**20), cpu_request=self.worker_cpu_request,
                uid=self.worker_uid, gid=self.worker_uid, stop_timeout=self.stop_timeout,
                image_pull_policy=self.image_pull_policy, pod_labels=self.worker_pod_labels))
        self._seen[name] = {"exists": True, "state": "starting", "last_error": None}
        self.log.info("Applied %s %s/%s for ingestion %s/%s", self.ingest_mode, self.ns, name, ing.owner, ing.name)
        return {"mode": self.ingest_mode, "namespace": self.ns, "name": name, "started": time.time()}

    async def _start_connector(self, ing: Ingestion, creds, state: str = RUNNING) -> None:
        if not self.connect_cluster:
            raise IngestError("No Kafka Connect cluster is configured for ingestions; tell your platform admin.")
        try:
            cr = ks.kafka_connector(ing, self.ns, cluster=self.connect_cluster, endpoint=self._endpoint(creds),
                                    api_version=self.strimzi_api_version, connector_class=self.connector_class,
                                    state=state, region=self.s3_region, extra_config=self.connector_config)
        except ValueError as e:
            raise IngestError(f"The platform's connector settings are invalid ({e}); tell your admin.") from None
        await self._apply("secret", ks.connector_secret(ing, self.ns, creds))
        if self.manage_connect_rbac:
            await self._apply("role", ks.connect_secret_role(ing, self.ns))
            await self._apply("role_binding", ks.connect_secret_binding(ing, self.ns, self.connect_service_account))
        custom, name = await self._custom(), cr["metadata"]["name"]
        await self._retry(lambda: create_or_update(
            lambda: custom.create_namespaced_custom_object(*self._cr_args(), cr),
            lambda: custom.patch_namespaced_custom_object(*self._cr_args(), name, [
                {"op": "add", "path": "/spec", "value": cr["spec"]}]),
            self.request_timeout), f"the KafkaConnector {name}")

    async def stop(self, rt: dict | None, timeout: float | None = None, desired: str = STOPPED) -> None:
        """Pause or stop: the worker Deployment scaled to 0 (its pod writes and commits what it holds on
        SIGTERM), or the KafkaConnector's spec.state set to paused/stopped."""
        if not rt or not rt.get("name"):
            return
        name = rt["name"]
        if rt.get("mode") == "strimzi":
            custom = await self._custom()
            state = desired if desired in (PAUSED, STOPPED) else STOPPED
            call = partial(custom.patch_namespaced_custom_object, *self._cr_args(), name, ks.state_patch(state))
        else:
            apps = client.AppsV1Api(await self.api())
            call = partial(apps.patch_namespaced_deployment, name, self.ns, km.replicas_patch(0))
        found = await self._retry(partial(read_or_none, call, self.request_timeout), f"stopping {name}")
        if found and found[0] is not None:
            self._seen[name] = {**self._seen.get(name, {}), "exists": True, "state": desired}

    async def remove(self, rt: dict | None) -> None:
        """Delete every object of the ingestion (already gone is fine)."""
        if not rt or not rt.get("name"):
            return
        name, a = rt["name"], await self.api()
        deletes = [("Secret", client.CoreV1Api(a).delete_namespaced_secret)]
        if rt.get("mode") == "strimzi":
            custom = await self._custom()
            rbac = client.RbacAuthorizationV1Api(a)
            deletes = [("KafkaConnector", lambda name, namespace: custom.delete_namespaced_custom_object(
                *self._cr_args(), name))] + deletes
            if self.manage_connect_rbac:
                deletes += [("RoleBinding", rbac.delete_namespaced_role_binding), ("Role", rbac.delete_namespaced_role)]
        else:
            apps = client.AppsV1Api(a)
            deletes = [("Deployment", partial(apps.delete_namespaced_deployment,
                                              propagation_policy="Background"))] + deletes
        for kind, delete in deletes:
            await self._retry(partial(self._delete, delete, name), f"deleting the {kind} {name}")
        self._seen.pop(name, None)
        self._progress.pop(name, None)

    async def _delete(self, delete, name: str) -> bool:
        try:
            await asyncio.wait_for(delete(name=name, namespace=self.ns), self.request_timeout)
        except TimeoutError:
            return False
        except ApiException as e:
            if e.status != 404:
                raise
        return True

    def alive(self, rt: dict | None) -> bool:
        """The ingestion's objects exist (Kubernetes / Strimzi restart what runs in them)."""
        return bool(rt and rt.get("name") and self._seen.get(rt["name"], {}).get("exists"))

    def exit_status(self, rt: dict) -> str:
        return "its Kubernetes objects were missing"

    def status(self, rt: dict | None, run_dir: str = "") -> dict:
        if not rt or not rt.get("name"):
            return {}
        seen = dict(self._seen.get(rt["name"]) or {})
        progress = (self._progress.get(rt["name"]) or (0, {}))[1]
        return {**progress, **{k: v for k, v in seen.items() if k in ("state", "last_error", "tasks", "restarts")}}

    def log_tail(self, rt: dict | None, run_dir: str = "", lines: int = 15) -> list[str]:
        return []

    # -- refresh (the manager's watch loop) -------------------------------------------------------------
    async def refresh(self, ingestions: list[Ingestion], bootstrap: str = "") -> None:
        """Read the state of every managed object in one or two list calls; then, for running workers, their
        consumer group's progress from Kafka (every `offsets_interval` seconds)."""
        self.bootstrap = bootstrap or self.bootstrap
        try:
            a = await self.api()
            if self.ingest_mode == "strimzi" or any(i.runtime.get("mode") == "strimzi" for i in ingestions):
                custom = await self._custom()
                crs = await asyncio.wait_for(custom.list_namespaced_custom_object(
                    *self._cr_args(), label_selector=km.LIST_SELECTOR), self.request_timeout)
                by_name = {c["metadata"]["name"]: c for c in crs.get("items") or []}
                for i in ingestions:
                    if i.runtime.get("mode") == "strimzi":
                        self._seen[i.runtime["name"]] = ks.connector_status(by_name.get(i.runtime["name"]))
            if any(i.runtime.get("mode") == "deployment" for i in ingestions):
                deps = await asyncio.wait_for(client.AppsV1Api(a).list_namespaced_deployment(
                    self.namespace, label_selector=km.LIST_SELECTOR), self.request_timeout)
                pods = await asyncio.wait_for(client.CoreV1Api(a).list_namespaced_pod(
                    self.namespace, label_selector=km.LIST_SELECTOR), self.request_timeout)
                ser = a.sanitize_for_serialization
                by_name = {d.metadata.name: ser(d) for d in deps.items}
                pod_list = [ser(p) for p in pods.items]
                for i in ingestions:
                    if i.runtime.get("mode") != "deployment":
                        continue
                    name = i.runtime["name"]
                    mine = [p for p in pod_list if all(p["metadata"].get("labels", {}).get(k) == v
                                                       for k, v in km.selector(i.owner, i.name).items())]
                    self._seen[name] = km.worker_status(by_name.get(name), mine)
        except Exception as e:  # the API unreachable or refusing: what was read last still stands
            self.log.warning("Reading the ingestions' state failed (%s); keeping the last one", type(e).__name__)
            return
        if self.bootstrap:
            await self._refresh_progress([i for i in ingestions if i.runtime.get("mode") == "deployment"
                                          and i.desired == RUNNING])

    async def _refresh_progress(self, ingestions: list[Ingestion]) -> None:
        now = time.monotonic()
        for i in ingestions:
            name = i.runtime["name"]
            if now - self._progress.get(name, (-1e9, {}))[0] < self.offsets_interval:
                continue
            try:
                got = await asyncio.to_thread(group_progress, self.bootstrap, i.group, i.spec.topic)
            except Exception as e:
                self.log.info("No offsets for %s (%s)", name, type(e).__name__)
                continue
            self._progress[name] = (now, got)
