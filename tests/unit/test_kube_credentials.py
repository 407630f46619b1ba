"""On Kubernetes the user's keys live in a per-user Secret and reach the pod only by secretKeyRef."""

import json

import pytest

from odh_spawner.credentials import S3Credentials, rgw_uid, secret_name
from odh_spawner.credentials.kube import hub_token_env, hub_token_secret, s3_env, s3_secret
from tests.support.kube import validate
from tests.unit.test_kube_pods import make_spawner, pod_for  # noqa: F401 - fixture

CREDS = S3Credentials("AKIAEXAMPLEACCESS", "very-secret-key-0123456789", "http://rgw.ceph:8080")


def test_secret_manifest_is_valid_and_holds_the_keys():
    secret = s3_secret("alice", CREDS, "odh", {"team": "a"})
    validate(secret)
    assert secret["metadata"]["name"] == "odh-s3-alice" and secret["metadata"]["namespace"] == "odh"
    assert secret["stringData"] == {"AWS_ACCESS_KEY_ID": CREDS.access_key, "AWS_SECRET_ACCESS_KEY": CREDS.secret_key}
    assert secret["metadata"]["labels"]["team"] == "a"


@pytest.mark.parametrize("user,expected", [("alice", "odh-s3-alice"), ("Bob.Smith@corp", None), ("x" * 80, None)])
def test_names_are_dns_safe_and_distinct(user, expected):
    name = secret_name(user)
    assert len(name) <= 63 and all(c.isalnum() or c == "-" for c in name) and name == name.lower()
    if expected:
        assert name == expected
    assert rgw_uid(user).startswith("odh-")
    assert secret_name("Bob.Smith@corp") != secret_name("bob-smith-corp")


async def test_pod_gets_keys_only_by_secret_key_ref(make_spawner):  # noqa: F811
    sp = make_spawner("alice", ["data-science"])
    sp.environment = {**sp.environment, **s3_env("alice", CREDS.endpoint)}
    pod = await pod_for(sp, {"profile": "minimal"})
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[key] == {"name": key, "valueFrom": {"secretKeyRef": {"name": "odh-s3-alice", "key": key}}}
    assert env["S3_ENDPOINT_URL"]["value"] == "http://rgw.ceph:8080"
    assert env["AWS_REQUEST_CHECKSUM_CALCULATION"]["value"] == "WHEN_REQUIRED"
    text = json.dumps(pod)
    assert CREDS.secret_key not in text and CREDS.access_key not in text


def test_credentials_repr_hides_the_secret():
    assert CREDS.secret_key not in repr(CREDS) and CREDS.secret_key not in str(CREDS)
    assert CREDS.env()["AWS_SECRET_ACCESS_KEY"] == CREDS.secret_key  # only the local process env gets it


HUB_TOKEN = "0123456789abcdef0123456789abcdef"


def test_hub_token_secret_and_env_references():
    secret = hub_token_secret("jupyter-alice-hub-token", "odh", "alice", "", HUB_TOKEN)
    validate(secret)
    assert secret["stringData"] == {"token": HUB_TOKEN}
    assert secret["metadata"]["labels"]["odh-hub/component"] == "hub-token"
    env = hub_token_env({"JUPYTERHUB_API_TOKEN": HUB_TOKEN, "JPY_API_TOKEN": HUB_TOKEN, "OTHER": "x"}, "s")
    ref = {"valueFrom": {"secretKeyRef": {"name": "s", "key": "token"}}}
    assert env == {"JUPYTERHUB_API_TOKEN": ref, "JPY_API_TOKEN": ref, "OTHER": "x"}


async def test_pod_gets_the_hub_token_only_by_secret_key_ref(make_spawner):  # noqa: F811
    sp = make_spawner("alice", ["data-science"])
    sp.api_token = HUB_TOKEN
    pod = await pod_for(sp, {"profile": "minimal"})
    env = {e["name"]: e for e in pod["spec"]["containers"][0]["env"]}
    assert env["JUPYTERHUB_API_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "jupyter-alice-hub-token", "key": "token"}}
    assert HUB_TOKEN not in json.dumps(pod)
    # an admin who turns it off gets KubeSpawner's literal value back
    plain = make_spawner("alice", ["data-science"], api_token_secret=False)
    plain.api_token = HUB_TOKEN
    env = {e["name"]: e for e in (await pod_for(plain, {"profile": "minimal"}))["spec"]["containers"][0]["env"]}
    assert env["JUPYTERHUB_API_TOKEN"]["value"] == HUB_TOKEN
