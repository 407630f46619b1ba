"""Local ingestion backend: one worker process (odh_spawner.ingest.worker) per running ingestion, run as its
owner's system user when the platform runs as root.

The worker gets its configuration — with the owner's S3 keys, and only the owner's — on stdin, never in argv
or its environment. It is started detached (its own session), so it keeps running when the platform service
restarts, and is recognised afterwards by PID, start time and its run directory on its command line."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time

from traitlets import Bool, Float, Int, Unicode, default
from traitlets.config import LoggingConfigurable

from odh_spawner.credentials.model import S3_CLIENT_SETTINGS
from odh_spawner.host.limits import CgroupLimits, join
from odh_spawner.host.users import SystemUser, can_switch_users, ensure_traversable, lookup
from odh_spawner.naming import state_dir_name
from odh_spawner.host import procs
from odh_spawner.ingest.model import Ingestion
from odh_spawner.ingest.spec import IngestError

STATUS, LOG = "status.json", "worker.log"
CODE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def worker_config(ing: Ingestion, creds, bootstrap: str, run_dir: str, max_buffer_bytes: int,
                  consumer: dict | None = None) -> dict:
    """What a worker reads on stdin. Pure."""
    s = ing.spec
    return {"name": ing.name, "bootstrap": bootstrap, "group": ing.group, "instance": ing.group,
            "topic": s.topic, "bucket": s.bucket, "prefix": s.prefix, "format": s.format,
            "flush_records": s.flush_records, "flush_seconds": s.flush_seconds, "partition_by": s.partition_by,
            "max_buffer_bytes": max_buffer_bytes, "status_path": os.path.join(run_dir, STATUS),
            "s3": {"endpoint": creds.endpoint, "access_key": creds.access_key, "secret_key": creds.secret_key},
            "consumer": consumer or {}}


def read_json_nofollow(path: str) -> dict:
    """A small JSON file the owner's process wrote, read without following a link planted there."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return {}
    try:
        with os.fdopen(fd, "rb") as f:
            data = json.loads(f.read(1 << 20) or b"{}")
        return data if isinstance(data, dict) else {}
    except (OSError, ValueError):
        return {}


