"""The admin view's overview, assembled from plain data (odh_spawner.platform.overview), the page's escaping of
what users control (odh_spawner.platform.admin_page), and how the hub's answers become results or typed errors
(odh_spawner.platform.hubapi, with a fake hub). Pure: nothing is served."""

from __future__ import annotations

import asyncio
import re

import pytest

from odh_spawner.platform import admin_page
from odh_spawner.platform.hubapi import PAGE, HubApi, HubApiError, HubNotFound, HubRefused, failure_of
from odh_spawner.platform.overview import build_overview, server_item, spark_item, storage_item

pytestmark = pytest.mark.unit

HUB_USERS = [
    {"name": "bob", "admin": False, "last_activity": "2026-12-07T20:00:00Z",
     "servers": {"": {"name": "", "ready": True, "pending": None, "stopped": False, "url": "/user/bob/",
                      "started": "2026-12-07T19:00:00Z", "last_activity": "2026-12-07T20:00:00Z",
                      "user_options": {"profile": "datascience"}}}},
    {"name": "admin", "admin": True, "last_activity": None, "servers": {}},
    {"name": "alice", "admin": False, "last_activity": None,
     "servers": {"": {"ready": False, "pending": "spawn"}, "gpu": {"ready": False, "pending": "stop"}}},
]
DEPLOYMENTS = [
    {"name": "iris", "owner": "alice", "state": "failed", "stage": "loading", "version": 2, "framework": "sklearn",
     "url": "http://hub/models/alice/iris", "public": False, "restarts": 3, "updated": 10.0,
     "last_error": "The model server exited (code 1).", "api_key": "never-shown", "log_tail": ["secret?"]},
    {"name": "churn", "owner": "carol", "state": "serving", "version": 1, "last_error": None},
]
INGESTIONS = [
    {"name": "clicks", "owner": "bob", "state": "running", "desired": "running", "topic": "clicks",
     "bucket": "bob-data", "records": 120, "objects": 3, "lag": 4, "last_error": None},
    {"name": "orders", "owner": "bob", "state": "restarting", "desired": "running", "topic": "orders",
     "bucket": "bob-data", "records": 0, "last_error": "Kafka is not reachable."},
]


def overview(**kw):
    args = dict(hub_users=HUB_USERS, spark={}, deployments=DEPLOYMENTS, ingestions=INGESTIONS, storage=None)
    args.update(kw)
    return build_overview(**args)


def by_name(o) -> dict:
    return {u["name"]: u for u in o["users"]}


def test_every_user_with_anything_is_listed_once_sorted_by_name():
    o = overview()
    # carol is no hub user (yet) but owns a deployment: listed, so an admin sees it
    assert [u["name"] for u in o["users"]] == ["admin", "alice", "bob", "carol"]
    users = by_name(o)
    assert users["admin"]["admin"] is True and users["bob"]["admin"] is False and users["carol"]["admin"] is False
    assert users["admin"]["servers"] == [] and users["admin"]["deployments"] == []
    assert o["totals"] == {"users": 4, "servers": 3, "spark": 0, "deployments": 2, "ingestions": 2,
                           "storage_bytes": 0, "errors": 2}
    assert o["errors"] == {} and o["enabled"] == {"ingestions": True, "storage": False}


def test_servers_states_come_from_the_hub_model():
    users = by_name(overview())
    bob = users["bob"]["servers"]
    assert bob == [{"name": "", "state": "running", "ready": True, "profile": "datascience",
                    "started": "2026-12-07T19:00:00Z", "last_activity": "2026-12-07T20:00:00Z",
                    "url": "/user/bob/", "last_error": None}]
    assert [(s["name"], s["state"]) for s in users["alice"]["servers"]] == [("", "starting"), ("gpu", "stopping")]
    assert server_item("x", {"ready": False, "pending": None, "stopped": True})["state"] == "stopped"
    assert server_item("x", {"ready": True, "user_options": None})["profile"] is None


def test_a_stopped_server_shows_only_with_the_hubs_message_of_its_failed_start():
    stopped = {"ready": False, "pending": None, "stopped": True, "user_options": {"profile": "broken"}}
    users = [{"name": "dave", "servers": {"": stopped, "old": dict(stopped)}},
             {"name": "erin", "servers": {"": dict(stopped)}}]
    message = "Spawn failed: The 'broken' environment is misconfigured: Cannot read the lock."
    o = overview(hub_users=users, deployments=[], ingestions=[], spawn_errors={("dave", ""): message})
    dave, erin = by_name(o)["dave"], by_name(o)["erin"]
    assert [(s["name"], s["state"], s["profile"], s["last_error"]) for s in dave["servers"]] == [
        ("", "failed", "broken", message)]  # "old" stopped normally: not listed
    assert erin["servers"] == []
    assert o["totals"]["servers"] == 0 and o["totals"]["errors"] == 1
    # a running server never shows an old failure
    assert server_item("", {"ready": True}, message)["last_error"] is None


