"""Strimzi objects for Kafka ingestions ("strimzi" mode), and their status read back in users' words. Pure.

A Strimzi `KafkaConnector` runs an S3 sink connector on the admin's `KafkaConnect`; the keys are in a
per-ingestion Secret the connector reads through Strimzi's KubernetesSecretConfigProvider
(`${secrets:<namespace>/<secret>:<key>}`), never inline. Optionally (KubeIngestBackend.manage_connect_rbac) a
Role naming that one Secret is bound to the Connect cluster's ServiceAccount. Pause/stop set `spec.state`.
Names and labels are kube_manifests'.
"""

from __future__ import annotations

from odh_spawner.ingest.kube_manifests import metadata, resource_name
from odh_spawner.ingest.model import PAUSED, RUNNING, STOPPED, Ingestion

STRIMZI_GROUP = "kafka.strimzi.io"
STRIMZI_API_VERSIONS = ("v1", "v1beta2")
# Confluent's S3 sink (kafka-connect-storage-cloud, Confluent Community License): the connector Open Data Hub
# used; exactly once with a deterministic partitioner and size-based rotation
CONFLUENT_S3_SINK = "io.confluent.connect.s3.S3SinkConnector"
FORMAT_CLASSES = {"jsonl": "io.confluent.connect.s3.format.json.JsonFormat",
                  "parquet": "io.confluent.connect.s3.format.parquet.ParquetFormat"}
HOURLY = "io.confluent.connect.storage.partitioner.HourlyPartitioner"
DEFAULT_PARTITIONER = "io.confluent.connect.storage.partitioner.DefaultPartitioner"
ACCESS_KEY, SECRET_KEY = "aws_access_key_id", "aws_secret_access_key"
# what Strimzi refuses in spec.config (it sets them from spec.class/spec.tasksMax and the resource's name)
RESERVED_CONFIG = ("name", "connector.class", "tasks.max", "connector.plugin.version")


# -- strimzi mode -----------------------------------------------------------------------------------------------
def connector_secret(ing: Ingestion, namespace: str, creds) -> dict:
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": metadata(ing.owner, ing.name, namespace),
            "stringData": {ACCESS_KEY: creds.access_key, SECRET_KEY: creds.secret_key}}


def secret_ref(namespace: str, secret: str, key: str) -> str:
    """A value Strimzi's KubernetesSecretConfigProvider resolves inside the Connect worker (the KafkaConnect
    declares `config.providers: secrets`, `config.providers.secrets.class:
    io.strimzi.kafka.KubernetesSecretConfigProvider`)."""
    return f"${{secrets:{namespace}/{secret}:{key}}}"


def connector_config(ing: Ingestion, namespace: str, *, endpoint: str, region: str = "us-east-1",
                     extra: dict | None = None) -> dict:
    """The S3 sink connector's config (Confluent S3 sink keys) for the ingestion's settings."""
    s, secret = ing.spec, resource_name(ing.owner, ing.name)
    cfg = {
        "topics": s.topic,
        "s3.bucket.name": s.bucket,
        "s3.region": region,
        "store.url": endpoint,
        "s3.path.style.access.enabled": "true",
        "aws.access.key.id": secret_ref(namespace, secret, ACCESS_KEY),
        "aws.secret.access.key": secret_ref(namespace, secret, SECRET_KEY),
        "storage.class": "io.confluent.connect.s3.storage.S3Storage",
        "format.class": FORMAT_CLASSES[s.format],
        "topics.dir": s.prefix.rstrip("/") or "topics",
        "flush.size": str(s.flush_records),
        # wall-clock rotation: a file closes after flush_seconds even when no record comes (#144)
        "rotate.schedule.interval.ms": str(int(s.flush_seconds * 1000)),
        "timezone": "UTC",
        "locale": "en-US",
    }
    if s.partition_by == "hour":
        cfg.update({"partitioner.class": HOURLY, "timestamp.extractor": "Record"})
    else:
        cfg["partitioner.class"] = DEFAULT_PARTITIONER
    for k, v in (extra or {}).items():
        if k in RESERVED_CONFIG or k in cfg:
            raise ValueError(f"Connector config key {k!r} is set by the platform.")
        cfg[k] = str(v)
    return cfg


