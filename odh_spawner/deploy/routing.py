"""Where a deployment's public URL leads: the hub's proxy routes `/v2/models/<model>` to the platform's model
gateway (odh_spawner.platform.gateway), which checks the caller's credential and forwards to the model server.
The same for every serving backend: a backend only says where its model server answers (`upstream`)."""

from __future__ import annotations

from tornado.httpclient import HTTPClientError

from odh_spawner.deploy.model import Deployment
from odh_spawner.deploy.proxyroutes import ProxyRoutes

ROUTE_PREFIX = "/v2/models/"


class ModelRoutes:
    def __init__(self, gateway_url: str, proxy: ProxyRoutes | None = None, public_url: str = "", log=None):
        self.gateway_url = gateway_url.rstrip("/")
        self.proxy = proxy
        self.public_url = public_url.rstrip("/")
        self.log = log

    @property
    def base_url(self) -> str:
        """The URL base users call: the hub's public URL when the proxy routes to the gateway, else the
        gateway itself."""
        return self.public_url if self.proxy and self.public_url else self.gateway_url

    @staticmethod
    def path(d: Deployment) -> str:
        return ROUTE_PREFIX + d.model_name

    async def add(self, d: Deployment) -> None:
        """Route the deployment's path to the gateway (idempotent) and set its URL."""
        if self.proxy:
            await self.proxy.add(self.path(d), self.gateway_url, owner=d.owner, deployment=d.name)
        d.url = self.base_url

    async def remove(self, d: Deployment) -> None:
        if not self.proxy:
            return
        try:
            await self.proxy.remove(self.path(d))
        except (HTTPClientError, OSError) as e:
            if self.log:
                self.log.warning("Could not remove proxy route of %s/%s: %s", d.owner, d.name, e)
