"""Privilege separation for the local platform service, in the shape of OpenSSH's: one small privileged helper.

The platform service parses what users send (deployments, ingestions, Spark requests, model requests through
its gateway). Run as root, a bug there would be root's. So when started as root, the service starts this
helper (a separate process, `python -m odh_spawner.host.privsep`, connected by a socket pair) and then drops to
its own unprivileged system user (`odh_platform_<id>`, never a hub user's: hub users' names have no `_`).
Everything that needs root goes through the helper, as one of a few typed commands:

  start         run a program as a hub user's system user (never root, never the platform's), detached, in its
                own session, optionally in a cgroup with CPU and memory limits, its output appended to a log
                the service opened itself and passes over the socket (SCM_RIGHTS): the helper opens no path
  signal        signal a process (or its process group) that runs as a hub user's system user, by PID and start
                time (a recycled PID is never touched)
  returncode    the exit code of a process the helper started and has reaped (None while it runs)
  renice        set the nice value (0-19) of a hub user's process
  listens       whether a hub user's process holds the listening socket of a port (the gateway's check)
  give_dir      hand a fresh, empty directory of the service to a hub user (mode 0700)
  share_dir     let a hub user's group read a tree of the service (group set, g+r, g+x on directories)
  cgroup_remove remove a worker's cgroup (killing what is left in it)
  guard / release  add or remove loopback ports in the platform's nftables guard (host.portguard): root's only,
                or (guard with `user`) root's and that hub user's (their Spark cluster's web UIs)

Paths: the helper acts only below the roots it was started with (the service's state directories), walks every
component from the root with directory descriptors and O_NOFOLLOW, and refuses a component that is not owned
by root or the service: it never follows a link and never walks a directory a hub user can write.

The policy (`Policy`) is pure and checked before anything runs; a refusal answers with a message and changes
nothing. The helper exits when the service's end of the socket closes (the service stopped or was killed);
processes it started keep running (their records let the next service take them back).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import pwd
import re
import signal
import socket
import stat
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass

from odh_spawner.host import listeners, procs
from odh_spawner.host.limits import CgroupLimits, join
from odh_spawner.host.portguard import PortGuard, PortGuardError
from odh_spawner.host.users import MARK, PLATFORM_MARK, SystemUser, ensure_traversable

log = logging.getLogger("odh_spawner.host.privsep")
SIGNALS = {"TERM": signal.SIGTERM, "KILL": signal.SIGKILL, "STOP": signal.SIGSTOP, "CONT": signal.SIGCONT,
           "INT": signal.SIGINT}
MAX_MESSAGE = 4 << 20
MAX_ARGS = 512
MAX_SHARE_ENTRIES = 200_000
_CGROUP_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
_HEADER = struct.Struct("!I")


class PrivsepError(RuntimeError):
    """The helper refused a command or failed to run it; the message is safe to show the user."""


# -- the policy: pure checks of each command's arguments ------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    roots: tuple[str, ...]  # absolute paths the helper may act below
    platform_uid: int
    platform_gid: int = -1

    def user(self, name) -> SystemUser:
        """A hub user's system account (made by odh-hub: its comment says so), never root or the service."""
        if not isinstance(name, str) or not name.startswith("odh-") or len(name) > 64:
            raise PrivsepError(f"{str(name)[:64]!r} is not a hub user's system account.")
        try:
            entry = pwd.getpwnam(name)
        except KeyError:
            raise PrivsepError(f"There is no system account named {name}.") from None
        return self._checked(entry)

    def user_by_uid(self, uid: int) -> SystemUser:
        try:
            entry = pwd.getpwuid(uid)
        except KeyError:
            raise PrivsepError(f"Uid {uid} is not a hub user's system account.") from None
        return self._checked(entry)

    def _checked(self, entry) -> SystemUser:
        if entry.pw_uid == 0 or entry.pw_uid == self.platform_uid or entry.pw_gecos.split(",")[0] != MARK:
            raise PrivsepError(f"{entry.pw_name} is not a hub user's system account.")
        return SystemUser(entry.pw_name, entry.pw_uid, entry.pw_gid, entry.pw_dir)

    def path(self, path) -> tuple[str, list[str]]:
        """(root, components below it) of an absolute, normalised path below one of the roots."""
        if not isinstance(path, str) or not path.startswith("/") or "\0" in path or os.path.normpath(path) != path:
            raise PrivsepError("A path must be absolute and normalised.")
        for root in self.roots:
            if path.startswith(root.rstrip("/") + "/"):
                rest = path[len(root.rstrip("/")) + 1:].split("/")
                return root, rest
        raise PrivsepError(f"{path} is outside the platform's directories.")

    @staticmethod
    def argv(argv) -> list[str]:
        if (not isinstance(argv, list) or not argv or len(argv) > MAX_ARGS
                or not all(isinstance(a, str) and "\0" not in a for a in argv) or not argv[0].startswith("/")):
            raise PrivsepError("A command must be a list of strings starting with an absolute program path.")
        return argv

    @staticmethod
    def env(env) -> dict[str, str]:
        if not isinstance(env, dict) or len(env) > 256 or not all(
                isinstance(k, str) and isinstance(v, str) and k and "=" not in k and "\0" not in k + v
                for k, v in env.items()):
            raise PrivsepError("An environment must map names to strings.")
        return env

    @staticmethod
    def signal(name) -> int:
        if name not in SIGNALS:
            raise PrivsepError(f"Signal {str(name)[:16]!r} is not one of {', '.join(SIGNALS)}.")
        return SIGNALS[name]

    @staticmethod
    def pid(pid, started) -> tuple[int, int]:
        if not isinstance(pid, int) or pid <= 1 or not isinstance(started, int):
            raise PrivsepError("A process is named by its PID and start time.")
        return pid, started

    @staticmethod
    def ports(ports) -> list[int]:
        if not isinstance(ports, list) or len(ports) > 64 or not all(
                isinstance(p, int) and 1024 <= p <= 65535 for p in ports):
            raise PrivsepError("Ports must be a list of at most 64 numbers from 1024 to 65535.")
        return ports

    @staticmethod
    def cgroup(spec) -> tuple[str, float, int] | None:
        if spec is None:
            return None
        try:
            name, cpu, memory = spec["name"], float(spec["cpu"]), int(spec["memory"])
        except (TypeError, KeyError, ValueError):
            raise PrivsepError("A cgroup is given by name, cpu and memory.") from None
        if not _CGROUP_NAME.match(str(name)) or not 0.01 <= cpu <= 256 or not 16 << 20 <= memory <= 1 << 42:
            raise PrivsepError("The cgroup's name or limits are out of range.")
        return name, cpu, memory