@pytest.mark.parametrize("stream,message", [
    (b'data: {"progress": 100, "failed": true, "message": "Spawn failed: no lock", "html_message": "<b>x</b>"}\n\n',
     "Spawn failed: no lock"),
    (b'\n\ndata: {"progress": 100, "failed": true}\n\n', "Spawn failed."),
    (b'data: {"progress": 100, "ready": true, "message": "Server ready"}\n\n', None),
    (b'data: not json\n\n', None),
    (b'', None),
])
def test_the_failure_in_the_hubs_progress_stream_is_its_text(stream, message):
    assert failure_of(stream) == message


def test_deployments_keep_their_last_error_and_never_their_key():
    alice = by_name(overview())["alice"]
    (iris,) = alice["deployments"]
    assert iris["last_error"] == "The model server exited (code 1)."
    assert iris["state"] == "failed" and iris["version"] == 2 and iris["restarts"] == 3
    assert "api_key" not in iris and "log_tail" not in iris
    assert by_name(overview())["carol"]["deployments"][0]["last_error"] is None


def test_ingestions_with_their_last_error_and_disabled_ingestion():
    bob = by_name(overview())["bob"]
    assert [(i["name"], i["state"], i["last_error"]) for i in bob["ingestions"]] == [
        ("clicks", "running", None), ("orders", "restarting", "Kafka is not reachable.")]
    assert bob["ingestions"][0]["records"] == 120 and bob["ingestions"][0]["lag"] == 4
    o = overview(ingestions=None)
    assert o["enabled"]["ingestions"] is False and all(u["ingestions"] == [] for u in o["users"])


def test_spark_clusters_only_where_a_cluster_is_or_an_error_was():
    status = {"enabled": True, "state": "running", "workers_alive": 2, "workers_requested": 2,
              "applications": [{"id": "app-1"}], "ui_url": "/user/bob/odh/spark-ui/"}
    o = overview(spark={("bob", ""): (status, None), ("alice", ""): ({"enabled": False}, None),
                        ("alice", "gpu"): (None, "Your Spark cluster's directory could not be taken over: busy.")})
    users = by_name(o)
    assert users["bob"]["spark"] == [{"server": "", "state": "running", "workers_alive": 2, "workers_requested": 2,
                                      "applications": 1, "ui_url": "/user/bob/odh/spark-ui/", "last_error": None}]
    assert [(c["server"], c["state"], c["last_error"]) for c in users["alice"]["spark"]] == [
        ("gpu", "unknown", "Your Spark cluster's directory could not be taken over: busy.")]
    assert o["totals"]["spark"] == 2 and o["totals"]["errors"] == 3
    assert spark_item("", {"enabled": False}) is None


def test_storage_use_per_user_in_one_unit_convention():
    o = overview(storage={"bob": ({"bytes": 1536 * 1024, "objects": 7}, None), "admin": (None, None),
                          "alice": (None, "Object storage is not reachable right now.")})
    users = by_name(o)
    assert users["bob"]["storage"] == {"bytes": 1572864, "objects": 7, "size": "1.5 MiB", "last_error": None}
    assert users["admin"]["storage"] == {"bytes": 0, "objects": 0, "size": "0 B", "last_error": None}
    assert users["alice"]["storage"]["last_error"] == "Object storage is not reachable right now."
    assert users["alice"]["storage"]["bytes"] is None
    assert users["carol"]["storage"] is None  # not asked
    assert o["totals"]["storage_bytes"] == 1572864 and o["enabled"]["storage"] is True
    assert storage_item({"bytes": 0})["size"] == "0 B"


def test_a_part_that_did_not_answer_is_named_and_the_rest_still_shows():
    o = overview(hub_users=None, errors={"servers": "The hub's API did not answer in time; try again in a minute."})
    assert o["errors"] == {"servers": "The hub's API did not answer in time; try again in a minute."}
    # deployments and ingestions still list their owners
    assert [u["name"] for u in o["users"]] == ["alice", "bob", "carol"]
    assert all(u["servers"] == [] for u in o["users"])
    assert o["totals"]["errors"] == 3


