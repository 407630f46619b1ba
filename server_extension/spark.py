"""The notebook's side of the user's Spark cluster: /odh/api/spark... and the Spark UI at /odh/spark-ui/.

    GET  /odh/api/spark           -> {"enabled": bool, "state", "master_url", "ui_url", "workers_alive", ...}
    POST /odh/api/spark/scale     {"workers": N} -> the same status (403 {"message"} above a limit)
    POST /odh/api/spark/restart   -> the same status
    GET  /odh/spark-ui/...        -> the cluster's Spark master UI (workers' and applications' pages through it)

Status, scale and restart are forwarded to the platform service with this server's own hub token: the
platform acts only on the cluster of the token's owner, so the notebook holds no cluster credentials. The
master UI is proxied by this server, so only who may use this server reaches it (through the hub's proxy);
the cluster runs Spark's reverse-proxy mode with this path as its base, so the links inside the UI work.
"""

from __future__ import annotations

import os
from urllib.parse import urlencode, urlparse

from jupyter_server.base.handlers import JupyterHandler
from jupyter_server.extension.handler import ExtensionHandlerMixin
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from . import validate as v
from .features import NO_PLATFORM, refusal
from .deployments import Platform
from .handlers import OdhHandler, api

DISABLED = {"enabled": False}
PLATFORM_TIMEOUT = 300  # a scale-up or restart waits until the workers are ALIVE
UI_TIMEOUT = 30
UI_PATH = "odh/spark-ui"
PASSED_HEADERS = ("Content-Type", "Cache-Control", "Last-Modified", "ETag", "Expires")


def master_ui_url() -> str:
    """The master's own web UI (http://host:port), from the server's environment (set by the spawner)."""
    url = os.environ.get("ODH_SPARK_UI_URL", "")
    parsed = urlparse(url)
    if parsed.scheme != "http" or not parsed.hostname:
        return ""
    return f"http://{parsed.netloc}"


def proxied_location(location: str, target: str, prefix: str) -> str:
    """A redirect to the master itself (`target`) goes back through this server's proxy path (`prefix`)."""
    if location == target or location.startswith(target + "/"):
        return prefix + location[len(target):].lstrip("/")
    return location


class SparkApiHandler(OdhHandler):
    feature = "spark"

    def check_feature(self) -> None:
        """A status query of a server whose profile leaves Spark out answers {"enabled": false, "reason"} (what
        it always answered when there is no cluster); scale and restart answer 409 with the reason. A request
        naming another user's cluster (?user=, admins only: the platform checks) is not about this server's."""
        if self.request.method != "GET" and not self.get_query_argument("user", ""):
            super().check_feature()

    def platform(self) -> Platform:
        app = self.extensionapp
        return Platform(app.platform_url, app.platform.token, timeout=PLATFORM_TIMEOUT)

    def platform_path(self, suffix: str = "") -> str:
        """The platform's path for this server's cluster (an admin may add ?user=, passed on)."""
        params = {"server": os.environ.get("JUPYTERHUB_SERVER_NAME", "")}
        user = self.get_query_argument("user", "")
        if user:
            params["user"] = user
        return f"spark{suffix}?{urlencode(params)}"

    async def forward(self, method: str, suffix: str = "", body: dict | None = None) -> None:
        reason = None if self.get_query_argument("user", "") else refusal("spark")
        if reason and method == "GET":
            self.reply({**DISABLED, "reason": reason})
            return
        if not self.extensionapp.platform_url:
            if method == "GET":
                self.reply(DISABLED)
                return
            raise v.BadRequest(NO_PLATFORM["spark"], 503)
        status, data = await self.platform().call(method, self.platform_path(suffix), body)
        if status >= 400:
            self.reply_error(status, data.get("message") or f"the platform service answered {status}")
            return
        self.reply(data, status)


class SparkStatusHandler(SparkApiHandler):
    @api
    async def get(self):
        await self.forward("GET")


class SparkScaleHandler(SparkApiHandler):
    @api
    async def post(self):
        workers = self.body(("workers",))["workers"]
        if isinstance(workers, bool) or not isinstance(workers, int):
            raise v.BadRequest(f"Workers must be a whole number, got {str(workers)[:40]!r}.")
        await self.forward("POST", "/scale", {"workers": workers})


class SparkRestartHandler(SparkApiHandler):
    @api
    async def post(self):
        if self.request.body:
            self.body(())  # nothing, or an empty object
        await self.forward("POST", "/restart", {})


class SparkUIHandler(ExtensionHandlerMixin, JupyterHandler):
    """GET pages of the Spark master UI, as this server's user (authenticated like every handler here)."""

    @property
    def prefix(self) -> str:
        return url_path_join(self.base_url, UI_PATH, "/")

    def write_error(self, status_code: int, **kwargs) -> None:
        """A short text page of its own: jupyter-server's error template embeds this server's API token in the
        page (a proxied UI's error never needs it; the secret scan found it in the 404 of a server without
        Spark)."""
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = getattr(exc, "log_message", None) or self._reason
        self.set_header("Content-Type", "text/plain; charset=utf-8")
        self.finish(f"{status_code}: {message}\n")

    @web.authenticated
    async def get(self, path: str = ""):
        target = master_ui_url()
        if not target:
            raise web.HTTPError(404, "This server has no Spark cluster.")
        uri = self.request.uri or ""
        rest = uri[len(self.prefix):] if uri.startswith(self.prefix) else path
        request = HTTPRequest(f"{target}/{rest}", method="GET", follow_redirects=False,
                              request_timeout=UI_TIMEOUT, headers={"Accept": self.request.headers.get("Accept", "*/*")})
        r = await AsyncHTTPClient().fetch(request, raise_error=False)
        if r.code == 599:
            raise web.HTTPError(502, "The Spark master UI is not answering; is your Spark cluster running?")
        self.set_status(r.code, r.reason)
        for name in PASSED_HEADERS:
            if name in r.headers:
                self.set_header(name, r.headers[name])
        if "Location" in r.headers:
            self.set_header("Location", proxied_location(r.headers["Location"], target, self.prefix))
        self.finish(r.body or b"")


class SparkUIRootHandler(ExtensionHandlerMixin, JupyterHandler):
    @web.authenticated
    def get(self):
        self.redirect(url_path_join(self.base_url, UI_PATH, "/"))


HANDLERS = [
    (r"/odh/api/spark", SparkStatusHandler),
    (r"/odh/api/spark/scale", SparkScaleHandler),
    (r"/odh/api/spark/restart", SparkRestartHandler),
    (rf"/{UI_PATH}", SparkUIRootHandler),
    (rf"/{UI_PATH}/(.*)", SparkUIHandler),
]
