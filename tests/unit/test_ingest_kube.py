"""Kubernetes ingestion objects: the worker Deployment/Secret valid Kubernetes and locked down, the KafkaConnector
valid against the upstream Strimzi CRDs (v1 and v1beta2), names injective per user, no key anywhere but in the
Secrets; status read back in users' words."""

import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml

from odh_spawner.credentials.model import S3Credentials
from odh_spawner.ingest import kube_manifests as km
from odh_spawner.ingest import kube_strimzi as ks
from odh_spawner.ingest.model import Ingestion
from odh_spawner.ingest.spec import build_spec
from odh_spawner.ingest.worker import read_config, write_termination_message
from tests.support.kube import K8S_VERSION, unknown_fields

CRDS = Path(__file__).resolve().parents[3] / "shared" / "crds"
CONNECTOR_CRD = CRDS / "kafkaconnectors.kafka.strimzi.io.yaml"  # 0.51.0: v1beta2 (storage) + v1
CONNECTOR_CRD_V1_ONLY = CRDS / "strimzi-main-v1-only" / "kafkaconnectors.kafka.strimzi.io.yaml"
needs_crds = pytest.mark.skipif(not (CONNECTOR_CRD.is_file() and CONNECTOR_CRD_V1_ONLY.is_file()),
                                reason=f"Strimzi CRDs not found at {CRDS} (CI has ../shared/crds beside the repo)")
ACCESS, SECRET = "AKIAINGESTACCESS77", "ingest/secret+key=987654321"
CREDS = S3Credentials(ACCESS, SECRET, "http://rgw.ceph.svc:8080")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
TRICKY_OWNERS = ["alice", "Alice", "a-b", "a--b", "a.b", "a_b", "a b", "jürgen", "Jane.Doe@example.org",
                 "jane-doe-example-org", "x" * 28, "x" * 29, "x" * 200]


def ingestion(owner="alice", name="clicks", **spec) -> Ingestion:
    return Ingestion(owner=owner, name=name, spec=build_spec({"topic": "clicks", "bucket": "raw",
                                                             "prefix": "clicks/", **spec}))


def deployment(ing=None, **kw):
    ing = ing or ingestion()
    args = {"image": "quay.io/odh/hub:1.0", "cfg_hash": "abc", "memory": km.memory_limit(64 * 2**20, 192 * 2**20)}
    return km.worker_deployment(ing, "odh", **{**args, **kw})


def connector(ing=None, **kw):
    args = {"cluster": "connect", "endpoint": "http://rgw.ceph.svc:8080"}
    return ks.kafka_connector(ing or ingestion(), "odh", **{**args, **kw})


def validate(obj):
    kubernetes_validate.validate(obj, K8S_VERSION, strict=True)


