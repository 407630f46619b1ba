"""The model gateway against model servers it must not trust (issue 18): real HTTP servers running as real
system users on 127.0.0.1, the real gateway handler, connection pool and owner check (the uid lookups of the
real LocalMLServerBackend), talked to over real sockets.

What stands in: the deployment records are plain `Deployment` objects in a dict (the gateway's lookup by model
name, as DeploymentManager.find_model), and the "model servers" are small stdlib HTTP servers that answer what
a hostile one would (HTML with a cookie, oversized answers) and print every connection and request they see,
so each refusal is proven by its cause: what the server saw. Credentials are API keys (the hub-token path is
covered against a real hub in test_deploy.py). Needs root (system users), as CI runs it.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
import uuid

import httpx
import pytest
from tornado import web
from tornado.httpserver import HTTPServer
from tornado.testing import bind_unused_port

from odh_spawner.deploy.local import LocalMLServerBackend
from odh_spawner.deploy.model import Deployment, new_api_key
from odh_spawner.host import procs
from odh_spawner.host import users as localusers
from odh_spawner.naming import user_slug
from odh_spawner.platform.gateway import (ModelGateway, OwnerCheck, TokenUsers, gateway_routes, local_uid_of,
                                          log_request)
from odh_spawner.platform.upstream import UpstreamPool

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="system users need root (CI runs as root)")

SERVER = r'''
import http.server, json, sys
mode, port = sys.argv[1], int(sys.argv[2])

class H(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def log_message(self, *a):
        pass
    def answer(self, status, headers, payload):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        print("REQUEST", self.command, self.path, flush=True)
        if mode == "html":  # what alice's squatting server answered in the measured attack
            self.answer(200, [("Content-Type", "text/html"), ("Set-Cookie", "_xsrf=evil; Path=/")],
                        b"<html><script>fetch('/hub/api/users')</script></html>")
        elif mode == "echo":  # a well-typed answer with headers the gateway must drop
            payload = json.dumps({"headers": [[k, v] for k, v in self.headers.items()], "body": len(body)})
            self.answer(200, [("Content-Type", "application/json"), ("Set-Cookie", "s=1; Path=/"),
                              ("X-Upstream", "1"), ("Access-Control-Allow-Origin", "*")], payload.encode())
        elif mode == "big":  # 2 MiB of JSON, Content-Length declared
            self.answer(200, [("Content-Type", "application/json")], b'{"x": "' + b"a" * (2 << 20) + b'"}')
        elif mode == "long":  # 1 MiB of JSON, under the cap: streamed through
            self.answer(200, [("Content-Type", "application/json")], b'{"x": "' + b"b" * (1 << 20) + b'"}')
        elif mode == "short":  # announces 1 MiB, sends 300 KiB, hangs up
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(1 << 20))
            self.end_headers()
            self.wfile.write(b'{"x": "' + b"c" * (300 << 10))
            self.wfile.flush()
            self.close_connection = True
        elif mode == "bigchunked":  # the same, chunked: no length to judge it by before reading
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in [b'{"x": "'] + [b"a" * 65536] * 32 + [b'"}']:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
    do_GET = do_POST

class S(http.server.ThreadingHTTPServer):
    allow_reuse_address = True
    def get_request(self):
        conn, addr = super().get_request()
        print("CONNECTION", flush=True)
        return conn, addr

srv = S(("127.0.0.1", port), H)
print("PORT", srv.server_address[1], flush=True)
srv.serve_forever()
'''


STARTED: list["Upstream"] = []


class Upstream:
    """One of the small servers above, running as `user` on 127.0.0.1."""

    def __init__(self, user: localusers.SystemUser, mode: str, port: int = 0):
        self.proc = subprocess.Popen(["/usr/bin/python3", "-I", "-c", SERVER, mode, str(port)],
                                     user=user.uid, group=user.gid, extra_groups=[], cwd="/",
                                     stdout=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
        first = self.proc.stdout.readline().split()
        assert first[:1] == ["PORT"], f"the server did not start: {first}"
        self.port = int(first[1])
        self.pid = self.proc.pid
        self._seen: list[str] | None = None
        STARTED.append(self)

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def seen(self) -> list[str]:
        """Every connection and request it saw (stops it)."""
        if self._seen is None:
            if self.proc.poll() is None:
                self.proc.terminate()
            out, _ = self.proc.communicate(timeout=10)
            self._seen = out.split("\n")
        return [line for line in self._seen if line]


class Records:
    """The gateway's lookup of deployments by model name."""

    def __init__(self):
        self.by_model: dict[str, Deployment] = {}

    def find_model(self, model_name: str):
        return self.by_model.get(model_name)


