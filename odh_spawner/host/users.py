"""One Unix user per hub user on the local platform (as The Littlest JupyterHub does).

Run as root, the local platform creates `odh-<slug>` (odh_spawner.naming.system_user) on a user's first
spawn, with a home directory of mode 0700 that only they own, and runs their notebook server, kernels,
terminals and Spark daemons as that user. Run as anyone else, it cannot switch identities: every user's
processes run as the platform's own user (*single-user mode*), which the log, the form and the README say.
"""

from __future__ import annotations

import os
import pwd
import stat
import subprocess
from dataclasses import dataclass
from typing import Callable

from odh_spawner.naming import system_user

MARK = "odh-hub user"  # the GECOS comment of every account we create; others are never taken over
USERADD_TIMEOUT = 30


class SystemUserError(RuntimeError):
    """A hub user's system account could not be made or used (the message is safe to show the user)."""


@dataclass(frozen=True)
class SystemUser:
    """A Unix identity to run a hub user's processes as."""
    name: str
    uid: int
    gid: int
    home: str

    @property
    def groups(self) -> list[int]:
        return os.getgrouplist(self.name, self.gid)

    def preexec(self, chdir: bool = True) -> Callable[[], None]:
        """A `preexec_fn` (runs in the child, before exec) dropping root for this user for good."""
        uid, gid, groups, home = self.uid, self.gid, self.groups, self.home

        def drop() -> None:
            os.setgroups(groups)
            os.setgid(gid)
            os.setuid(uid)
            if chdir:
                os.chdir(home)

        return drop

    def env(self) -> dict[str, str]:
        return {"USER": self.name, "LOGNAME": self.name, "HOME": self.home, "SHELL": "/bin/bash"}

    def chown(self, path: str, mode: int) -> None:
        """Make `path` this user's own with `mode` (the platform creates it as root first)."""
        os.chown(path, self.uid, self.gid)
        os.chmod(path, mode)


PLATFORM_MARK = "odh-hub platform service"  # the GECOS comment of the platform service's own account (privsep)


def is_platform_account(uid: int) -> bool:
    """Whether `uid` is a local platform service's own account (host.privsep made it; never a hub user's)."""
    try:
        entry = pwd.getpwuid(uid)
    except KeyError:
        return False
    return uid != 0 and entry.pw_name.startswith("odh_platform_") and entry.pw_gecos.split(",")[0] == PLATFORM_MARK


_switching_delegated = False


def delegate_switching(on: bool) -> None:
    """This process dropped root and starts users' processes through the privileged helper (host.owned.delegate,
    host.privsep): it can still switch users, through the helper."""
    global _switching_delegated
    _switching_delegated = bool(on)


def can_switch_users() -> bool:
    """Only root may create users and start processes as them (itself, or through the privileged helper)."""
    return os.geteuid() == 0 or _switching_delegated


def single_user_warning() -> str:
    return ("The local platform is not running as root: every hub user's server runs as the same Unix "
            "user, so users are NOT isolated from each other on this machine (processes, files, keys). "
            "Run `make up` as root for one system user per hub user.")


def ensure_traversable(path: str) -> list[str]:
    """Grant search permission (o+x, never read) on `path` and its ancestors that lack it, so other users can
    pass through to their homes below. Only directories the platform itself owns are changed; returns them."""
    changed = []
    path = os.path.abspath(path)
    while True:
        st = os.stat(path)
        if not st.st_mode & 0o001 and st.st_uid == os.geteuid():
            os.chmod(path, (st.st_mode & 0o7777) | 0o011)
            changed.append(path)
        if path == os.path.dirname(path):
            return changed
        path = os.path.dirname(path)


def make_home(home: str, user: "SystemUser") -> list[str]:
    """Create (or repair) the user's home: theirs alone, mode 0700, reachable through its parents (o+x).
    Returns the directories whose mode had to change to make it reachable."""
    parent = os.path.dirname(home)
    os.makedirs(parent, mode=0o711, exist_ok=True)
    changed = ensure_traversable(parent)
    existed = os.path.isdir(home)
    os.makedirs(home, exist_ok=True)
    if existed and os.lstat(home).st_uid != user.uid:
        adopt_home(home, user)  # made before system users, by the platform's own user: hand it over
    user.chown(home, 0o700)
    return changed


def adopt_home(home: str, user: "SystemUser") -> int:
    """Give what lies below `home` to `user` (a home made before system users, when every server ran as the
    platform's user; a model server's version directory, at its first start): every directory, symlink (itself,
    never its target) and regular file with a single link. Files with other links and special files are left
    alone (a link planted there must not hand over what it points at). Returns how many entries changed owner.

    Done once, when the tree is still the platform's. It walks with directory file descriptors (os.fwalk: a
    directory swapped for a link is never entered) and bottom-up: a directory becomes the user's only after
    everything below it, so nothing the walk has yet to visit can be changed by the user while it runs."""
    count = 0
    for _root, dirs, files, dirfd in os.fwalk(home, topdown=False, follow_symlinks=False):
        for name in dirs + files:
            try:
                st = os.stat(name, dir_fd=dirfd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            if stat.S_ISDIR(st.st_mode) or stat.S_ISLNK(st.st_mode) or (stat.S_ISREG(st.st_mode) and st.st_nlink == 1):
                os.chown(name, user.uid, user.gid, dir_fd=dirfd, follow_symlinks=False)
                count += 1
    return count


def ensure_system_user(username: str, home: str, shell: str = "/bin/bash") -> SystemUser:
    """The system user of hub user `username`, created (with `home`) if missing. Idempotent.

    An existing account is used only if odh-hub made it (its comment says so); a same-named account made
    by someone else is refused, never taken over.
    """
    name = system_user(username)
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        cmd = ["useradd", "--no-create-home", "--home-dir", home, "--shell", shell, "--user-group",
               "--comment", MARK, name]
        try:
            out = subprocess.run(cmd, capture_output=True, text=True, timeout=USERADD_TIMEOUT)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise SystemUserError(f"Could not create system user {name}: {e}") from None
        # 9: exists (a concurrent spawn made it first)
        if out.returncode not in (0, 9):
            raise SystemUserError(f"Could not create system user {name}: {out.stderr.strip()[-300:]}.")
        entry = pwd.getpwnam(name)
    if entry.pw_gecos.split(",")[0] != MARK:
        raise SystemUserError(f"System user {name} exists but was not created by odh-hub; "
                              "ask your platform admin to rename it.")
    user = SystemUser(name, entry.pw_uid, entry.pw_gid, home)
    make_home(home, user)
    return user


def lookup(username: str, home: str = "") -> SystemUser | None:
    """The system user of `username` if it exists (no side effects)."""
    try:
        entry = pwd.getpwnam(system_user(username))
    except KeyError:
        return None
    return SystemUser(entry.pw_name, entry.pw_uid, entry.pw_gid, home or entry.pw_dir)