def crd_validator(path: Path, version: str):
    with open(path) as f:
        crd = yaml.safe_load(f)
    (v,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    assert v["served"]
    schema = v["schema"]["openAPIV3Schema"]
    return schema, jsonschema.validators.validator_for(schema)(schema)


# -- names ------------------------------------------------------------------------------------------------------
def test_names_are_public_and_injective():
    assert km.resource_name("alice", "clicks") == "odh-ingest.alice.clicks"
    names = {}
    for owner in TRICKY_OWNERS:
        for name in ("a", "b-c", "x" * 40):
            n = km.resource_name(owner, name)
            assert DNS_SUBDOMAIN.fullmatch(n) and len(n) <= 253, n
            assert n not in names, (owner, name, names.get(n))
            names[n] = (owner, name)
    # the classic collision of prefix-joined names: ("alice", "b-c") vs ("alice-b", "c")
    assert km.resource_name("alice", "b-c") != km.resource_name("alice-b", "c")


@pytest.mark.parametrize("owner", TRICKY_OWNERS)
def test_every_owner_gives_valid_objects(owner):
    ing = ingestion(owner=owner, name="x" * 40)
    cfg = km.worker_config(ing, CREDS, "kafka:9092", 64 * 2**20)
    for obj in (deployment(ing), km.worker_secret(ing, "odh", cfg), ks.connector_secret(ing, "odh", CREDS),
                ks.connect_secret_role(ing, "odh"), ks.connect_secret_binding(ing, "odh", "connect-connect")):
        validate(obj)
        assert obj["metadata"]["annotations"]["hub.jupyter.org/username"] == owner
    validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": connector(ing)["metadata"]})


# -- deployment mode --------------------------------------------------------------------------------------------
def test_worker_deployment_is_locked_down():
    d = deployment(replicas=1)
    validate(d)
    spec = d["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    assert spec["selector"]["matchLabels"] == {"odh-hub/user": "alice", "odh-hub/ingestion": "clicks"}
    pod = spec["template"]["spec"]
    assert spec["template"]["metadata"]["labels"]["odh-hub/user"] == "alice"
    assert pod["automountServiceAccountToken"] is False
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    (c,) = pod["containers"]
    sc = c["securityContext"]
    assert sc["capabilities"] == {"drop": ["ALL"]} and sc["allowPrivilegeEscalation"] is False
    assert sc["seccompProfile"] == {"type": "RuntimeDefault"} and sc["readOnlyRootFilesystem"] is True
    assert c["command"] == ["python", "-m", "odh_spawner.ingest.worker", "--config", "/etc/odh-ingest/config.json"]
    # the memory bound: twice the buffer plus overhead, as request and limit
    assert c["resources"]["limits"]["memory"] == c["resources"]["requests"]["memory"] == "320Mi"
    # the keys come from the Secret volume only
    (vol,) = [v for v in pod["volumes"] if "secret" in v]
    assert vol["secret"]["secretName"] == d["metadata"]["name"] and vol["secret"]["defaultMode"] == 0o400
    assert all("valueFrom" not in e for e in c["env"])
    assert {e["name"] for e in c["env"]}.isdisjoint({"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"})
    assert km.replicas_patch(0) == {"spec": {"replicas": 0}}


def test_worker_config_in_the_secret_only():
    ing = ingestion(format="parquet", flush_records=500, flush_seconds=5, partition_by="hour")
    cfg = km.worker_config(ing, CREDS, "kafka:9092", 64 * 2**20, endpoint="http://rgw.other:80")
    assert cfg["s3"] == {"endpoint": "http://rgw.other:80", "access_key": ACCESS, "secret_key": SECRET}
    assert (cfg["group"], cfg["topic"], cfg["format"], cfg["flush_records"], cfg["partition_by"]) == \
        (ing.group, "clicks", "parquet", 500, "hour")
    # the group and member ids are the record's (with their tokens), not the objects' public names
    assert cfg["group"] == f"odh-ingest.alice.clicks.{ing.group_token}" != km.resource_name("alice", "clicks")
    assert cfg["instance"] == ing.member and ing.group_token not in cfg["instance"]
    secret = km.worker_secret(ing, "odh", cfg)
    validate(secret)
    assert json.loads(secret["stringData"]["config.json"]) == cfg
    d = deployment(ing, cfg_hash=km.config_hash(cfg))
    text = json.dumps(d)
    assert ACCESS not in text and SECRET not in text
    # another key or setting rolls the pod (Recreate)
    other = km.worker_config(ing, S3Credentials(ACCESS, "rotated", ""), "kafka:9092", 64 * 2**20)
    assert km.config_hash(other) != km.config_hash(cfg)


def test_worker_reads_its_config_file_and_writes_a_termination_message(tmp_path):
    cfg = {"topic": "t", "s3": {"secret_key": SECRET}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    assert read_config(["--config", str(tmp_path / "config.json")]) == cfg
    write_termination_message(str(tmp_path / "term"), "No permission to write into bucket 'raw' with your keys.")
    assert (tmp_path / "term").read_text().startswith("No permission")
    write_termination_message(None, "x")  # no path: nothing, no error


def test_worker_status_in_user_words():
    dep = {"spec": {"replicas": 1}, "status": {"readyReplicas": 1}}
    assert km.worker_status(None, [])["exists"] is False
    assert km.worker_status(dep, [])["state"] == "running"
    assert km.worker_status({"spec": {"replicas": 0}}, [])["state"] == "stopped"
    assert km.worker_status({"spec": {"replicas": 1}, "status": {}}, [])["state"] == "starting"
    crash = {"status": {"containerStatuses": [{
        "ready": False, "restartCount": 4, "state": {"waiting": {"reason": "CrashLoopBackOff"}},
        "lastState": {"terminated": {"exitCode": 3, "message": "No permission to write into bucket 'raw'."}}}]}}
    st = km.worker_status({"spec": {"replicas": 1}, "status": {}}, [crash])
    assert st["state"] == "restarting" and st["restarts"] == 4
    assert "No permission to write into bucket 'raw'." in st["last_error"]
    pull = {"status": {"containerStatuses": [{"state": {"waiting": {"reason": "ImagePullBackOff"}}}]}}
    assert km.worker_status({"spec": {"replicas": 1}}, [pull])["state"] == "failed"
    oom = {"status": {"containerStatuses": [{"state": {"running": {}}, "lastState": {"terminated": {
        "reason": "OOMKilled", "exitCode": 137}}}]}}
    assert "out of memory" in km.worker_status({"spec": {"replicas": 1}}, [oom])["last_error"]
    pending = {"status": {"conditions": [{"type": "PodScheduled", "status": "False", "reason": "Unschedulable",
                                          "message": "0/1 nodes are available: 1 Insufficient memory."}]}}
    st = km.worker_status({"spec": {"replicas": 1}}, [pending])
    assert st["state"] == "waiting" and "Insufficient memory" in st["last_error"]


# -- strimzi mode -----------------------------------------------------------------------------------------------
@needs_crds
@pytest.mark.parametrize("path,version", [(CONNECTOR_CRD_V1_ONLY, "v1"), (CONNECTOR_CRD, "v1"),
                                          (CONNECTOR_CRD, "v1beta2")])
@pytest.mark.parametrize("state", ["running", "paused", "stopped"])
def test_connector_valid_against_the_strimzi_crd(path, version, state):
    schema, validator = crd_validator(path, version)
    for spec in ({}, {"format": "parquet", "partition_by": "hour", "prefix": "", "flush_seconds": 0.5}):
        cr = connector(ingestion(**spec), api_version=version, state=state)
        validator.validate(cr)
        assert unknown_fields(cr, schema) == []
        assert cr["apiVersion"] == f"kafka.strimzi.io/{version}" and cr["spec"]["state"] == state
    bad = connector()
    bad["spec"]["state"] = "halted"
    with pytest.raises(jsonschema.ValidationError):
        validator.validate(bad)


def test_connector_maps_the_settings():
    cr = connector(ingestion(format="parquet", flush_records=500, flush_seconds=30, partition_by="hour"),
                   extra_config={"value.converter": "org.apache.kafka.connect.json.JsonConverter"})
    assert cr["metadata"]["labels"]["strimzi.io/cluster"] == "connect"
    assert cr["metadata"]["name"] == "odh-ingest.alice.clicks"
    spec = cr["spec"]
    assert spec["class"] == "io.confluent.connect.s3.S3SinkConnector" and spec["tasksMax"] == 1
    c = spec["config"]
    assert c["topics"] == "clicks" and c["s3.bucket.name"] == "raw" and c["topics.dir"] == "clicks"
    assert c["format.class"].endswith("ParquetFormat") and c["flush.size"] == "500"
    assert c["rotate.schedule.interval.ms"] == "30000" and c["partitioner.class"].endswith("HourlyPartitioner")
    assert c["store.url"] == "http://rgw.ceph.svc:8080" and c["value.converter"].endswith("JsonConverter")
    assert c["aws.access.key.id"] == "${secrets:odh/odh-ingest.alice.clicks:aws_access_key_id}"
    assert c["aws.secret.access.key"] == "${secrets:odh/odh-ingest.alice.clicks:aws_secret_access_key}"
    assert not set(ks.RESERVED_CONFIG) & set(c)
    plain = connector(ingestion(prefix=""))["spec"]["config"]
    assert plain["format.class"].endswith("JsonFormat") and plain["topics.dir"] == "topics"
    assert plain["partitioner.class"].endswith("DefaultPartitioner")
    with pytest.raises(ValueError):
        connector(extra_config={"aws.secret.access.key": "inline"})
    with pytest.raises(ValueError):
        connector(extra_config={"tasks.max": "4"})
    with pytest.raises(ValueError):
        connector(api_version="v1alpha1")
    assert ks.state_patch("paused") == [{"op": "add", "path": "/spec/state", "value": "paused"}]


def test_no_key_outside_the_secrets():
    ing = ingestion()
    cfg = km.worker_config(ing, CREDS, "kafka:9092", 64 * 2**20)
    secrets = [km.worker_secret(ing, "odh", cfg), ks.connector_secret(ing, "odh", CREDS)]
    others = [deployment(ing, cfg_hash=km.config_hash(cfg)), connector(ing), ks.connect_secret_role(ing, "odh"),
              ks.connect_secret_binding(ing, "odh", "connect-connect")]
    for obj in others:
        text = json.dumps(obj)
        assert ACCESS not in text and SECRET not in text, obj["kind"]
    for s in secrets:
        assert set(s) == {"apiVersion", "kind", "type", "metadata", "stringData"}
        assert ACCESS not in json.dumps(s["metadata"]) and SECRET not in json.dumps(s["metadata"])
    assert ks.connector_secret(ing, "odh", CREDS)["stringData"] == {"aws_access_key_id": ACCESS,
                                                                      "aws_secret_access_key": SECRET}


def test_connect_may_read_only_this_secret():
    role = ks.connect_secret_role(ingestion(), "odh")
    assert role["rules"] == [{"apiGroups": [""], "resources": ["secrets"],
                              "resourceNames": ["odh-ingest.alice.clicks"], "verbs": ["get"]}]
    rb = ks.connect_secret_binding(ingestion(), "odh", "connect-connect")
    assert rb["subjects"] == [{"kind": "ServiceAccount", "name": "connect-connect", "namespace": "odh"}]
    assert rb["roleRef"]["name"] == "odh-ingest.alice.clicks"


def cr(state="running", conditions=None, connector_state="RUNNING", tasks=None, generation=1, observed=1):
    status = {"observedGeneration": observed, "conditions": conditions if conditions is not None else [
        {"type": "Ready", "status": "True"}]}
    if connector_state is not None:
        status["connectorStatus"] = {"connector": {"state": connector_state}, "tasks": tasks or []}
    return {"metadata": {"generation": generation}, "spec": {"state": state}, "status": status}


def test_connector_status_in_user_words():
    assert ks.connector_status(None)["exists"] is False
    assert ks.connector_status({"spec": {}})["state"] == "starting"
    assert ks.connector_status(cr())["state"] == "running"
    assert ks.connector_status(cr("paused", connector_state="PAUSED"))["state"] == "paused"
    assert ks.connector_status(cr("stopped", connector_state="STOPPED"))["state"] == "stopped"
    assert ks.connector_status(cr(generation=2, observed=1))["state"] == "starting"
    st = ks.connector_status(cr(conditions=[{"type": "NotReady", "status": "True", "reason": "ConnectRestException",
                                             "message": "Connector class io.x.S3 not found"}], connector_state=None))
    assert st["state"] == "failed" and "Connector class io.x.S3 not found" in st["last_error"]
    st = ks.connector_status(cr(tasks=[{"id": 0, "state": "FAILED", "trace": "AccessDenied: bucket raw\n at ..."}]))
    assert st["state"] == "failed" and "AccessDenied: bucket raw" in st["last_error"]
    assert "at ..." not in st["last_error"]
