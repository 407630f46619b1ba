"""The model gateway: every deployment's public URL (`/v2/models/<model>/...` on the hub's proxy) is routed
here, and only a caller with a credential for that deployment gets through to its model server.

A credential is, in the `Authorization` header (`token X` or `Bearer X`, as JupyterHub API tokens are sent):
- the deployment's API key (`odhk_...`), compared in constant time with the key's digest; or
- a hub token of the deployment's owner (any token of the owner that may use the platform service), checked
  through the hub's API; answers are cached for `token_cache_seconds` in a bounded cache keyed by the token's
  SHA-256, and concurrent checks of one token share one hub call.
A deployment its owner made public needs none. No credential: 401; a valid token of someone else: 403; a
wrong or rotated key, or a token the hub does not know: 401. Every refusal is JSON {"message": ...}.

The gateway answers on the hub's origin, so nothing a model server (or whoever holds its port) says reaches
the browser as it is; allowlists in both directions:
- towards the model server only the V2 inference protocol's request headers (`REQUEST_HEADERS`; the length is
  recomputed); routing headers (Host, Seldon-Model) come from the deployment record, never from the caller;
- back to the caller only a status of `PASSED_STATUSES` and a body typed `application/json` (an empty body
  needs no type); anything else becomes a 502 JSON message. No upstream header but Retry-After is passed
  (never Set-Cookie); every answer carries `SAFETY_HEADERS` (nosniff, a sandboxing CSP, no-store).
- a request body longer than `max_body_size` is refused with 413 before anything else (no credential needed
  to see it; the body is streamed in and counted, never buffered past the limit); an answer longer than
  `max_answer_size` becomes a 502 (its Content-Length is checked before a byte of it is read).
- locally, a new connection to a model server is used only when the deployment's recorded process is alive,
  holds the socket listening on the port, and the socket that accepted the connection belongs to the owner's
  system user (`OwnerCheck`): a port whose server died and that someone else bound gets 503 and no request.
  On Kubernetes the upstream is the serving Service, as the operator made it.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable
from urllib.parse import unquote

from tornado import web
from tornado.iostream import StreamClosedError

from odh_spawner.deploy.model import KEY_PREFIX, DeployError, key_digest, key_matches
from odh_spawner.host import listeners, owned, procs
from odh_spawner.host.privsep import PrivsepError
from odh_spawner.platform.upstream import AnswerTooLarge, UpstreamError, UpstreamPool, UpstreamRefused

log = logging.getLogger("odh_spawner.platform.gateway")
_HUB_DOWN = object()

MiB = 1024 * 1024
# request headers of the V2 inference protocol (and its binary-data extension) passed to the model server
REQUEST_HEADERS = frozenset({"content-type", "accept", "inference-header-content-length"})
# statuses of a model server's answer passed on as they are; any other becomes a 502
PASSED_STATUSES = frozenset({200, 201, 202, 204, 400, 404, 405, 408, 409, 413, 415, 422, 429, 500, 501, 502, 503,
                             504})
ANSWER_TYPE = "application/json"
SAFETY_HEADERS = (("X-Content-Type-Options", "nosniff"), ("Content-Security-Policy", "sandbox"),
                  ("Cache-Control", "no-store"))


def forward_headers(headers: Iterable[tuple[str, str]], model_name: str) -> list[tuple[str, str]]:
    """The request headers sent to a model server: the first of each allowlisted V2 header the caller sent,
    then the routing header Seldon Core 2's mesh reads, from the deployment record. Pure."""
    out, seen = [], set()
    for k, v in headers:
        lk = k.lower()
        if lk in REQUEST_HEADERS and lk not in seen:
            seen.add(lk)
            out.append((k, v))
    out.append(("Seldon-Model", model_name))
    return out


def is_json_type(value: str) -> bool:
    """`application/json`, with parameters or not (e.g. `; charset=utf-8`). Pure."""
    return value.split(";", 1)[0].strip().lower() == ANSWER_TYPE


