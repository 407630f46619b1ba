"""REST handlers of the platform service, under <service prefix>/api/. JSON in, JSON out, errors as
{"message": ...} with a 4xx status; every user sees and changes only their own things (admins: ?user=).

A deployment's API key is in the answers about one deployment (detail, create, new version, rollback, key
rotation, public on/off), not in listings."""

from __future__ import annotations

import json

from tornado import web

from ..deploy.model import DeployError
from ..errors import OdhError

ADMIN_SCOPE = "admin:users"


class ApiHandler(web.RequestHandler):
    def initialize(self, platform):
        self.platform = platform

    def set_default_headers(self):
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")

    async def prepare(self):
        auth = self.platform.hub_auth
        user = await auth.get_user(self, sync=False)
        if not user:
            raise web.HTTPError(403, "A JupyterHub token is needed (Authorization: token ...).")
        if user.get("kind", "user") != "user" or not auth.check_scopes(auth.access_scopes, user):
            raise web.HTTPError(403, "This token may not use the platform service.")
        self.current_user = user

    def check_xsrf_cookie(self):
        """Token-authenticated API; cookies are not accepted (HubAuth without OAuth)."""

    @property
    def is_admin(self) -> bool:
        return ADMIN_SCOPE in self.current_user.get("scopes", [])

    def owner(self) -> str:
        """Whose things: the caller's; an admin may name another user with ?user=."""
        other = self.get_query_argument("user", "")
        if other and other != self.current_user["name"]:
            if not self.is_admin:
                raise web.HTTPError(403, "Only admins may act on other users' deployments.")
            return other
        return self.current_user["name"]

    def body(self) -> dict:
        if not self.request.body:
            return {}
        try:
            data = json.loads(self.request.body)
        except ValueError:
            raise web.HTTPError(400, "The request body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise web.HTTPError(400, "The request body must be a JSON object.")
        return data

    def write_error(self, status_code, **kwargs):
        message = self._reason
        exc = kwargs.get("exc_info", (None, None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            message = exc.log_message % exc.args if exc.args else exc.log_message
        payload = {"message": message}
        if isinstance(exc, DeployError) and exc.log_tail:
            payload["log_tail"] = exc.log_tail
        self.finish(json.dumps(payload))

    def _handle_request_exception(self, e):
        if isinstance(e, OdhError):
            status = getattr(e, "status_code", 400)
            self.send_error(status, reason="Bad Request" if status == 400 else None,
                            exc_info=(type(e), web.HTTPError(status, str(e).replace("%", "%%")), None))
            return
        super()._handle_request_exception(e)

    def reply(self, data, status: int = 200) -> None:
        self.set_status(status)
        self.finish(json.dumps(data))


class DeploymentsHandler(ApiHandler):
    async def get(self):
        every = self.get_query_argument("all", "") in ("1", "true") and self.is_admin
        owner = None if every else self.owner()
        self.reply({"deployments": [d.to_api() for d in self.platform.deployments.list(owner)]})

    async def post(self):
        b = self.body()
        d = await self.platform.deployments.create(self.owner(), b.get("name"), b.get("model_uri"),
                                                   b.get("framework", "sklearn"), b.get("example_input"))
        self.reply(d.to_api(with_key=True), 202)


class DeploymentHandler(ApiHandler):
    async def get(self, name):
        self.reply(self.platform.deployments.get(self.owner(), name).to_api(with_key=True))

    async def patch(self, name):
        """Change settings of a deployment: {"public": true|false}."""
        b = self.body()
        unknown = sorted(set(b) - {"public"})
        if unknown:
            raise web.HTTPError(400, "Unknown field(s) %s: a deployment's settings are: public.",
                                ", ".join(repr(k)[:40] for k in unknown[:5]))
        if "public" not in b:
            raise web.HTTPError(400, "Give the setting to change, e.g. {\"public\": true}.")
        d = await self.platform.deployments.set_public(self.owner(), name, b["public"])
        self.reply(d.to_api(with_key=True))

    async def delete(self, name):
        await self.platform.deployments.delete(self.owner(), name)
        self.reply({"deleted": name})


class VersionsHandler(ApiHandler):
    async def post(self, name):
        b = self.body()
        d = await self.platform.deployments.add_version(self.owner(), name, b.get("model_uri"),
                                                        b.get("framework", "sklearn"), b.get("example_input"))
        self.reply(d.to_api(with_key=True), 202)


class RollbackHandler(ApiHandler):
    async def post(self, name):
        d = await self.platform.deployments.rollback(self.owner(), name)
        self.reply(d.to_api(with_key=True), 202)


class KeyHandler(ApiHandler):
    async def post(self, name):
        """Rotate the deployment's API key: the answer holds the new one; the old one no longer works."""
        d = await self.platform.deployments.rotate_key(self.owner(), name)
        self.reply(d.to_api(with_key=True))


class PredictHandler(ApiHandler):
    async def post(self, name):
        self.reply(await self.platform.deployments.predict(self.owner(), name, self.body().get("inputs")))


class HealthHandler(web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.finish('{"ok": true}')


def routes(prefix: str, platform) -> list:
    from .ingest_handlers import ingest_routes
    from .spark_handlers import spark_routes  # its handlers build on ApiHandler

    api = prefix.rstrip("/") + "/api"
    name = r"([^/]+)"
    kw = {"platform": platform}
    return [
        (api + r"/health", HealthHandler),
        (api + r"/deployments", DeploymentsHandler, kw),
        (api + rf"/deployments/{name}", DeploymentHandler, kw),
        (api + rf"/deployments/{name}/versions", VersionsHandler, kw),
        (api + rf"/deployments/{name}/rollback", RollbackHandler, kw),
        (api + rf"/deployments/{name}/predict", PredictHandler, kw),
        (api + rf"/deployments/{name}/key", KeyHandler, kw),
        *spark_routes(api, kw),
        *ingest_routes(api, kw),
    ]


class NotFoundHandler(ApiHandler):
    async def prepare(self):
        raise web.HTTPError(404, "No such API endpoint.")