# -- walking below a root without following links --------------------------------------------------------------
def open_beneath(root: str, parts: list[str], owners: set[int]) -> int:
    """A descriptor of root/parts[0]/.../parts[-1], each component opened relative to the one before with
    O_NOFOLLOW (a link is refused), every directory on the way owned by one of `owners`. The last component may
    be a directory or a regular file; it is opened with O_NONBLOCK (a FIFO never blocks) and its type checked."""
    fd = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        for i, part in enumerate(parts):
            if part in ("", ".", ".."):
                raise PrivsepError("A path must not contain empty, '.' or '..' components.")
            st = os.fstat(fd)
            if st.st_uid not in owners:
                raise PrivsepError(f"{'/'.join(parts[:i]) or root} belongs to uid {st.st_uid}; not followed.")
            try:
                nxt = os.open(part, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY,
                              dir_fd=fd)
            except OSError as e:
                raise PrivsepError(f"{'/'.join(parts[:i + 1])} cannot be opened without following a link "
                                   f"({os.strerror(e.errno)}).") from None
            os.close(fd)
            fd = nxt
            mode = os.fstat(fd).st_mode
            if i < len(parts) - 1 and not stat.S_ISDIR(mode):
                raise PrivsepError(f"{'/'.join(parts[:i + 1])} is not a directory.")
            if not (stat.S_ISDIR(mode) or stat.S_ISREG(mode)):
                raise PrivsepError(f"{'/'.join(parts[:i + 1])} is neither a directory nor a regular file.")
        return fd
    except BaseException:
        os.close(fd)
        raise