@dataclass(frozen=True)
class Screened:
    """What the gateway makes of a model server's answer: the status and headers to send, or why it sends a
    502 instead (`refusal`)."""
    status: int = 502
    headers: tuple = ()
    refusal: str | None = None


def screen_answer(status: int, headers: Iterable[tuple[str, str]], has_body: bool) -> Screened:
    """The status and headers a model server's answer may reach the caller with, or a refusal. Pure.

    `has_body`: the answer has a body (or would have: a HEAD's headers are judged like a GET's)."""
    if status not in PASSED_STATUSES:
        return Screened(refusal=f"it answered with status {status}, which the gateway does not pass on")
    types, retry_after = [], None
    for k, v in headers:
        lk = k.lower()
        if lk == "content-type":
            types.append(v)
        elif lk == "content-encoding" and v.strip().lower() not in ("", "identity"):
            return Screened(refusal="it answered with an encoded body, which the gateway does not pass on")
        elif lk == "retry-after" and v.strip().isascii() and v.strip().isdigit() and len(v.strip()) <= 9:
            retry_after = v.strip()
    out = []
    if has_body:
        if len(types) != 1 or not is_json_type(types[0]):
            shown = ", ".join(repr(t[:60]) for t in types) or "none"
            return Screened(refusal=f"it answered with Content-Type {shown}, not {ANSWER_TYPE} as the V2 inference "
                                    "protocol says")
        out.append(("Content-Type", ANSWER_TYPE))
    if retry_after is not None and status in (429, 503):
        out.append(("Retry-After", retry_after))
    return Screened(status, tuple(out))


def error_with_message(status: int, body: bytes) -> bytes:
    """A model server's refusal (4xx/5xx, JSON) as the caller gets it: with a `message`, as every error of the
    platform has. MLServer says `error` (its own errors) or `detail` (request validation): the message is made
    from those, the rest is kept. A body that is not a JSON object, or has a message, passes as it is. Pure."""
    if status < 400 or not body:
        return body
    try:
        data = json.loads(body)
    except ValueError:
        return body
    if not isinstance(data, dict) or (isinstance(data.get("message"), str) and data["message"].strip()):
        return body
    said = data.get("error") or data.get("detail")
    if isinstance(said, list):  # validation errors: [{"loc": [...], "msg": "...", ...}, ...]
        said = "; ".join(str(d.get("msg", d))[:200] if isinstance(d, dict) else str(d)[:200] for d in said[:5])
    said = str(said).strip()[:1000] if said else ""
    data["message"] = (f"The model server refused the request: {said.rstrip('.')}." if said else
                       f"The model server refused the request (status {status}); check it against the model's "
                       "inputs (GET /v2/models/<model>).")
    return json.dumps(data).encode()


def plain_path(path: str) -> bool:
    """A request path with no segment that could lead elsewhere once a server or a mesh in front of a shared
    model server normalises it: no '.'/'..' segments and no encoded '/' or '\\' (also doubly encoded)."""
    for segment in path.split("/"):
        decoded = unquote(unquote(segment))
        if decoded in (".", "..") or "/" in decoded or "\\" in decoded or "\0" in decoded:
            return False
    return True


