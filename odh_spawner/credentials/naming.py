"""Names derived from JupyterHub user names. Pure."""

from __future__ import annotations

import hashlib
import re

_SAFE = re.compile(r"[^a-z0-9-]")


def _slug(username: str, limit: int) -> str:
    """DNS-safe, collision-free slug: readable prefix + hash when anything had to change."""
    s = _SAFE.sub("-", username.lower()).strip("-")
    if s == username and len(s) <= limit:
        return s
    digest = hashlib.sha256(username.encode()).hexdigest()[:8]
    return f"{s[: limit - 9].rstrip('-')}-{digest}".lstrip("-")


def rgw_uid(username: str) -> str:
    """The RGW user that holds a hub user's buckets."""
    return f"odh-{_slug(username, 59)}"


def secret_name(username: str) -> str:
    """The per-user Kubernetes Secret holding the S3 keys."""
    return f"odh-s3-{_slug(username, 56)}"


def models_bucket(username: str) -> str:
    """The user's bucket for models the platform uploads for deployments (a valid S3 bucket name)."""
    return f"odh-models-{_slug(username, 52)}"
