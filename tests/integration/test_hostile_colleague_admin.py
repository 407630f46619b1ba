"""The hostile colleague and the admin view, the usage API and the platform's metrics: bob, from code in his own
running notebook kernel (his own environment variables, the hub token his notebook has, his network), tries the
admin page, its JSON API and its actions on alice's things, the platform's metrics, alice's usage by parameter
and by path, and alice's notebook's usage API. Each refusal is proven by its cause (the status and the message
that says why), and afterwards nothing of alice's was stopped or deleted. Runs as root, as `make up` and CI do."""

from __future__ import annotations

import json
import os
import re
from html import unescape

import pytest
import requests

from odh_spawner.naming import models_bucket
from tests.integration.test_admin_view import NOT_ADMIN, call
from tests.support.kernel import Kernel
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="system users need a root hub (CI runs as root)")

DEPLOYMENT = "hostile-admin-missing"
INGESTION = "hostile-admin"
NOT_METRICS = "This token may not read metrics (it lacks the read:metrics scope)."
NOT_USAGE = "Only admins may see other users' usage."

# what bob's kernel has: his notebook's environment (ODH_PLATFORM_URL, JUPYTERHUB_API_TOKEN) and the network;
# HUB (the hub's address, as in his browser) is set by the test. Each call prints [status, body].
BOB = '''
import json, os, re, requests
PLATFORM = os.environ["ODH_PLATFORM_URL"].rstrip("/")
TOKEN = os.environ["JUPYTERHUB_API_TOKEN"]
def call(method, url, **kw):
    r = requests.request(method, url, headers={"Authorization": "token " + TOKEN}, timeout=60,
                         allow_redirects=False, **kw)
    try:
        body = r.json()
    except ValueError:
        body = r.text[:4000]
    return [r.status_code, body]
'''


def run(kernel: Kernel, code: str):
    """Run bob's attempt; it prints one JSON value saying what happened."""
    return json.loads(kernel.execute(BOB + code).strip().splitlines()[-1])


@pytest.fixture(scope="module")
def alice(user_server, hub):
    """alice's running server, her deployment (of a model that is not there: it exists, failed) and her running
    ingestion, made with her own token; what is left of them is deleted afterwards with her token."""
    server = user_server("alice")
    token = server.session.token
    r = call(hub, token, "POST", "/deployments",
             json={"name": DEPLOYMENT, "model_uri": f"s3://{models_bucket('alice')}/hostile-admin/none.joblib"})
    assert r.status_code == 202, r.text
    r = call(hub, token, "POST", "/ingestions",
             json={"name": INGESTION, "topic": "hostile-admin-topic", "bucket": models_bucket("alice"),
                   "prefix": "hostile-admin/", "create_topic": True})
    assert r.status_code == 201, r.text
    yield server
    for what, name in (("deployments", DEPLOYMENT), ("ingestions", INGESTION)):
        r = call(hub, token, "DELETE", f"/{what}/{name}")
        assert r.status_code in (200, 404), r.text


@pytest.fixture(scope="module")
def bob_kernel(user_server):
    server = user_server("bob")
    kernel = Kernel(server.url, server.token)
    yield kernel
    kernel.close()


def alices_things_are_untouched(hub, alice) -> None:
    assert alice.session.model()["servers"][""]["ready"] is True  # her server still runs
    r = call(hub, alice.token, "GET", f"/deployments/{DEPLOYMENT}")
    assert r.status_code == 200, r.text  # her deployment is still there
    r = call(hub, alice.token, "GET", f"/ingestions/{INGESTION}")
    assert r.status_code == 200 and r.json()["desired"] == "running", r.text  # her ingestion was not stopped


def test_bobs_kernel_has_his_own_hub_token_and_it_is_not_an_admins(bob_kernel):
    who = run(bob_kernel, '''
hub_api = os.environ["JUPYTERHUB_API_URL"].rstrip("/")
print(json.dumps(call("GET", hub_api + "/user")))''')
    status, model = who
    assert status == 200 and model["name"] == "bob" and model["admin"] is False, who
    assert "admin:users" not in model["scopes"] and "read:metrics" not in model["scopes"], model["scopes"]


def test_bob_gets_the_admin_pages_403_with_its_message(bob_kernel, hub, alice):
    status, body = run(bob_kernel, f'''
print(json.dumps(call("GET", {hub.url!r} + "/services/odh-platform/admin/")))''')
    assert status == 403, body
    message = unescape(re.search(r'id="odh-admin-message">([^<]*)<', body).group(1))
    assert message == "Only hub admins may use the admin view: you are logged in as bob, who is not a hub admin."
    assert 'id="odh-admin"' not in body and "alice" not in body  # no page, no data
    alices_things_are_untouched(hub, alice)