class NoHub:
    async def user_for_token(self, token, use_cache=True, session_id="", *, sync=True):
        return None


@pytest.fixture(autouse=True)
def no_server_left():
    """Servers a failed test did not stop are stopped (and none outlives its test)."""
    yield
    while STARTED:
        server = STARTED.pop()
        if server.proc.poll() is None:
            server.proc.kill()
            server.proc.wait(10)


@pytest.fixture(scope="module")
def system_users():
    """Two hub users' system users (alice owns the model, bob is the colleague), deleted afterwards."""
    tag = uuid.uuid4().hex[:8]
    homes = tempfile.mkdtemp(prefix="odh-gw-")
    os.chmod(homes, 0o711)
    made = {}
    try:
        for who in ("alice", "bob"):
            hub_name = f"gw{tag}-{who}"
            made[who] = (hub_name, localusers.ensure_system_user(hub_name, os.path.join(homes, who)))
        yield made
    finally:
        for _, user in made.values():
            if pwd.getpwnam(user.name).pw_gecos.split(",")[0] == localusers.MARK:
                subprocess.run(["userdel", user.name], capture_output=True, timeout=30)
        shutil.rmtree(homes, ignore_errors=True)


@pytest.fixture(scope="module")
async def gateway():
    """The gateway's routes on a free port, checking local model servers as the platform does (the real
    LocalMLServerBackend, running model servers as their owners, says whose uid that is)."""
    records = Records()
    gw = ModelGateway(records, TokenUsers(NoHub()), lambda user: True, UpstreamPool(timeout=20),
                      owner_check=OwnerCheck(local_uid_of(LocalMLServerBackend(run_as_owner=True))))
    sock, port = bind_unused_port()
    server = HTTPServer(web.Application(gateway_routes(gw), log_function=log_request))
    server.add_sockets([sock])
    gw.records, gw.url = records, f"http://127.0.0.1:{port}"
    yield gw
    server.stop()
    gw.upstream.close()


@pytest.fixture
async def client():
    async with httpx.AsyncClient(timeout=30) as c:
        yield c


def deploy(gw, owner: str, upstream: Upstream, name: str | None = None) -> Deployment:
    """A serving deployment record of `owner` pointing at `upstream` (pid, start time and port as the local
    backend records them)."""
    name = name or "m" + uuid.uuid4().hex[:6]
    d = Deployment(owner=owner, name=name, model_name=f"{user_slug(owner)}.{name}", api_key=new_api_key())
    d.add_version("s3://b/p/", "sklearn")
    d.serving = d.target = 1
    d.upstream = f"http://127.0.0.1:{upstream.port}"
    d.runtime = {"serving": {"pid": upstream.pid, "started": procs.start_time(upstream.pid), "port": upstream.port}}
    gw.records.by_model[d.model_name] = d
    return d


def url(gw, d: Deployment) -> str:
    return f"{gw.url}/v2/models/{d.model_name}/infer"


def auth(d: Deployment) -> dict:
    return {"Authorization": f"Bearer {d.api_key}"}


BODY = {"inputs": [{"name": "x", "shape": [1, 2], "datatype": "FP64", "data": [1.0, 2.0]}]}
SAFE = {"x-content-type-options": "nosniff", "content-security-policy": "sandbox", "cache-control": "no-store"}