class TokenUsers:
    """Hub token -> the hub's user model (or None when the hub does not know the token), cached briefly.
    Bounded: at most `max_entries` tokens (least recently used dropped first). Tokens are kept as digests."""

    def __init__(self, hub_auth, ttl: float = 30, max_entries: int = 4096):
        self.hub_auth = hub_auth
        self.ttl = ttl
        self.max_entries = max_entries
        self._cache: OrderedDict[bytes, tuple[float, object]] = OrderedDict()
        self._pending: dict[bytes, asyncio.Future] = {}

    async def lookup(self, token: str):
        key = hashlib.sha256(token.encode("utf-8", "surrogatepass")).digest()
        hit = self._cache.get(key)
        now = time.monotonic()
        if hit is not None and hit[0] > now:
            self._cache.move_to_end(key)
            return hit[1]
        pending = self._pending.get(key)
        if pending is not None:
            return await asyncio.shield(pending)
        fut = self._pending[key] = asyncio.get_running_loop().create_future()
        try:
            user = await self._ask_hub(token)
            if user is not _HUB_DOWN:
                self._cache[key] = (time.monotonic() + self.ttl, user)
                self._cache.move_to_end(key)
                while len(self._cache) > self.max_entries:
                    self._cache.popitem(last=False)
            fut.set_result(user)
            return user
        finally:
            if not fut.done():
                fut.set_result(_HUB_DOWN)
            self._pending.pop(key, None)

    async def _ask_hub(self, token: str):
        try:
            return await self.hub_auth.user_for_token(token, use_cache=False, sync=False)
        except asyncio.CancelledError:
            raise
        except Exception as e:  # the hub is down or answered nonsense: say so, cache nothing
            log.warning("Cannot check a token with the hub: %s", type(e).__name__)
            return _HUB_DOWN

    def __len__(self) -> int:
        return len(self._cache)


NOT_RUNNING = "The model server is not running; "


class OwnerCheck:
    """Local model servers: a new connection to a deployment's port is used only when the deployment's
    recorded process is alive and holds the socket listening on that port, and the socket that accepted the
    connection belongs to the owner's system user. `uid_of(owner)` -> that uid (None: the owner has none)."""

    def __init__(self, uid_of: Callable[[str], int | None]):
        self.uid_of = uid_of

    def connection_check(self, d) -> "ConnectionCheck | None":
        """The check for new connections to `d`'s model server; None when the record names no process."""
        rt = d.runtime.get("serving") or {}
        if not rt.get("pid") or not rt.get("port"):
            return None
        return ConnectionCheck(self, d.owner, int(rt["pid"]), rt.get("started"), int(rt["port"]))


@dataclass(frozen=True)
class ConnectionCheck:
    owner_check: OwnerCheck
    owner: str
    pid: int
    started: int | None
    port: int

    @property
    def key(self) -> tuple:
        """Pooled connections are kept per expectation: one checked for this process serves only it."""
        return (self.owner, self.pid, self.started)

    def before_connect(self) -> str | None:
        """None when the recorded process runs and listens on the port; else why not (nothing is connected)."""
        if not procs.alive(self.pid, self.started):
            return f"its process {self.pid} is gone"
        helper = owned.helper()
        if helper is not None and self.started is not None:  # another user's /proc/PID/fd: root's to read
            try:
                listens = helper.call("listens", pid=self.pid, started=self.started, port=self.port)
            except PrivsepError as e:
                return f"its process could not be checked ({e})"
        else:
            listens = listeners.holds_listener(self.pid, self.port)
        if not listens:
            return f"its process {self.pid} does not listen on port {self.port}"
        return None

    def connected(self, sock) -> str | None:
        """None when the socket that accepted our connection is the owner's; else why not (the connection is
        closed before a byte is sent)."""
        expected = self.owner_check.uid_of(self.owner)
        if expected is None:
            return f"{self.owner!r} has no system user"
        uid = listeners.accepting_uid(sock.getsockname(), sock.getpeername())
        if uid != expected:
            return f"port {self.port} was accepted by uid {uid}, not the owner's uid {expected}"
        return None


def local_uid_of(backend) -> Callable[[str], int | None]:
    """For the local serving backend: the uid its model servers run as for an owner (theirs, or the platform's
    own in single-user mode), from `backend.owner_identity`."""

    def uid_of(owner: str) -> int | None:
        try:
            identity = backend.owner_identity(owner)
        except DeployError:
            return None
        return os.geteuid() if identity is None else identity.uid

    return uid_of