class LocalIngestBackend(LoggingConfigurable):
    name = "local"

    run_as_owner = Bool(
        config=True,
        help="""Run each ingestion worker as its owner's system user (made by the local spawner on their first
        spawn). Defaults to True when the platform runs as root; otherwise workers run as the platform's user
        (single-user mode).""",
    )

    @default("run_as_owner")
    def _default_run_as_owner(self):
        return can_switch_users()

    stop_timeout = Float(30, config=True, help="Seconds a worker gets to write and commit what it holds on SIGTERM.")
    max_buffer_mb = Int(64, config=True, help="Memory (MiB of records) a worker buffers before it writes early.")
    memory_limit_mb = Int(
        512, config=True,
        help="""Hard memory limit (MiB) of one ingestion worker — the Python process with the Kafka client, its
        buffer (max_buffer_mb) and the encoder — applied through a Linux cgroup where the platform may write
        them (root on a writable cgroupfs). A worker over it is killed and started again from its committed
        offsets: nothing is lost. 0: no limit.""",
    )
    cpu_limit = Float(1.0, config=True, help="CPUs one ingestion worker may use (with memory_limit_mb).")
    cgroup_root = Unicode("/sys/fs/cgroup", config=True, help="Where the cgroup filesystem is mounted.")
    cgroup_parent = Unicode("odh-hub-ingest", config=True, help="Parent cgroup holding one group per worker.")

    def __init__(self, **kw):
        super().__init__(**kw)
        self._children: dict[int, subprocess.Popen] = {}
        self._limits: CgroupLimits | None = None

    @property
    def limits(self) -> CgroupLimits | None:
        if not self.memory_limit_mb:
            return None
        if self._limits is None:
            self._limits = CgroupLimits(self.cgroup_root, self.cgroup_parent)
        return self._limits if self._limits.available() else None

    @staticmethod
    def cgroup_name(ing: Ingestion, run_dir: str) -> str:
        """One group per ingestion of this platform: owner slug, name and the run directory's hash (two hubs on
        one machine never share one)."""
        return f"{state_dir_name(ing.owner)}.{ing.name}.{hashlib.sha256(run_dir.encode()).hexdigest()[:10]}"

    def identity(self, owner: str) -> SystemUser | None:
        if not self.run_as_owner:
            return None
        user = lookup(owner)
        if user is None:
            raise IngestError(f"{owner!r} has no system user on this machine yet: start a notebook server once, "
                              "then create the ingestion again.")
        return user

    def start(self, ing: Ingestion, creds, bootstrap: str, run_dir: str) -> dict:
        user = self.identity(ing.owner)
        os.makedirs(run_dir, mode=0o700, exist_ok=True)
        if os.path.islink(run_dir):
            raise IngestError("The ingestion's run directory is a link; refusing.")
        if user is not None:
            ensure_traversable(os.path.dirname(run_dir))
            os.chown(run_dir, user.uid, user.gid)
        os.chmod(run_dir, 0o700)
        cfg = worker_config(ing, creds, bootstrap, run_dir, self.max_buffer_mb * 2**20)
        env = {k: os.environ[k] for k in ("PATH", "LANG", "LC_ALL", "TZ") if k in os.environ}
        # the worker runs the very code the platform runs (not whatever a user's cwd or path would pick)
        env.update(S3_CLIENT_SETTINGS, PYTHONUNBUFFERED="1", HOME=run_dir, PYTHONPATH=CODE_ROOT)
        log_fd = os.open(os.path.join(run_dir, LOG), os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_NOFOLLOW, 0o600)
        if user is not None:
            os.fchown(log_fd, user.uid, user.gid)
        limits, group, procs_files = self.limits, None, []
        if limits is not None:
            group = self.cgroup_name(ing, run_dir)
            procs_files = limits.create(group, self.cpu_limit, self.memory_limit_mb * 2**20)
        try:
            p = subprocess.Popen([sys.executable, "-m", "odh_spawner.ingest.worker", "--run-dir", run_dir],
                                 cwd=run_dir, env=env, stdin=subprocess.PIPE, stdout=log_fd,
                                 stderr=subprocess.STDOUT, start_new_session=True, umask=0o077,
                                 preexec_fn=_enter(procs_files, user))
        finally:
            os.close(log_fd)
        try:
            p.stdin.write(json.dumps(cfg).encode())
            p.stdin.close()
        except OSError:
            pass
        self._children[p.pid] = p
        self.log.info("Started ingestion worker %s/%s: pid %d%s", ing.owner, ing.name, p.pid,
                      f", at most {self.memory_limit_mb} MiB" if group else "")
        rt = {"pid": p.pid, "started": procs.start_time(p.pid), "run_dir": run_dir}
        if group:
            rt["cgroup"] = group
        return rt

    def alive(self, rt: dict | None) -> bool:
        if not rt or not rt.get("pid"):
            return False
        child = self._children.get(rt["pid"])
        if child is not None:
            return child.poll() is None
        return procs.alive(rt["pid"], rt.get("started")) and rt.get("run_dir", "") in procs.cmdline(rt["pid"])

    def exit_status(self, rt: dict) -> str:
        child = self._children.get(rt.get("pid", 0))
        code = child.poll() if child is not None else None
        if code is None:
            return "it stopped"
        return f"it was killed by signal {-code}" if code < 0 else f"it exited with code {code}"

    def status(self, rt: dict | None, run_dir: str) -> dict:
        return read_json_nofollow(os.path.join(run_dir, STATUS))

    def log_tail(self, run_dir: str, lines: int = 15) -> list[str]:
        return procs.log_tail(os.path.join(run_dir, LOG), 0, lines=lines).splitlines()

    def stop(self, rt: dict | None, timeout: float | None = None, desired: str | None = None) -> None:
        """SIGTERM (the worker writes and commits what it holds), SIGKILL after the timeout. (`desired`, paused or
        stopped, is the same here.)"""
        if not rt or not rt.get("pid"):
            return
        pid = rt["pid"]
        child = self._children.pop(pid, None)
        if (child is None and not self.alive(rt)) or (child is not None and child.poll() is not None):
            self._remove_group(rt)
            return
        procs.signal_pid(pid, signal.SIGTERM)
        deadline = time.monotonic() + (timeout or self.stop_timeout)
        while time.monotonic() < deadline:
            if (child.poll() is not None) if child is not None else not procs.alive(pid, rt.get("started")):
                break
            time.sleep(0.05)
        if procs.alive(pid, rt.get("started")):
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        if child is not None:
            try:
                child.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        self._remove_group(rt)

    def _remove_group(self, rt: dict) -> None:
        if rt.get("cgroup") and self.limits is not None:
            try:
                self.limits.remove(rt["cgroup"])
            except OSError as e:
                self.log.warning("Ingestion cgroup %s not removed: %s", rt["cgroup"], e)


def _enter(procs_files: list[str], user: SystemUser | None):
    """A preexec_fn: join the worker's cgroup as root, then become the owner for good (no extra groups)."""

    def preexec() -> None:
        if procs_files:
            join(procs_files)
        if user is not None:
            os.setgroups([])
            os.setgid(user.gid)
            os.setuid(user.uid)

    return preexec


def stop_recorded(store_root: str, timeout: float = 30) -> int:
    """Stop every worker an ingestion record names (the whole local platform stops); their records stay and
    the next start runs them again. Returns how many were running."""
    from odh_spawner.ingest.store import IngestionStore

    if not os.path.isdir(store_root):
        return 0
    backend, count = LocalIngestBackend(stop_timeout=timeout, run_as_owner=False), 0
    for ing in IngestionStore(store_root).load_all():
        if backend.alive(ing.runtime):
            backend.stop(ing.runtime)
            count += 1
    return count
