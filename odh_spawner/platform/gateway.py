"""The model gateway: every deployment's public URL (`/v2/models/<model>/...` on the hub's proxy) is routed
here, and only a caller with a credential for that deployment gets through to its model server.

A credential is, in the `Authorization` header (`token X` or `Bearer X`, as JupyterHub API tokens are sent):
- the deployment's API key (`odhk_...`), compared in constant time with the key's digest; or
- a hub token of the deployment's owner (any token of the owner that may use the platform service), checked
  through the hub's API; answers are cached for `token_cache_seconds` in a bounded cache keyed by the token's
  SHA-256, and concurrent checks of one token share one hub call.
A deployment its owner made public needs none. No credential: 401; a valid token of someone else: 403; a
wrong or rotated key, or a token the hub does not know: 401. Every refusal is JSON {"message": ...}. What
passes is forwarded to the model server over pooled keep-alive connections, without the caller's
Authorization or cookies.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import time
from collections import OrderedDict
from urllib.parse import unquote

from tornado import web

from odh_spawner.deploy.model import KEY_PREFIX, key_digest, key_matches
from odh_spawner.platform.upstream import HOP_BY_HOP, UpstreamError, UpstreamPool

log = logging.getLogger("odh_spawner.platform.gateway")
_DROP = HOP_BY_HOP | {"authorization", "cookie"}
_HUB_DOWN = object()


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


class ModelGateway:
    """What the gateway handler needs: the deployments (each knows its model server's `upstream`), the token
    checks, the connection pool."""

    def __init__(self, deployments, token_users: TokenUsers, access_allowed, upstream: UpstreamPool):
        self.deployments = deployments
        self.token_users = token_users
        self.access_allowed = access_allowed  # user model -> may this token use the platform (its scopes)?
        self.upstream = upstream

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


class ModelGatewayHandler(web.RequestHandler):
    SUPPORTED_METHODS = ("GET", "POST", "HEAD")

    def initialize(self, gateway: ModelGateway):
        self.gateway = gateway

    def check_xsrf_cookie(self):
        """Credentials come in headers only; cookies are dropped."""

    def compute_etag(self):
        return None  # answers are the model's; hashing them costs time for nothing

    def fail(self, status: int, message: str) -> None:
        self.set_status(status)
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        if status == 401:
            self.set_header("WWW-Authenticate", 'Bearer realm="odh-hub model endpoint"')
        self.finish(json.dumps({"message": message}))

    async def _serve(self, model: str, rest: str | None) -> None:
        gw = self.gateway
        if not plain_path(self.request.path):
            return self.fail(400, "The request path must not contain '.' or '..' segments or encoded slashes.")
        d = gw.deployments.find_model(model)
        if d is None:
            return self.fail(404, f"No model named {model[:80]!r} is deployed here.")
        refused = await gw.refusal(d, self.request.headers.get("Authorization", ""))
        if refused:
            return self.fail(*refused)
        base = d.upstream
        if not base or not d.serving:
            return self.fail(503, f"Deployment {d.name!r} is not serving right now (state {d.state}).")
        headers = [(k, v) for k, v in self.request.headers.get_all() if k.lower() not in _DROP]
        target = self.request.uri  # /v2/models/<model>/... with its query, as the proxy passed it
        try:
            r = await gw.upstream.request(base, self.request.method, target, headers, self.request.body)
        except UpstreamError as e:
            return self.fail(502, f"The model server of {d.name!r} did not answer: {e}")
        self.set_status(r.status, r.reason or None)
        self.clear_header("Content-Type")
        for k, v in r.headers:
            if k.lower() not in HOP_BY_HOP and k.lower() not in ("server", "date"):
                self.add_header(k, v)
        if r.body:
            self.write(r.body)
        self.finish()

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
