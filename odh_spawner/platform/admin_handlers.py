"""The admin view: every user's servers, Spark clusters, deployments, ingestions and storage use, each with
its last error (a server's: the hub's message of its failed last start, see platform.hubapi), and the actions
an admin takes on them. Hub admins only; anyone else gets 403 with a message.

    GET    <prefix>/api/admin/overview                              -> the overview (platform.overview)
    POST   <prefix>/api/admin/users/USER/server/stop   {"server": ""} -> stop a server (the hub's API)
    POST   <prefix>/api/admin/users/USER/spark/restart {"server": ""} -> restart a server's Spark cluster
    DELETE <prefix>/api/admin/users/USER/deployments/NAME            -> delete a deployment
    POST   <prefix>/api/admin/users/USER/ingestions/NAME/stop        -> stop an ingestion
    GET    <prefix>/admin/                                           -> the page for browsers
    GET    <prefix>/oauth_callback                                   -> the end of the page's login

The JSON API takes a hub token (Authorization: token ...; admin means the token carries admin:users), or the
page's session: the OAuth cookie the page's login through the hub set (admin means a hub admin), with the page's
XSRF token on every call. The hub's users and servers come from the hub's REST API with the service's own
token (platform.hubapi); the rest from the platform's managers, each asked for its owner's things by name.
"""

from __future__ import annotations

import asyncio
import os

from jupyterhub.services.auth import HubOAuth, HubOAuthCallbackHandler, HubOAuthenticated
from tornado import web

from odh_spawner.credentials.model import CredentialsUnavailable
from odh_spawner.credentials.naming import rgw_uid
from odh_spawner.errors import OdhError
from odh_spawner.ingest.model import STOPPED
from odh_spawner.platform import admin_page
from odh_spawner.platform.api import ADMIN_SCOPE, ApiHandler
from odh_spawner.platform.hubapi import HubApi, HubApiError
from odh_spawner.platform.overview import build_overview

NOT_ADMIN = "Only hub admins may use the admin view."


class AdminContext:
    """What the admin handlers share: the hub's API as the service, and the page's OAuth client (one per
    application: the OAuth state set at login is checked by the callback)."""

    def __init__(self, platform, prefix: str):
        self.platform = platform
        self.prefix = prefix.rstrip("/")
        self.hub = HubApi()
        self._oauth: HubOAuth | None = None

    @property
    def oauth(self) -> HubOAuth | None:
        """The page's OAuth login through the hub; None when the hub gave this service no OAuth client
        (JUPYTERHUB_CLIENT_ID unset): then only hub tokens are accepted."""
        if self._oauth is None and os.environ.get("JUPYTERHUB_CLIENT_ID"):
            self._oauth = HubOAuth(api_token=os.environ.get("JUPYTERHUB_API_TOKEN", ""), cache_max_age=60)
        return self._oauth

    @property
    def hub_url(self) -> str:
        return os.environ.get("JUPYTERHUB_BASE_URL", "/").rstrip("/") + "/hub/home"


async def identify(handler, oauth: HubOAuth | None, token_auth) -> dict | None:
    """The caller's hub model: by the token in the Authorization header, else by the page's OAuth cookie
    (whose calls must carry the page's XSRF token). The hub not answering is a 503, not a 500."""
    auth = oauth or token_auth
    if (oauth is not None and not auth.get_token(handler, in_cookie=False)
            and handler.get_cookie(oauth.cookie_name)):
        try:
            handler.check_xsrf_cookie()
        except web.HTTPError:
            raise web.HTTPError(403, "This call lacks the admin page's XSRF token; reload the page and try "
                                     "again.") from None
    try:
        return await auth.get_user(handler, sync=False)
    except web.HTTPError as e:
        if e.status_code >= 500:
            raise web.HTTPError(503, "The hub did not answer when asked who you are; try again in a "
                                     "minute.") from None
        raise


def admin_of(handler, user: dict) -> bool:
    """A token's caller is an admin when the token carries admin:users; a page session (an OAuth token that
    only identifies its user) when the hub says the user is an admin."""
    if getattr(handler, "_token_authenticated", False):
        return ADMIN_SCOPE in user.get("scopes", [])
    return user.get("admin") is True


