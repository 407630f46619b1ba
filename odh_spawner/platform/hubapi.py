"""The hub's REST API as the platform service itself (its own JUPYTERHUB_API_TOKEN), for the admin view:
every user with their servers, a server's last spawn failure, and stopping a user's server. The service's hub
role grants what this needs (list:users, read:users, read:servers, delete:servers). Failures become typed
errors with a message (503 when the hub does not answer, 404 for a user or server it does not know), never a
traceback.

A spawn failure is kept by the hub itself: JupyterHub keeps the Spawner of a server whose start failed, with
its failed start, in memory (its spawn-pending page shows why), and its progress API
(GET /users/USER/server[s/NAME]/progress, scope read:servers) answers such a server with one event
`{"failed": true, "message": "Spawn failed: ..."}`; a server that stopped normally answers 404 (its Spawner
is gone) or 400 (not starting). So a failure is shown until the server's next start, or until the hub restarts
(it is not in the hub's database)."""

from __future__ import annotations

import json
import os
from urllib.parse import quote, urlencode

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from odh_spawner.errors import OdhError

PAGE = 200  # users per request (the hub's default page size)


class HubApiError(OdhError):
    status_code = 503


class HubNotFound(HubApiError):
    status_code = 404


class HubRefused(HubApiError):
    status_code = 400


class HubApi:
    def __init__(self, api_url: str = "", token: str = "", timeout: float = 10.0):
        self.api_url = (api_url or os.environ.get("JUPYTERHUB_API_URL", "http://127.0.0.1:8081/hub/api")).rstrip("/")
        self.token = token or os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.timeout = timeout

    async def request_raw(self, method: str, path: str, body: dict | None = None, accept: str = "application/json",
                          request_timeout: float | None = None) -> tuple[int, bytes]:
        req = HTTPRequest(self.api_url + path, method=method, headers={
            "Authorization": f"token {self.token}", "Accept": accept,
            **({"Content-Type": "application/json"} if body is not None else {})},
            body=json.dumps(body) if body is not None else None,
            connect_timeout=self.timeout, request_timeout=request_timeout or self.timeout * 3)
        try:
            r = await AsyncHTTPClient().fetch(req, raise_error=False)
        except (OSError, HTTPClientError) as e:
            raise HubApiError(f"The hub's API did not answer ({type(e).__name__}); try again in a minute.") from None
        if r.code == 599:  # tornado: no answer (timeout, refused)
            raise HubApiError("The hub's API did not answer in time; try again in a minute.")
        return r.code, r.body or b""

    async def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        code, raw = await self.request_raw(method, path, body)
        try:
            data = json.loads(raw) if raw else None
        except ValueError:
            data = None
        return code, data

    async def users(self, include_stopped: bool = False) -> list[dict]:
        """Every hub user's model with their active servers (paged through); with `include_stopped`, also
        the servers the hub's database knows that are not running (each with "stopped": true)."""
        users: list[dict] = []
        offset = 0
        extra = {"include_stopped_servers": 1} if include_stopped else {}
        while True:
            code, data = await self.request("GET", "/users?" + urlencode({"offset": offset, "limit": PAGE,
                                                                           **extra}))
            if code == 403:
                raise HubApiError("The platform service may not list the hub's users; its hub role needs the "
                                  "scopes list:users, read:users and read:servers (tell your platform admin).")
            if code != 200 or not isinstance(data, list):
                raise HubApiError(f"The hub's API answered {code} to the list of users; try again in a minute.")
            users.extend(u for u in data if isinstance(u, dict) and u.get("name"))
            if len(data) < PAGE:
                return users
            offset += len(data)

    async def stop_server(self, user: str, server: str = "") -> bool:
        """Ask the hub to stop a user's server; True once stopped, False while it is stopping (202)."""
        path = f"/users/{quote(user, safe='')}/server" + (f"s/{quote(server, safe='')}" if server else "")
        code, data = await self.request("DELETE", path)
        if code == 204:
            return True
        if code == 202:
            return False
        message = data.get("message", "") if isinstance(data, dict) else ""
        if code == 404:
            raise HubNotFound(f"{user!r} has no server named {server!r}." if server and "server" in message
                              else f"The hub knows no user {user!r}.")
        if code == 400:  # e.g. named servers are off, or the server is being renamed
            raise HubRefused(f"The hub refused to stop the server: {message}" if message else
                             "The hub refused to stop the server.")
        if code == 403:
            raise HubApiError("The platform service may not stop servers; its hub role needs the scope "
                              "delete:servers (tell your platform admin).")
        raise HubApiError(f"The hub's API answered {code} when stopping the server; try again in a minute.")


    async def last_spawn_error(self, user: str, server: str = "", timeout: float = 5.0) -> str | None:
        """The message of the failed last start of a user's server that is not running, from the hub's progress
        API; None when its last start did not fail (or the hub keeps nothing about it). Only ask about servers
        that are not active: a server starting right now would stream its progress until it is up, which the
        short `timeout` ends (None: it is not a failure yet)."""
        path = (f"/users/{quote(user, safe='')}/server" + (f"s/{quote(server, safe='')}" if server else "")
                + "/progress")
        try:
            code, raw = await self.request_raw("GET", path, accept="text/event-stream", request_timeout=timeout)
        except HubApiError:
            return None
        if code != 200:  # 404: no Spawner kept (stopped normally, or the hub restarted); 400: not starting
            return None
        return failure_of(raw)


def failure_of(stream: bytes) -> str | None:
    """The message of a `failed` event in a progress event stream (its text, never its html_message)."""
    for line in stream.decode("utf-8", "replace").splitlines():
        if not line.startswith("data:"):
            continue
        try:
            event = json.loads(line[5:])
        except ValueError:
            continue
        if isinstance(event, dict) and event.get("failed"):
            message = event.get("message")
            return str(message)[:2000] if message else "Spawn failed."
    return None
