"""Files root reads or writes on behalf of a user's process, safely whoever controls the directory.

A user may replace a file their process writes (a log, a status file) with a symbolic link to a file only root
may read, with a FIFO that blocks whoever opens and reads it, or with a hard link. So root opens what it reads
with O_NOFOLLOW (a link is refused, never followed) and O_NONBLOCK (opening a FIFO never waits), then checks on
the open descriptor (fstat) that it is a regular file with a single link before reading, and reads at most a
bounded number of bytes. A refusal is a `RefusedFile` naming its cause, so callers can log or show why.

Logs of a user's processes are not in a user's directory at all: `private_dir` makes the platform's own
directories (no link, owned by the platform, restrictive mode), and `open_log` opens a log there for a child to
inherit as its stdout and stderr, so the user's process never opens the path itself.
"""

from __future__ import annotations

import errno
import os
import stat

from odh_spawner.host.users import is_platform_account

MAX_READ = 1 << 20


class RefusedFile(OSError):
    """A file root would not read or write: `cause` says why (a symbolic link, a FIFO, other links, ...)."""

    def __init__(self, path: str, cause: str):
        super().__init__(errno.EPERM, f"{os.path.basename(path)} {cause}; not read", path)
        self.cause = cause


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISFIFO, "a FIFO"), (stat.S_ISDIR, "a directory"), (stat.S_ISSOCK, "a socket"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device")):
        if test(mode):
            return name
    return "not a regular file"


def open_regular(path: str) -> int:
    """A read-only descriptor of `path` if it is a regular file with one link; never follows a link in the last
    component, never blocks on a FIFO. FileNotFoundError when it does not exist; RefusedFile otherwise."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY)
    except OSError as e:
        if e.errno == errno.ELOOP:
            raise RefusedFile(path, "is a symbolic link") from None
        raise
    try:
        _check_regular(fd, path)
        return fd
    except BaseException:
        os.close(fd)
        raise


def _check_regular(fd: int, path: str) -> os.stat_result:
    """The stat of an open descriptor that is a regular file with one link; RefusedFile otherwise."""
    st = os.fstat(fd)
    if not stat.S_ISREG(st.st_mode):
        raise RefusedFile(path, f"is {_kind(st.st_mode)}")
    if st.st_nlink != 1:
        raise RefusedFile(path, f"has {st.st_nlink} hard links")
    return st


def read_bytes(path: str, max_bytes: int = MAX_READ, offset: int = 0, tail: bool = False) -> bytes:
    """At most `max_bytes` of a regular file from `offset` (with `tail`, its last `max_bytes` after `offset`).
    FileNotFoundError, RefusedFile as `open_regular`."""
    fd = open_regular(path)
    try:
        size = os.fstat(fd).st_size
        start = max(offset, size - max_bytes) if tail else offset
        os.lseek(fd, start, os.SEEK_SET)
        chunks, left = [], max_bytes
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


def private_dir(path: str, mode: int = 0o700, gid: int = -1) -> str:
    """Make (or check) a directory of the platform's own: created by us with `mode` (and group `gid`), refused
    (RefusedFile) if it is a link, not a directory, or owned by someone else. Its parent must be ours too."""
    try:
        os.mkdir(path, mode)
    except FileExistsError:
        pass
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode) or not stat.S_ISDIR(st.st_mode):
        raise RefusedFile(path, "is a symbolic link" if stat.S_ISLNK(st.st_mode) else f"is {_kind(st.st_mode)}")
    if st.st_uid != os.geteuid() and not (os.geteuid() == 0 and is_platform_account(st.st_uid)):
        raise RefusedFile(path, f"belongs to uid {st.st_uid}")  # (root trusts the platform service's own account)
    if gid != -1 and st.st_gid != gid:
        os.chown(path, -1, gid, follow_symlinks=False)
    if st.st_mode & 0o7777 != mode:
        os.chmod(path, mode, follow_symlinks=False)
    return path


def open_log(path: str, mode: int = 0o600, gid: int = -1) -> tuple[int, int]:
    """(descriptor, size) of a log in one of the platform's own directories, opened for appending (made if
    missing, never through a link) to hand to a child as stdout/stderr. The caller closes the descriptor."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC,
                 mode)
    try:
        st = _check_regular(fd, path)
        if gid != -1:
            os.fchown(fd, -1, gid)
        os.fchmod(fd, mode)
        os.set_blocking(fd, True)
        return fd, st.st_size
    except BaseException:
        os.close(fd)
        raise


def fresh_tmp(path: str, mode: int = 0o600) -> tuple[str, int]:
    """(name, descriptor) of a new temporary file beside `path` for an atomic replace: named by this process,
    a leftover of it removed first, created with O_EXCL|O_NOFOLLOW (never through a link planted there)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    return tmp, os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