def test_the_page_escapes_what_users_control():
    hostile = '"><script>alert(1)</script>'
    html = admin_page.page("/services/odh-platform/api/admin", 'x"y', hostile, "/hub/home")
    assert "<script>alert(1)" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert 'data-xsrf="x&quot;y"' in html
    assert re.findall(r"<script[^>]*>", html) == ['<script src="admin.js">']  # no inline script: the CSP allows none
    refused = admin_page.refused(403, f"You are logged in as {hostile}.", "/hub/home")
    assert "<script>alert(1)" not in refused and 'id="odh-admin-message"' in refused
    assert "script-src 'self'" in admin_page.CSP and "unsafe-inline" not in admin_page.CSP.split("script-src")[1].split(";")[0]


def test_the_script_puts_no_data_in_as_html():
    assert "innerHTML" not in admin_page.SCRIPT and "outerHTML" not in admin_page.SCRIPT
    assert "insertAdjacentHTML" not in admin_page.SCRIPT and "document.write" not in admin_page.SCRIPT
    assert "X-XSRFToken" in admin_page.SCRIPT  # every call carries the page's XSRF token


# -- the hub's REST API as the service (platform.hubapi), with the hub's answers given by a fake ----------
class FakeHub(HubApi):
    """HubApi whose hub answers from a table: (method, path) -> (status, data); every request recorded."""

    def __init__(self, answers):
        super().__init__("http://hub.invalid/hub/api", "service-token")
        self.answers, self.sent = answers, []

    async def request(self, method, path, body=None):
        self.sent.append((method, path))
        answer = self.answers[(method, path)]
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_hub_users_are_paged_through_until_a_short_page():
    page = [{"name": f"u{i}", "servers": {}} for i in range(PAGE)]
    hub = FakeHub({("GET", f"/users?offset=0&limit={PAGE}"): (200, page),
                   ("GET", f"/users?offset={PAGE}&limit={PAGE}"): (200, [{"name": "last"}, {"bogus": 1}])})
    users = asyncio.run(hub.users())
    assert [u["name"] for u in users] == [f"u{i}" for i in range(PAGE)] + ["last"]
    assert len(hub.sent) == 2


@pytest.mark.parametrize("status,data,message", [
    (403, {"message": "Forbidden"}, "The platform service may not list the hub's users; its hub role needs the "
                                    "scopes list:users, read:users and read:servers (tell your platform admin)."),
    (500, None, "The hub's API answered 500 to the list of users; try again in a minute."),
    (200, {"not": "a list"}, "The hub's API answered 200 to the list of users; try again in a minute."),
])
def test_hub_users_refused_or_garbled_is_a_503_with_a_message(status, data, message):
    hub = FakeHub({("GET", f"/users?offset=0&limit={PAGE}"): (status, data)})
    with pytest.raises(HubApiError) as e:
        asyncio.run(hub.users())
    assert (str(e.value), e.value.status_code) == (message, 503)


@pytest.mark.parametrize("server,status,data,result", [
    ("", 204, None, True),
    ("", 202, None, False),
    ("gpu", 204, None, True),
    ("", 404, {"message": "Not Found"}, (HubNotFound, 404, "The hub knows no user 'b o/b'.")),
    ("gpu", 404, {"message": "b o/b has no server named 'gpu'"}, (HubNotFound, 404, "'b o/b' has no server named 'gpu'.")),
    ("gpu", 400, {"message": "Named servers are not enabled."},
     (HubRefused, 400, "The hub refused to stop the server: Named servers are not enabled.")),
    ("", 403, None, (HubApiError, 503, "The platform service may not stop servers; its hub role needs the scope "
                                       "delete:servers (tell your platform admin).")),
    ("", 502, None, (HubApiError, 503, "The hub's API answered 502 when stopping the server; try again in a minute.")),
])
def test_stopping_a_server_through_the_hub(server, status, data, result):
    path = "/users/b%20o%2Fb/server" + ("s/gpu" if server else "")
    hub = FakeHub({("DELETE", path): (status, data)})
    if isinstance(result, bool):
        assert asyncio.run(hub.stop_server("b o/b", server)) is result
    else:
        kind, code, message = result
        with pytest.raises(kind) as e:
            asyncio.run(hub.stop_server("b o/b", server))
        assert (str(e.value), e.value.status_code) == (message, code)
    assert hub.sent == [("DELETE", path)]  # the names are quoted into one path segment each


def test_a_hub_that_does_not_answer_is_a_503_with_a_message():
    async def unreachable():
        # nothing listens on port 9 of this host (discard; closed): refused at once
        return await HubApi("http://127.0.0.1:9/hub/api", "t", timeout=2).users()

    with pytest.raises(HubApiError) as e:
        asyncio.run(unreachable())
    assert e.value.status_code == 503
    assert str(e.value).startswith("The hub's API did not answer") and str(e.value).endswith("try again in a minute.")
