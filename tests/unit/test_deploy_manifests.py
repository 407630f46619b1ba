"""Model-serving manifests: literal SeldonDeployment/Model/InferenceService, valid against the upstream CRDs; Secrets
and ServiceAccounts valid Kubernetes; credentials only base64 in the Secrets' `data`; names safe and distinct;
status of all three kinds read into one state."""

import base64
import json
import re
from pathlib import Path

import jsonschema
import kubernetes_validate
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from odh_spawner.deploy import manifests as m
from tests.support.kube import K8S_VERSION, unknown_fields

CRDS = Path(__file__).resolve().parents[3] / "shared" / "crds"
SELDON_CRD = CRDS / "seldondeployments.machinelearning.seldon.io.yaml"
SELDON_V2_CRD = CRDS / "models.mlops.seldon.io.yaml"
KSERVE_CRD = CRDS / "inferenceservices.serving.kserve.io.yaml"
needs_crds = pytest.mark.skipif(not all(f.is_file() for f in (SELDON_CRD, SELDON_V2_CRD, KSERVE_CRD)),
                                reason=f"upstream CRDs not found at {CRDS} (CI has ../shared/crds beside the repo)")
DNS_LABEL = re.compile(r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$")
ACCESS, SECRET = "AKIAEXAMPLEACCESS42", "very/secret+key=0123456789"
ENDPOINT = "http://rgw.ceph.svc:8080"
URI = "s3://models/alice/iris/3"
RESOURCES = {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": "1", "memory": "2Gi"}}
TRICKY_OWNERS = ["alice", "Alice", "a-b", "a--b", "a.b", "a_b", "a b", "", "-", "1abc", "jürgen", "ünïcødé",
                 "Jane.Doe@example.org", "jane-doe-example-org", "x" * 40, "x" * 41, "x" * 200, "x" * 201]


def seldon(**kw) -> dict:
    args = {"model_uri": URI, "framework": "sklearn", "secret_name": "odh-model-storage-alice", "version": 3}
    return m.seldon_deployment("alice", "iris", "odh", **{**args, **kw})


def seldon_v2(**kw) -> dict:
    args = {"model_uri": URI, "framework": "sklearn", "secret_name": "odh-seldon2-storage-alice", "version": 3}
    return m.seldon_v2_model("alice", "iris", "odh", **{**args, **kw})


def kserve(**kw) -> dict:
    args = {"model_uri": URI, "framework": "sklearn", "service_account": "odh-model-serving-alice", "version": 3}
    return m.inference_service("alice", "iris", "odh", **{**args, **kw})


def credentials(**kw) -> dict:
    return dict(access_key=ACCESS, secret_key=SECRET, endpoint=ENDPOINT, **kw)


def b64(value: str) -> str:
    return base64.b64encode(value.encode()).decode()


# -- literal manifests ------------------------------------------------------------------------------------------
METADATA = {
    "name": "alice--iris",
    "namespace": "odh",
    "labels": {"app.kubernetes.io/managed-by": "odh-hub", "odh-hub/user": "alice",
               "app.kubernetes.io/component": "model-serving", "odh-hub/deployment": "iris", "odh-hub/version": "3"},
    "annotations": {"hub.jupyter.org/username": "alice", "odh-hub/deployment": "iris", "odh-hub/version": "3"},
}


# users' pickles run in these pods: locked down (issue 18)
LOCKED_CONTAINER = {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}, "runAsNonRoot": True}
LOCKED_POD = {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}}


def test_seldon_deployment_literal():
    assert seldon(resources=RESOURCES) == {
        "apiVersion": "machinelearning.seldon.io/v1",
        "kind": "SeldonDeployment",
        "metadata": METADATA,
        "spec": {
            "protocol": "v2",
            "predictors": [{
                "name": "default",
                "replicas": 1,
                "graph": {"name": "iris", "implementation": "SKLEARN_SERVER", "modelUri": URI,
                          "envSecretRefName": "odh-model-storage-alice", "children": []},
                "componentSpecs": [{"spec": {
                    "automountServiceAccountToken": False, "securityContext": LOCKED_POD,
                    "containers": [{"name": "iris", "resources": RESOURCES, "securityContext": LOCKED_CONTAINER}],
                }}],
            }],
        },
    }


