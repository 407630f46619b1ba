"""The platform service's metrics (docs/metrics.md). Pure apart from prometheus_client's types.

Most figures are read at scrape time from a `Snapshot` of plain data the service refreshes in the background
(`odh_spawner.platform.metrics`): states of deployments, ingestions and Spark clusters, component probes, users'
usage. Nothing here does I/O, so a scrape costs a few microseconds per series and never waits on Kafka or the
object store. The model gateway's request counters (`GatewayMetrics`) are live, counted as requests finish.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from odh_spawner.naming import user_slug

SPARK_PHASES = ("starting", "ready", "failed")
# gateway latency: a V2 inference is milliseconds; a cold or overloaded model server, seconds
GATEWAY_BUCKETS = (0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120)


@dataclass
class Snapshot:
    """What the platform knows now, as plain data (owners are hub user names; the families turn them into
    slugs)."""

    components: dict = field(default_factory=dict)  # name -> (up: bool, probe seconds)
    deployments: list = field(default_factory=list)  # {"owner","name","state","backend","serving","restarts"}
    deployment_states: tuple = ()  # every state, reported with 0 when no deployment is in it
    backend: str = ""  # the serving backend's name (local, kubernetes): the zero rows' backend label
    ingestions: list = field(default_factory=list)  # {"owner","name","state","records","bytes","partitions",
    #                                                  "last_object_at","restarts"}
    ingestion_states: tuple = ()
    spark: list = field(default_factory=list)  # {"owner","phase","workers"}
    usage: dict = field(default_factory=dict)  # owner slug -> {"cpu_seconds", "memory_bytes"}
    storage: dict = field(default_factory=dict)  # owner slug -> bytes stored
    quota_bytes: int | None = None  # every user's storage quota (None: unlimited)
    quotas: dict = field(default_factory=dict)  # owner slug -> their own storage quota (per-group), over quota_bytes
    disk: tuple | None = None  # the object store's disk: (capacity bytes, free bytes)


def families(snap: Snapshot) -> list:
    """The Prometheus metric families of a snapshot."""
    out = []
    up = GaugeMetricFamily("odh_component_up", "1 when the platform's last probe reached the component.",
                           labels=["component"])
    took = GaugeMetricFamily("odh_component_probe_seconds", "Seconds the last probe of the component took.",
                             labels=["component"])
    for name, (ok, seconds) in sorted(snap.components.items()):
        up.add_metric([name], 1.0 if ok else 0.0)
        took.add_metric([name], float(seconds))
    out += [up, took]

    counts: dict[tuple[str, str], int] = {}
    backends = {d["backend"] for d in snap.deployments} | ({snap.backend} if snap.backend else set())
    for backend in backends:
        for state in snap.deployment_states:
            counts[(state, backend)] = 0
    dep_up = GaugeMetricFamily("odh_deployment_up", "1 when the deployment's serving version answers.",
                               labels=["owner", "deployment"])
    restarts = CounterMetricFamily("odh_deployment_restarts", "Automatic restarts of the deployment's model server.",
                                   labels=["owner", "deployment"])
    for d in snap.deployments:
        counts[(d["state"], d["backend"])] = counts.get((d["state"], d["backend"]), 0) + 1
        owner = user_slug(d["owner"])
        if d["serving"]:
            dep_up.add_metric([owner, d["name"]], 1.0 if d["state"] == "Available" else 0.0)
        restarts.add_metric([owner, d["name"]], float(d["restarts"]))
    by_state = GaugeMetricFamily("odh_deployments", "Deployments by state and backend.", labels=["state", "backend"])
    for (state, backend), n in sorted(counts.items()):
        by_state.add_metric([state, backend], float(n))
    out += [by_state, dep_up, restarts]

    ing_counts = {state: 0 for state in snap.ingestion_states}
    records = CounterMetricFamily("odh_ingestion_records", "Records the ingestion wrote to its bucket.",
                                  labels=["owner", "ingestion"])
    written = CounterMetricFamily("odh_ingestion_bytes", "Bytes the ingestion wrote to its bucket.",
                                  labels=["owner", "ingestion"])
    lag = GaugeMetricFamily("odh_ingestion_lag_records", "Records on the topic not yet in the bucket.",
                            labels=["owner", "ingestion", "partition"])
    last = GaugeMetricFamily("odh_ingestion_last_commit_timestamp_seconds",
                             "Unix time of the last object the ingestion wrote.", labels=["owner", "ingestion"])
    worker_restarts = CounterMetricFamily("odh_ingestion_worker_restarts",
                                          "Automatic restarts of the ingestion's worker.", labels=["owner", "ingestion"])
    for i in snap.ingestions:
        ing_counts[i["state"]] = ing_counts.get(i["state"], 0) + 1
        key = [user_slug(i["owner"]), i["name"]]
        records.add_metric(key, float(i["records"] or 0))
        written.add_metric(key, float(i["bytes"] or 0))
        worker_restarts.add_metric(key, float(i["restarts"] or 0))
        for partition, p in sorted((i.get("partitions") or {}).items(), key=lambda kv: str(kv[0])):
            if isinstance(p, dict) and p.get("lag") is not None:
                lag.add_metric(key + [str(partition)], float(p["lag"]))
        if i.get("last_object_at"):
            last.add_metric(key, float(i["last_object_at"]))
    ing_states = GaugeMetricFamily("odh_ingestions", "Ingestions by state.", labels=["state"])
    for state, n in sorted(ing_counts.items()):
        ing_states.add_metric([state], float(n))
    out += [ing_states, records, written, lag, last, worker_restarts]

    phases = {phase: 0 for phase in SPARK_PHASES}
    workers = GaugeMetricFamily("odh_spark_workers", "Live workers of the user's Spark clusters.", labels=["owner"])
    per_owner: dict[str, int] = {}
    for c in snap.spark:
        phases[c["phase"]] = phases.get(c["phase"], 0) + 1
        slug = user_slug(c["owner"])
        per_owner[slug] = per_owner.get(slug, 0) + int(c["workers"])
    for slug, n in sorted(per_owner.items()):
        workers.add_metric([slug], float(n))
    clusters = GaugeMetricFamily("odh_spark_clusters", "Users' Spark clusters by phase.", labels=["phase"])
    for phase, n in sorted(phases.items()):
        clusters.add_metric([phase], float(n))
    out += [clusters, workers]

    cpu = CounterMetricFamily("odh_user_cpu_seconds", "CPU seconds used by the user's servers, kernels and workers.",
                              labels=["owner"])
    mem = GaugeMetricFamily("odh_user_memory_bytes", "Memory in use by the user's servers, kernels and workers.",
                            labels=["owner"])
    for slug, u in sorted(snap.usage.items()):
        cpu.add_metric([slug], float(u["cpu_seconds"]))
        mem.add_metric([slug], float(u["memory_bytes"]))
    stored = GaugeMetricFamily("odh_user_bucket_bytes", "Bytes the user stores in the object store.",
                               labels=["owner"])
    quota = GaugeMetricFamily("odh_user_quota_bytes", "The user's storage quota.", labels=["owner"])
    for slug, n in sorted(snap.storage.items()):
        stored.add_metric([slug], float(n))
        own = snap.quotas.get(slug, snap.quota_bytes)
        if own:
            quota.add_metric([slug], float(own))
    out += [cpu, mem, stored, quota]

    if snap.disk is not None:
        capacity, free = snap.disk
        out.append(GaugeMetricFamily("odh_object_store_capacity_bytes", "Size of the object store's disk.",
                                     value=float(capacity)))
        out.append(GaugeMetricFamily("odh_object_store_free_bytes", "Free bytes on the object store's disk.",
                                     value=float(free)))
    return out


class SnapshotCollector:
    """A prometheus_client collector answering from the latest snapshot."""

    def __init__(self):
        self.snapshot = Snapshot()

    def collect(self):
        yield from families(self.snapshot)


class GatewayMetrics:
    """The model gateway's requests: counted by owner slug, deployment and HTTP status as they finish."""

    def __init__(self, registry: CollectorRegistry):
        self.requests = Counter("odh_gateway_requests", "Requests through the model gateway, by HTTP status.",
                                ["owner", "deployment", "code"], registry=registry)
        self.seconds = Histogram("odh_gateway_request_duration_seconds",
                                 "Seconds the model gateway took to answer, model server included.",
                                 ["owner", "deployment"], buckets=GATEWAY_BUCKETS, registry=registry)

    def observe(self, owner: str, deployment: str, code: int, seconds: float) -> None:
        slug = user_slug(owner)
        self.requests.labels(owner=slug, deployment=deployment, code=str(code)).inc()
        self.seconds.labels(owner=slug, deployment=deployment).observe(seconds)

    def prune(self, deployments: set[tuple[str, str]]) -> None:
        """Keep only the series of these (owner, deployment) pairs: a deleted deployment's series go (the
        registry would otherwise keep every name ever deployed)."""
        keep = {(user_slug(owner), name) for owner, name in deployments}
        for labels in list(self.requests._metrics):
            if tuple(labels[:2]) not in keep:
                self.requests.remove(*labels)
        for labels in list(self.seconds._metrics):
            if tuple(labels) not in keep:
                self.seconds.remove(*labels)


def registry_with(collector: SnapshotCollector) -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    registry.register(collector)
    return registry
