"""The platform service's REST API base, under <service prefix>/api/: JSON in, JSON out, errors as
{"message": ...} with a 4xx status; every user sees and changes only their own things (admins: ?user=).
Authenticated by hub tokens. The handlers per feature (deploy_handlers, ingest_handlers, spark_handlers) build
on ApiHandler; `routes` assembles them."""

from __future__ import annotations

import json

from tornado import web

from odh_spawner.deploy.model import DeployError
from odh_spawner.errors import OdhError

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


class HealthHandler(web.RequestHandler):
    def get(self):
        self.set_header("Content-Type", "application/json")
        self.finish('{"ok": true}')

    def write_error(self, status_code, **kwargs):
        """Any other method: JSON too (tornado's default is an HTML page)."""
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"message": f"{self._reason}: the health check answers GET only."}))


class NotFoundHandler(ApiHandler):
    async def prepare(self):
        raise web.HTTPError(404, "No such API endpoint.")