# -- the privileged side -------------------------------------------------------------------------------------
class Helper:
    """Serves one connection: one command at a time, each answered with {"ok": result} or {"error": message}."""

    def __init__(self, sock: socket.socket, policy: Policy, guard_id: str = "", cgroup_root: str = "/sys/fs/cgroup",
                 cgroup_parent: str = ""):
        self.sock = sock
        self.policy = policy
        self.guard = PortGuard(guard_id, allow_uids=(policy.platform_uid,)) if guard_id else None
        self.cgroups = CgroupLimits(cgroup_root, cgroup_parent) if cgroup_parent else None
        self.children: dict[int, subprocess.Popen] = {}

    def serve(self) -> None:
        if self.guard is not None and self.guard.available():
            try:  # the service's user is admitted to every guarded port from the start (Spark UIs the hub
                self.guard.ensure()  # guarded for their owners: the service reads their master's JSON)
            except PortGuardError as e:
                log.warning("The port guard's table could not be made: %s", e)
        while True:
            try:
                request, fds = receive(self.sock)
            except (ConnectionError, OSError, ValueError):
                return
            try:
                answer = {"ok": self.dispatch(request, fds)}
            except PrivsepError as e:
                answer = {"error": str(e)}
            except Exception as e:  # noqa: BLE001 - the helper keeps serving; the cause goes back to the caller
                log.exception("Privileged helper failed on %s", request.get("command") if isinstance(request, dict)
                              else "?")
                answer = {"error": f"The privileged helper failed: {type(e).__name__}: {e}"}
            finally:
                for fd in fds:
                    os.close(fd)
            self._reap()
            try:
                send(self.sock, answer)
            except OSError:
                return

    def dispatch(self, request, fds: list[int]):
        if not isinstance(request, dict) or not isinstance(request.get("command"), str):
            raise PrivsepError("A request names a command.")
        handler = getattr(self, "cmd_" + request["command"], None)
        if handler is None:
            raise PrivsepError(f"Unknown command {request['command'][:32]!r}.")
        args = request.get("args") or {}
        if not isinstance(args, dict):
            raise PrivsepError("A command's arguments are an object.")
        return handler(fds, **args)

    def _reap(self) -> None:
        for pid, p in list(self.children.items()):
            if p.poll() is not None and len(self.children) > 4096:
                self.children.pop(pid)

    # -- commands ------------------------------------------------------------------------------------------
    def cmd_start(self, fds, *, user, argv, cwd, env, stdin=None, cgroup=None, extra_groups=False, nice=0):
        target = self.policy.user(user)
        argv, env = self.policy.argv(argv), self.policy.env(env)
        if not isinstance(cwd, str) or not cwd.startswith("/"):
            raise PrivsepError("The working directory must be an absolute path.")
        if len(fds) != 1:
            raise PrivsepError("A start passes exactly one descriptor: the log.")
        if not isinstance(nice, int) or not 0 <= nice <= 19:
            raise PrivsepError("A nice value is from 0 to 19.")
        st = os.fstat(fds[0])
        if not stat.S_ISREG(st.st_mode) or st.st_uid != self.policy.platform_uid:
            raise PrivsepError("The log must be a regular file of the platform service.")
        spec = self.policy.cgroup(cgroup)
        procs_files: list[str] = []
        if spec is not None and self.cgroups is not None and self.cgroups.available():
            procs_files = self.cgroups.create(spec[0], spec[1], spec[2])
        groups = os.getgrouplist(target.name, target.gid) if extra_groups else []

        def become_user() -> None:  # in the child: join the cgroup as root, drop for good, only then chdir
            for sig in (signal.SIGTERM, signal.SIGINT):  # the helper ignores them; its children must not
                signal.signal(sig, signal.SIG_DFL)
            if procs_files:
                join(procs_files)
            if nice:
                os.nice(nice)
            os.setgroups(groups)
            os.setgid(target.gid)
            os.setuid(target.uid)
            os.chdir(cwd)

        data = stdin.encode("latin-1") if isinstance(stdin, str) else None
        try:
            p = subprocess.Popen(argv, env=env, stdin=subprocess.PIPE if data is not None else subprocess.DEVNULL,
                                 stdout=fds[0], stderr=subprocess.STDOUT, start_new_session=True, umask=0o077,
                                 preexec_fn=become_user, close_fds=True)
        except (OSError, subprocess.SubprocessError) as e:
            raise PrivsepError(f"It could not start as {target.name}: {e}") from None
        if data is not None:
            try:
                p.stdin.write(data)
                p.stdin.close()
            except OSError:
                pass
        self.children[p.pid] = p
        return {"pid": p.pid, "started": procs.start_time(p.pid), "cgroup": bool(procs_files)}

    def _users_process(self, pid, started) -> int:
        pid, started = self.policy.pid(pid, started)
        if not procs.alive(pid, started):
            return 0
        try:
            with open(f"/proc/{pid}/status") as f:
                uid = next(int(line.split()[1]) for line in f if line.startswith("Uid:"))
        except (OSError, StopIteration, ValueError):
            return 0
        self.policy.user_by_uid(uid)
        return pid

    def cmd_signal(self, fds, *, pid, started, signal, group=False):
        sig = self.policy.signal(signal)
        target = self._users_process(pid, started)
        if not target:
            return False
        if group:
            try:
                if os.getpgid(target) != target:
                    raise PrivsepError(f"Process {target} does not lead a process group.")
            except ProcessLookupError:
                return False
            procs.killpg(target, sig)
        else:
            procs.signal_pid(target, sig)
        return True

    def cmd_returncode(self, fds, *, pid, started):
        p = self.children.get(pid)
        if p is None or procs.start_time(pid) not in (None, started):
            return None
        return p.poll()

    def cmd_renice(self, fds, *, pid, started, value):
        if not isinstance(value, int) or not 0 <= value <= 19:
            raise PrivsepError("A nice value is from 0 to 19.")
        target = self._users_process(pid, started)
        if target:
            procs.set_nice(target, value)
        return bool(target)

    def _open(self, path) -> int:
        root, parts = self.policy.path(path)
        return open_beneath(root, parts, {0, self.policy.platform_uid})

    def cmd_give_dir(self, fds, *, path, user, platform_reads=False):
        """The directory becomes `user`'s, mode 0700; with `platform_reads`, 02750 with the service's group (the
        files the user's process makes there join it: the service reads a worker's status file)."""
        target = self.policy.user(user)
        fd = self._open(path)
        try:
            st = os.fstat(fd)
            if not stat.S_ISDIR(st.st_mode):
                raise PrivsepError(f"{path} is not a directory.")
            if st.st_uid == target.uid:
                return False  # handed over before (once, at creation)
            if st.st_uid != self.policy.platform_uid or os.listdir(fd):
                raise PrivsepError(f"{path} is not a fresh, empty directory of the platform service.")
            if platform_reads and self.policy.platform_gid >= 0:
                os.fchown(fd, target.uid, self.policy.platform_gid)
                os.fchmod(fd, 0o2750)
            else:
                os.fchown(fd, target.uid, target.gid)
                os.fchmod(fd, 0o700)
            return True
        finally:
            os.close(fd)

    def cmd_share_dir(self, fds, *, path, user):
        """Group of `user` on every directory and regular file of the service below `path` (links and others'
        entries are left alone, never followed): directories g+rx with setgid (new files join the group),
        files g+r."""
        target = self.policy.user(user)
        fd = self._open(path)
        count = [0]
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                raise PrivsepError(f"{path} is not a directory.")
            self._share(fd, target.gid, count, depth=0)
        finally:
            os.close(fd)
        return count[0]

    def _share(self, fd: int, gid: int, count: list[int], depth: int) -> None:
        st = os.fstat(fd)
        if st.st_uid != self.policy.platform_uid:
            return
        os.fchown(fd, -1, gid)
        if stat.S_ISDIR(st.st_mode):
            os.fchmod(fd, (st.st_mode & 0o777) | 0o050 | stat.S_ISGID)
        else:
            os.fchmod(fd, (st.st_mode & 0o777) | 0o040)
        count[0] += 1
        if not stat.S_ISDIR(st.st_mode) or depth > 32:
            return
        for name in os.listdir(fd):
            if count[0] >= MAX_SHARE_ENTRIES:
                raise PrivsepError("The tree has too many entries to share.")
            try:
                child = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC | os.O_NOCTTY,
                                dir_fd=fd)
            except OSError:
                continue  # a link (ELOOP) or gone: never followed
            try:
                mode = os.fstat(child).st_mode
                if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
                    self._share(child, gid, count, depth + 1)
            finally:
                os.close(child)

    def cmd_take_over(self, fds, *, path):
        """Give the service what root made below `path` (a Spark cluster's directory the hub created): see
        take_over. The walk starts from a descriptor opened as `_open` does."""
        fd = self._open(path)
        try:
            if not stat.S_ISDIR(os.fstat(fd).st_mode):
                raise PrivsepError(f"{path} is not a directory.")
            return take_over(".", self.policy.platform_uid, self.policy.platform_gid, dir_fd=fd)
        finally:
            os.close(fd)

    def cmd_listens(self, fds, *, pid, started, port):
        """Whether a hub user's process holds the listening socket of `port` (its /proc/PID/fd is root's to
        read): the model gateway's check before it connects."""
        self.policy.ports([port])
        target = self._users_process(pid, started)
        return bool(target) and listeners.holds_listener(target, port)

    def cmd_cgroup_remove(self, fds, *, name):
        if not isinstance(name, str) or not _CGROUP_NAME.match(name):
            raise PrivsepError("A cgroup name is letters, digits, '_', '.' and '-'.")
        if self.cgroups is not None:
            self.cgroups.remove(name)
        return True

    def cmd_guard(self, fds, *, ports, user=None):
        ports = self.policy.ports(ports)
        # a hub user's ports: theirs, root's and the service's (it reads their Spark master's JSON)
        uids = [self.policy.user(user).uid, self.policy.platform_uid] if user is not None else None
        if self.guard is None or not self.guard.available():
            return False
        try:
            self.guard.guard(ports, uids=uids)
        except PortGuardError as e:
            raise PrivsepError(str(e)) from None
        return True

    def cmd_release(self, fds, *, ports):
        if self.guard is not None:
            self.guard.release(self.policy.ports(ports))
        return True

    def cmd_capabilities(self, fds):
        """What this helper can do here (the service asks once at start-up)."""
        return {"guard": bool(self.guard is not None and self.guard.available()),
                "cgroups": bool(self.cgroups is not None and self.cgroups.available())}


