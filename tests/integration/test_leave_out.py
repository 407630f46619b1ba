"""A profile that leaves features out on purpose (issue 19), with a real hub spawn: alice starts a server from a
test-only profile leaving out Kafka ingestion and model deployment. Her server's GET /odh/api/features says so
with the reason naming the profiles of hers that have them; every endpoint of those features answers 409 with
that message (the Python client raises it as OdhApiError, in a real kernel of her server too); buckets, still
on, work; bob cannot read her server's features."""

import contextlib

import pytest
import requests

from server_extension.client import BucketClient, OdhApiError
from server_extension.deploy import DeployClient
from tests.support.kernel import Kernel
from tests.support.profiles import extra_profiles, profile
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

SLUG, NAME = "lean-test", "Lean Test"
# alice's profiles that offer both: the demo's minimal and datascience (pytorch-gpu is ml-engineering's)
INGEST_OFF = ("Kafka ingestion is left out of your server's profile 'Lean Test'; start your server with "
              "'Minimal Python' or 'Standard Data Science' to use it.")
DEPLOY_OFF = ("Model deployment is left out of your server's profile 'Lean Test'; start your server with "
              "'Minimal Python' or 'Standard Data Science' to use it.")


def lean_profile() -> dict:
    """Runs in the minimal image's lock environment (the notebook side of this checkout, as users get it)."""
    return profile(SLUG, display_name=NAME, users=["alice"], leave_out=["ingestions", "deployments"],
                   local={"environment": {"lock": "images/minimal/requirements.lock"}})


@contextlib.contextmanager
def alice_on_the_lean_profile(login, config_dir):
    """alice's server started from the test-only profile (offered to her alone while this runs), stopped after."""
    alice = login("alice")
    if alice.model()["servers"].get(""):
        alice.stop()
    with extra_profiles(config_dir, lean_profile()):
        wait_for(lambda: SLUG in alice.offered_profiles(), 30, "the hub to offer the test profile")
        r = alice.api("POST", "/users/alice/server", json={"profile": SLUG})
        assert r.status_code in (201, 202), r.text
        alice.wait_ready(timeout=180)
        try:
            yield alice
        finally:
            alice.stop()


@pytest.fixture(scope="module")
def lean_server(hub, login, config_dir):
    with alice_on_the_lean_profile(login, config_dir) as alice:
        yield alice


def _api(alice, method: str, path: str, **kw) -> requests.Response:
    return requests.request(method, f"{alice.url}/user/alice/odh/api/{path}", headers=alice.auth, timeout=60, **kw)


def test_features_answer_what_the_profile_left_out_and_why(lean_server):
    r = _api(lean_server, "GET", "features")
    assert r.status_code == 200, r.text
    got = r.json()
    assert got["profile"] == NAME
    assert got["features"]["ingestions"] == {"enabled": False, "reason": INGEST_OFF, "left_out": True}
    assert got["features"]["deployments"] == {"enabled": False, "reason": DEPLOY_OFF, "left_out": True}
    assert got["features"]["buckets"] == {"enabled": True, "reason": None, "left_out": False}
    spark = got["features"]["spark"]  # no spark: block -> left out; datascience offers it
    assert spark["left_out"] and spark["reason"] == (
        "Spark is left out of your server's profile 'Lean Test'; start your server with 'Standard Data Science' "
        "to use it."), spark


@pytest.mark.parametrize("method, path, body, message", [
    ("GET", "ingestions", None, INGEST_OFF),
    ("POST", "ingestions", {"topic": "t", "bucket": "alice-x"}, INGEST_OFF),
    ("GET", "ingestions/some-name/verify", None, INGEST_OFF),
    ("GET", "kafka/topics", None, INGEST_OFF),
    ("GET", "deployments", None, DEPLOY_OFF),
    ("POST", "deployments", {"name": "m", "model_uri": "s3://alice-x/m/"}, DEPLOY_OFF),
    ("DELETE", "deployments/m", None, DEPLOY_OFF),
])
def test_every_endpoint_of_a_left_out_feature_answers_409_with_the_reason(lean_server, method, path, body, message):
    r = _api(lean_server, method, path, json=body)
    assert r.status_code == 409, (r.status_code, r.text)
    assert r.json()["message"] == message


def test_spark_status_says_why_and_its_actions_are_refused(lean_server):
    r = _api(lean_server, "GET", "spark")
    assert r.status_code == 200 and r.json()["enabled"] is False, r.text
    assert r.json()["reason"].startswith("Spark is left out of your server's profile 'Lean Test'")
    r = _api(lean_server, "POST", "spark/scale", json={"workers": 1})
    assert r.status_code == 409, r.text
    assert r.json()["message"] == ("Spark is left out of your server's profile 'Lean Test'; start your server with "
                                   "'Standard Data Science' to use it.")


def test_the_python_clients_raise_the_reason(lean_server):
    base = f"{lean_server.url}/user/alice/"
    with pytest.raises(OdhApiError) as e:
        DeployClient(base, lean_server.token).list()
    assert (e.value.status, e.value.message) == (409, DEPLOY_OFF)
    # in alice's own kernel: odh_hub.ingest refuses before anything is sent, with the same message
    kernel = Kernel(base, lean_server.token)
    try:
        out = kernel.execute("from odh_hub import OdhApiError, ingest\n"
                             "try:\n    ingest('clicks', 'alice-x')\n"
                             "except OdhApiError as e:\n    print(e.status, e.message)\n")
    finally:
        kernel.close()
    assert out.strip() == f"409 {INGEST_OFF}"


def test_a_feature_still_on_works(lean_server):
    c = BucketClient(f"{lean_server.url}/user/alice/", lean_server.token)
    if "alice-lean" not in [b["name"] for b in c.list_buckets()]:
        assert c.create_bucket("alice-lean")["name"] == "alice-lean"
    assert "alice-lean" in [b["name"] for b in c.list_buckets()]
    assert c.put_small("alice-lean", "hello.txt", b"still on")["size"] == 8
    assert c.get_bytes("alice-lean", "hello.txt") == b"still on"


def test_bob_cannot_read_alices_features(lean_server, login):
    bob = login("bob")
    r = requests.get(f"{lean_server.url}/user/alice/odh/api/features", headers=bob.auth, timeout=30,
                     allow_redirects=False)
    assert r.status_code == 403, (r.status_code, r.text[:200])
