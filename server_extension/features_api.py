"""GET /odh/api/features: which odh features this server has and, for those it has not, why (features.py)."""

from __future__ import annotations

import os

from .features import features
from .handlers import OdhHandler, api


class FeaturesHandler(OdhHandler):
    @api
    async def get(self):
        self.reply(features(os.environ, self.extensionapp.platform_url))


HANDLERS = [(r"/odh/api/features", FeaturesHandler)]