def test_seldon_deployment_mlflow_without_resources_and_extra_labels():
    sdep = seldon(framework="mlflow", labels={"team": "a"})
    (predictor,) = sdep["spec"]["predictors"]
    assert predictor["graph"]["implementation"] == "MLFLOW_SERVER"
    assert predictor["componentSpecs"] == [{"spec": {  # locked down even without resources
        "automountServiceAccountToken": False, "securityContext": LOCKED_POD,
        "containers": [{"name": "iris", "securityContext": LOCKED_CONTAINER}]}}]
    assert sdep["metadata"]["labels"] == {**METADATA["labels"], "team": "a"}


@pytest.mark.parametrize("framework", ["sklearn", "mlflow"])
def test_seldon_v2_model_literal(framework):
    assert seldon_v2(framework=framework, labels={"team": "a"}) == {
        "apiVersion": "mlops.seldon.io/v1alpha1",
        "kind": "Model",
        "metadata": {**METADATA, "labels": {**METADATA["labels"], "team": "a"}},
        "spec": {"storageUri": URI, "requirements": [framework], "secretName": "odh-seldon2-storage-alice"},
    }


def test_inference_service_literal():
    assert kserve(framework="mlflow", resources=RESOURCES) == {
        "apiVersion": "serving.kserve.io/v1beta1",
        "kind": "InferenceService",
        "metadata": METADATA,
        "spec": {"predictor": {
            "serviceAccountName": "odh-model-serving-alice",
            "automountServiceAccountToken": False,
            "securityContext": LOCKED_POD,
            "model": {"modelFormat": {"name": "mlflow"}, "protocolVersion": "v2", "runtime": "kserve-mlserver",
                      "storageUri": URI, "resources": RESOURCES, "securityContext": LOCKED_CONTAINER},
        }},
    }


def test_rclone_storage_secret_literal():
    assert m.rclone_storage_secret("alice", "odh", **credentials(labels={"team": "a"})) == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": "odh-model-storage-alice",
            "namespace": "odh",
            "labels": {"app.kubernetes.io/managed-by": "odh-hub", "odh-hub/user": "alice",
                       "app.kubernetes.io/component": "model-storage", "team": "a"},
            "annotations": {"hub.jupyter.org/username": "alice"},
        },
        "data": {
            "RCLONE_CONFIG_S3_TYPE": b64("s3"),
            "RCLONE_CONFIG_S3_PROVIDER": b64("Ceph"),
            "RCLONE_CONFIG_S3_ENV_AUTH": b64("false"),
            "RCLONE_CONFIG_S3_ACCESS_KEY_ID": b64(ACCESS),
            "RCLONE_CONFIG_S3_SECRET_ACCESS_KEY": b64(SECRET),
            "RCLONE_CONFIG_S3_ENDPOINT": b64(ENDPOINT),
        },
    }


def test_seldon_v2_storage_secret_literal():
    """One data key holding rclone's remote as JSON, the format Seldon Core 2's agent reads (rclone's
    config/create: name, type, parameters; samples/auth/minio-secret.yaml upstream)."""
    secret = m.seldon_v2_storage_secret("alice", "odh", **credentials(labels={"team": "a"}))
    assert {k: v for k, v in secret.items() if k != "data"} == {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": "odh-seldon2-storage-alice",
            "namespace": "odh",
            "labels": {"app.kubernetes.io/managed-by": "odh-hub", "odh-hub/user": "alice",
                       "app.kubernetes.io/component": "model-storage", "team": "a"},
            "annotations": {"hub.jupyter.org/username": "alice"},
        },
    }
    (key,) = secret["data"]  # the agent refuses a Secret with more than one key
    assert key == "s3"
    assert json.loads(base64.b64decode(secret["data"]["s3"])) == {
        "name": "s3",
        "type": "s3",
        "parameters": {"provider": "Ceph", "env_auth": "false", "access_key_id": ACCESS,
                       "secret_access_key": SECRET, "endpoint": ENDPOINT},
    }