# -- the wire: a length, JSON, and descriptors with the request ---------------------------------------------
def send(sock: socket.socket, message: dict, fds: tuple[int, ...] = ()) -> None:
    data = json.dumps(message).encode()
    if len(data) > MAX_MESSAGE:
        raise PrivsepError("The request is too large.")
    payload = _HEADER.pack(len(data)) + data
    if fds:
        socket.send_fds(sock, [payload], list(fds))
    else:
        sock.sendall(payload)


def receive(sock: socket.socket) -> tuple[dict, list[int]]:
    head, fds, _flags, _addr = socket.recv_fds(sock, _HEADER.size, 4)
    if len(head) < _HEADER.size:
        if not head:
            raise ConnectionError("The other end closed the connection.")
        head += _recv_exact(sock, _HEADER.size - len(head))
    (size,) = _HEADER.unpack(head)
    if size > MAX_MESSAGE:
        for fd in fds:
            os.close(fd)
        raise ValueError("The message is too large.")
    return json.loads(_recv_exact(sock, size)), list(fds)


def _recv_exact(sock: socket.socket, size: int) -> bytes:
    chunks, left = [], size
    while left:
        chunk = sock.recv(min(left, 1 << 16))
        if not chunk:
            raise ConnectionError("The other end closed the connection.")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


