"""Routes on JupyterHub's configurable-http-proxy for served models (its REST API).

Routes carry {"odh": "model"} and no "jupyterhub" flag, so the hub's periodic route check leaves them alone.
"""

from __future__ import annotations

import json

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest


class ProxyRoutes:
    def __init__(self, api_url: str, token: str, timeout: float = 10):
        self.api_url = api_url.rstrip("/")
        self._headers = {"Authorization": f"token {token}", "Content-Type": "application/json"}
        self.timeout = timeout

    async def _call(self, method: str, path: str, body: dict | None = None):
        req = HTTPRequest(f"{self.api_url}/api/routes{path}", method=method, headers=self._headers,
                          body=json.dumps(body) if body is not None else None, request_timeout=self.timeout)
        return await AsyncHTTPClient().fetch(req)

    async def add(self, path: str, target: str, **data) -> None:
        await self._call("POST", path, {"target": target, "odh": "model", **data})

    async def remove(self, path: str) -> None:
        try:
            await self._call("DELETE", path)
        except HTTPClientError as e:
            if e.code != 404:
                raise

    async def list(self) -> dict:
        r = await self._call("GET", "")
        return {k: v for k, v in json.loads(r.body).items() if v.get("odh") == "model"}