def test_seldon_v2_remote_name_is_the_scheme_of_the_storage_uri():
    """The agent turns the Secret into an rclone connection string only when the remote's name is the URI's
    prefix before ':' (scheduler/pkg/agent/rclone: getRemoteName, createUriWithConfig); its parameters are a
    map of strings, so every value must be a JSON string."""
    remote = json.loads(base64.b64decode(m.seldon_v2_storage_secret("alice", "odh", **credentials())["data"]["s3"]))
    storage_uri = seldon_v2()["spec"]["storageUri"]
    assert storage_uri.split(":", 1)[0] == remote["name"]
    assert all(isinstance(v, str) for v in remote["parameters"].values())


@pytest.mark.parametrize("endpoint,host,https", [("http://rgw.ceph.svc:8080", "rgw.ceph.svc:8080", "0"),
                                                 ("https://s3.example.org", "s3.example.org", "1"),
                                                 ("https://s3.example.org:8443/", "s3.example.org:8443", "1")])
def test_kserve_storage_secret_and_service_account(endpoint, host, https):
    secret = m.kserve_storage_secret("alice", "odh", access_key=ACCESS, secret_key=SECRET, endpoint=endpoint)
    assert secret["metadata"]["name"] == m.kserve_storage_secret_name("alice") == "odh-kserve-storage-alice"
    assert secret["metadata"]["annotations"] == {
        "hub.jupyter.org/username": "alice", "serving.kserve.io/s3-endpoint": host,
        "serving.kserve.io/s3-usehttps": https, "serving.kserve.io/s3-verifyssl": "1",
        "serving.kserve.io/s3-region": "us-east-1"}
    assert secret["data"] == {"AWS_ACCESS_KEY_ID": b64(ACCESS), "AWS_SECRET_ACCESS_KEY": b64(SECRET)}
    assert secret["type"] == "Opaque" and "stringData" not in secret
    sa = m.kserve_service_account("alice", "odh", secret["metadata"]["name"])
    assert sa == {"apiVersion": "v1", "kind": "ServiceAccount",
                  "metadata": {"name": "odh-model-serving-alice", "namespace": "odh",
                               "labels": {"app.kubernetes.io/managed-by": "odh-hub", "odh-hub/user": "alice",
                                          "app.kubernetes.io/component": "model-serving"},
                               "annotations": {"hub.jupyter.org/username": "alice"}},
                  "secrets": [{"name": "odh-kserve-storage-alice"}]}


# -- valid Kubernetes -------------------------------------------------------------------------------------------
def core_objects(owner: str) -> list[dict]:
    return [m.rclone_storage_secret(owner, "odh", **credentials()),
            m.seldon_v2_storage_secret(owner, "odh", **credentials()),
            m.kserve_storage_secret(owner, "odh", **credentials()),
            m.kserve_service_account(owner, "odh", m.kserve_storage_secret_name(owner))]


@pytest.mark.parametrize("k8s", ["1.30", K8S_VERSION])
@pytest.mark.parametrize("owner", ["alice", "Jane.Doe@example.org", "", "x" * 200])
def test_secrets_and_service_account_are_valid_kubernetes(owner, k8s):
    for obj in core_objects(owner):
        kubernetes_validate.validate(obj, k8s, strict=True)
        assert DNS_LABEL.match(obj["metadata"]["name"]), obj["metadata"]["name"]


@pytest.mark.parametrize("owner", ["alice", "Jane.Doe@example.org", "x" * 200])
def test_custom_resource_metadata_is_valid_kubernetes(owner):
    """The CRDs leave metadata to the API server: check it as a ConfigMap's (names, label values)."""
    for cr in (seldon(), seldon_v2(), kserve()):
        cr["metadata"].update(m._deployment_metadata(owner, "iris", "odh", 3, None))
        kubernetes_validate.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": cr["metadata"]},
                                     K8S_VERSION, strict=True)