# -- the service's side --------------------------------------------------------------------------------------
class HelperClient:
    """The platform service's end: one command at a time (a lock), answers or PrivsepError."""

    def __init__(self, sock: socket.socket, process: subprocess.Popen | None = None):
        self.sock = sock
        self.process = process
        self._lock = threading.Lock()
        self.capabilities: dict = {}

    def call(self, command: str, fds: tuple[int, ...] = (), **args):
        with self._lock:
            try:
                send(self.sock, {"command": command, "args": args}, fds)
                answer, extra = receive(self.sock)
            except (OSError, ValueError) as e:
                raise PrivsepError(f"The privileged helper is not answering ({e}).") from None
        for fd in extra:
            os.close(fd)
        if "error" in answer:
            raise PrivsepError(answer["error"])
        return answer.get("ok")

    def close(self) -> None:
        self.sock.close()
        if self.process is not None:
            try:
                self.process.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.process.kill()


def start_helper(policy: Policy, guard_id: str = "", cgroup_root: str = "/sys/fs/cgroup",
                 cgroup_parent: str = "") -> HelperClient:
    """Start the helper (as root, before the service drops) and connect to it."""
    ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
    argv = [sys.executable, "-m", "odh_spawner.host.privsep", "--fd", str(theirs.fileno()),
            "--platform-uid", str(policy.platform_uid), "--platform-gid", str(policy.platform_gid), "--guard-id", guard_id, "--cgroup-root", cgroup_root,
            "--cgroup-parent", cgroup_parent]
    for root in policy.roots:
        argv += ["--root", root]
    env = {k: os.environ[k] for k in ("PATH", "LANG", "PYTHONPATH") if k in os.environ}
    process = subprocess.Popen(argv, pass_fds=[theirs.fileno()], env=env, stdin=subprocess.DEVNULL)
    theirs.close()
    client = HelperClient(ours, process)
    client.capabilities = client.call("capabilities")
    return client


