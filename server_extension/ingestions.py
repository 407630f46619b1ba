"""/odh/api/ingestions...: the notebook's side of Kafka ingestion (the JupyterLab dialog and panel).

Every call is forwarded to the platform service with this server's own hub token (which never reaches the
browser); the platform checks ownership, the topic and the bucket. Settings are validated here first, with
the platform's own rules (odh_spawner.ingest.spec), so a bad form costs no round trip and the answer is a
4xx JSON message either way.
"""

from __future__ import annotations

import os
from urllib.parse import quote, urlencode

from odh_spawner.ingest.spec import SETTINGS, IngestError, build_spec, validate_name

from . import validate as v
from .features import NO_KAFKA, NO_PLATFORM
from .deployments import DeploymentsBase
from .handlers import api
from .s3 import check_owned

ACTIONS = ("pause", "resume", "stop")
STATES = ("running", "paused", "stopped")


def _checked(fn, *args):
    try:
        return fn(*args)
    except IngestError as e:
        raise v.BadRequest(e.message, e.status_code) from None


def create_body(data) -> dict:
    """The platform's create request from a form: {"name", "topic", "bucket", settings...}. Pure."""
    if not isinstance(data, dict):
        raise v.BadRequest("The request body must be a JSON object.")
    data = dict(data)
    name = _checked(validate_name, data.pop("name", None))
    spec = _checked(build_spec, data)
    return {"name": name, **spec.to_json()}


def change_body(data) -> dict:
    """A settings change and/or a state ({"state": "paused"}); unknown fields refused. Pure."""
    if not isinstance(data, dict) or not data:
        raise v.BadRequest('Give the settings to change, e.g. {"flush_records": 5000}.')
    unknown = sorted(str(k) for k in data if k not in (*SETTINGS, "state"))
    if unknown:
        raise v.BadRequest(f"Unknown field(s): {', '.join(k[:40] for k in unknown[:5])}; allowed: "
                           f"{', '.join((*SETTINGS, 'state'))}.")
    if "state" in data and data["state"] not in STATES:
        raise v.BadRequest(f"State must be one of {', '.join(STATES)}.")
    settings = {k: data[k] for k in SETTINGS if k in data}
    if settings:  # the same rules as a new ingestion's, on a placeholder topic and bucket
        _checked(build_spec, {"topic": "t", "bucket": "bucket", **settings})
    return dict(data)


class IngestBase(DeploymentsBase):
    feature = "ingestions"

    async def forward(self, method: str, path: str, body: dict | None = None) -> None:
        if not self.platform.url:
            raise v.BadRequest(NO_PLATFORM["ingestions"], 503)
        await super().forward(method, path, body)


def _name(name: str) -> str:
    return quote(_checked(validate_name, name), safe="")


class IngestionsHandler(IngestBase):
    @api
    async def get(self):
        await self.forward("GET", "ingestions")

    @api
    async def post(self):
        body = create_body(self.body((), ("name", "topic", "bucket", *SETTINGS)))
        # the target must be one of the user's own buckets (the platform checks it again with the user's keys)
        await self.call(check_owned, s3=self.s3, bucket=body["bucket"])
        await self.forward("POST", "ingestions", body)


class IngestionHandler(IngestBase):
    @api
    async def get(self, name):
        await self.forward("GET", f"ingestions/{_name(name)}")

    @api
    async def patch(self, name):
        """Change settings (applied without losing or doubling records) and/or the state."""
        await self.forward("PATCH", f"ingestions/{_name(name)}", change_body(self.body((), (*SETTINGS, "state"))))

    @api
    async def delete(self, name):
        await self.forward("DELETE", f"ingestions/{_name(name)}")


class ActionHandler(IngestBase):
    @api
    async def post(self, name, action):
        await self.forward("POST", f"ingestions/{_name(name)}/{action}", {})


class ObjectsHandler(IngestBase):
    @api
    async def get(self, name):
        limit = self.arg("limit") or "1000"
        if not (limit.isascii() and limit.isdigit()) or not 1 <= int(limit) <= 100_000:
            raise v.BadRequest("Limit must be a number from 1 to 100000.")
        await self.forward("GET", f"ingestions/{_name(name)}/objects?{urlencode({'limit': int(limit)})}")


class VerifyHandler(IngestBase):
    @api
    async def get(self, name):
        await self.forward("GET", f"ingestions/{_name(name)}/verify")


def list_topics(bootstrap: str, timeout: float = 5) -> list[dict]:
    """The Kafka topics (internal '__' ones left out), for the dialog's topic suggestions."""
    try:
        from confluent_kafka.admin import AdminClient
    except ImportError:
        raise v.BadRequest("This server has no Kafka client (confluent-kafka); tell your platform admin.",
                           503) from None
    try:
        md = AdminClient({"bootstrap.servers": bootstrap, "log_level": 2}).list_topics(timeout=timeout)
    except Exception:
        raise v.BadRequest(f"Kafka at {bootstrap} does not answer right now; try again later.", 503) from None
    return sorted(({"name": t, "partitions": len(m.partitions)} for t, m in md.topics.items()
                   if not t.startswith("__")), key=lambda t: t["name"])


class TopicsHandler(IngestBase):
    @api
    async def get(self):
        """The topics of the platform's Kafka (KAFKA_BOOTSTRAP_SERVERS of this server)."""
        bootstrap = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
        if not bootstrap:
            raise v.BadRequest(NO_KAFKA, 503)
        self.reply({"topics": await self.call(list_topics, bootstrap=bootstrap)})


_NAME = r"(?P<name>[^/]+)"
HANDLERS = [
    (r"/odh/api/kafka/topics", TopicsHandler),
    (r"/odh/api/ingestions", IngestionsHandler),
    (rf"/odh/api/ingestions/{_NAME}", IngestionHandler),
    (rf"/odh/api/ingestions/{_NAME}/(?P<action>pause|resume|stop)", ActionHandler),
    (rf"/odh/api/ingestions/{_NAME}/objects", ObjectsHandler),
    (rf"/odh/api/ingestions/{_NAME}/verify", VerifyHandler),
]
