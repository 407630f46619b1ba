"""Python client for your usage and limits (/odh/api/usage), for notebook cells and scripts.

    from odh_hub import usage
    u = usage()
    u["cpu_hours"], u["storage_bytes"], u["storage_quota_bytes"]
    u["deployments"]   # {"count": 2, "limit": 20, "source": "the platform default"}

Inside a notebook it needs no arguments: it talks to its own server with the server's token.
"""

from __future__ import annotations

from .client import ApiClient, OdhApiError

__all__ = ["OdhApiError", "UsageClient", "usage"]


class UsageClient(ApiClient):
    def usage(self, user: str | None = None) -> dict:
        """Your usage and limits (an admin may name another user)."""
        return self._json("GET", f"{self.api}/usage", params={"user": user} if user else None)


def usage(user: str | None = None, client: UsageClient | None = None) -> dict:
    return (client or UsageClient(timeout=30)).usage(user)
