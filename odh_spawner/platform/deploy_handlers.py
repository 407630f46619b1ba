"""REST handlers for model deployments, under <service prefix>/api/deployments.

A deployment's API key is in the answers about one deployment (detail, create, new version, rollback, key
rotation, public on/off), not in listings."""

from __future__ import annotations

from tornado import web

from odh_spawner.platform.api import ApiHandler


class DeploymentsHandler(ApiHandler):
    async def get(self):
        every = self.get_query_argument("all", "") in ("1", "true") and self.is_admin
        owner = None if every else self.owner()
        self.reply({"deployments": [d.to_api() for d in self.platform.deployments.list(owner)]})

    async def post(self):
        b = self.body()
        d = await self.platform.deployments.create(self.owner(), b.get("name"), b.get("model_uri"),
                                                   b.get("framework", "sklearn"), b.get("example_input"),
                                                   b.get("model_sha256"))
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
                                                        b.get("framework", "sklearn"), b.get("example_input"),
                                                        b.get("model_sha256"))
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


def deploy_routes(api: str, kw: dict) -> list:
    name = r"([^/]+)"
    return [
        (api + r"/deployments", DeploymentsHandler, kw),
        (api + rf"/deployments/{name}", DeploymentHandler, kw),
        (api + rf"/deployments/{name}/versions", VersionsHandler, kw),
        (api + rf"/deployments/{name}/rollback", RollbackHandler, kw),
        (api + rf"/deployments/{name}/predict", PredictHandler, kw),
        (api + rf"/deployments/{name}/key", KeyHandler, kw),
    ]
