"""Processes the local platform owns: model servers, ingestion workers, Spark daemons. One way to start them (as
a system user, detached, with a log), to know them again (PID, start time, a command-line marker), to read their
log, and to stop them (SIGTERM, then SIGKILL).

A process is started in its own session, so it outlives the platform service that started it; afterwards it is
recognised by PID and start time (and, when given, a marker on its command line, e.g. its directory), so a
recycled PID is never signalled. Its output goes to a log in a directory of the platform's own
(safefiles.private_dir): the log is opened here and inherited as stdout and stderr, so the user's process never
opens that path, and a user cannot plant a link or a FIFO where root later reads the log (safefiles).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import time
from dataclasses import dataclass, field
from typing import Callable, Iterable

from odh_spawner.host import procs
from odh_spawner.host.privsep import HelperClient, PrivsepError
from odh_spawner.host.safefiles import RefusedFile, open_log, read_bytes
from odh_spawner.host.users import SystemUser, delegate_switching

log = logging.getLogger("odh_spawner.host.owned")
CLEAN_ENV = ("PATH", "LANG", "LC_ALL", "TZ")
_helper: HelperClient | None = None  # set once the platform service dropped root (host.privsep)


def delegate(helper: HelperClient | None) -> None:
    """From now on, start and signal users' processes through the privileged helper (this process dropped
    root); None: do it ourselves again."""
    global _helper
    _helper = helper
    delegate_switching(helper is not None)


def helper() -> HelperClient | None:
    return _helper


class StartFailed(RuntimeError):
    """An owned process could not be started (as its user); the message is safe to show the user."""


def log_tail(path: str, offset: int = 0, lines: int = 25, max_bytes: int = 64 * 1024) -> str:
    """The last `lines` lines of a log written since `offset`, read safely (safefiles): "" when there is no log;
    a refused one (a link, a FIFO, ...) gives one line saying why, and a warning in the platform's log."""
    if not path:
        return ""
    try:
        data = read_bytes(path, max_bytes, offset, tail=True)
    except RefusedFile as e:
        log.warning("Not reading log %s: %s", path, e.cause)
        return f"(odh-hub: the log was not read: it {e.cause})"
    except OSError:
        return ""
    return "\n".join(data.decode(errors="replace").splitlines()[-lines:])


def clean_env(extra: dict | None = None) -> dict[str, str]:
    """The platform's PATH and locale only (never its tokens), plus `extra`."""
    env = {k: os.environ[k] for k in CLEAN_ENV if k in os.environ}
    env.update(extra or {})
    return env


@dataclass
class OwnedProcess:
    """One process the platform started (`popen` set) or took over from a record (`popen` None)."""

    pid: int
    started: int | None
    log: str = ""
    log_offset: int = 0  # where this run's output starts in the (appended) log
    marker: str = ""  # an argument its command line holds ("": PID and start time only)
    popen: subprocess.Popen | None = field(default=None, repr=False, compare=False)

    def alive(self) -> bool:
        if self.popen is not None:
            return self.popen.poll() is None
        return procs.alive(self.pid, self.started) and (not self.marker or self.marker in procs.cmdline(self.pid))

    def running(self) -> bool:
        """Alive per /proc (a zombie is gone), without reaping a child: until reaped, its PID and process group
        cannot be reused, so stopping may still kill what is left in its group."""
        if not procs.alive(self.pid, self.started):
            return False
        return self.popen is not None or not self.marker or self.marker in procs.cmdline(self.pid)

    @property
    def returncode(self) -> int | None:
        if self.popen is not None:
            return self.popen.poll()
        if _helper is not None and self.started is not None:
            try:
                return _helper.call("returncode", pid=self.pid, started=self.started)
            except PrivsepError:
                return None
        return None

    def exit_status(self) -> str:
        """'it exited with code 1', 'it was killed by signal 9', or 'it stopped' (not our child: unknown)."""
        code = self.returncode
        if code is None:
            return "it stopped"
        return f"it was killed by signal {-code}" if code < 0 else f"it exited with code {code}"

    def tail(self, lines: int = 25) -> str:
        return log_tail(self.log, self.log_offset, lines=lines)

    def record(self) -> dict:
        """What a runtime record keeps of it."""
        return {"pid": self.pid, "started": self.started, "log": self.log, "log_offset": self.log_offset}


