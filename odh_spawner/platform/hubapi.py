"""The hub's REST API as the platform service itself (its own JUPYTERHUB_API_TOKEN), for the admin view:
every user with their servers, and stopping a user's server. The service's hub role grants what this needs
(list:users, read:users, read:servers, delete:servers). Failures become typed errors with a message (503 when
the hub does not answer, 404 for a user or server it does not know), never a traceback."""

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

    async def request(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        req = HTTPRequest(self.api_url + path, method=method, headers={
            "Authorization": f"token {self.token}", "Accept": "application/json",
            **({"Content-Type": "application/json"} if body is not None else {})},
            body=json.dumps(body) if body is not None else None,
            connect_timeout=self.timeout, request_timeout=self.timeout * 3)
        try:
            r = await AsyncHTTPClient().fetch(req, raise_error=False)
        except (OSError, HTTPClientError) as e:
            raise HubApiError(f"The hub's API did not answer ({type(e).__name__}); try again in a minute.") from None
        if r.code == 599:  # tornado: no answer (timeout, refused)
            raise HubApiError("The hub's API did not answer in time; try again in a minute.")
        try:
            data = json.loads(r.body) if r.body else None
        except ValueError:
            data = None
        return r.code, data

    async def users(self) -> list[dict]:
        """Every hub user's model with their active servers (paged through)."""
        users: list[dict] = []
        offset = 0
        while True:
            code, data = await self.request("GET", "/users?" + urlencode({"offset": offset, "limit": PAGE}))
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
