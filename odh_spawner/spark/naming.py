"""Names of one user server's Spark cluster: Kubernetes object names, label values, local directory names. Pure.

`cluster_slug(user, server)` builds on the one injective per-user slug (`odh_spawner.naming.user_slug`, written
U below; at most 28 characters, `[a-z0-9]` groups joined by `-`, at most one `--`, never `---`):

| server                                   | slug                       | example                      |
|------------------------------------------|----------------------------|------------------------------|
| the default server ("")                  | `U`                        | alice                        |
| a safe name S that fits                  | `U---S`                    | alice---gpu                  |
| anything else                            | `R---s--<16 base32>`       | alice---my-server--q3x...    |

where R is U cut to fit, s a readable cut of the server name, and the 16 base32 characters (80 bits) come from
the SHA-256 of the (user, server) pair. Why no two pairs share a slug: only the first form has no `---`; a safe
S never contains `--`, while the part after the first `---` of the third form always does; `U---S` gives back
U (U never contains `---` nor ends in `-`), hence the user, and S; two slugs of the third form are equal only
if their 80-bit digests are (the same standard as `user_slug`). Every slug is at most SLUG_MAX characters, so
`spark-anchor-<slug>` and `spark-<slug>-master` stay within a 63-character DNS label.

Names of the scheme before this one (`legacy_cluster_slug`) are only used to find clusters a hub of the
previous version started (Kubernetes anchors deleted at server stop); local state directories are found by
the `user`/`server` recorded in their state files, whatever their name.
"""

from __future__ import annotations

import json
import re

from odh_spawner.kube.labels import hashed, label_value  # noqa: F401 (label_value: re-exported for spark.kube)
from odh_spawner.naming import digest, is_safe, user_slug

SLUG_MAX = 40  # leaves room for 'spark-anchor-' and '-master' within a 63-character DNS label
SEPARATOR = "---"
_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def _readable(text: str, room: int) -> str:
    return _NON_ALNUM.sub("-", text.lower()).strip("-")[:room].strip("-") or "x"


def cluster_slug(user: str, server: str = "") -> str:
    """A DNS-label-safe, collision-free slug for one user server (at most SLUG_MAX characters)."""
    base = user_slug(user)
    if not server:
        return base
    plain = f"{base}{SEPARATOR}{server}"
    if is_safe(server, SLUG_MAX) and len(plain) <= SLUG_MAX:
        return plain
    pair = digest(json.dumps([user, server], ensure_ascii=False))
    room = SLUG_MAX - len(SEPARATOR) - 2 - len(pair)  # for R and s together
    user_part = base[: max(1, room // 2 + room % 2)].rstrip("-")
    server_part = _readable(server, room - len(user_part))
    return f"{user_part}{SEPARATOR}{server_part}--{pair}"


# -- the scheme before this one (looked up for clusters started by a previous hub version only) ------------------
_LEGACY_SAFE_PART = re.compile(r"^[a-z]([a-z0-9-]*[a-z0-9])?$")


def legacy_cluster_slug(user: str, server: str = "") -> str:
    """The slug the previous scheme gave (user, server) (not injective: 32-bit digests)."""
    def safe(s: str) -> bool:
        return bool(_LEGACY_SAFE_PART.fullmatch(s)) and "--" not in s

    plain = f"{user}--{server}" if server else user
    if safe(user) and (not server or safe(server)) and len(plain) <= SLUG_MAX:
        return plain
    return hashed(f"{user}\xff{server}" if server else user, SLUG_MAX)
