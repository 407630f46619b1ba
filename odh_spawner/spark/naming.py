"""Names of one user server's Spark cluster: Kubernetes object names, label values, local directory names. Pure.

`cluster_slug(user, server)` is `user` or `user--server` when both are already safe, else a readable prefix
and a hash (`alice-x---1a2b3c4d`). Safe parts never contain `--` and hashed slugs always contain `---`, so
two different (user, server) pairs never share a slug.
"""

from __future__ import annotations

import hashlib
import re

SLUG_MAX = 40  # leaves room for 'spark-anchor-' and '-master' within a 63-character DNS label
_SAFE_PART = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def _safe_part(s: str) -> bool:
    return bool(_SAFE_PART.fullmatch(s)) and "--" not in s


def _hashed(text: str, limit: int) -> str:
    digest = hashlib.sha256(text.encode("utf8")).hexdigest()[:8]
    prefix = _NON_ALNUM.sub("-", text.lower()).strip("-")[: limit - 11].rstrip("-")
    if not prefix or not prefix[0].isalpha():
        prefix = ("x-" + prefix)[: limit - 11].rstrip("-")
    return f"{prefix}---{digest}"


def cluster_slug(user: str, server: str = "") -> str:
    """A DNS-label-safe, collision-free slug for one user server (at most SLUG_MAX characters)."""
    plain = f"{user}--{server}" if server else user
    if _safe_part(user) and (not server or _safe_part(server)) and len(plain) <= SLUG_MAX:
        return plain
    return _hashed(f"{user}\xff{server}" if server else user, SLUG_MAX)


def label_value(value: str) -> str:
    """`value` itself when it is a valid label value, else a safe hashed form."""
    if len(value) <= 63 and _LABEL_VALUE.fullmatch(value):
        return value
    return _hashed(value, 63)
