"""Input validation for the bucket API. Pure: raises BadRequest with a message for the user."""

from __future__ import annotations

import ipaddress
import math
import re
from typing import Any

BUCKET_RE = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MiB = 2**20
MIN_PART = 5 * MiB  # S3's minimum for all but the last part
MAX_PARTS = 10_000


class BadRequest(ValueError):
    """A request the API refuses; the message names what is wrong."""

    status_code = 400

    def __init__(self, message: str, status_code: int = 400):
        super().__init__(message)
        self.status_code = status_code


def bucket(name: Any) -> str:
    if not isinstance(name, str) or not BUCKET_RE.fullmatch(name):
        raise BadRequest(f"Invalid bucket name {_short(name)}: 3-63 characters of lowercase letters, digits, "
                         "'.' and '-', starting and ending with a letter or digit.")
    if ".." in name or ".-" in name or "-." in name:
        raise BadRequest(f"Invalid bucket name {_short(name)}: it must not hold '..', '.-' or '-.'.")
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return name
    raise BadRequest(f"Invalid bucket name {_short(name)}: must not look like an IP address.")


def key(value: Any, what: str = "key") -> str:
    if not isinstance(value, str) or not value:
        raise BadRequest(f"{what} is required.")
    _text(value, what)
    if value.startswith("/"):
        raise BadRequest(f"{what} must not start with '/': {_short(value)}.")
    return value


def prefix(value: Any) -> str:
    if value is None or value == "":
        return ""
    if not isinstance(value, str):
        raise BadRequest("Prefix must be a string.")
    return _text(value, "prefix")


def folder(value: Any) -> str:
    path = key(value, "path").rstrip("/")
    if not path:
        raise BadRequest("Path must name a folder.")
    return path + "/"


def _text(value: str, what: str) -> str:
    if len(value.encode("utf-8", "surrogatepass")) > 1024:
        raise BadRequest(f"{what} is longer than 1024 bytes.")
    if _CONTROL.search(value):
        raise BadRequest(f"{what} must not contain control characters.")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest(f"{what} is not valid UTF-8.") from None
    return value


def integer(value: Any, what: str, low: int, high: int, default: int | None = None) -> int:
    if value is None or value == "":
        if default is None:
            raise BadRequest(f"{what} is required.")
        return default
    if isinstance(value, bool):
        raise BadRequest(f"{what} must be a whole number.")
    if isinstance(value, str):
        if not re.fullmatch(r"[0-9]{1,19}", value.strip()):
            raise BadRequest(f"{what} must be a whole number, got {_short(value)}.")
        value = int(value)
    if not isinstance(value, int):
        raise BadRequest(f"{what} must be a whole number.")
    if not low <= value <= high:
        raise BadRequest(f"{what} must be between {low} and {high}, got {value}.")
    return value


def token(value: Any, what: str = "continuation_token") -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 2048 or _CONTROL.search(value):
        raise BadRequest(f"Invalid {what}.")
    return value


UPLOAD_ID_RE = re.compile(r"^[A-Za-z0-9._~-]{1,512}$")


def upload_id(value: Any) -> str:
    if not isinstance(value, str) or not UPLOAD_ID_RE.fullmatch(value):
        raise BadRequest("Invalid upload_id.")
    return value


def delimiter(value: Any) -> str:
    if value is None:
        return "/"
    if value not in ("/", ""):
        raise BadRequest("Delimiter must be '/' or empty.")
    return value


def body_object(data: Any, required: tuple[str, ...], optional: tuple[str, ...] = ()) -> dict:
    if not isinstance(data, dict):
        raise BadRequest("The request body must be a JSON object.")
    unknown = sorted(str(k) for k in data if k not in required + optional)
    if unknown:
        raise BadRequest(f"Unknown field(s): {', '.join(_short(k) for k in unknown)}.")
    missing = [k for k in required if k not in data]
    if missing:
        raise BadRequest(f"Missing field(s): {', '.join(missing)}.")
    return data


def part_size_for(size: int, minimum: int) -> int:
    """The smallest part size (whole MiB, >= minimum) that fits `size` in at most 10,000 parts."""
    needed = math.ceil(size / MAX_PARTS) if size else 0
    return max(minimum, math.ceil(needed / MiB) * MiB)


def _short(value: Any) -> str:
    r = repr(value)
    return r if len(r) <= 80 else r[:77] + "..."