def kafka_connector(ing: Ingestion, namespace: str, *, cluster: str, endpoint: str,
                    api_version: str = "v1", connector_class: str = CONFLUENT_S3_SINK, state: str = RUNNING,
                    tasks_max: int = 1, region: str = "us-east-1", extra_config: dict | None = None) -> dict:
    if api_version not in STRIMZI_API_VERSIONS:
        raise ValueError(f"Strimzi API version must be one of {STRIMZI_API_VERSIONS}.")
    if state not in (RUNNING, PAUSED, STOPPED):
        raise ValueError(f"State must be running, paused or stopped, not {state!r}.")
    return {
        "apiVersion": f"{STRIMZI_GROUP}/{api_version}",
        "kind": "KafkaConnector",
        "metadata": metadata(ing.owner, ing.name, namespace, {"strimzi.io/cluster": cluster}),
        "spec": {
            "class": connector_class,
            "tasksMax": tasks_max,
            "state": state,
            "autoRestart": {"enabled": True},
            "config": connector_config(ing, namespace, endpoint=endpoint, region=region, extra=extra_config),
        },
    }


def connect_secret_role(ing: Ingestion, namespace: str) -> dict:
    """A Role letting the Connect cluster read this ingestion's Secret, and nothing else."""
    name = resource_name(ing.owner, ing.name)
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": metadata(ing.owner, ing.name, namespace),
            "rules": [{"apiGroups": [""], "resources": ["secrets"], "resourceNames": [name], "verbs": ["get"]}]}


def connect_secret_binding(ing: Ingestion, namespace: str, service_account: str,
                           sa_namespace: str | None = None) -> dict:
    name = resource_name(ing.owner, ing.name)
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
            "metadata": metadata(ing.owner, ing.name, namespace),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [{"kind": "ServiceAccount", "name": service_account,
                          "namespace": sa_namespace or namespace}]}


def state_patch(state: str) -> list[dict]:
    """A JSON Patch setting the KafkaConnector's spec.state."""
    return [{"op": "add", "path": "/spec/state", "value": state}]


def connector_status(cr: dict | None) -> dict:
    """The connector's state from the KafkaConnector's status: `exists`, `state`, `last_error`, `tasks`."""
    if cr is None:
        return {"exists": False, "state": None, "last_error": None, "tasks": []}
    spec, st = cr.get("spec") or {}, cr.get("status") or {}
    out = {"exists": True, "state": "starting", "last_error": None, "tasks": []}
    generation, observed = (cr.get("metadata") or {}).get("generation"), st.get("observedGeneration")
    ready = next((c for c in st.get("conditions") or [] if c.get("type") in ("Ready", "NotReady")), None)
    cs = st.get("connectorStatus") or {}
    connector = (cs.get("connector") or {}).get("state", "")
    tasks = [{"id": t.get("id"), "state": t.get("state"), "trace": (t.get("trace") or "").splitlines()[:1]}
             for t in cs.get("tasks") or []]
    out["tasks"] = tasks
    if ready is None or (isinstance(generation, int) and isinstance(observed, int) and observed < generation):
        out["state"] = "starting"  # the operator has not reconciled this spec yet
        return out
    if ready.get("type") == "Ready" and ready.get("status") == "True":
        failed = [t for t in tasks if t["state"] == "FAILED"]
        if connector == "FAILED" or failed:
            trace = (failed[0]["trace"] or [""])[0] if failed else ""
            out.update(state="failed", last_error=f"The connector failed{': ' + trace[:300] if trace else ''}; "
                                                  "Strimzi restarts it.")
        elif connector in ("PAUSED", "STOPPED"):
            out["state"] = connector.lower()
        elif connector == "RUNNING" or not connector:
            out["state"] = spec.get("state", RUNNING) if spec.get("state") in (PAUSED, STOPPED) else RUNNING
        else:
            out["state"] = "starting"
        return out
    msg = (ready.get("message") or ready.get("reason") or "no reason given").strip()
    out.update(state="failed", last_error=f"Kafka Connect does not run the connector: {msg[:300]}")
    return out