class AdminApi(HubOAuthenticated, ApiHandler):
    """Base of the admin JSON API: JSON errors with a message (ApiHandler), admins only."""

    def initialize(self, platform, admin: AdminContext):
        super().initialize(platform)
        self.admin = admin
        if admin.oauth is not None:
            self.hub_auth = admin.oauth

    async def prepare(self):
        user = await identify(self, self.admin.oauth, self.platform.hub_auth)
        if not user:
            raise web.HTTPError(403, "Log in as a hub admin: send a hub token (Authorization: token ...) or open "
                                     "the admin page.")
        if user.get("kind", "user") != "user":
            raise web.HTTPError(403, "This token may not use the platform service.")
        auth = self.platform.hub_auth
        if getattr(self, "_token_authenticated", False) and not auth.check_scopes(auth.access_scopes, user):
            raise web.HTTPError(403, "This token may not use the platform service.")
        self.current_user = user
        if not admin_of(self, user):
            raise web.HTTPError(403, NOT_ADMIN)

    @property
    def is_admin(self) -> bool:
        return admin_of(self, self.current_user)

    def server_arg(self) -> str:
        b = self.body()
        unknown = sorted(set(b) - {"server"})
        if unknown:
            raise web.HTTPError(400, "Unknown field(s) %s: give only the server's name, e.g. {\"server\": \"\"}.",
                                ", ".join(repr(k)[:40] for k in unknown[:5]))
        server = b.get("server") or ""
        if not isinstance(server, str) or len(server) > 255:
            raise web.HTTPError(400, "The server must be a name (a string; empty for the default server).")
        return server

    def audit(self, what: str, *args) -> None:
        self.platform.log.info("Admin %s: " + what, self.current_user["name"], *args)


# -- gathering the overview ------------------------------------------------------------------------------
async def _spark_status(spark, log, user: str, server: str) -> tuple[dict | None, str | None]:
    try:
        return await spark.status(user, server), None
    except asyncio.CancelledError:
        raise
    except OdhError as e:
        return None, str(e)
    except Exception as e:  # a cluster's files or master answered nonsense: the rest of the overview shows
        log.warning("Admin overview: Spark status of %s/%s failed (%s): %s", user, server, type(e).__name__, e)
        return None, "The Spark cluster's status could not be read; see the platform service's log."


def _ingestions(manager, log) -> list[dict]:
    described = []
    for ing in manager.list():
        try:
            described.append(manager.describe(ing))
        except Exception as e:  # its status could not be read: the rest of the overview still shows
            log.warning("Admin overview: ingestion %s/%s not described (%s): %s", ing.owner, ing.name,
                        type(e).__name__, e)
            described.append({"name": ing.name, "owner": ing.owner, "desired": ing.desired, "state": "unknown",
                              "last_error": ing.last_error or "Its status could not be read."})
    return described


SPAWN_ERROR_QUERIES = 8  # progress requests to the hub at a time (one per server that is not running)


