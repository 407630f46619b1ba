"""Pure deployment logic: names, frameworks, URIs, versions and rollback, API JSON, MLServer settings, widgets."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odh_spawner.deploy.local import LocalMLServerBackend, failure_tail, model_settings, server_settings
from odh_spawner.deploy.model import (AVAILABLE, FAILED, RETIRED, DeployError, Deployment, DeploymentNotFound,
                                      parse_model_uri, v2_request, validate_framework, validate_name,
                                      validate_rows)
from odh_spawner.deploy.store import DeploymentStore
from server_extension.deploy import DeployError as ClientDeployError
from server_extension.deploy import _rows, serialize
from server_extension.deploy_widget import stages_html


@pytest.mark.parametrize("name", ["churn", "a", "churn-v2", "m" * 40, "x1-2-3"])
def test_valid_names(name):
    assert validate_name(name) == name


@pytest.mark.parametrize("name,words", [
    ("", "needs a name"), (None, "needs a name"), (3, "needs a name"), ("Churn", "DNS-safe"),
    ("churn_v2", "DNS-safe"), ("-churn", "DNS-safe"), ("churn-", "DNS-safe"), ("1churn", "DNS-safe"),
    ("a.b", "DNS-safe"), ("churn\n", "DNS-safe"), ("m" * 41, "too long"),
])
def test_invalid_names_say_why(name, words):
    with pytest.raises(DeployError, match=words) as e:
        validate_name(name)
    assert e.value.status_code == 400


@given(st.text(max_size=60))
def test_names_are_dns_labels_or_refused(name):
    try:
        validate_name(name)
    except DeployError:
        return
    assert len(name) <= 40 and name[0].isalpha() and set(name) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


def test_frameworks_and_uris():
    assert validate_framework("sklearn") == "sklearn"
    with pytest.raises(DeployError, match="Unsupported model framework 'xgboost'"):
        validate_framework("xgboost")
    assert parse_model_uri("s3://b/models/churn") == ("b", "models/churn/")
    assert parse_model_uri("s3://b/") == ("b", "")
    for bad in ("http://b/x", "s3:///x", "b/x", 7, None):
        with pytest.raises(DeployError, match="s3://"):
            parse_model_uri(bad)


def test_versions_rollback_and_api_json():
    d = Deployment(owner="alice", name="churn", model_name="alice.churn")
    v1 = d.add_version("s3://b/odh-deployments/churn/1/", "sklearn", [[1.0, 2.0]])
    assert (v1.version, d.target, d.state, d.stage) == (1, 1, "Creating", "creating")
    with pytest.raises(DeployError, match="no earlier working version"):
        d.rollback_target()
    v1.state, d.serving, d.url = AVAILABLE, 1, "http://hub"
    v2 = d.add_version("s3://b/odh-deployments/churn/2/", "sklearn")
    v2.state, v1.state, d.serving = AVAILABLE, RETIRED, 2
    assert d.rollback_target() is v1
    v3 = d.add_version("s3://b/x/", "sklearn")
    v3.state = FAILED
    assert d.rollback_target() is v1  # a failed version is never a rollback target
    with pytest.raises(DeploymentNotFound):
        d.version_of(9)
    api = d.to_api()
    assert api["infer_url"] == "http://hub/v2/models/alice.churn/infer"
    assert api["version"] == 2 and api["target_version"] == 3 and len(api["versions"]) == 3
    assert "runtime" not in api and "example_input" not in json.dumps(api["versions"])
    assert d.version_of(1).example_input == [[1.0, 2.0]]
    d.serving = 1
    ex = d.example_request()
    assert ex["body"] == {"inputs": [{"name": "input-0", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
    assert ex["curl"].startswith("curl -s -X POST http://hub/v2/models/alice.churn/infer")
    assert Deployment.from_json(json.loads(json.dumps(d.to_json()))).to_api() == d.to_api()


def test_v2_request_and_rows():
    assert v2_request([[1, 2], [3, 4]])["inputs"][0] == {"name": "input-0", "shape": [2, 2], "datatype": "INT64",
                                                         "data": [1, 2, 3, 4]}
    assert validate_rows([[1, 2.5]]) == [[1, 2.5]]
    for bad in ([], [[]], [["a"]], [[1], [1, 2]], [[True]], "x", [[1]] * 10_001):
        with pytest.raises(DeployError):
            validate_rows(bad)


def test_mlserver_settings(tmp_path):
    d = Deployment(owner="alice", name="churn", model_name="alice.churn")
    v = d.add_version("s3://b/p/", "sklearn")
    (tmp_path / "model.pkl").write_bytes(b"x")
    assert model_settings("alice.churn", v, str(tmp_path)) == {
        "name": "alice.churn", "implementation": "mlserver_sklearn.SKLearnModel",
        "parameters": {"uri": "./model.pkl", "version": "v1"}}
    s = server_settings(1, 2, 3)
    assert s["host"] == "127.0.0.1" and s["parallel_workers"] == 0 and (s["http_port"], s["grpc_port"]) == (1, 2)
    # model names are unique per (owner, name): an owner slug has no "." and neither has a deployment name
    names = {LocalMLServerBackend.model_name_for(o, n) for o, n in [("a", "b-c"), ("a-b", "c"), ("A", "b"), ("a", "b")]}
    assert len(names) == 4


def test_store_round_trip(tmp_path):
    store = DeploymentStore(str(tmp_path))
    d = Deployment(owner="Alice Smith", name="churn", model_name="x")
    d.add_version("s3://b/p/", "sklearn")
    store.save(d)
    (tmp_path / "junk").mkdir()
    ((tmp_path / "junk") / "bad").mkdir()
    ((tmp_path / "junk") / "bad" / "deployment.json").write_text("{not json")
    (loaded,) = store.load_all()
    assert loaded.to_json() == d.to_json()
    store.remove(d)
    assert store.load_all() == []


def test_client_serialisation_errors(tmp_path):
    with pytest.raises(ClientDeployError, match="Cannot deploy a dict"):
        serialize({"a": 1}, str(tmp_path))
    with pytest.raises(ClientDeployError, match="not an MLflow model folder"):
        serialize(str(tmp_path), str(tmp_path))
    from sklearn.linear_model import LinearRegression

    model = LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0])
    model.unpicklable = lambda: None
    with pytest.raises(ClientDeployError, match="cannot be serialised with joblib"):
        serialize(model, str(tmp_path))
    (tmp_path / "mlflow").mkdir()
    (tmp_path / "mlflow" / "MLmodel").write_text("flavors: {}")
    framework, files = serialize(str(tmp_path / "mlflow"), str(tmp_path))
    assert framework == "mlflow" and [k for _, k in files] == ["MLmodel"]


def test_rows_and_stage_line():
    import numpy as np

    assert _rows(np.array([[1.5, 2.0]])) == [[1.5, 2.0]] and _rows([1, 2]) == [[1], [2]] and _rows(None) is None
    line = stages_html("starting")
    assert "data-stage='uploading' data-state='done'" in line and "data-stage='starting' data-state='active'" in line
    assert "data-stage='ready' data-state='pending'" in line
    assert "data-stage='ready' data-state='done'" in stages_html("ready")
    assert "data-state='failed'" in stages_html("creating", failed=True)


MLSERVER_FAILURE = """INFO:     Started server process [1]
2026-11-22 02:08:15,700 [mlserver] ERROR - Some of the models failed to load
Traceback (most recent call last):
  File "/venv/lib/python3.11/site-packages/mlserver/registry.py", line 167, in _load_model
    model.ready = await model.load()

  File "/venv/lib/python3.11/site-packages/joblib/numpy_pickle.py", line 632, in _unpickle
    obj = unpickler.load()
