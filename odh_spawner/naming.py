"""Every name derived from a hub user name, from one injective slug. Pure.

`user_slug(name)` is the name itself when it is already *safe* (lowercase letters and digits in groups joined
by single hyphens, at most SLUG_MAX characters), and otherwise a readable prefix, `--` and 16 base32
characters (80 bits) of the name's SHA-256. A safe name never contains `--` and a hashed slug always does,
so no safe name can equal a hashed slug, and two hashed slugs are equal only if their 80-bit digests are.
This is the scheme of kubespawner 7's `safe` slugs, with a longer digest: choosing a name whose slug equals
a colleague's takes a 2**80 preimage search, not the 2**32 of an 8-hex-digit suffix.

Every per-user name is a fixed prefix plus the slug, so each one is injective too:

| name                       | function          | example (alice / Bob.Smith)               |
|----------------------------|-------------------|--------------------------------------------|
| Unix user (local platform) | `system_user`     | odh-alice / odh-bob-smith--<16>            |
| RGW user                   | `rgw_uid`         | odh-alice                                  |
| Kubernetes Secret (S3)     | `secret_name`     | odh-s3-alice                               |
| models bucket              | `models_bucket`   | odh-models-alice                           |
| per-user state directory   | `state_dir_name`  | alice                                      |

Names made by the scheme before this one (`legacy_*`) are only ever *looked up* for users that already
have them, and only taken when their recorded owner matches (see credentials.rgw).
"""

from __future__ import annotations

import base64
import hashlib
import re

SLUG_MAX = 28  # `odh-` + 28 = 32, the longest Linux user name
DIGEST_CHARS = 16
_SAFE = re.compile(r"[a-z0-9]+(?:-[a-z0-9]+)*")
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def digest(text: str, chars: int = DIGEST_CHARS) -> str:
    """Lowercase base32 of the SHA-256 of `text` (UTF-8, lone surrogates kept), cut to `chars`."""
    raw = hashlib.sha256(text.encode("utf-8", "surrogatepass")).digest()
    return base64.b32encode(raw).decode("ascii").lower()[:chars]


def is_safe(name: str, limit: int = SLUG_MAX) -> bool:
    """A name kept as is: `[a-z0-9]` groups joined by single hyphens, at most `limit` characters."""
    return len(name) <= limit and bool(_SAFE.fullmatch(name))


def user_slug(username: str) -> str:
    """The injective slug of a hub user name: DNS-label, bucket and Unix-user safe, at most SLUG_MAX long."""
    if is_safe(username):
        return username
    room = SLUG_MAX - DIGEST_CHARS - 2
    readable = _NON_ALNUM.sub("-", username.lower()).strip("-")[:room].strip("-") or "x"
    return f"{readable}--{digest(username)}"


def system_user(username: str) -> str:
    """The Unix user a hub user's processes run as on the local platform."""
    return f"odh-{user_slug(username)}"


def slug_of(name: str) -> str | None:
    """The slug an `odh-<slug>` name (a Unix user of `system_user`, an RGW user of `rgw_uid`) stands for; None
    for any other name. For the metrics, which count per slug what such accounts use."""
    return name[4:] if name.startswith("odh-") and len(name) > 4 else None


def rgw_uid(username: str) -> str:
    """The RGW user that holds a hub user's buckets."""
    return f"odh-{user_slug(username)}"


def secret_name(username: str) -> str:
    """The per-user Kubernetes Secret holding the S3 keys."""
    return f"odh-s3-{user_slug(username)}"


def home_claim_name(username: str) -> str:
    """The PersistentVolumeClaim holding the user's home on Kubernetes (a DNS subdomain; injective, as the slug)."""
    return f"home-{user_slug(username)}"


def models_bucket(username: str) -> str:
    """The user's bucket for models the platform uploads for deployments (a valid S3 bucket name)."""
    return f"odh-models-{user_slug(username)}"


def state_dir_name(username: str) -> str:
    """The directory holding a user's state under a platform state directory (deployments, Spark, homes)."""
    return user_slug(username)


# -- names of the scheme before this one (looked up for existing users only) -------------------------
_LEGACY_UNSAFE = re.compile(r"[^a-z0-9-]")


def _legacy_slug(username: str, limit: int) -> str:
    s = _LEGACY_UNSAFE.sub("-", username.lower()).strip("-")
    if s == username and len(s) <= limit:
        return s
    old_digest = hashlib.sha256(username.encode("utf-8", "surrogatepass")).hexdigest()[:8]
    return f"{s[: limit - 9].rstrip('-')}-{old_digest}".lstrip("-")


def legacy_rgw_uid(username: str) -> str:
    """The RGW user the previous scheme gave `username` (not injective: check its owner before use)."""
    return f"odh-{_legacy_slug(username, 59)}"


def legacy_state_dir_name(username: str) -> str:
    """The deployment-record directory the previous scheme gave `username`."""
    return _legacy_slug(username, 40)