def test_bobs_admin_api_calls_on_alices_things_are_refused_and_nothing_stops(bob_kernel, hub, alice):
    tried = run(bob_kernel, f'''
api = PLATFORM + "/api/admin"
print(json.dumps({{
    "overview": call("GET", api + "/overview"),
    "stop her server": call("POST", api + "/users/alice/server/stop", json={{"server": ""}}),
    "restart her Spark": call("POST", api + "/users/alice/spark/restart", json={{"server": ""}}),
    "delete her deployment": call("DELETE", api + "/users/alice/deployments/{DEPLOYMENT}"),
    "stop her ingestion": call("POST", api + "/users/alice/ingestions/{INGESTION}/stop"),
    "through the proxy": call("POST", {hub.url!r} + "/services/odh-platform/api/admin/users/alice/server/stop",
                              json={{"server": ""}}),
}}))''')
    for what, (status, body) in tried.items():
        assert (status, body) == (403, {"message": NOT_ADMIN}), (what, status, body)
    alices_things_are_untouched(hub, alice)


def test_bob_may_not_read_the_platforms_metrics_and_is_told_which_scope_he_lacks(bob_kernel):
    status, body = run(bob_kernel, '''
print(json.dumps(call("GET", PLATFORM + "/metrics")))''')
    assert (status, body) == (403, {"message": NOT_METRICS}), body
    assert "odh_" not in json.dumps(body)  # not one metric


def test_bob_gets_only_his_own_usage(bob_kernel, hub, alice):
    tried = run(bob_kernel, '''
from odh_hub import OdhApiError, usage
def through_odh_hub(user):
    try:
        return ["answered", usage(user)]
    except OdhApiError as e:
        return [e.status, e.message]
print(json.dumps({
    "his own": call("GET", PLATFORM + "/api/usage"),
    "user=alice": call("GET", PLATFORM + "/api/usage?user=alice"),
    "user=alice&user=bob": call("GET", PLATFORM + "/api/usage?user=bob&user=alice"),
    "path alice": call("GET", PLATFORM + "/api/usage/alice"),
    "odh_hub.usage()": through_odh_hub(None),
    "odh_hub.usage('alice')": through_odh_hub("alice"),
}))''')
    status, own = tried["his own"]
    assert status == 200 and own["user"] == "bob", tried["his own"]
    answer, mine = tried["odh_hub.usage()"]
    assert answer == "answered" and mine["user"] == "bob", tried["odh_hub.usage()"]
    for what in ("user=alice", "user=alice&user=bob"):
        assert tried[what] == [403, {"message": NOT_USAGE}], (what, tried[what])
    assert tried["path alice"] == [404, {"message": "No such API endpoint."}], tried["path alice"]
    assert tried["odh_hub.usage('alice')"] == [403, NOT_USAGE], tried["odh_hub.usage('alice')"]
    assert "alice" not in json.dumps([own, mine])


def test_bob_cannot_use_alices_notebooks_usage_api(bob_kernel, hub, alice):
    """alice's notebook server forwards /odh/api/usage with her server's token: bob's token never reaches it.
    Her server answers a bare 403 "Forbidden"; the cause is in her server's log (the hub's log, where local
    servers write): its hub auth found bob's token valid but without access to her server."""
    offset = os.path.getsize(hub.log_path)
    status, body = run(bob_kernel, f'''
print(json.dumps(call("GET", {hub.url!r} + "/user/alice/odh/api/usage")))''')
    assert (status, body) == (403, {"message": "Forbidden", "reason": None}), (status, body)

    def her_servers_log():
        text = new_log(hub, offset)
        return text if "403 GET /user/alice/odh/api/usage" in text else None

    text = wait_for(her_servers_log, 15, "alice's server to log the refusal")
    refused = text.index("403 GET /user/alice/odh/api/usage")
    assert "ServerApp] Not allowing user bob" in text[:refused], text[-3000:]  # jupyterhub.singleuser's check
    assert "200 GET /user/alice/odh/api/usage" not in text
    # alice's own token gets her figures from the same URL: the refusal is about bob
    r = requests.get(alice.url + "odh/api/usage", headers={"Authorization": f"token {alice.token}"}, timeout=60)
    assert r.status_code == 200 and r.json()["user"] == "alice", r.text
    alices_things_are_untouched(hub, alice)


def new_log(hub, offset: int) -> str:
    with open(hub.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")
