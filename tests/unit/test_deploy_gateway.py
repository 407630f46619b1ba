"""The model gateway's decisions (pure parts): who may call a deployment's endpoint, the bounded token cache,
the API key's life, and what the API shows of it. The gateway against a real hub, proxy and MLServer is in
tests/integration/test_deploy.py."""

import asyncio

import pytest

from odh_spawner.deploy.model import KEY_PREFIX, Deployment, key_digest, key_matches, new_api_key
from odh_spawner.platform.gateway import _HUB_DOWN, ModelGateway, TokenUsers, error_with_message

USERS = {"alice-token": {"kind": "user", "name": "alice", "scopes": ["access:services!service=odh-platform"]},
         "bob-token": {"kind": "user", "name": "bob", "scopes": ["access:services!service=odh-platform"]},
         "alice-narrow": {"kind": "user", "name": "alice", "scopes": ["read:users:name!user=alice"]},
         "service-token": {"kind": "service", "name": "alice", "scopes": []}}


class Hub:
    """A stand-in for HubAuth's token check (the real one is exercised against a real hub in integration)."""

    def __init__(self, down=False):
        self.calls = []
        self.down = down

    async def user_for_token(self, token, use_cache=True, session_id="", *, sync=True):
        assert use_cache is False and sync is False
        self.calls.append(token)
        await asyncio.sleep(0.01)
        if self.down:
            raise OSError("hub down")
        return USERS.get(token)


def gateway(hub=None, ttl=30, size=100):
    users = TokenUsers(hub or Hub(), ttl=ttl, max_entries=size)
    return ModelGateway(None, users, lambda u: "access:services!service=odh-platform" in u["scopes"], None)


def alice_deployment(**kw) -> Deployment:
    d = Deployment(owner="alice", name="churn", model_name="alice.churn", api_key=new_api_key(), **kw)
    d.add_version("s3://b/p/", "sklearn", example_input=[[1.0, 2.0]])
    d.serving, d.url = 1, "http://hub"
    return d


@pytest.mark.parametrize("header,status,words", [
    ("", 401, "needs a credential"),
    ("Basic YWxpY2U6eA==", 401, "needs a credential"),
    ("Bearer ", 401, "needs a credential"),
    ("token bob-token", 403, "belongs to another user"),
    ("Bearer service-token", 403, "belongs to another user"),
    ("token alice-narrow", 403, "lacks the access scope"),
    ("token unknown", 401, "not valid"),
    ("Bearer odhk_wrong", 401, "rotated"),
])
async def test_refusals(header, status, words):
    refused = await gateway().refusal(alice_deployment(), header)
    assert refused[0] == status and words in refused[1]


async def test_who_gets_through():
    gw, d = gateway(), alice_deployment()
    for header in ("token alice-token", "Bearer alice-token", f"Bearer {d.api_key}", f"token {d.api_key}",
                   f"  bearer   {d.api_key}  "):
        assert await gw.refusal(d, header) is None, header
    old = d.api_key
    d.api_key = new_api_key()  # rotation: at once
    assert (await gw.refusal(d, f"Bearer {old}"))[0] == 401
    d.public = True
    assert await gw.refusal(d, "") is None and await gw.refusal(d, "token bob-token") is None
    d.public, d.api_key = False, ""  # a record without a key accepts no key at all
    assert (await gw.refusal(d, f"Bearer {KEY_PREFIX}"))[0] == 401


async def test_token_answers_are_cached_bounded_and_shared():
    hub = Hub()
    users = TokenUsers(hub, ttl=30, max_entries=2)
    results = await asyncio.gather(*[users.lookup("alice-token") for _ in range(20)])
    assert all(r["name"] == "alice" for r in results) and hub.calls == ["alice-token"]  # one hub call
    assert await users.lookup("nope") is None and await users.lookup("nope") is None  # invalid: cached too
    assert hub.calls == ["alice-token", "nope"]
    await users.lookup("bob-token")
    assert len(users) == 2  # bounded: the least recently used (alice's) went
    await users.lookup("alice-token")
    assert hub.calls.count("alice-token") == 2


