"""OdhFileAuthenticator: local users, password hashes and groups from a YAML file (re-read on change).

For the local platform. On Kubernetes use any JupyterHub authenticator; groups drive profile visibility
either way (`Authenticator.manage_groups`).
"""

from __future__ import annotations

import asyncio
import os

from jupyterhub.auth import Authenticator
from traitlets import Unicode, default

from odh_spawner.auth.passwords import decoy_hash, verify_password
from odh_spawner.auth.users import LocalUser, load_users


class OdhFileAuthenticator(Authenticator):
    users_file = Unicode(
        os.environ.get("ODH_USERS", ""),
        config=True,
        help="""YAML file of users: password hash (`odh-hub hash-password`), groups and admin flag.
        Re-read when it changes. Defaults to $ODH_USERS.""",
    )

    @default("manage_groups")
    def _default_manage_groups(self):
        return True

    @default("allow_all")
    def _default_allow_all(self):
        # only users listed in users_file can authenticate at all
        return True

    _cache: tuple | None = None

    def users(self) -> dict[str, LocalUser]:
        st = os.stat(self.users_file)
        stamp = (st.st_mtime_ns, st.st_size, st.st_ino)
        if self._cache is None or self._cache[0] != stamp:
            self._cache = (stamp, load_users(self.users_file))
        return self._cache[1]

    async def authenticate(self, handler, data):
        """The same work and the same answer for an unknown user as for a known one with a wrong password (a
        password is checked against a decoy hash of the default cost), so neither the time nor the message tells
        which names exist; the hash runs in a thread, off the hub's event loop (PBKDF2 releases the GIL)."""
        name = (data or {}).get("username", "")
        password = (data or {}).get("password", "")
        user = self.users().get(self.normalize_username(name)) if isinstance(name, str) else None
        encoded = user.password_hash if user is not None else decoy_hash()
        ok = await asyncio.to_thread(verify_password, password if isinstance(password, str) else "", encoded)
        if user is None or not isinstance(password, str) or not ok:
            self.log.warning("Failed login for %r", name[:64] if isinstance(name, str) else "?")
            return None
        return {"name": user.name, "groups": list(user.groups), "admin": user.admin}