class ModelGateway:
    """What the gateway handler needs: the deployments (each knows its model server's `upstream`), the token
    checks, the connection pool, the limits, and (locally) the check of whom a connection reaches."""

    def __init__(self, deployments, token_users: TokenUsers, access_allowed, upstream: UpstreamPool, *,
                 max_body_size: int = 16 * MiB, max_answer_size: int = 64 * MiB,
                 owner_check: OwnerCheck | None = None):
        self.deployments = deployments
        self.token_users = token_users
        self.access_allowed = access_allowed  # user model -> may this token use the platform (its scopes)?
        self.upstream = upstream
        self.max_body_size = max_body_size
        self.max_answer_size = max_answer_size
        self.owner_check = owner_check
        self.metrics = None  # odh_spawner.metrics.platform.GatewayMetrics: requests counted as they finish

    async def refusal(self, d, authorization: str) -> tuple[int, str] | None:
        """None when the request may reach deployment `d`; else (status, message)."""
        if d.public:
            return None
        scheme, _, credential = authorization.strip().partition(" ")
        credential = credential.strip()
        if scheme.lower() not in ("token", "bearer") or not credential:
            return 401, (f"Model endpoint {d.name!r} needs a credential: its API key or its owner's hub token, "
                         "as 'Authorization: Bearer <key or token>'.")
        if credential.startswith(KEY_PREFIX):
            if key_matches(credential, key_digest(d.api_key) if d.api_key else b""):
                return None
            return 401, "This API key is not valid for this endpoint (it may have been rotated)."
        user = await self.token_users.lookup(credential)
        if user is _HUB_DOWN:
            return 503, "The hub cannot check this token right now; try again, or use the endpoint's API key."
        if not user:
            return 401, "This token is not valid (unknown to the hub, expired or revoked)."
        if user.get("kind", "user") != "user" or user.get("name") != d.owner:
            return 403, (f"Model endpoint {d.name!r} belongs to another user: only its owner's token or its "
                         "API key may call it.")
        if not self.access_allowed(user):
            return 403, "This token may not use the platform service (it lacks the access scope)."
        return None