async def test_token_answers_expire():
    hub = Hub()
    users = TokenUsers(hub, ttl=0.05)
    await users.lookup("alice-token")
    await asyncio.sleep(0.1)
    await users.lookup("alice-token")
    assert hub.calls == ["alice-token", "alice-token"]


async def test_a_hub_that_does_not_answer_is_503_and_not_cached():
    hub = Hub(down=True)
    gw = gateway(hub)
    refused = await gw.refusal(alice_deployment(), "token alice-token")
    assert refused[0] == 503 and "API key" in refused[1]
    hub.down = False
    assert await gw.refusal(alice_deployment(), "token alice-token") is None
    assert await TokenUsers(Hub(down=True)).lookup("x") is _HUB_DOWN


def test_keys():
    a, b = new_api_key(), new_api_key()
    assert a != b and a.startswith(KEY_PREFIX) and len(a) > 40
    assert key_matches(a, key_digest(a)) and not key_matches(b, key_digest(a)) and not key_matches(a, b"")
    assert not key_matches("ünïcode", key_digest(a))


def test_the_api_shows_the_key_only_on_request():
    d = alice_deployment()
    listed, shown = d.to_api(), d.to_api(with_key=True)
    assert "api_key" not in listed and d.api_key not in str(listed)
    assert listed["example_request"]["headers"]["Authorization"] == "Bearer $ODH_MODEL_KEY"
    assert shown["api_key"] == d.api_key and shown["public"] is False
    assert shown["example_request"]["headers"] == {"Content-Type": "application/json",
                                                   "Authorization": f"Bearer {d.api_key}"}
    assert f"-H 'Authorization: Bearer {d.api_key}'" in shown["example_request"]["curl"]
    assert d.auth_headers() == {"Authorization": f"Bearer {d.api_key}"}
    d.public = True
    assert "Authorization" not in d.to_api(with_key=True)["example_request"]["headers"]
    assert d.auth_headers() == {}
    assert Deployment.from_json(d.to_json()).to_json() == d.to_json()  # key and flag persist
    assert "upstream" not in d.to_api(with_key=True)


@pytest.mark.parametrize("path,ok", [
    ("/v2/models/alice.churn/infer", True),
    ("/v2/models/alice.churn", True),
    ("/v2/models/alice.churn/versions/v1/infer", True),
    ("/v2/models/alice.churn/../bob.x/infer", False),
    ("/v2/models/alice.churn/%2e%2e/bob.x/infer", False),
    ("/v2/models/alice.churn/%252e%252e/bob.x/infer", False),
    ("/v2/models/alice.churn/.%2fx", False),
    ("/v2/models/alice.churn/a.b..c", True),
    ("/v2/models/alice.churn/x%2f..%2fbob/infer", False),
    ("/v2/models/alice.churn/x%5cy", False),
    ("/v2/models/alice.churn/./infer", False),
])
def test_paths_that_could_reach_another_model_are_refused(path, ok):
    from odh_spawner.platform.gateway import plain_path

    assert plain_path(path) is ok


# -- what crosses the gateway: pure header and status rules (issue 18) -----------------------------------------
from odh_spawner.host import listeners  # noqa: E402
from odh_spawner.platform.gateway import (PASSED_STATUSES, SAFETY_HEADERS, forward_headers,  # noqa: E402
                                          is_json_type, screen_answer)


def test_only_v2_request_headers_reach_the_model_server_and_routing_comes_from_the_record():
    sent = [("Content-Type", "application/json"), ("Accept", "application/json"), ("Content-Length", "999"),
            ("Seldon-Model", "bob.secret"), ("seldon-model", "bob.other"), ("Host", "evil.example"),
            ("Authorization", "Bearer odhk_x"), ("Cookie", "_xsrf=1"), ("X-Forwarded-For", "1.2.3.4"),
            ("Transfer-Encoding", "chunked"), ("Connection", "close"), ("Inference-Header-Content-Length", "12"),
            ("Content-Type", "text/html")]
    assert forward_headers(sent, "alice.churn") == [
        ("Content-Type", "application/json"), ("Accept", "application/json"),
        ("Inference-Header-Content-Length", "12"), ("Seldon-Model", "alice.churn")]