def ensure_platform_user(name: str) -> pwd.struct_passwd:
    """The service's own system account (no home, no login shell), made if missing; one made by someone else
    is refused."""
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        out = subprocess.run(["useradd", "--system", "--no-create-home", "--home-dir", "/nonexistent",
                              "--shell", "/usr/sbin/nologin", "--user-group", "--comment", PLATFORM_MARK, name],
                             capture_output=True, text=True, timeout=30)
        if out.returncode not in (0, 9):
            raise PrivsepError(f"Could not create the platform's system user {name} (useradd said: "
                               f"{out.stderr.strip()[-300:]}).")
        entry = pwd.getpwnam(name)
    if entry.pw_gecos.split(",")[0] != PLATFORM_MARK or entry.pw_uid == 0:
        raise PrivsepError(f"System user {name} exists but was not created for the odh-hub platform service.")
    return entry


def take_over(directory: str, uid: int, gid: int, dir_fd: int | None = None) -> int:
    """Give the service's user what root left in its own state directory (made before privilege separation):
    every directory and regular file owned by root, walked with directory descriptors, never following a link
    and never entering a directory root does not own (a user's model or run directory stays theirs, unread).
    Returns how many entries changed owner."""
    count = 0
    for _root, dirs, files, dfd in os.fwalk(directory, follow_symlinks=False, dir_fd=dir_fd):
        for name in list(dirs):
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if st.st_uid != 0:
                dirs.remove(name)  # not root's (a user's, or already the service's): not entered
                continue
            os.chown(name, uid, _keep(st.st_gid, gid), dir_fd=dfd, follow_symlinks=False)
            count += 1
        for name in files:
            st = os.stat(name, dir_fd=dfd, follow_symlinks=False)
            if st.st_uid == 0 and stat.S_ISREG(st.st_mode) and st.st_nlink == 1:
                os.chown(name, uid, _keep(st.st_gid, gid), dir_fd=dfd, follow_symlinks=False)
                count += 1
    st = os.stat(directory, follow_symlinks=False, dir_fd=dir_fd)
    if st.st_uid == 0 and stat.S_ISDIR(st.st_mode):
        os.chown(directory, uid, _keep(st.st_gid, gid), follow_symlinks=False, dir_fd=dir_fd)
    return count