# -- valid against the upstream CRDs ----------------------------------------------------------------------------
def crd_schema(path: Path, version: str) -> tuple[str, dict, jsonschema.protocols.Validator]:
    """(kind, schema, validator) of one served version; one validator per module (the schemas are megabytes)."""
    with open(path) as f:
        crd = yaml.load(f, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    (v,) = [v for v in crd["spec"]["versions"] if v["name"] == version]
    assert v["served"]
    schema = v["schema"]["openAPIV3Schema"]
    return crd["spec"]["names"]["kind"], schema, jsonschema.validators.validator_for(schema)(schema)


@pytest.fixture(scope="module")
def seldon_schema():
    return crd_schema(SELDON_CRD, "v1")


@pytest.fixture(scope="module")
def seldon_v2_schema():
    return crd_schema(SELDON_V2_CRD, "v1alpha1")


@pytest.fixture(scope="module")
def kserve_schema():
    return crd_schema(KSERVE_CRD, "v1beta1")


@needs_crds
@pytest.mark.parametrize("framework", ["sklearn", "mlflow"])
@pytest.mark.parametrize("resources", [None, RESOURCES])
def test_seldon_deployment_matches_the_upstream_crd(seldon_schema, framework, resources):
    kind, schema, validator = seldon_schema
    sdep = seldon(framework=framework, resources=resources)
    assert sdep["kind"] == kind
    validator.validate(sdep)
    assert unknown_fields(sdep, schema) == []


@needs_crds
@pytest.mark.parametrize("framework", ["sklearn", "mlflow"])
@pytest.mark.parametrize("owner", ["alice", "Jane.Doe@example.org"])
def test_seldon_v2_model_matches_the_upstream_crd(seldon_v2_schema, framework, owner):
    kind, schema, validator = seldon_v2_schema
    model = m.seldon_v2_model(owner, "iris", "odh", model_uri=URI, framework=framework, version=1,
                              secret_name=m.seldon_v2_storage_secret_name(owner))
    assert model["kind"] == kind
    validator.validate(model)
    assert unknown_fields(model, schema) == []


@needs_crds
@pytest.mark.parametrize("framework", ["sklearn", "mlflow"])
@pytest.mark.parametrize("resources", [None, RESOURCES])
def test_inference_service_matches_the_upstream_crd(kserve_schema, framework, resources):
    kind, schema, validator = kserve_schema
    isvc = kserve(framework=framework, resources=resources)
    assert isvc["kind"] == kind
    validator.validate(isvc)
    assert unknown_fields(isvc, schema) == []


@needs_crds
def test_crd_checks_catch_mistakes_in_a_seldon_v2_model(seldon_v2_schema):
    _, schema, validator = seldon_v2_schema
    bad = seldon_v2()
    bad["spec"]["storageURI"] = bad["spec"].pop("storageUri")
    assert unknown_fields(bad, schema) == [".spec.storageURI"]
    with pytest.raises(jsonschema.ValidationError, match="'storageUri' is a required property"):
        validator.validate(bad)
    bad = seldon_v2()
    bad["spec"]["requirements"] = "sklearn"
    with pytest.raises(jsonschema.ValidationError, match="'sklearn' is not of type 'array'"):
        validator.validate(bad)
    bad = seldon_v2()
    bad["spec"]["secretRef"] = {"name": bad["spec"].pop("secretName")}
    assert unknown_fields(bad, schema) == [".spec.secretRef"]


@needs_crds
def test_crd_checks_catch_mistakes(seldon_schema, kserve_schema):
    """The checks above can fail: a misspelt field, a wrong type and a missing required field are reported."""
    _, schema, validator = seldon_schema
    bad = seldon()
    bad["spec"]["predictors"][0]["graph"]["modelURI"] = bad["spec"]["predictors"][0]["graph"].pop("modelUri")
    assert unknown_fields(bad, schema) == [".spec.predictors[0].graph.modelURI"]
    bad["spec"]["predictors"][0]["replicas"] = "one"
    with pytest.raises(jsonschema.ValidationError, match="'one' is not of type 'integer'"):
        validator.validate(bad)
    _, _, validator = kserve_schema
    bad = kserve()
    del bad["spec"]["predictor"]["model"]["modelFormat"]["name"]
    with pytest.raises(jsonschema.ValidationError, match="'name' is a required property"):
        validator.validate(bad)


# -- credentials ------------------------------------------------------------------------------------------------
def test_no_credential_in_the_serving_resources():
    for cr in (seldon(resources=RESOURCES), seldon_v2(), kserve(resources=RESOURCES)):
        text = json.dumps(cr)
        for value in (ACCESS, SECRET):
            assert value not in text and b64(value) not in text


def test_secrets_hold_credentials_only_base64_in_data():
    secrets = [obj for obj in core_objects("alice") if obj["kind"] == "Secret"]
    assert len(secrets) == 3
    for secret in secrets:
        assert "stringData" not in secret
        text = json.dumps(secret)
        assert ACCESS not in text and SECRET not in text
        decoded = "\n".join(base64.b64decode(v).decode() for v in secret["data"].values())
        assert ACCESS in decoded and SECRET in decoded
        outside = json.dumps({k: v for k, v in secret.items() if k != "data"})
        assert b64(ACCESS) not in outside and b64(SECRET) not in outside


# -- errors -----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("framework", ["tensorflow", "SKLEARN", "", "xgboost"])
def test_unknown_framework_is_rejected(framework):
    for build in (seldon, seldon_v2, kserve):
        with pytest.raises(ValueError, match="framework"):
            build(framework=framework)


@pytest.mark.parametrize("uri", ["gs://bucket/model", "https://rgw/models/iris", "/models/iris", "s3://", "S3://x",
                                 "models/iris"])
def test_non_s3_model_uri_is_rejected(uri):
    for build in (seldon, seldon_v2, kserve):
        with pytest.raises(ValueError, match="s3://"):
            build(model_uri=uri)


@pytest.mark.parametrize("endpoint", ["rgw.ceph.svc:8080", "ftp://rgw", "http://", ""])
def test_endpoint_must_be_an_http_url(endpoint):
    for build in (m.rclone_storage_secret, m.seldon_v2_storage_secret, m.kserve_storage_secret):
        with pytest.raises(ValueError, match="endpoint"):
            build("alice", "odh", access_key=ACCESS, secret_key=SECRET, endpoint=endpoint)


# -- names ------------------------------------------------------------------------------------------------------
def test_readable_names_for_plain_owners():
    assert m.resource_name("alice", "iris") == "alice--iris"
    assert m.resource_name("alice", "my--model") == "alice--my--model"
    assert m.storage_secret_name("alice") == "odh-model-storage-alice"
    hashed = m.resource_name("Jane.Doe@example.org", "iris")
    assert hashed.startswith("jane-doe-example-org-iris-") and "--" not in hashed
    assert m.storage_secret_name("Jane.Doe@example.org").startswith("odh-model-storage-jane-doe-example-org--")


def test_tricky_owners_get_valid_distinct_names():
    for name in ("iris", "m" * 40, "a--b", "1st"):
        names = [m.resource_name(owner, name) for owner in TRICKY_OWNERS]
        assert len(set(names)) == len(TRICKY_OWNERS)
        assert all(DNS_LABEL.match(n) for n in names), names
    for per_user in (m.storage_secret_name, m.seldon_v2_storage_secret_name, m.kserve_storage_secret_name,
                     m.kserve_service_account_name):
        names = [per_user(owner) for owner in TRICKY_OWNERS]
        assert len(set(names)) == len(TRICKY_OWNERS) and all(DNS_LABEL.match(n) for n in names), names
    # the classic ambiguities of joining two parts with '-'
    pairs = [("a-b", "c"), ("a", "b-c"), ("a", "b--c"), ("a--b", "c"), ("a-", "b"), ("a", "-b")]
    assert len({m.resource_name(o, n) for o, n in pairs}) == len(pairs)


def test_a_hashed_name_never_equals_a_plain_one():
    """A user may literally be called what another user's name hashes to."""
    hashed_owner = m.storage_secret_name("Alice").removeprefix("odh-model-storage-")
    assert m.storage_secret_name(hashed_owner) != m.storage_secret_name("Alice")
    hashed = m.resource_name("Alice", "iris")
    owner, _, name = hashed.rpartition("-")
    assert m.resource_name(owner, name) != hashed and m.resource_name(hashed, "iris") != hashed


dns_names = st.from_regex(r"\A[a-z0-9]([-a-z0-9]{0,38}[a-z0-9])?\Z")


@settings(max_examples=300, deadline=None)
@given(owners=st.lists(st.text(max_size=80), min_size=2, max_size=8, unique=True), name=dns_names)
def test_resource_name_is_a_dns_label_and_injective_over_owners(owners, name):
    names = [m.resource_name(owner, name) for owner in owners]
    assert all(len(n) <= 63 and DNS_LABEL.match(n) for n in names), names
    assert len(set(names)) == len(owners)
    secrets = [m.storage_secret_name(owner) for owner in owners]
    assert all(DNS_LABEL.match(s) for s in secrets) and len(set(secrets)) == len(owners)


@settings(max_examples=300, deadline=None)
@given(pairs=st.lists(st.tuples(st.text(alphabet="aA-._1 ", max_size=12), dns_names), min_size=2, max_size=10,
                      unique=True))
def test_resource_name_is_injective_over_pairs(pairs):
    assert len({m.resource_name(o, n) for o, n in pairs}) == len(pairs)


# -- status -----------------------------------------------------------------------------------------------------
SELDON_URL = "http://alice--iris-default.odh.svc.cluster.local:8000/api/v1.0/predictions"


@pytest.mark.parametrize("status,expected", [
    (None, {"state": "Creating", "url": None, "message": None}),
    ({}, {"state": "Creating", "url": None, "message": None}),
    ({"state": "Creating", "description": ""}, {"state": "Creating", "url": None, "message": None}),
    ({"state": "Available", "address": {"url": SELDON_URL}, "replicas": 1},
     {"state": "Available", "url": SELDON_URL, "message": None}),
    ({"state": "Failed", "description": "Cannot find secret odh-model-storage-alice"},
     {"state": "Failed", "url": None, "message": "Cannot find secret odh-model-storage-alice"}),
    ({"state": "Unknown"}, {"state": "Creating", "url": None, "message": None}),
])
def test_seldon_state(status, expected):
    cr = seldon()
    if status is not None:
        cr["status"] = status
    assert m.deployment_state(cr) == expected


def cond(type_, status, reason=None, message=None) -> dict:
    c = {"type": type_, "status": status, "lastTransitionTime": "2026-01-01T00:00:00Z"}
    return {**c, **({"reason": reason} if reason else {}), **({"message": message} if message else {})}


# Seldon Core 2 Model statuses as its operator writes them: the scheduler's state is the condition's message and its
# explanation the reason (upstream samples/k8s-examples.md and docs-gb/examples/notebooks/k8s-resource-deletion.ipynb)
SCHEDULE_FAILED = ("failed to schedule model iris. [failed replica filter RequirementsReplicaFilter for server "
                   "replica triton:0 : model requirements [sklearn] replica capabilities [triton onnx]]")
DOWNLOAD_FAILED = "Failed to download from s3://models/alice/iris/3 any files"


def v2_conditions(status, message=None, reason=None, types=("ModelReady", "Ready")) -> dict:
    return {"conditions": [cond(t, status, reason, message) for t in types], "replicas": 1}


@pytest.mark.parametrize("status,expected", [
    (None, {"state": "Creating", "url": None, "message": None}),
    ({"conditions": []}, {"state": "Creating", "url": None, "message": None}),
    (v2_conditions("True"), {"state": "Available", "url": None, "message": None}),
    (v2_conditions("True", "ModelAvailable"), {"state": "Available", "url": None, "message": None}),
    (v2_conditions("True", types=("Ready",)), {"state": "Available", "url": None, "message": None}),
    (v2_conditions("False", "ScheduleFailed", SCHEDULE_FAILED),
     {"state": "Failed", "url": None, "message": SCHEDULE_FAILED}),
    (v2_conditions("False", "ModelFailed", DOWNLOAD_FAILED),
     {"state": "Failed", "url": None, "message": DOWNLOAD_FAILED}),
    (v2_conditions("False", "ModelFailed"), {"state": "Failed", "url": None, "message": "ModelFailed"}),
    # the reason/message order of the Kubernetes convention, should upstream ever swap them
    (v2_conditions("False", DOWNLOAD_FAILED, "ModelFailed"),
     {"state": "Failed", "url": None, "message": DOWNLOAD_FAILED}),
    # "False" with a reason is not always a failure: the operator retries a scheduler it could not reach
    (v2_conditions("False", "ModelProgressing", "rpc error: code = Unavailable"),
     {"state": "Creating", "url": None, "message": "rpc error: code = Unavailable"}),
    (v2_conditions("False", "ModelProgressing"), {"state": "Creating", "url": None, "message": "ModelProgressing"}),
    (v2_conditions("False", "ModelScaledDown"), {"state": "Creating", "url": None, "message": "ModelScaledDown"}),
    (v2_conditions("Unknown"), {"state": "Creating", "url": None, "message": None}),
    # ModelReady decides; Ready only when ModelReady is missing
    ({"conditions": [cond("ModelReady", "False", "ModelFailed", "ModelFailed"), cond("Ready", "True")]},
     {"state": "Failed", "url": None, "message": "ModelFailed"}),
])
def test_seldon_v2_state(status, expected):
    cr = seldon_v2()
    if status is not None:
        cr["status"] = status
    assert m.deployment_state(cr) == expected == m.seldon_v2_state(cr)


def test_model_ready_condition_prefers_model_ready():
    ready, model_ready = cond("Ready", "True"), cond("ModelReady", "False", "x", "ScheduleFailed")
    assert m.model_ready_condition({"status": {"conditions": [ready, model_ready]}}) == model_ready
    assert m.model_ready_condition({"status": {"conditions": [ready]}}) == ready
    assert m.model_ready_condition({"status": {}}) == {} == m.model_ready_condition({})


KSERVE_URL = "http://alice--iris.odh.example.com"


@pytest.mark.parametrize("status,expected", [
    (None, {"state": "Creating", "url": None, "message": None}),
    ({"conditions": [cond("PredictorReady", "Unknown"), cond("Ready", "Unknown", "RevisionMissing", "waiting")]},
     {"state": "Creating", "url": None, "message": "waiting"}),
    ({"url": KSERVE_URL, "conditions": [cond("IngressReady", "True"), cond("PredictorReady", "True"),
                                        cond("Ready", "True")]},
     {"state": "Available", "url": KSERVE_URL, "message": None}),
    ({"address": {"url": KSERVE_URL}, "conditions": [cond("Ready", "True")]},
     {"state": "Available", "url": KSERVE_URL, "message": None}),
    ({"conditions": [cond("PredictorReady", "False", "ModelLoadFailed", "no model at s3://models/alice/iris/3"),
                     cond("Ready", "False", "ModelLoadFailed", "no model at s3://models/alice/iris/3")]},
     {"state": "Failed", "url": None, "message": "no model at s3://models/alice/iris/3"}),
    ({"conditions": [cond("Ready", "False", "RevisionFailed")]},
     {"state": "Failed", "url": None, "message": "RevisionFailed"}),
    ({"conditions": [cond("Ready", "False", "PredictorNotReady", "progressing")]},
     {"state": "Creating", "url": None, "message": "progressing"}),
])
def test_kserve_state(status, expected):
    cr = kserve()
    if status is not None:
        cr["status"] = status
    assert m.deployment_state(cr) == expected


def test_state_of_another_kind_is_an_error():
    with pytest.raises(ValueError, match="ConfigMap"):
        m.deployment_state({"kind": "ConfigMap"})


# -- only the platform reaches the model servers ----------------------------------------------------------------
def test_serving_network_policy_is_exactly_this():
    assert m.serving_network_policy("odh", "seldon", platform_pod_labels={"app.kubernetes.io/component": "platform"}) \
        == {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "odh-model-serving-seldon", "namespace": "odh",
                     "labels": {"app.kubernetes.io/managed-by": "odh-hub",
                                "app.kubernetes.io/component": "model-serving"}},
        "spec": {
            "podSelector": {"matchExpressions": [{"key": "seldon-deployment-id", "operator": "Exists"}]},
            "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"podSelector": {"matchLabels": {"app.kubernetes.io/component": "platform"}}}]}],
        },
    }


