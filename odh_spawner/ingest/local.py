"""Local ingestion backend: one worker process (odh_spawner.ingest.worker) per running ingestion, run as its
owner's system user when the platform runs as root.

The worker gets its configuration — with the owner's S3 keys, and only the owner's — on stdin, never in argv
or its environment. It is started detached (its own session), so it keeps running when the platform service
restarts, and is recognised afterwards by PID, start time and its run directory on its command line (host.owned).

The run directory is the owner's (the worker writes its status file there); the worker's log is not: it lives
beside it in the ingestion's `logs/`, root's alone, inherited as stdout and stderr. What root reads from the run
directory (status.json) is read safely: never through a link, never blocking on a FIFO (host.safefiles)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
import signal
import sys
import time

from traitlets import Bool, Float, Int, Unicode, default
from traitlets.config import LoggingConfigurable

from odh_spawner.credentials.model import S3_CLIENT_SETTINGS
from odh_spawner.host.limits import CgroupLimits, join
from odh_spawner.host import owned
from odh_spawner.host.owned import OwnedProcess, StartFailed, Supervisor, clean_env, log_tail
from odh_spawner.host.privsep import PrivsepError
from odh_spawner.host.safefiles import RefusedFile, private_dir, read_bytes
from odh_spawner.host.users import SystemUser, can_switch_users, ensure_traversable, lookup
from odh_spawner.naming import state_dir_name
from odh_spawner.ingest.model import RUNNING, Ingestion
from odh_spawner.ingest.progress import group_progress
from odh_spawner.ingest.spec import IngestError

STATUS, LOG = "status.json", "worker.log"  # the log was in the run directory before it moved to LOG_DIR
LOG_DIR = "logs"
log = logging.getLogger("odh_spawner.ingest")
CODE_ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def worker_config(ing: Ingestion, creds, bootstrap: str, run_dir: str, max_buffer_bytes: int,
                  consumer: dict | None = None) -> dict:
    """What a worker reads on stdin. Pure."""
    s = ing.spec
    return {"name": ing.name, "bootstrap": bootstrap, "group": ing.group, "instance": ing.member,
            "topic": s.topic, "bucket": s.bucket, "prefix": s.prefix, "previous_prefixes": ing.prefixes()[1:],
            "format": s.format,
            "flush_records": s.flush_records, "flush_seconds": s.flush_seconds, "partition_by": s.partition_by,
            "max_buffer_bytes": max_buffer_bytes, "status_path": os.path.join(run_dir, STATUS),
            "s3": {"endpoint": creds.endpoint, "access_key": creds.access_key, "secret_key": creds.secret_key},
            "consumer": consumer or {}}


def read_json_nofollow(path: str, max_bytes: int = 1 << 20, logger: logging.Logger | None = None) -> dict:
    """A small JSON file the owner's process wrote, read safely (host.safefiles: never through a link, never
    blocking on a FIFO, at most `max_bytes`); {} when missing, unreadable or refused (the cause is logged)."""
    try:
        data = json.loads(read_bytes(path, max_bytes) or b"{}")
    except RefusedFile as e:
        (logger or log).warning("Not reading %s: it %s", path, e.cause)
        return {}
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def merge_partitions(worker: dict, broker: dict) -> dict:
    """Each partition's position, end offset and the lag between them. The position is the worker's own (from its
    objects, as its status last said), never the group's committed offset on the broker, which anyone who knows
    the group may move; the broker's only when the worker has said nothing of that partition yet. The end is the
    later of the worker's and the broker's (read up to offsets_interval ago): a stuck worker's status stops, the
    broker's end offsets go on, and so does its lag. Pure."""
    out = {}
    for p in sorted(set(worker) | set(broker), key=lambda k: int(k) if str(k).isdigit() else 0):
        w, b = worker.get(p) or {}, broker.get(p) or {}
        committed = w.get("committed") if w.get("committed") is not None else b.get("committed")
        end = max((x for x in (w.get("end"), b.get("end")) if x is not None), default=None)
        lag = max(end - committed, 0) if end is not None and committed is not None else b.get("lag", w.get("lag"))
        out[p] = {"committed": committed, "end": end, "lag": lag}
    return out


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
    offsets_interval = Float(
        5, config=True,
        help="""Seconds between reads of a running ingestion's committed and end offsets from Kafka: its lag as
        the broker sees it (the worker's own status stops when the worker is stuck or down).""")

    def __init__(self, **kw):
        super().__init__(**kw)
        self._sup = Supervisor()
        self._limits: CgroupLimits | None = None
        self._progress: dict[str, tuple[float, dict]] = {}  # run directory -> (monotonic time, group_progress)

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

    @staticmethod
    def log_path(run_dir: str) -> str:
        """The worker's log: beside its run directory (the owner's) in the ingestion's `logs/`, root's alone."""
        return os.path.join(os.path.dirname(run_dir), LOG_DIR, LOG)

    def _owned(self, rt: dict) -> OwnedProcess:
        """The worker a runtime record names (a record from before logs moved has its log in the run directory,
        which is read safely or not at all)."""
        return self._sup.find(rt["pid"], rt.get("started"), marker=rt.get("run_dir", ""),
                              log=rt.get("log") or os.path.join(rt.get("run_dir", ""), LOG),
                              log_offset=rt.get("log_offset", 0))

    def start(self, ing: Ingestion, creds, bootstrap: str, run_dir: str) -> dict:
        user = self.identity(ing.owner)
        os.makedirs(run_dir, mode=0o700, exist_ok=True)
        if os.path.islink(run_dir):
            raise IngestError("The ingestion's run directory is a link; refusing.")
        helper = owned.helper()
        if user is not None:
            ensure_traversable(os.path.dirname(run_dir))
            if helper is not None:  # once, when the run directory is new; never walked again
                try:
                    helper.call("give_dir", path=run_dir, user=user.name, platform_reads=True)
                except PrivsepError as e:
                    raise IngestError(f"The ingestion's run directory could not be handed over: {e}") from None
            else:
                os.chown(run_dir, user.uid, user.gid, follow_symlinks=False)
        if os.stat(run_dir, follow_symlinks=False).st_uid == os.geteuid():
            os.chmod(run_dir, 0o700)
        log_path = self.log_path(run_dir)
        private_dir(os.path.dirname(log_path), 0o700)
        cfg = worker_config(ing, creds, bootstrap, run_dir, self.max_buffer_mb * 2**20)
        # the worker runs the very code the platform runs (not whatever a user's cwd or path would pick)
        env = clean_env({**S3_CLIENT_SETTINGS, "PYTHONUNBUFFERED": "1", "HOME": run_dir, "PYTHONPATH": CODE_ROOT})
        group, procs_files, spec = None, [], None
        if helper is not None and user is not None and helper.capabilities.get("cgroups"):
            group = self.cgroup_name(ing, run_dir)  # the helper makes it, and puts the worker in it
            spec = {"name": group, "cpu": self.cpu_limit, "memory": self.memory_limit_mb * 2**20}
        elif helper is None and self.limits is not None:
            group = self.cgroup_name(ing, run_dir)
            procs_files = self.limits.create(group, self.cpu_limit, self.memory_limit_mb * 2**20)
        try:
            proc = self._sup.start([sys.executable, "-m", "odh_spawner.ingest.worker", "--run-dir", run_dir],
                                   log_path=log_path, cwd=run_dir, env=env, run_as=user, marker=run_dir,
                                   stdin=json.dumps(cfg).encode(), cgroup=spec,
                                   preexec=(lambda: join(procs_files)) if procs_files else None)
        except StartFailed as e:
            raise IngestError(f"The ingestion worker {e}.") from None
        self.log.info("Started ingestion worker %s/%s: pid %d%s", ing.owner, ing.name, proc.pid,
                      f", at most {self.memory_limit_mb} MiB" if group else "")
        rt = {**proc.record(), "run_dir": run_dir}
        if group:
            rt["cgroup"] = group
        return rt

    def alive(self, rt: dict | None) -> bool:
        return bool(rt and rt.get("pid")) and self._owned(rt).alive()

    def exit_status(self, rt: dict) -> str:
        return self._owned(rt).exit_status() if rt.get("pid") else "it stopped"

    def status(self, rt: dict | None, run_dir: str) -> dict:
        """The worker's status file; its partitions' lag from Kafka while the ingestion runs (refresh)."""
        st = read_json_nofollow(os.path.join(run_dir, STATUS), logger=self.log)
        progress = self._progress.get(run_dir)
        if progress is not None and rt and rt.get("run_dir") == run_dir:
            st = {**st, "partitions": merge_partitions(st.get("partitions") or {}, progress[1]["partitions"])}
        return st

    async def refresh(self, ingestions: list[Ingestion], bootstrap: str = "") -> None:
        """For running ingestions, every `offsets_interval` seconds: their consumer group's progress from Kafka.
        (Called by the manager's watch loop.)"""
        now = time.monotonic()
        running = {i.runtime["run_dir"]: i for i in ingestions
                   if i.desired == RUNNING and i.runtime and i.runtime.get("run_dir")}
        for gone in set(self._progress) - set(running):
            self._progress.pop(gone, None)
        if not bootstrap:
            return
        for run_dir, i in running.items():
            if now - self._progress.get(run_dir, (-1e9, {}))[0] < self.offsets_interval:
                continue
            try:
                got = await asyncio.to_thread(group_progress, bootstrap, i.group, i.spec.topic)
            except Exception as e:  # Kafka down or the topic gone: the worker's own figures stand
                self.log.info("No offsets for ingestion %s/%s (%s)", i.owner, i.name, type(e).__name__)
                self._progress.pop(run_dir, None)
                continue
            self._progress[run_dir] = (now, got)

    def log_tail(self, rt: dict | None, run_dir: str, lines: int = 15) -> list[str]:
        if rt and rt.get("pid"):
            return self._owned(rt).tail(lines=lines).splitlines()
        return log_tail(self.log_path(run_dir), lines=lines).splitlines()

    def stop(self, rt: dict | None, timeout: float | None = None, desired: str | None = None) -> None:
        """SIGTERM (the worker writes and commits what it holds), SIGKILL after the timeout. (`desired`, paused or
        stopped, is the same here.) A worker held with SIGSTOP (stuck) gets SIGCONT too, so it sees the SIGTERM and
        commits at once rather than being killed after the timeout."""
        if not rt or not rt.get("pid"):
            return
        self._sup.stop(self._owned(rt), timeout or self.stop_timeout, also=(signal.SIGCONT,))
        self._remove_group(rt)

    def _remove_group(self, rt: dict) -> None:
        helper = owned.helper()
        if rt.get("cgroup") and helper is not None:
            try:
                helper.call("cgroup_remove", name=rt["cgroup"])
            except PrivsepError as e:
                self.log.warning("Ingestion cgroup %s not removed: %s", rt["cgroup"], e)
        elif rt.get("cgroup") and self.limits is not None:
            try:
                self.limits.remove(rt["cgroup"])
            except OSError as e:
                self.log.warning("Ingestion cgroup %s not removed: %s", rt["cgroup"], e)


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