KeyError: 110
2026-11-22 02:08:15,721 [mlserver.grpc] INFO - Waiting for gRPC server shutdown
INFO:     Shutting down
INFO:     Application shutdown complete.
INFO:     Finished server process [1]
"""


def test_failure_tail_ends_at_the_exception_not_the_shutdown_noise():
    tail = failure_tail(MLSERVER_FAILURE, 20)
    assert tail[0] == "INFO:     Started server process [1]" and tail[-1] == "KeyError: 110"
    assert failure_tail(MLSERVER_FAILURE, 3) == ["  File \"/venv/lib/python3.11/site-packages/joblib/numpy_pickle.py\", "
                                                 "line 632, in _unpickle", "    obj = unpickler.load()", "KeyError: 110"]
    plain = "a\nb\nc\n"
    assert failure_tail(plain, 2) == ["b", "c"] and failure_tail("", 5) == []


def test_failure_tail_shows_the_cause_when_uvicorn_logs_it_again_wrapped():
    """Start-up failures (exit code 3): uvicorn logs a second traceback through its own frames after MLServer's;
    the tail is the first, which names the model's loader (fresh-clone CI saw the second, without joblib)."""
    wrapped = MLSERVER_FAILURE.replace("INFO:     Shutting down\n", "ERROR:    Traceback (most recent call last):\n"
                                       "Traceback (most recent call last):\n"
                                       '  File "/venv/lib/python3.11/site-packages/starlette/routing.py", line 694\n'
                                       "    await self._router.startup()\n"
                                       "KeyError: 110\nERROR:    Application startup failed. Exiting.\n")
    tail = failure_tail(wrapped, 20)
    assert tail[-1] == "KeyError: 110" and any("joblib" in line for line in tail)
    assert not any("starlette" in line for line in tail)


