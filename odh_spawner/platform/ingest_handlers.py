"""REST handlers for Kafka ingestions, under <service prefix>/api/ingestions. Every user sees and controls
only their own (another user's name is simply not found: 404); admins may name a user with ?user=."""

from __future__ import annotations

from tornado import web

from odh_spawner.ingest.model import PAUSED, RUNNING, STOPPED
from odh_spawner.platform.api import ApiHandler


class IngestApi(ApiHandler):
    @property
    def manager(self):
        m = self.platform.ingestions
        if m is None:
            raise web.HTTPError(503, "Kafka ingestion is not configured on this platform (no Kafka bootstrap "
                                     "address); ask your platform admin.")
        return m


class IngestionsHandler(IngestApi):
    async def get(self):
        every = self.get_query_argument("all", "") in ("1", "true") and self.is_admin
        owner = None if every else self.owner()
        self.reply({"ingestions": [self.manager.describe(i) for i in self.manager.list(owner)]})

    async def post(self):
        ing = await self.manager.create(self.owner(), self.body())
        self.reply(self.manager.describe(ing), 201)


class IngestionHandler(IngestApi):
    async def get(self, name):
        self.reply(self.manager.describe(self.manager.get(self.owner(), name)))

    async def patch(self, name):
        """Change settings (format, flush_records, flush_seconds, partition_by, prefix) and/or state."""
        ing = await self.manager.update(self.owner(), name, self.body())
        self.reply(self.manager.describe(ing))

    async def delete(self, name):
        await self.manager.delete(self.owner(), name)
        self.reply({"deleted": name})


class ActionHandler(IngestApi):
    ACTIONS = {"pause": PAUSED, "resume": RUNNING, "stop": STOPPED}

    async def post(self, name, action):
        ing = await self.manager.set_desired(self.owner(), name, self.ACTIONS[action])
        self.reply(self.manager.describe(ing))


class ObjectsHandler(IngestApi):
    async def get(self, name):
        try:
            limit = max(1, min(int(self.get_query_argument("limit", "1000")), 100_000))
        except ValueError:
            raise web.HTTPError(400, "Limit must be a number.") from None
        self.reply({"objects": await self.manager.objects(self.owner(), name, limit)})


class VerifyHandler(IngestApi):
    async def get(self, name):
        self.reply(await self.manager.verify(self.owner(), name))


def ingest_routes(api: str, kw: dict) -> list:
    name = r"([a-z0-9][a-z0-9-]*)"
    return [
        (api + r"/ingestions", IngestionsHandler, kw),
        (api + rf"/ingestions/{name}", IngestionHandler, kw),
        (api + rf"/ingestions/{name}/(pause|resume|stop)", ActionHandler, kw),
        (api + rf"/ingestions/{name}/objects", ObjectsHandler, kw),
        (api + rf"/ingestions/{name}/verify", VerifyHandler, kw),
    ]