def _keep(current: int, gid: int) -> int:
    """A group root gave on purpose (a user's, so they may read their logs) stays; root's becomes the service's."""
    return gid if current == 0 else -1


def separate(user_name: str, state_dirs: list[str], guard_id: str = "", cgroup_parent: str = "",
             cgroup_root: str = "/sys/fs/cgroup") -> HelperClient:
    """As root: make the service's account, give it its state directories, start the helper (acting below
    those directories only), and drop root for good. Returns the connection to the helper."""
    entry = ensure_platform_user(user_name)
    for d in state_dirs:
        os.makedirs(d, mode=0o711, exist_ok=True)
        ensure_traversable(d)  # o+x (never read) on it and the way to it: users pass through to their own
        # directories below (a model's version, a Spark cluster's work); the service's umask would give 0700
        moved = take_over(d, entry.pw_uid, entry.pw_gid)
        if moved:
            log.info("Gave %d entries of %s to the platform's user %s", moved, d, user_name)
    client = start_helper(Policy(tuple(os.path.abspath(d) for d in state_dirs), entry.pw_uid, entry.pw_gid), guard_id,
                          cgroup_root, cgroup_parent)
    drop_to(entry)
    return client


def platform_user_name(platform_id: str) -> str:
    """The service's account of one platform: `odh_platform_<id>` (a hub user's is `odh-<slug>`, no `_`)."""
    return "odh_platform_" + "".join(c for c in platform_id.lower() if c.isalnum())[:16]


def drop_to(entry: pwd.struct_passwd) -> None:
    """Become the service's user for good (no way back to root)."""
    os.setgroups([])
    os.setgid(entry.pw_gid)
    os.setuid(entry.pw_uid)
    if os.geteuid() == 0 or os.getuid() == 0:
        raise PrivsepError("Dropping root failed.")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="The local platform service's privileged helper.")
    parser.add_argument("--fd", type=int, required=True)
    parser.add_argument("--platform-uid", type=int, required=True)
    parser.add_argument("--platform-gid", type=int, default=-1)
    parser.add_argument("--root", action="append", default=[])
    parser.add_argument("--guard-id", default="")
    parser.add_argument("--cgroup-root", default="/sys/fs/cgroup")
    parser.add_argument("--cgroup-parent", default="")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="[privsep %(levelname)s] %(message)s")
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the service decides when we stop (it closes the socket)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    sock = socket.socket(fileno=args.fd)
    policy = Policy(tuple(os.path.abspath(r) for r in args.root), args.platform_uid, args.platform_gid)
    Helper(sock, policy, args.guard_id, args.cgroup_root, args.cgroup_parent).serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())
