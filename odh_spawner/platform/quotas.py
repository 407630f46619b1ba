"""The platform service's side of per-group quotas (profiles.quotas): each user's groups, asked of the hub with
the service's own token (its role has `read:users:groups`; a notebook server's token carries no groups), kept
`ttl` seconds, and each user's limits resolved from them. The deployment and ingestion managers ask
`limit(owner, kind)` before they create anything; the usage API shows every limit with where it came from."""

from __future__ import annotations

import json
import logging
import time
from urllib.parse import quote

from tornado.httpclient import AsyncHTTPClient, HTTPClientError

from odh_spawner.profiles.quotas import Limit, OdhQuotas, UserQuotas
from odh_spawner.quantities import parse_memory

log = logging.getLogger("odh_spawner.platform")


class UserGroups:
    """Users' group names from the hub's REST API (GET /users/<name>), cached for `ttl` seconds."""

    def __init__(self, hub_auth, ttl: float = 30.0):
        self.hub_auth = hub_auth
        self.ttl = ttl
        self._cache: dict[str, tuple[float, list[str]]] = {}

    async def of(self, name: str) -> list[str]:
        held = self._cache.get(name)
        if held is not None and time.monotonic() - held[0] < self.ttl:
            return held[1]
        url = self.hub_auth.api_url.rstrip("/") + "/users/" + quote(name, safe="")
        try:
            r = await AsyncHTTPClient().fetch(url, headers={"Authorization": f"token {self.hub_auth.api_token}"},
                                              request_timeout=10)
            groups = sorted(json.loads(r.body).get("groups") or [])
        except (HTTPClientError, OSError, ValueError) as e:
            if held is not None:  # the hub is busy or restarting: the last answer still holds
                return held[1]
            log.warning("Groups of %s not read from the hub (%s); their limits are the defaults", name,
                        getattr(e, "code", type(e).__name__))
            return []
        self._cache[name] = (time.monotonic(), groups)
        return groups


class PlatformQuotas:
    """Each user's limits: per-group quotas (OdhQuotas) over the service's older single settings."""

    def __init__(self, platform, groups: UserGroups):
        from odh_spawner.spark.limits import SparkLimits

        self.platform = platform
        self.groups = groups
        self.config = OdhQuotas(parent=platform)
        storage = platform.storage.quota_max_size
        self.fallbacks = {
            "storage": parse_memory(storage) if storage else None,
            "spark_workers": SparkLimits(parent=platform).max_workers,
            "deployments": platform.max_deployments_per_user,
            "ingestions": platform.max_ingestions_per_user,
        }

    async def of(self, owner: str) -> UserQuotas:
        return self.config.for_groups(await self.groups.of(owner), self.fallbacks)

    async def limit(self, owner: str, kind: str) -> Limit:
        return getattr(await self.of(owner), kind)
