"""The admin view's API against a real hub, its proxy, the platform service, real RGW and a real Kafka broker:
an admin's token sees every user's servers, deployments, ingestions and storage use (with their last errors)
and stops, deletes and stops them; a user who is not an admin gets 403 with a message, whatever they ask."""

from __future__ import annotations

import asyncio

import pytest
import requests

from odh_spawner.credentials.buckets import s3_client
from odh_spawner.credentials.naming import rgw_uid
from odh_spawner.credentials.rgw import RgwCredentialStore
from odh_spawner.naming import models_bucket
from odh_spawner.quantities import format_bytes
from tests.support import secretscan
from tests.support.fixtures import process_env, server_pid, wait_spark_ready
from tests.support.profiles import broken_profile, extra_profiles
from tests.support.wait import wait_for

NOT_ADMIN = "Only hub admins may use the admin view."
DEPLOYMENT = "admin-view-missing"
INGESTION = "admin-view"


def platform_api(hub) -> str:
    return hub.runtime["platform_url"] + "/services/odh-platform/api"


def call(hub, token: str | None, method: str, path: str, **kw) -> requests.Response:
    headers = {"Authorization": f"token {token}"} if token else {}
    return requests.request(method, platform_api(hub) + path, headers=headers, timeout=60,
                            hooks={"response": secretscan.record_requests_response}, **kw)


def overview(hub, admin) -> dict:
    r = call(hub, admin.token, "GET", "/admin/overview")
    assert r.status_code == 200, r.text
    return r.json()


def user_of(o: dict, name: str) -> dict | None:
    return next((u for u in o["users"] if u["name"] == name), None)


STORED = 3000  # bytes alice stores, for the overview's storage use


@pytest.fixture(scope="module")
def rgw(ceph):
    return RgwCredentialStore(ceph.endpoint, ceph.admin.access_key, ceph.admin.secret_key, timeout=5)


@pytest.fixture(scope="module")
def alice_things(hub, login, rgw):
    """alice's object of STORED bytes in her models bucket (with her own keys), her deployment of a model that
    is not there (it fails, with a last error) and a running ingestion; whatever is left of them is deleted
    afterwards with alice's own token and keys."""
    alice = login("alice")
    s3 = s3_client(asyncio.run(rgw.ensure("alice")))
    s3.put_object(Bucket=models_bucket("alice"), Key="admin-view/stored.bin", Body=b"x" * STORED)
    r = call(hub, alice.token, "POST", "/deployments",
             json={"name": DEPLOYMENT, "model_uri": f"s3://{models_bucket('alice')}/admin-view/no-such-model.joblib"})
    assert r.status_code == 202, r.text
    r = call(hub, alice.token, "POST", "/ingestions",
             json={"name": INGESTION, "topic": "admin-view-topic", "bucket": models_bucket("alice"),
                   "prefix": "admin-view/", "create_topic": True})
    assert r.status_code == 201, r.text
    yield alice
    s3.delete_object(Bucket=models_bucket("alice"), Key="admin-view/stored.bin")
    for what, name in (("deployments", DEPLOYMENT), ("ingestions", INGESTION)):
        r = call(hub, alice.token, "DELETE", f"/{what}/{name}")
        assert r.status_code in (200, 404), r.text


@pytest.fixture(scope="module")
def bob_server(hub, login):
    """bob's server (the minimal profile), started through the hub's API."""
    bob = login("bob")
    r = bob.api("POST", "/users/bob/server", json={"profile": "minimal"})
    assert r.status_code in (201, 202), r.text
    bob.wait_ready()
    yield bob
    if bob.model()["servers"].get(""):
        bob.stop()


ADMIN_CALLS = [("GET", "/admin/overview", None), ("POST", "/admin/users/bob/server/stop", {}),
               ("POST", "/admin/users/bob/spark/restart", {}), ("DELETE", f"/admin/users/alice/deployments/{DEPLOYMENT}", None),
               ("POST", f"/admin/users/alice/ingestions/{INGESTION}/stop", None)]


@pytest.mark.parametrize("method,path,body", ADMIN_CALLS)
def test_a_user_who_is_not_an_admin_gets_403_with_a_message(hub, login, method, path, body):
    r = call(hub, login("alice").token, method, path, json=body)
    assert (r.status_code, r.json()) == (403, {"message": NOT_ADMIN}), r.text
    r = call(hub, None, method, path, json=body)
    assert r.status_code == 403, r.text
    assert r.json()["message"].startswith("Log in as a hub admin: send a hub token"), r.text