def test_serving_network_policy_options():
    kserve = m.serving_network_policy("models", "kserve", platform_pod_labels={"app": "odh-platform"},
                                      platform_namespace="odh",
                                      extra_from=[{"namespaceSelector": {"matchLabels": {"name": "knative"}}}])
    assert kserve["spec"]["podSelector"] == {
        "matchExpressions": [{"key": "serving.kserve.io/inferenceservice", "operator": "Exists"}]}
    assert kserve["spec"]["ingress"] == [{"from": [
        {"podSelector": {"matchLabels": {"app": "odh-platform"}},
         "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "odh"}}},
        {"namespaceSelector": {"matchLabels": {"name": "knative"}}}]}]
    # the same namespace needs no namespace selector
    same = m.serving_network_policy("odh", "kserve", platform_pod_labels={"a": "b"}, platform_namespace="odh")
    assert "namespaceSelector" not in same["spec"]["ingress"][0]["from"][0]
    with pytest.raises(ValueError, match="give pod_selector"):
        m.serving_network_policy("odh", "seldon-v2", platform_pod_labels={"a": "b"})
    v2 = m.serving_network_policy("odh", "seldon-v2", platform_pod_labels={"a": "b"},
                                  pod_selector={"matchLabels": {"app.kubernetes.io/name": "seldon-envoy"}})
    assert v2["metadata"]["name"] == "odh-model-serving-seldon-v2"
    with pytest.raises(ValueError, match="platform_pod_labels"):
        m.serving_network_policy("odh", "seldon", platform_pod_labels={})


@pytest.mark.parametrize("k8s", ["1.30", K8S_VERSION])
@pytest.mark.parametrize("kind", ["seldon", "kserve"])
def test_serving_network_policy_is_valid_kubernetes(kind, k8s):
    policy = m.serving_network_policy("odh", kind, platform_pod_labels={"app.kubernetes.io/name": "odh-hub"},
                                      platform_namespace="platform",
                                      extra_from=[{"namespaceSelector": {"matchLabels": {"x": "y"}}}])
    kubernetes_validate.validate(policy, k8s, strict=True)


RGW = {"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "rook-ceph"}}}


def test_serving_network_policy_restricts_egress_to_the_object_store_and_dns():
    policy = m.serving_network_policy("odh", "kserve", platform_pod_labels={"a": "b"}, egress_to=[RGW],
                                      egress_ports=[80, 7480], dns_ports=[53])
    assert policy["spec"]["policyTypes"] == ["Ingress", "Egress"]
    assert policy["spec"]["egress"] == [
        {"ports": [{"port": 53, "protocol": "UDP"}, {"port": 53, "protocol": "TCP"}]},
        {"to": [RGW], "ports": [{"port": 80, "protocol": "TCP"}, {"port": 7480, "protocol": "TCP"}]},
    ]
    open_policy = m.serving_network_policy("odh", "kserve", platform_pod_labels={"a": "b"})
    assert open_policy["spec"]["policyTypes"] == ["Ingress"] and "egress" not in open_policy["spec"]


@pytest.mark.parametrize("k8s", ["1.30", K8S_VERSION])
def test_serving_network_policy_with_egress_is_valid_kubernetes(k8s):
    policy = m.serving_network_policy("odh", "seldon", platform_pod_labels={"a": "b"}, egress_to=[RGW],
                                      egress_ports=[80], dns_ports=[53])
    kubernetes_validate.validate(policy, k8s, strict=True)


def test_the_serving_backend_reads_egress_peers_and_ports_from_the_command_line():
    from traitlets import TraitError
    from traitlets.config import Config

    from odh_spawner.deploy.kube import KubeServingBackend

    c = Config()
    c.KubeServingBackend.network_policy_egress_to = ['{"namespaceSelector": {"matchLabels": {"a": "b"}}}']
    c.KubeServingBackend.network_policy_egress_ports = ["80", 7480]
    backend = KubeServingBackend(config=c)
    assert backend.network_policy_egress_to == [{"namespaceSelector": {"matchLabels": {"a": "b"}}}]
    assert backend.network_policy_egress_ports == [80, 7480] and backend.network_policy_dns_ports == [53]
    for bad in (["not json"], ["[]"], [{}]):
        with pytest.raises(TraitError, match="network_policy_egress_to peer"):
            KubeServingBackend(network_policy_egress_to=bad)
    with pytest.raises(TraitError, match="not a port number"):
        KubeServingBackend(network_policy_egress_ports=["http"])