def assert_safe(r: httpx.Response) -> None:
    assert "set-cookie" not in r.headers, r.headers
    assert {k: r.headers.get(k) for k in SAFE} == SAFE, r.headers
    assert r.headers["content-type"] == "application/json"


async def raw_exchange(gw, request: bytes, timeout: float = 10) -> bytes:
    """Send `request` as it is and read the answer until the gateway closes the connection."""
    host, port = gw.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(request)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(-1), timeout)
    finally:
        writer.close()


def parse(raw: bytes) -> tuple[int, dict, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        k, _, v = line.partition(":")
        headers.setdefault(k.strip().lower(), v.strip())
    return int(lines[0].split()[1]), headers, body[: int(headers.get("content-length", len(body)))]


async def test_html_with_a_cookie_from_the_model_server_becomes_a_json_502(gateway, system_users, client):
    alice_name, alice = system_users["alice"]
    server = Upstream(alice, "html")
    d = deploy(gateway, alice_name, server)
    r = await client.post(url(gateway, d), json=BODY, headers=auth(d))
    assert r.status_code == 502, r.text
    assert_safe(r)
    assert "text/html" in r.json()["message"] and "<script>" not in r.text
    assert [line for line in server.seen() if line.startswith("REQUEST")] == [f"REQUEST POST /v2/models/{d.model_name}/infer"]


async def test_a_json_answer_passes_without_upstream_headers_and_routing_comes_from_the_record(
        gateway, system_users, client):
    alice_name, alice = system_users["alice"]
    server = Upstream(alice, "echo")
    d = deploy(gateway, alice_name, server)
    sent = {**auth(d), "Seldon-Model": "bob.secret-model", "Host": "evil.example", "Cookie": "_xsrf=abc",
            "X-Forwarded-For": "10.0.0.1", "X-Custom": "1", "Accept": "application/json"}
    answers = [await client.post(url(gateway, d), json=BODY, headers=sent) for _ in range(3)]
    for r in answers:
        assert r.status_code == 200, r.text
        assert_safe(r)
        assert "x-upstream" not in r.headers and "access-control-allow-origin" not in r.headers
    got = {k.lower(): v for k, v in answers[0].json()["headers"]}
    assert got["seldon-model"] == d.model_name  # from the record, not the caller's "bob.secret-model"
    assert got["host"] == f"127.0.0.1:{server.port}"
    assert not {"cookie", "authorization", "x-forwarded-for", "x-custom"} & set(got), got
    assert got["content-type"] == "application/json" and got["accept"] == "application/json"
    assert answers[0].json()["body"] == int(got["content-length"]) > 0  # the length as recomputed
    seen = server.seen()
    assert seen.count("CONNECTION") == 1 and len([s for s in seen if s.startswith("REQUEST")]) == 3  # pooled


async def test_a_killed_model_servers_port_bound_by_a_colleague_gets_503_and_no_request(
        gateway, system_users, client):
    """alice's model server dies; bob binds its port. The record still names the port: the gateway must
    neither connect to bob's server nor hand it alice's callers' requests (their inputs, her key's users)."""
    alice_name, alice = system_users["alice"]
    _, bob = system_users["bob"]
    server = Upstream(alice, "echo")
    d = deploy(gateway, alice_name, server)
    assert (await client.post(url(gateway, d), json=BODY, headers=auth(d))).status_code == 200
    server.kill()
    squatter = Upstream(bob, "html", port=server.port)
    r = await client.post(url(gateway, d), json=BODY, headers=auth(d))
    assert r.status_code == 503, r.text
    assert_safe(r)
    assert r.json()["message"].startswith("The model server is not running; ")
    # alice herself binding the port of her dead server (the measured attack) is refused the same way
    own = Upstream(alice, "html", port=0)
    d2 = deploy(gateway, alice_name, own)
    own.kill()
    alices_squat = Upstream(alice, "html", port=own.port)
    r2 = await client.post(url(gateway, d2), json=BODY, headers=auth(d2))
    assert r2.status_code == 503 and "not running" in r2.json()["message"]
    assert squatter.seen() == [] and alices_squat.seen() == []  # not even a connection


async def test_a_connection_accepted_by_another_users_socket_is_closed_before_a_request(
        gateway, system_users, client):
    """The check after connecting: bob's deployment record names a live process that listens on its port but
    runs as alice (not bob): the connection is accepted by a socket of the wrong uid and closed unused."""
    bob_name, _ = system_users["bob"]
    _, alice = system_users["alice"]
    server = Upstream(alice, "echo")
    d = deploy(gateway, bob_name, server)
    r = await client.post(url(gateway, d), json=BODY, headers=auth(d))
    assert r.status_code == 503, r.text
    assert server.seen() == ["CONNECTION"]  # connected, checked, closed: no request line


async def test_a_body_over_the_limit_is_413_before_authentication_and_unread(gateway, system_users):
    alice_name, alice = system_users["alice"]
    server = Upstream(alice, "echo")
    d = deploy(gateway, alice_name, server)
    limit = gateway.max_body_size
    assert limit == 16 << 20  # the default
    # only the head is sent: the answer comes without the gateway waiting for (or buffering) 16 MiB
    head = (f"POST /v2/models/{d.model_name}/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            f"Content-Length: {limit + 1}\r\n\r\n").encode()
    status, headers, body = parse(await raw_exchange(gateway, head))
    assert status == 413 and headers["content-type"] == "application/json"
    assert "larger than a model endpoint accepts" in json.loads(body)["message"]
    assert "www-authenticate" not in headers  # no credential was asked for: the size decided
    # beyond tornado's own 100 MB limit: one answer, ours
    huge = head.replace(str(limit + 1).encode(), b"1000000000")
    raw = await raw_exchange(gateway, huge)
    assert parse(raw)[0] == 413 and raw.count(b"HTTP/1.1") == 1
    # chunked, no length announced: refused as soon as the running length passes the limit
    gateway.max_body_size = 1024
    try:
        chunked = (f"POST /v2/models/{d.model_name}/infer HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                   f"Content-Type: application/json\r\n\r\n7d0\r\n").encode() + b"a" * 2000
        status, headers, body = parse(await raw_exchange(gateway, chunked))
        assert status == 413 and "1024 bytes at most" in json.loads(body)["message"]
    finally:
        gateway.max_body_size = limit
    assert server.seen() == []  # nothing reached the model server


async def test_an_answer_over_the_cap_is_a_502(gateway, system_users, client):
    alice_name, alice = system_users["alice"]
    gateway.max_answer_size = 1 << 20
    try:
        for mode in ("big", "bigchunked"):
            server = Upstream(alice, mode)
            d = deploy(gateway, alice_name, server)
            r = await client.post(url(gateway, d), json=BODY, headers=auth(d))
            assert r.status_code == 502, (mode, r.status_code)
            assert_safe(r)
            assert "answered too much" in r.json()["message"] and len(r.content) < 1000
            server.seen()
    finally:
        gateway.max_answer_size = 64 << 20


async def test_a_long_answer_under_the_cap_is_streamed_through_and_a_broken_one_cut_short(
        gateway, system_users, client):
    alice_name, alice = system_users["alice"]
    server = Upstream(alice, "long")
    d = deploy(gateway, alice_name, server)
    for _ in range(2):  # the second on the pooled connection the first stream gave back
        r = await client.post(url(gateway, d), json=BODY, headers=auth(d))
        assert r.status_code == 200 and len(r.json()["x"]) == 1 << 20
        assert_safe(r)
        assert int(r.headers["content-length"]) == (1 << 20) + 9
    broken = Upstream(alice, "short")
    d2 = deploy(gateway, alice_name, broken)
    with pytest.raises(httpx.RemoteProtocolError):  # the caller sees a short answer, never a complete-looking one
        await client.post(url(gateway, d2), json=BODY, headers=auth(d2))
    broken.seen()
    r = await client.post(url(gateway, d), json=BODY, headers=auth(d))  # the gateway carries on
    assert r.status_code == 200
    assert server.seen().count("CONNECTION") == 1  # three answers, one pooled connection