def test_the_admin_sees_every_users_things_with_their_last_errors(hub, login, alice_things, bob_server):
    admin = login("admin")

    def settled():
        o = overview(hub, admin)
        alice = user_of(o, "alice")
        deps = {d["name"]: d for d in alice["deployments"]} if alice else {}
        failed = deps.get(DEPLOYMENT, {}).get("last_error")
        return o if failed and alice["ingestions"] and user_of(o, "bob")["servers"] else None

    o = wait_for(settled, 120, "alice's deployment to fail and bob's server to be listed", interval=1)
    assert o["errors"] == {}, o["errors"]
    assert o["enabled"] == {"ingestions": True, "storage": True}
    names = [u["name"] for u in o["users"]]
    assert {"admin", "alice", "bob"} <= set(names) and names == sorted(names)
    assert user_of(o, "admin")["admin"] is True and user_of(o, "bob")["admin"] is False

    (server,) = user_of(o, "bob")["servers"]
    assert (server["name"], server["state"], server["ready"], server["profile"]) == ("", "running", True, "minimal")
    assert server["url"] == "/user/bob/"

    alice = user_of(o, "alice")
    (dep,) = [d for d in alice["deployments"] if d["name"] == DEPLOYMENT]
    assert (dep["state"], dep["stage"]) == ("Failed", "failed"), dep
    assert "admin-view/no-such-model.joblib" in dep["last_error"], dep
    assert "api_key" not in dep
    (ing,) = [i for i in alice["ingestions"] if i["name"] == INGESTION]
    assert (ing["topic"], ing["bucket"], ing["desired"]) == ("admin-view-topic", models_bucket("alice"), "running")

    # storage: RGW's own bucket stats summed for alice's RGW user, her object included
    storage = alice["storage"]
    assert storage["last_error"] is None and storage["bytes"] >= STORED and storage["objects"] >= 1, storage
    assert storage["size"] == format_bytes(storage["bytes"])
    assert o["totals"]["users"] == len(o["users"]) and o["totals"]["servers"] >= 1
    assert o["totals"]["errors"] >= 1  # alice's failed deployment at least


def test_the_admin_stops_a_users_server_and_the_hub_confirms(hub, login, bob_server):
    admin = login("admin")
    r = call(hub, admin.token, "POST", "/admin/users/bob/server/stop", json={"server": ""})
    assert r.status_code in (200, 202), r.text
    assert r.json()["user"] == "bob" and r.json()["server"] == ""
    wait_for(lambda: not bob_server.model()["servers"].get(""), 60, "the hub to say bob's server stopped")
    assert user_of(overview(hub, admin), "bob")["servers"] == []
    # stopping again: the hub has nothing to stop (204), still no server
    r = call(hub, admin.token, "POST", "/admin/users/bob/server/stop", json={})
    assert (r.status_code, r.json()["stopped"]) == (200, True), r.text


def test_the_admin_stops_an_ingestion_and_deletes_a_deployment(hub, login, alice_things):
    admin = login("admin")
    r = call(hub, admin.token, "POST", f"/admin/users/alice/ingestions/{INGESTION}/stop")
    assert r.status_code == 200, r.text
    assert (r.json()["state"], r.json()["desired"], r.json()["owner"]) == ("stopped", "stopped", "alice")
    r = call(hub, alice_things.token, "GET", f"/ingestions/{INGESTION}")
    assert r.json()["state"] == "stopped", r.text  # alice sees it stopped too

    r = call(hub, admin.token, "DELETE", f"/admin/users/alice/deployments/{DEPLOYMENT}")
    assert (r.status_code, r.json()) == (200, {"deleted": DEPLOYMENT, "owner": "alice"}), r.text
    r = call(hub, alice_things.token, "GET", f"/deployments/{DEPLOYMENT}")
    assert r.status_code == 404, r.text
    assert DEPLOYMENT not in [d["name"] for d in user_of(overview(hub, admin), "alice")["deployments"]]


def test_admin_actions_on_what_does_not_exist_answer_4xx_with_a_message(hub, login):
    admin = login("admin")
    cases = [("POST", "/admin/users/nobody-here/server/stop", {}, 404),
             ("POST", "/admin/users/bob/server/stop", {"server": 3}, 400),
             ("POST", "/admin/users/bob/server/stop", {"bogus": 1}, 400),
             ("DELETE", "/admin/users/alice/deployments/no-such-deployment", None, 404),
             ("POST", "/admin/users/alice/ingestions/no-such-ingestion/stop", None, 404),
             ("POST", "/admin/users/bob/spark/restart", {}, 404)]
    for method, path, body, status in cases:
        r = call(hub, admin.token, method, path, json=body)
        assert r.status_code == status, (path, r.status_code, r.text)
        message = r.json()["message"]
        assert message[0].isupper() or message[0] in "'\"", message
        assert message.rstrip("'\"").endswith("."), message