@pytest.mark.parametrize("value,ok", [
    ("application/json", True), ("application/json; charset=utf-8", True), ("Application/JSON", True),
    ("text/html", False), ("application/json+html", False), ("text/html; application/json", False),
    ("application/javascript", False), ("", False), ("application/jsonp", False),
])
def test_json_type(value, ok):
    assert is_json_type(value) is ok


def test_a_json_answer_passes_with_its_status_and_nothing_else_of_the_upstream():
    got = screen_answer(200, [("Content-Type", "application/json; charset=utf-8"), ("Set-Cookie", "a=b; Path=/"),
                              ("Server", "uvicorn"), ("Access-Control-Allow-Origin", "*"), ("Location", "/x"),
                              ("Content-Security-Policy", "default-src *"), ("Date", "x")], has_body=True)
    assert got.refusal is None and got.status == 200
    assert got.headers == (("Content-Type", "application/json"),)
    assert screen_answer(422, [("content-type", "application/json")], True).status == 422  # a model's own error
    assert screen_answer(503, [("content-type", "application/json"), ("Retry-After", "5")], True).headers == (
        ("Content-Type", "application/json"), ("Retry-After", "5"))
    assert screen_answer(200, [("Content-Type", "application/json"), ("Retry-After", "5")], True).headers == (
        ("Content-Type", "application/json"),)  # only with 429/503
    assert screen_answer(503, [("Content-Type", "application/json"), ("Retry-After", "5\r\nX: y")], True).headers == (
        ("Content-Type", "application/json"),)
    empty = screen_answer(200, [("Set-Cookie", "a=b")], has_body=False)
    assert empty.refusal is None and empty.headers == ()  # no body, nothing to type


@pytest.mark.parametrize("status,headers,why", [
    (200, [("Content-Type", "text/html")], "Content-Type 'text/html'"),
    (200, [("Content-Type", "text/html"), ("Content-Type", "application/json")], "not application/json"),
    (200, [("Content-Type", "application/json"), ("Content-Type", "application/json")], "not application/json"),
    (200, [], "Content-Type none"),
    (200, [("Content-Type", "image/svg+xml")], "image/svg+xml"),
    (200, [("Content-Type", "application/json"), ("Content-Encoding", "gzip")], "encoded"),
    (302, [("Location", "https://evil.example/"), ("Content-Type", "application/json")], "status 302"),
    (401, [("Content-Type", "application/json"), ("WWW-Authenticate", "Basic")], "status 401"),
    (101, [("Upgrade", "websocket")], "status 101"),
    (299, [("Content-Type", "application/json")], "status 299"),
])
def test_other_answers_become_a_502_saying_why(status, headers, why):
    got = screen_answer(status, headers, has_body=True)
    assert got.status == 502 and why in got.refusal and got.headers == ()


def test_statuses_and_safety_headers():
    assert not {s for s in PASSED_STATUSES if 300 <= s < 400 or s in (401, 407)}
    assert dict(SAFETY_HEADERS) == {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox",
                                    "Cache-Control": "no-store"}


TCP = """  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1001        0 111 1 0 100 0 0 10 0
   1: 0100007F:1F90 0100007F:D431 01 00000000:00000000 00:00000000 00000000  1001        0 222 1 0 20 4 30 10 -1
   2: 0100007F:D431 0100007F:1F90 01 00000000:00000000 00:00000000 00000000     0        0 333 1 0 20 4 30 10 -1
   3: 0100007F:1F91 0100007F:D432 03 00000000:00000000 00:00000000 00000000  1002        0 0 1 0 20 4 30 10 -1
"""
TCP6 = """  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:1F92 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1003        0 444 1 0 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:1F92 0000000000000000FFFF00000100007F:D433 01 00000000:00000000 00:00000000 00000000  1003        0 555 1 0 20 4 30 10 -1
   2: 00000000000000000000000001000000:1F93 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000  1004        0 666 1 0 100 0 0 10 0
"""