def test_printed_example_requests_hide_the_key():
    from server_extension.deploy import redacted_curl

    d = Deployment(owner="alice", name="churn", model_name="alice.churn", api_key="odhk_abc", url="http://hub")
    d.add_version("s3://b/p/", "sklearn", example_input=[[1.0]])
    d.serving = 1
    info = d.to_api(with_key=True)
    printed = redacted_curl(info)
    assert "odhk_abc" not in printed and '"Authorization: Bearer $ODH_MODEL_KEY"' in printed
    assert printed == d.to_api()["example_request"]["curl"]  # the same line the listing shows
    d.public = True
    assert "Authorization" not in redacted_curl(d.to_api(with_key=True))


# -- the model's digests, recorded at upload and checked by the loader (issue 18) -----------------------------
DIGEST = "a" * 64


def test_digests_are_validated():
    from odh_spawner.deploy.model import validate_digests

    assert validate_digests(None) is None
    assert validate_digests({"model.joblib": DIGEST}) == {"model.joblib": DIGEST}
    for bad in ({}, [], "abc", {"model.joblib": "A" * 64}, {"model.joblib": "a" * 63}, {"../x": DIGEST},
                {"/etc/passwd": DIGEST}, {"": DIGEST}, {"m": 5}):
        with pytest.raises(DeployError):
            validate_digests(bad)


def test_a_version_records_its_digests_and_older_records_still_load(tmp_path):
    d = Deployment(owner="alice", name="churn")
    d.add_version("s3://b/p/", "sklearn", sha256={"model.joblib": DIGEST})
    again = Deployment.from_json(json.loads(json.dumps(d.to_json())))
    assert again.versions[0].sha256 == {"model.joblib": DIGEST}
    old = d.to_json()
    del old["versions"][0]["sha256"]  # a record written before digests existed
    assert Deployment.from_json(old).versions[0].sha256 is None


def test_the_loader_expects_exactly_the_recorded_files():
    from odh_spawner.deploy.artifacts import CHANGED, expect_digests

    objects = [{"Key": "p/model.joblib", "Size": 3}, {"Key": "p/extra.pkl", "Size": 1}]
    assert expect_digests(objects, "p/", None) is objects  # older records: unchanged, no digest checked
    assert expect_digests(objects, "p/", {"model.joblib": DIGEST}) == [
        {"Key": "p/model.joblib", "Size": 3, "sha256": DIGEST}]  # a file added later is not fetched
    with pytest.raises(DeployError, match=CHANGED):
        expect_digests(objects, "p/", {"model.joblib": DIGEST, "gone.txt": DIGEST})
    assert CHANGED == "The model file changed after upload; deploy it again."