@web.stream_request_body
class ModelGatewayHandler(web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "POST", "HEAD")

    def initialize(self, gateway: ModelGateway):
        self.gateway = gateway
        self._chunks: list[bytes] = []
        self._received = 0
        self._deployment = None  # the deployment the request reached (counted in the metrics when it finishes)

    def set_default_headers(self):
        for k, v in SAFETY_HEADERS:
            self.set_header(k, v)

    def check_xsrf_cookie(self):
        """Credentials come in headers only; cookies are dropped."""

    def compute_etag(self):
        return None  # answers are the model's; hashing them costs time for nothing

    def fail(self, status: int, message: str) -> None:
        self.clear_header("Retry-After")
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        if status == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="odh-hub model endpoint"')
        self.finish(json.dumps({"message": message}))

    def write_error(self, status_code, **kwargs):
        """Tornado's own refusals (405 for another method, 400 for a malformed request) are JSON messages too,
        never its HTML page."""
        if status_code == 405:
            message = f"A model endpoint answers {', '.join(self.SUPPORTED_METHODS)} only; use POST .../infer."
        else:
            message = f"{self._reason}: the request was refused before reaching the model; check it and try again."
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": message}))

    # -- the body: counted as it comes, refused past the limit before any other check ------------------------
    def prepare(self):
        length = self.request.headers.get("Content-Length")
        if length is not None and length.strip().isascii() and length.strip().isdigit() and int(length) > self.gateway.max_body_size:
            self._too_large()

    def data_received(self, chunk: bytes) -> None:
        if self._finished:
            return
        self._received += len(chunk)
        if self._received > self.gateway.max_body_size:
            self._chunks.clear()
            self._too_large()
            return
        self._chunks.append(chunk)

    def _too_large(self) -> None:
        self.fail(413, f"The request body is larger than a model endpoint accepts "
                       f"({self.gateway.max_body_size} bytes at most).")
        # the rest of the body is not read: the connection closes once the answer is out (tornado's own
        # 100 MB limit must not answer a second time for a longer one)
        self.request.connection.set_max_body_size(2 ** 62)

    async def _serve(self, model: str, rest: str | None) -> None:
        gw = self.gateway
        if not plain_path(self.request.path):
            return self.fail(400, "The request path must not contain '.' or '..' segments or encoded slashes.")
        d = gw.deployments.find_model(model)
        if d is None:
            return self.fail(404, f"No model named {model[:80]!r} is deployed here.")
        self._deployment = d
        refused = await gw.refusal(d, self.request.headers.get("Authorization", ""))
        if refused:
            return self.fail(*refused)
        base = d.upstream
        if not base or not d.serving:
            return self.fail(503, f"Deployment {d.name!r} is not serving right now (state {d.state}).")
        check = None
        if gw.owner_check is not None:
            check = gw.owner_check.connection_check(d)
            if check is None:
                return self.fail(503, NOT_RUNNING + f"deployment {d.name!r} has no model server process on record.")
        headers = forward_headers(self.request.headers.get_all(), d.model_name)
        target = self.request.uri  # /v2/models/<model>/... with its query, as the proxy passed it
        body = b"".join(self._chunks)
        self._chunks = []
        try:
            r = await gw.upstream.request(base, self.request.method, target, headers, body,
                                          max_answer=gw.max_answer_size, verify=check, stream=True)
        except UpstreamRefused as e:
            log.warning("Not forwarding to the model server of %s/%s: %s", d.owner, d.name, e)
            return self.fail(503, NOT_RUNNING + f"deployment {d.name!r} answers again once the platform has "
                                                "restarted it (or its owner redeploys it).")
        except AnswerTooLarge as e:
            return self.fail(502, f"The model server of {d.name!r} answered too much: {e}")
        except UpstreamError as e:
            return self.fail(502, f"Deployment {d.name!r} did not answer: {e}")
        try:
            await self._answer(d, r)
        finally:
            if r.stream is not None:
                r.stream.close()

    async def _answer(self, d, r) -> None:
        has_body = bool(r.body) or r.stream is not None or (self.request.method == "HEAD" and any(
            k.lower() == "content-type" for k, _ in r.headers))
        screened = screen_answer(r.status, r.headers, has_body)
        if screened.refusal:
            log.warning("Refused the answer of the model server of %s/%s: %s", d.owner, d.name, screened.refusal)
            return self.fail(502, f"The model server of {d.name!r} gave an answer the gateway does not pass on: "
                                  f"{screened.refusal}.")
        self.set_status(screened.status)
        self.clear_header("Content-Type")
        for k, v in screened.headers:
            self.set_header(k, v)
        if r.stream is not None:  # a long answer: passed on as it comes (its type and length checked above)
            self.set_header("Content-Length", str(r.stream.length))
            try:
                async for part in r.stream.chunks():
                    self.write(part)
                    await self.flush()
            except UpstreamError as e:
                log.warning("The model server of %s/%s broke off its answer: %s", d.owner, d.name, e)
                self.request.connection.close()  # the status is out: the caller sees a short answer
                return
            except StreamClosedError:
                return  # the caller went away
        elif r.body and self.request.method != "HEAD":
            self.write(error_with_message(screened.status, r.body) if screened.status >= 400 else r.body)
        self.finish()

    def on_finish(self):
        d, metrics = self._deployment, self.gateway.metrics
        if d is not None and metrics is not None:
            metrics.observe(d.owner, d.name, self.get_status(), self.request.request_time())

    async def get(self, model, rest=None):
        await self._serve(model, rest)

    async def post(self, model, rest=None):
        await self._serve(model, rest)

    async def head(self, model, rest=None):
        await self._serve(model, rest)


def log_request(handler: web.RequestHandler) -> None:
    """The service's access log, without a line per successful inference (the gateway's hot path): model
    calls are logged when refused or failed, other requests as tornado does."""
    status = handler.get_status()
    if isinstance(handler, ModelGatewayHandler) and status < 400:
        return
    log_method = web.access_log.info if status < 400 else web.access_log.warning
    request = handler.request
    log_method("%d %s %s (%s) %.2fms", status, request.method, request.path, request.remote_ip,
               1000.0 * request.request_time())


def gateway_routes(gateway: ModelGateway) -> list:
    return [(r"/v2/models/([^/]+)(/.*)?", ModelGatewayHandler, {"gateway": gateway})]