def test_proc_net_tcp_is_read_with_uids_and_inodes():
    v4, v6 = listeners.parse_table(TCP), listeners.parse_table(TCP6)
    assert v4[0] == listeners.TcpSocket(("127.0.0.1", 8080), ("0.0.0.0", 0), listeners.LISTEN, 1001, 111)
    assert v6[1].local == ("127.0.0.1", 8082) and v6[1].remote == ("127.0.0.1", 54323)  # v4-mapped: plain v4
    assert v6[0].local == ("::", 8082) and v6[2].local == ("::1", 8083)
    table = v4 + v6
    # our connection 127.0.0.1:54321 -> :8080 was accepted by uid 1001's socket (not our own side, uid 0)
    assert listeners.accepting_socket(table, ("127.0.0.1", 54321), ("127.0.0.1", 8080)).uid == 1001
    assert listeners.accepting_socket(table, ("127.0.0.1", 54322), ("127.0.0.1", 8081)).uid == 1002  # handshake
    assert listeners.accepting_socket(table, ("127.0.0.1", 54323), ("127.0.0.1", 8082)).uid == 1003  # dual stack
    assert listeners.accepting_socket(table, ("127.0.0.1", 1), ("127.0.0.1", 8080)) is None
    assert listeners.listening_inodes(table, 8080) == {111} and listeners.listening_inodes(table, 8082) == {444}
    assert listeners.listening_inodes(table, 9) == set()
    assert listeners.parse_table("header\ngarbage line\n") == []
    assert [s.inode for s in listeners.parse_table(TCP, port=8080)] == [111, 222, 333]  # either end
    assert [s.inode for s in listeners.parse_table(TCP6, port=8083)] == [666]


def test_a_model_servers_refusal_gets_a_message():
    import json

    said = json.loads(error_with_message(400, b'{"error": "Unexpected shape (1, 3)"}'))
    assert said == {"error": "Unexpected shape (1, 3)",
                    "message": "The model server refused the request: Unexpected shape (1, 3)."}
    validation = b'{"detail": [{"loc": ["body", "inputs"], "msg": "field required", "type": "missing"}]}'
    assert json.loads(error_with_message(422, validation))["message"] == ("The model server refused the request: "
                                                                         "field required.")
    assert json.loads(error_with_message(404, b"{}"))["message"].startswith("The model server refused the request "
                                                                           "(status 404)")
    for unchanged in (b'{"message": "Model x not found."}', b"[1, 2]", b"not json", b""):
        assert error_with_message(404, unchanged) == unchanged
    assert error_with_message(200, b'{"outputs": []}') == b'{"outputs": []}'


async def test_tornados_own_refusals_are_json_messages():
    """Another method than GET/HEAD/POST: 405 with a JSON message, not tornado's HTML page (found by Schemathesis)."""
    import json

    from tornado.httpclient import AsyncHTTPClient
    from tornado.httpserver import HTTPServer
    from tornado.netutil import bind_sockets
    from tornado.web import Application

    from odh_spawner.platform.gateway import gateway_routes

    sockets = bind_sockets(0, "127.0.0.1")
    server = HTTPServer(Application(gateway_routes(None)))
    server.add_sockets(sockets)
    try:
        url = f"http://127.0.0.1:{sockets[0].getsockname()[1]}/v2/models/alice.m/infer"
        r = await AsyncHTTPClient().fetch(url, method="PUT", body=b"{}", raise_error=False)
        assert r.code == 405 and r.headers["Content-Type"] == "application/json"
        assert json.loads(r.body)["message"] == "A model endpoint answers GET, POST, HEAD only; use POST .../infer."
    finally:
        server.stop()
