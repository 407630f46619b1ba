"""Kubernetes label values derived from user-chosen text. Pure."""

from __future__ import annotations

import hashlib
import re

_NON_ALNUM = re.compile(r"[^a-z0-9]+")
_LABEL_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")


def label_value(value: str) -> str:
    """`value` itself when it is a valid label value, else a safe hashed form."""
    if len(value) <= 63 and _LABEL_VALUE.fullmatch(value):
        return value
    return hashed(value, 63)


def hashed(text: str, limit: int) -> str:
    """A readable prefix of `text`, `---` and 8 hex digits of its SHA-256, at most `limit` characters (the
    scheme names had before the injective slugs; kept for label values and to find old objects)."""
    old_digest = hashlib.sha256(text.encode("utf8", "surrogatepass")).hexdigest()[:8]
    prefix = _NON_ALNUM.sub("-", text.lower()).strip("-")[: limit - 11].rstrip("-")
    if not prefix or not prefix[0].isalpha():
        prefix = ("x-" + prefix)[: limit - 11].rstrip("-")
    return f"{prefix}---{old_digest}"