async def _spawn_errors(hub: HubApi, stopped: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
    """(user, server) -> the hub's message of the failed last start, for each server that is not running and
    whose last start failed (one progress request each, a few at a time)."""
    gate = asyncio.Semaphore(SPAWN_ERROR_QUERIES)

    async def ask(user: str, server: str) -> str | None:
        async with gate:
            return await hub.last_spawn_error(user, server)

    found = await asyncio.gather(*(ask(u, s) for u, s in stopped))
    return {pair: message for pair, message in zip(stopped, found) if message}


async def gather_overview(platform, hub: HubApi) -> dict:
    errors: dict[str, str] = {}
    try:
        hub_users = await hub.users(include_stopped=True)
    except HubApiError as e:
        hub_users, errors["servers"] = None, str(e)
    listed = [(u["name"], s, m) for u in hub_users or () for s, m in sorted((u.get("servers") or {}).items())]
    pairs = [(u, s) for u, s, m in listed if not m.get("stopped")]
    stopped = [(u, s) for u, s, m in listed if m.get("stopped") and not m.get("pending")]
    spawn_errors, statuses = await asyncio.gather(
        _spawn_errors(hub, stopped),
        asyncio.gather(*(_spark_status(platform.spark, platform.log, u, s) for u, s in pairs)))
    deployments = [d.to_api() for d in platform.deployments.list()]
    ingestions = _ingestions(platform.ingestions, platform.log) if platform.ingestions is not None else None
    storage = None
    if platform.storage.enabled:
        names = sorted({u["name"] for u in hub_users or ()} | {d["owner"] for d in deployments}
                       | {i["owner"] for i in ingestions or ()})
        try:
            by_uid = await platform.storage.store().usage()  # one Admin Ops call: every bucket's stats
        except CredentialsUnavailable as e:
            errors["storage"] = str(e)
        else:  # a user without buckets (or without an RGW user yet) stores nothing
            storage = {n: (by_uid.get(rgw_uid(n)), None) for n in names}
    return build_overview(hub_users=hub_users, spark=dict(zip(pairs, statuses)), deployments=deployments,
                          ingestions=ingestions, storage=storage, errors=errors, spawn_errors=spawn_errors)


# -- the API ---------------------------------------------------------------------------------------------
class OverviewHandler(AdminApi):
    async def get(self):
        self.reply(await gather_overview(self.platform, self.admin.hub))


class StopServerHandler(AdminApi):
    async def post(self, user):
        server = self.server_arg()
        stopped = await self.admin.hub.stop_server(user, server)
        self.audit("stopped the server %r of %s", server, user)
        self.reply({"user": user, "server": server, "stopped": stopped}, 200 if stopped else 202)


class RestartSparkHandler(AdminApi):
    async def post(self, user):
        server = self.server_arg()
        status = await self.platform.spark.restart(user, server)
        self.audit("restarted the Spark cluster of %s's server %r", user, server)
        self.reply(status)


class DeploymentHandler(AdminApi):
    async def delete(self, user, name):
        await self.platform.deployments.delete(user, name)
        self.audit("deleted the deployment %r of %s", name, user)
        self.reply({"deleted": name, "owner": user})


class StopIngestionHandler(AdminApi):
    async def post(self, user, name):
        manager = self.platform.ingestions
        if manager is None:
            raise web.HTTPError(503, "Kafka ingestion is not configured on this platform.")
        ing = await manager.set_desired(user, name, STOPPED)
        self.audit("stopped the ingestion %r of %s", name, user)
        self.reply(manager.describe(ing))


# -- the page ----------------------------------------------------------------------------------------------
class AdminPageHandler(HubOAuthenticated, web.RequestHandler):
    """The admin view for browsers: logs in through the hub (OAuth), then serves the page to admins and a
    403 page that says why to anyone else."""

    def initialize(self, platform, admin: AdminContext):
        self.platform = platform
        self.admin = admin
        if admin.oauth is not None:
            self.hub_auth = admin.oauth

    def set_default_headers(self):
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.set_header("Content-Security-Policy", admin_page.CSP)
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Referrer-Policy", "same-origin")

    def refuse(self, status: int, message: str) -> None:
        self.set_status(status)
        self.finish(admin_page.refused(status, message, self.admin.hub_url))

    async def get(self):
        if self.admin.oauth is None:
            return self.refuse(503, "The admin page needs the hub's login for this service (the hub gave it no "
                                    "OAuth client); use the admin API with an admin's hub token.")
        user = await identify(self, self.admin.oauth, self.platform.hub_auth)
        if not user:
            return self.redirect(self.get_login_url())
        if not admin_of(self, user):
            return self.refuse(403, f"Only hub admins may use the admin view: you are logged in as "
                                    f"{user.get('name', '?')}, who is not a hub admin.")
        self.finish(admin_page.page(self.admin.prefix + "/api/admin", self.xsrf_token.decode("ascii"),
                                    user["name"], self.admin.hub_url))

    def write_error(self, status_code, **kwargs):
        exc = kwargs.get("exc_info", (None, None, None))[1]
        message = exc.log_message if isinstance(exc, web.HTTPError) and exc.log_message else self._reason
        if isinstance(exc, web.HTTPError) and exc.args:
            message = message % exc.args
        self.finish(admin_page.refused(status_code, message, self.admin.hub_url))


class ScriptHandler(web.RequestHandler):
    """The page's script (static; nothing in it about anyone)."""

    def get(self):
        self.set_header("Content-Type", "text/javascript; charset=utf-8")
        self.set_header("Cache-Control", "no-cache")
        self.set_header("X-Content-Type-Options", "nosniff")
        self.finish(admin_page.SCRIPT)


class OAuthCallbackHandler(HubOAuthCallbackHandler):
    """The end of the page's login through the hub: sets the session cookie, back to the page."""

    def initialize(self, platform, admin: AdminContext):
        self.platform = platform
        self.admin = admin
        if admin.oauth is not None:
            self.hub_auth = admin.oauth

    async def get(self):
        if self.admin.oauth is None:
            raise web.HTTPError(503, "This service has no OAuth client at the hub; log in is not possible here.")
        try:
            await super().get()
        except web.HTTPError as e:
            if e.status_code >= 500:
                raise web.HTTPError(503, "The hub did not complete your login; open the admin page again.") from None
            raise

    def write_error(self, status_code, **kwargs):
        AdminPageHandler.write_error(self, status_code, **kwargs)


def admin_routes(prefix: str, kw: dict) -> list:
    base = prefix.rstrip("/")
    kw = {**kw, "admin": AdminContext(kw["platform"], base)}
    api = base + "/api/admin"
    user = r"([^/]+)"
    return [
        (api + r"/overview", OverviewHandler, kw),
        (api + rf"/users/{user}/server/stop", StopServerHandler, kw),
        (api + rf"/users/{user}/spark/restart", RestartSparkHandler, kw),
        (api + rf"/users/{user}/deployments/([^/]+)", DeploymentHandler, kw),
        (api + rf"/users/{user}/ingestions/([a-z0-9][a-z0-9-]*)/stop", StopIngestionHandler, kw),
        (base + r"/admin/?", AdminPageHandler, kw),
        (base + r"/admin/admin\.js", ScriptHandler),
        (base + r"/oauth_callback", OAuthCallbackHandler, kw),
    ]
