"""The notebook's side of the user's usage and limits: GET /odh/api/usage.

    GET /odh/api/usage[?user=NAME]  -> {"cpu_hours", "memory_bytes", "storage_bytes", "storage_quota_bytes",
                                        "deployments": {"count", "limit", "source"}, "ingestions": {...},
                                        "spark_workers": {...}, "as_of", ...}

Forwarded to the platform service (its /api/usage) with this server's own hub token: the platform answers the
token's owner's figures (an admin may name another user with ?user=; anyone else gets 403 with a message).
"""

from __future__ import annotations

from urllib.parse import urlencode

from . import validate as v
from .deployments import Platform
from .handlers import OdhHandler, api

PLATFORM_TIMEOUT = 30


class UsageHandler(OdhHandler):
    @api
    async def get(self):
        app = self.extensionapp
        if not app.platform_url:
            raise v.BadRequest("Usage is not available on this platform (no platform service); tell your "
                               "platform admin.", 503)
        user = self.get_query_argument("user", "")
        path = "usage" + (f"?{urlencode({'user': user})}" if user else "")
        status, data = await Platform(app.platform_url, app.platform.token, timeout=PLATFORM_TIMEOUT).call("GET", path)
        if status >= 400:
            self.reply_error(status, data.get("message") or f"The platform service answered {status}.")
            return
        self.reply(data, status)


HANDLERS = [(r"/odh/api/usage", UsageHandler)]