BROKEN = "admin-view-broken"


def test_a_server_whose_last_start_failed_shows_the_hubs_message(hub, login, config_dir):
    """alice starts a server from a profile whose lock environment cannot be read: the spawn fails in the
    spawner's start. The admin view lists her server as failed with the hub's own message (the one the hub's
    progress API gives alice), until her next start succeeds."""
    admin, alice = login("admin"), login("alice")
    assert not alice.model()["servers"].get("")
    with extra_profiles(config_dir, broken_profile(BROKEN, ["alice"])):
        wait_for(lambda: BROKEN in alice.offered_profiles(), 30, "the hub to offer the broken profile")
        r = alice.api("POST", "/users/alice/server", json={"profile": BROKEN})
    assert r.status_code == 400, r.text
    assert "Cannot read the lock" in r.json()["message"], r.text  # it failed for real, in the spawner's start
    assert not alice.model()["servers"].get("")  # nothing runs

    (server,) = user_of(overview(hub, admin), "alice")["servers"]
    assert (server["name"], server["state"], server["ready"], server["profile"]) == ("", "failed", False, BROKEN)
    assert server["last_error"].startswith(f"Spawn failed: The '{BROKEN}' environment is misconfigured: "), server
    assert "Cannot read the lock" in server["last_error"], server
    (event,) = alice.progress_messages(timeout=30)  # what the hub tells alice herself: the same message
    assert event["failed"] is True and event["message"] == server["last_error"], event
    assert overview(hub, admin)["totals"]["errors"] >= 1

    # her next start succeeds: the failure is gone, the server runs
    r = alice.api("POST", "/users/alice/server", json={"profile": "minimal"})
    assert r.status_code in (201, 202), r.text
    try:
        alice.wait_ready()
        (server,) = user_of(overview(hub, admin), "alice")["servers"]
        assert (server["state"], server["profile"], server["last_error"]) == ("running", "minimal", None), server
    finally:
        alice.stop()
    assert user_of(overview(hub, admin), "alice")["servers"] == []  # stopped normally: not listed


def test_storage_usage_counts_what_a_user_stores_under_their_rgw_user(rgw, alice_things):
    usage = asyncio.run(rgw.usage())
    assert usage[rgw_uid("alice")]["bytes"] >= STORED and usage[rgw_uid("alice")]["objects"] >= 1, usage
    assert rgw_uid("nobody-has-stored-anything") not in usage


def test_the_admin_sees_and_restarts_a_users_spark_cluster(hub, login, bob_server):
    """Runs after bob's minimal server was stopped: bob starts one with a Spark cluster; the admin sees it in
    the overview and restarts it; it comes back with its worker, under the same master URL."""
    admin, bob = login("admin"), bob_server
    if bob.model()["servers"].get(""):
        bob.stop()
    r = bob.api("POST", "/users/bob/server", json={"profile": "datascience", "spark": {"workers": 1}})
    assert r.status_code in (201, 202), r.text
    bob.wait_ready(timeout=180)
    env = process_env(server_pid(admin, "bob"))
    wait_spark_ready(env, workers=1)

    def cluster(state: str):
        found = user_of(overview(hub, admin), "bob")["spark"]
        return found[0] if found and found[0]["state"] == state and found[0]["workers_alive"] == 1 else None

    c = wait_for(lambda: cluster("running"), 60, "the overview to show bob's Spark cluster running", interval=1)
    assert (c["server"], c["workers_requested"], c["last_error"]) == ("", 1, None), c
    master_pid = spark_master_pid(env)

    r = call(hub, admin.token, "POST", "/admin/users/bob/spark/restart", json={"server": ""})
    assert r.status_code == 200, r.text
    assert r.json()["master_url"] == env["SPARK_MASTER_URL"]  # the notebook's configuration still holds
    wait_spark_ready(env, workers=1)
    assert spark_master_pid(env) != master_pid  # a new master process: it did restart
    wait_for(lambda: cluster("running"), 60, "the overview to show bob's restarted cluster running", interval=1)
    bob.stop()
    wait_for(lambda: not user_of(overview(hub, admin), "bob")["spark"], 30, "bob's cluster to leave the overview")


def spark_master_pid(env: dict) -> int:
    """The PID of the Spark master listening on the server's master port."""
    import psutil

    port = int(env["SPARK_MASTER_URL"].rsplit(":", 1)[1])
    for conn in psutil.net_connections("tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.laddr.port == port and conn.pid:
            return conn.pid
    raise AssertionError(f"nothing listens on the Spark master's port {port}")