def start(argv: list[str], *, log_path: str, cwd: str, env: dict, run_as: SystemUser | None = None,
          marker: str = "", stdin: bytes | None = None, preexec: Callable[[], None] | None = None,
          extra_groups: bool = False, log_mode: int = 0o600, header: str = "", cgroup: dict | None = None,
          nice: int = 0) -> OwnedProcess:
    """Start `argv` detached (its own session), stdout and stderr appended to `log_path` (in a directory of the
    platform's own), umask 077, as `run_as` when given (with its supplementary groups if `extra_groups`; the log
    then belongs to the user's group when `log_mode` lets groups read). `stdin` bytes are written to its stdin
    and closed (secrets never go in argv or the environment); `preexec` runs in the child before it drops root.
    `cgroup` ({"name", "cpu", "memory"}) and `nice` apply only through the privileged helper (once this process
    dropped root: `delegate`), which then starts it. StartFailed when the identity cannot be taken."""
    if _helper is not None and run_as is not None:
        return _start_through_helper(argv, log_path=log_path, cwd=cwd, env=env, run_as=run_as, marker=marker,
                                     stdin=stdin, extra_groups=extra_groups, log_mode=log_mode, header=header,
                                     cgroup=cgroup, nice=nice)
    gid = run_as.gid if run_as is not None and log_mode & 0o040 else -1
    fd, offset = open_log(log_path, log_mode, gid)
    kw: dict = {}
    if run_as is not None:
        groups = run_as.groups if extra_groups else []
        if preexec is None:
            kw = dict(user=run_as.uid, group=run_as.gid, extra_groups=groups)
        else:  # preexec must run as root (e.g. joining a cgroup), then drop for good
            kw = dict(preexec_fn=_then_drop(preexec, run_as, groups))
    elif preexec is not None:
        kw = dict(preexec_fn=preexec)
    try:
        if header:
            os.write(fd, header.encode())
        p = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
                             stdout=fd, stderr=subprocess.STDOUT, start_new_session=True, umask=0o077, **kw)
    except (PermissionError, subprocess.SubprocessError) as e:
        if run_as is None:
            raise
        raise StartFailed(f"It could not start as {run_as.name}: {e}") from None
    finally:
        os.close(fd)
    if stdin is not None:
        try:
            p.stdin.write(stdin)
            p.stdin.close()
        except OSError:
            pass
    return OwnedProcess(p.pid, procs.start_time(p.pid), log_path, offset, marker, p)


def _start_through_helper(argv, *, log_path, cwd, env, run_as, marker, stdin, extra_groups, log_mode, header,
                          cgroup, nice) -> OwnedProcess:
    # the log is ours (a directory of the service); its group, when groups may read it, comes from the directory
    # (setgid, made so by the helper's share_dir)
    fd, offset = open_log(log_path, log_mode)
    try:
        if header:
            os.write(fd, header.encode())
        answer = _helper.call("start", (fd,), user=run_as.name, argv=list(argv), cwd=cwd, env=dict(env),
                              stdin=stdin.decode("latin-1") if stdin is not None else None, cgroup=cgroup,
                              extra_groups=extra_groups, nice=nice)
    except PrivsepError as e:
        raise StartFailed(str(e)) from None
    finally:
        os.close(fd)
    return OwnedProcess(answer["pid"], answer["started"], log_path, offset, marker)


def send_signal(pid: int, started: int | None, sig: int, group: bool = False) -> None:
    """Signal a user's process (its group with `group`), through the privileged helper once this process
    dropped root."""
    if _helper is not None and started is not None:
        try:
            _helper.call("signal", pid=pid, started=started, signal=signal.Signals(sig).name[3:], group=group)
        except PrivsepError as e:
            log.warning("Could not signal process %d: %s", pid, e)
        return
    (procs.killpg if group else procs.signal_pid)(pid, sig)


def _then_drop(preexec: Callable[[], None], user: SystemUser, groups: list[int]) -> Callable[[], None]:
    def run() -> None:
        preexec()
        os.setgroups(groups)
        os.setgid(user.gid)
        os.setuid(user.uid)

    return run


def stop_all(processes: Iterable[OwnedProcess], timeout: float, group: bool = True,
             also: tuple[int, ...] = ()) -> list[int]:
    """SIGTERM each live process (and the `also` signals, e.g. SIGCONT for one held with SIGSTOP), wait up to
    `timeout`, SIGKILL what is left: our own unreaped children's whole process group, even once the child itself
    exited (what it left in its group goes too; its PID cannot be reused while unreaped); any other process only
    while its start time and marker still match, its group with `group`. Reaps our children at the end. Returns
    the PIDs that had to be killed."""
    targets = [p for p in processes if p.popen is not None and p.popen.returncode is None
               or p.popen is None and p.alive()]
    for p in targets:
        for sig in (signal.SIGTERM, *also):
            send_signal(p.pid, p.started, sig)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and any(p.running() for p in targets):
        time.sleep(0.05)
    killed = []
    for p in targets:
        if p.popen is not None:  # unreaped (at worst a zombie): its PID and process group are still ours
            if p.running():
                killed.append(p.pid)
            procs.killpg(p.pid, signal.SIGKILL)
        elif p.running():
            send_signal(p.pid, p.started, signal.SIGKILL, group=group)
            killed.append(p.pid)
    for p in targets:
        if p.popen is not None:
            try:
                p.popen.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
    return killed


class Supervisor:
    """The processes one backend started and still holds as children (PID -> OwnedProcess), so that one taken
    back from a record while it is our child is judged (alive, exit status) by its Popen, not by /proc."""

    def __init__(self):
        self.children: dict[int, OwnedProcess] = {}

    def start(self, argv: list[str], **kw) -> OwnedProcess:
        proc = start(argv, **kw)
        self.children[proc.pid] = proc
        return proc

    def find(self, pid: int, started: int | None, *, marker: str = "", log: str = "",
             log_offset: int = 0) -> OwnedProcess:
        """The process a runtime record names: our child if it is one, else identified by PID, start time and
        marker."""
        child = self.children.get(pid)
        if child is not None and child.started == started:
            return child
        return OwnedProcess(pid, started, log, log_offset, marker)

    def stop(self, proc: OwnedProcess, timeout: float, group: bool = True, also: tuple[int, ...] = ()) -> list[int]:
        """Stop it (stop_all, with the `also` signals after SIGTERM) and forget it as a child."""
        self.children.pop(proc.pid, None)
        return stop_all([proc], timeout, group=group, also=also)
