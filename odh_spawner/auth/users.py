"""The local user file (users, password hashes, groups, admin flag): format and validation. Pure but `load_users`.

    users:
      alice:
        password_hash: pbkdf2_sha256$...      # make one with `odh-hub hash-password`
        groups: [data-science]
        admin: false
        login_hint: "password alice-odh"       # optional, printed by `odh-hub up` (demo configs only)
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import yaml

from odh_spawner.errors import ProfileError

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._-]{0,63}$")


class UserFileError(ProfileError):
    """The user file is invalid (names the file, the user and the field)."""


@dataclass(frozen=True)
class LocalUser:
    name: str
    password_hash: str
    groups: tuple[str, ...] = ()
    admin: bool = False
    login_hint: str = ""


def parse_users(data, source: str = "<users>") -> dict[str, LocalUser]:
    if not isinstance(data, dict) or set(data) != {"users"} or not isinstance(data["users"], dict):
        raise UserFileError("Must be a mapping with one key, 'users', mapping names to users.", source=source)
    out = {}
    for name, raw in data["users"].items():
        def fail(field: str, msg: str):
            raise UserFileError(msg, source=source, profile=f"user {name}", field=field)

        if not isinstance(name, str) or not USERNAME_RE.fullmatch(name):
            fail("name", "user names are lowercase letters, digits, '.', '_' and '-'")
        if not isinstance(raw, dict):
            fail("", "must be a mapping")
        unknown = sorted(set(raw) - {"password_hash", "groups", "admin", "login_hint"})
        if unknown:
            fail(unknown[0], "unknown key; allowed: password_hash, groups, admin, login_hint")
        pw = raw.get("password_hash")
        if not isinstance(pw, str) or not pw.startswith("pbkdf2_sha256$") or pw.count("$") != 3:
            fail("password_hash", "must be a pbkdf2_sha256 hash from `odh-hub hash-password`")
        groups = raw.get("groups", [])
        if not isinstance(groups, list) or not all(isinstance(g, str) and g for g in groups):
            fail("groups", "must be a list of group names")
        admin = raw.get("admin", False)
        if not isinstance(admin, bool):
            fail("admin", "must be true or false")
        hint = raw.get("login_hint", "")
        if not isinstance(hint, str):
            fail("login_hint", "must be a string")
        out[name] = LocalUser(name, pw, tuple(groups), admin, hint)
    return out


def load_users(path: str) -> dict[str, LocalUser]:
    try:
        with open(path, encoding="utf-8") as f:
            data = yaml.safe_load(f)
    except OSError as e:
        raise UserFileError(f"Cannot read: {e.strerror}.", source=path) from None
    except yaml.YAMLError as e:
        raise UserFileError(f"Not valid YAML: {e}", source=path) from None
    return parse_users(data, path)
