"""A real single-node Ceph cluster (1 mon, 1 OSD, 1 radosgw) as local processes, no systemd.

Every daemon binds 127.0.0.1 (mon v1/v2 and RGW on free random ports), so clusters never collide with anything
else on the machine. Used by `odh-hub up` and by the test session.

The OSD's object store is `bluestore` on a sparse file under the cluster directory (objects survive restarts)
or `memstore` (in memory: fast, everything gone when the OSD stops; for throw-away runs and tests).

A directory holding an initialised bluestore cluster (`cluster.json` says so) is *started again* with its
data: same fsid, keyrings, OSD, RGW users and buckets. Its recorded ports are reused when still free (so the S3
endpoint users saw stays the same); a recorded mon port taken by someone else gets a fresh one and the
monitor's monmap is rewritten to match. A memstore cluster has nothing to keep and always starts afresh.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import asdict, dataclass, field
from typing import Callable

from odh_spawner.host.ports import free_port
from odh_spawner.host.procs import terminate_pids
from odh_spawner.host.supervise import RestartBudget, exit_text
from odh_spawner.quantities import format_bytes

CEPH_BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "ceph-authtool", "monmaptool")
OBJECTSTORES = ("bluestore", "memstore")
ADMIN_UID = "odh_platform_admin"  # outside the `odh-<slug>` space of hub users (a slug has no underscore)
MIN_BLUESTORE_SIZE = 2 * 2**30
MIN_OSD_MEMORY_TARGET = 896 * 2**20  # Ceph's own lower bound for osd_memory_target
DAEMONS = ("mon", "osd", "rgw")  # start order; stopped in reverse


class CephError(RuntimeError):
    pass


@dataclass
class RgwAdminKeys:
    access_key: str
    secret_key: str

    def __repr__(self) -> str:  # never print the secret
        return f"RgwAdminKeys(access_key={self.access_key!r}, secret_key=***)"


@dataclass(frozen=True)
class ObjectStore:
    """How the OSD stores objects."""

    kind: str = "memstore"
    bluestore_size: int = 4 * 2**30  # a sparse file: costs disk only as objects fill it
    osd_memory_target: int = MIN_OSD_MEMORY_TARGET
    memstore_size: int = 8 * 2**30

    def __post_init__(self):
        if self.kind not in OBJECTSTORES:
            raise CephError(f"Unknown Ceph object store {self.kind!r}; choose one of {', '.join(OBJECTSTORES)}.")
        if self.bluestore_size < MIN_BLUESTORE_SIZE:
            raise CephError(f"The bluestore size must be at least {format_bytes(MIN_BLUESTORE_SIZE)}, got "
                            f"{format_bytes(self.bluestore_size)}.")
        if self.osd_memory_target < MIN_OSD_MEMORY_TARGET:
            raise CephError(f"The OSD memory target must be at least {format_bytes(MIN_OSD_MEMORY_TARGET)}, got "
                            f"{format_bytes(self.osd_memory_target)}.")


@dataclass
class ClusterRecord:
    """What `cluster.json` remembers about an initialised cluster, to start it again."""

    fsid: str
    objectstore: str
    mon_v2: int
    mon_v1: int
    rgw_port: int
    osd_id: str = "0"
    initialised: bool = False
    starts: int = 0


@dataclass
class _Daemon:
    name: str
    args: tuple[str, ...]
    proc: subprocess.Popen
    budget: RestartBudget = field(default_factory=RestartBudget)


def missing_binaries() -> list[str]:
    return [b for b in CEPH_BINARIES if shutil.which(b) is None]


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port and we may bind it."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def mon_addrs(mon_v2: int, mon_v1: int) -> str:
    return f"[v2:127.0.0.1:{mon_v2},v1:127.0.0.1:{mon_v1}]"


def ceph_conf(d: str, rec: ClusterRecord, store: ObjectStore) -> str:
    """ceph.conf for the cluster in directory `d`. Pure."""
    if store.kind == "bluestore":
        osd_store = f"""osd objectstore = bluestore
bluestore block path = {d}/osd/$id.block.img
bluestore block size = {store.bluestore_size}
bluestore block create = true
bluestore fsck on mount = false
"""
    else:
        osd_store = f"""osd objectstore = memstore
memstore device bytes = {store.memstore_size}
"""
    return f"""[global]
fsid = {rec.fsid}
mon host = {mon_addrs(rec.mon_v2, rec.mon_v1)}
mon initial members = a
public addr = 127.0.0.1
cluster addr = 127.0.0.1
ms bind ipv6 = false
run dir = {d}/run
admin socket = {d}/run/$name.asok
pid file = {d}/run/$name.pid
log file = {d}/log/$name.log
keyring = {d}/keyring
auth cluster required = cephx
auth service required = cephx
auth client required = cephx
osd pool default size = 1
osd pool default min size = 1
osd pool default pg num = 8
osd pool default pgp num = 8
osd pool default pg autoscale mode = off
mon allow pool size one = true
mon allow pool delete = true
mon warn on pool no redundancy = false
mon max pg per osd = 1000
osd crush chooseleaf type = 0
mon data avail warn = 1
mon data avail crit = 0
[mon]
mon data = {d}/mon/$id
[osd]
osd data = {d}/osd/$id
{osd_store}osd memory target = {store.osd_memory_target}
osd max object name len = 460
osd max object namespace len = 64
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rec.rgw_port}
rgw data = {d}/rgw
rgw enable usage log = true
rgw dns name = localhost
"""


def _write_private(path: str, text: str) -> None:
    """Write a file only its owner can read, atomically (a crash never leaves half a file)."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


class CephCluster:
    """Start, supervise and stop a single-node Ceph cluster rooted in `directory` (mode 0700)."""

    def __init__(self, directory: str, rgw_port: int = 0, report: Callable[[str], None] | None = None,
                 store: ObjectStore | None = None):
        self.dir = os.path.abspath(directory)
        self.requested_rgw_port = rgw_port
        self.rgw_port = rgw_port
        self.store = store or ObjectStore()
        self.report = report or (lambda msg: None)
        self.daemons: dict[str, _Daemon] = {}
        self.admin: RgwAdminKeys | None = None
        self.record: ClusterRecord | None = None
        self.restarted = False  # True when start() found an initialised cluster and started it again

    @property
    def conf(self) -> str:
        return os.path.join(self.dir, "ceph.conf")

    @property
    def record_file(self) -> str:
        return os.path.join(self.dir, "cluster.json")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.rgw_port}"

    @property
    def admin_keys_file(self) -> str:
        """JSON {access_key, secret_key, endpoint} of the platform's RGW admin user (mode 0600)."""
        return os.path.join(self.dir, "admin-keys.json")

    @property
    def procs(self) -> list[subprocess.Popen]:
        return [self.daemons[n].proc for n in DAEMONS if n in self.daemons]

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    # -- helpers ---------------------------------------------------------------------------------------------

    def _run(self, *args: str, timeout: float = 30, input_: str | None = None) -> str:
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input_)
        except subprocess.TimeoutExpired:
            raise CephError(f"{args[0]} {args[1] if len(args) > 1 else ''} timed out after {timeout}s.") from None
        if out.returncode != 0:
            raise CephError(f"{' '.join(args[:3])} failed: {out.stderr.strip()[-500:]}.")
        return out.stdout

    def _ok(self, *args: str) -> bool:
        try:
            return subprocess.run(args, capture_output=True, timeout=10).returncode == 0
        except subprocess.TimeoutExpired:
            return False

    def _out(self, *args: str) -> str:
        try:
            return subprocess.run(args, capture_output=True, text=True, timeout=10).stdout
        except subprocess.TimeoutExpired:
            return ""

    def _spawn(self, name: str, args: tuple[str, ...]) -> subprocess.Popen:
        log = open(os.path.join(self.dir, "log", f"{name}.stdout"), "ab")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        return proc

    def _daemon(self, name: str, *args: str) -> None:
        self.daemons[name] = _Daemon(name, args, self._spawn(name, args))
        self._write_pids()

    def _write_pids(self) -> None:
        with open(os.path.join(self.dir, "pids"), "w") as f:
            f.writelines(f"{pid}\n" for pid in self.pids)

    def _wait(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            for d in self.daemons.values():
                if d.proc.poll() is not None:
                    raise CephError(f"The Ceph {d.name} exited ({d.proc.returncode}) while waiting for {what}; "
                                    f"see {self.dir}/log.")
            if time.monotonic() > deadline:
                raise CephError(f"Timed out after {timeout:.0f}s waiting for {what}; see {self.dir}/log.")
            time.sleep(0.2)

    def _rgw_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint + "/", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _load_record(self) -> ClusterRecord | None:
        try:
            with open(self.record_file, encoding="utf-8") as f:
                return ClusterRecord(**json.load(f))
        except FileNotFoundError:
            return None
        except (ValueError, TypeError) as e:
            raise CephError(f"{self.record_file} is unreadable ({e}); move the directory away to start "
                            "afresh.") from None

    def _save_record(self) -> None:
        _write_private(self.record_file, json.dumps(asdict(self.record), indent=1))

    def _write_conf(self) -> None:
        _write_private(self.conf, ceph_conf(self.dir, self.record, self.store))

    # -- start -----------------------------------------------------------------------------------------------

    def start(self, timeout: float = 120) -> "CephCluster":
        missing = missing_binaries()
        if missing:
            raise CephError(f"Ceph is not installed (missing {', '.join(missing)}); run `make install`.")
        t0 = time.monotonic()
        self._stop_leftovers()
        try:
            rec = self._load_record()
            if rec is not None and rec.initialised and rec.objectstore == "bluestore":
                if self.store.kind != "bluestore":
                    raise CephError(f"{self.dir} holds a bluestore cluster with data; set `ceph.objectstore: "
                                    f"bluestore`, or move the directory away to start an empty {self.store.kind} one.")
                self._restart(rec, timeout)
            else:
                self._create(timeout)
        except BaseException:
            self.stop()
            raise
        how = "started again with its data" if self.restarted else "created"
        self.report(f"Ceph RGW ready at {self.endpoint} in {time.monotonic() - t0:.1f}s "
                    f"({self.store.kind}, {how})")
        return self

    def _prepare_dir(self, fresh: bool) -> None:
        if fresh and os.path.exists(self.dir):
            shutil.rmtree(self.dir)
        os.makedirs(self.dir, mode=0o700, exist_ok=True)
        os.chmod(self.dir, 0o700)
        for sub in ("mon/a", "osd/0", "run", "log", "rgw"):
            os.makedirs(os.path.join(self.dir, sub), exist_ok=True)

    def _create(self, timeout: float) -> None:
        d = self.dir
        self._prepare_dir(fresh=True)
        self.record = ClusterRecord(fsid=str(uuid.uuid4()), objectstore=self.store.kind, mon_v2=free_port(),
                                    mon_v1=free_port(), rgw_port=self.requested_rgw_port or free_port())
        self.rgw_port = self.record.rgw_port
        self._save_record()
        self._write_conf()
        c = ("-c", self.conf)
        keyring = os.path.join(d, "keyring")
        self._run("ceph-authtool", "--create-keyring", keyring, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *")
        self._run("ceph-authtool", keyring, "--gen-key", "-n", "client.admin", "--cap", "mon", "allow *",
                  "--cap", "osd", "allow *", "--cap", "mgr", "allow *", "--cap", "mds", "allow *")
        monmap = os.path.join(d, "monmap")
        self._run("monmaptool", "--create", "--addv", "a", mon_addrs(self.record.mon_v2, self.record.mon_v1),
                  "--fsid", self.record.fsid, monmap)
        self._run("ceph-mon", *c, "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", keyring)
        self.report("Ceph: starting monitor")
        self._start_mon(timeout)
        osd_uuid = str(uuid.uuid4())
        secret = self._run("ceph-authtool", "--gen-print-key").strip()
        new_json = os.path.join(d, "osd", "new.json")
        _write_private(new_json, json.dumps({"cephx_secret": secret}))
        osd_id = self._run("ceph", *c, "osd", "new", osd_uuid, "-i", new_json).strip()
        os.remove(new_json)
        self.record.osd_id = osd_id
        osd_keyring = os.path.join(d, "osd", osd_id, "keyring")
        os.makedirs(os.path.dirname(osd_keyring), exist_ok=True)
        self._run("ceph-authtool", "--create-keyring", osd_keyring, "--name", f"osd.{osd_id}", "--add-key", secret)
        self.report(f"Ceph: creating the object store ({self._store_text()})")
        self._run("ceph-osd", *c, "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid, "--keyring", osd_keyring,
                  timeout=120)
        self._start_osd(timeout)
        rgw_keyring = os.path.join(d, "rgw", "keyring")
        _write_private(rgw_keyring, self._run("ceph", *c, "auth", "get-or-create", "client.rgw.a", "mon", "allow rw",
                                              "osd", "allow rwx", "mgr", "allow rw"))
        self._start_rgw(timeout)
        self.admin = self._create_admin()
        self.record.initialised = True
        self.record.starts = 1
        self._save_record()

    def _restart(self, rec: ClusterRecord, timeout: float) -> None:
        self.record = rec
        self.restarted = True
        self._prepare_dir(fresh=False)
        self.report(f"Ceph: starting the existing cluster in {self.dir} (fsid {rec.fsid})")
        if not (port_free(rec.mon_v2) and port_free(rec.mon_v1)):
            old = mon_addrs(rec.mon_v2, rec.mon_v1)
            rec.mon_v2, rec.mon_v1 = free_port(), free_port()
            self._move_monitor(old)
        wanted = self.requested_rgw_port or rec.rgw_port
        if not self.requested_rgw_port and not port_free(wanted):
            wanted = free_port()
            self.report(f"Ceph: the RGW port {rec.rgw_port} is taken; the S3 endpoint moves to port {wanted}")
        rec.rgw_port = self.rgw_port = wanted
        self._write_conf()
        self._save_record()
        self.report("Ceph: starting monitor")
        self._start_mon(timeout)
        self._start_osd(timeout)
        self._start_rgw(timeout)
        self.admin = self._reuse_admin()
        rec.starts += 1
        self._save_record()

    def _move_monitor(self, old: str) -> None:
        """Give the monitor the record's (new) ports: rewrite its monmap (the conf is rewritten by the caller)."""
        rec = self.record
        self.report(f"Ceph: the monitor's ports {old} are taken; moving it to {mon_addrs(rec.mon_v2, rec.mon_v1)}")
        self._write_conf()
        c = ("-c", self.conf)
        monmap = os.path.join(self.dir, "monmap")
        self._run("ceph-mon", *c, "-i", "a", "--extract-monmap", monmap)
        self._run("monmaptool", "--rm", "a", monmap)
        self._run("monmaptool", "--addv", "a", mon_addrs(rec.mon_v2, rec.mon_v1), monmap)
        self._run("ceph-mon", *c, "-i", "a", "--inject-monmap", monmap)

    def _store_text(self) -> str:
        if self.store.kind == "bluestore":
            return f"bluestore, a sparse file of up to {self.store.bluestore_size / 2**30:.0f} GiB"
        return "memstore: in memory, lost when Ceph stops"

    def _start_mon(self, timeout: float) -> None:
        self._daemon("mon", "ceph-mon", "-c", self.conf, "-f", "-i", "a")
        self._wait("the Ceph monitor", lambda: self._ok("ceph", "-c", self.conf, "--connect-timeout", "2", "-s"),
                   timeout)

    def _osd_args(self) -> tuple[str, ...]:
        osd_id = self.record.osd_id
        return ("ceph-osd", "-c", self.conf, "-f", "-i", osd_id,
                "--keyring", os.path.join(self.dir, "osd", osd_id, "keyring"))

    def _start_osd(self, timeout: float) -> None:
        self.report(f"Ceph: starting object storage daemon ({self.store.kind})")
        self._daemon("osd", *self._osd_args())
        osd = f"osd.{self.record.osd_id} up"
        self._wait("the Ceph OSD", lambda: osd in self._out("ceph", "-c", self.conf, "osd", "dump"), timeout)

    def _rgw_args(self) -> tuple[str, ...]:
        return ("radosgw", "-c", self.conf, "-f", "-n", "client.rgw.a",
                "--keyring", os.path.join(self.dir, "rgw", "keyring"))

    def _start_rgw(self, timeout: float) -> None:
        self.report("Ceph: starting RADOS gateway (S3)")
        self._daemon("rgw", *self._rgw_args())
        self._wait("the RADOS gateway to answer S3", self._rgw_ready, timeout)

    # -- the platform's admin user ---------------------------------------------------------------------------

    def _save_admin(self, keys: RgwAdminKeys) -> RgwAdminKeys:
        _write_private(self.admin_keys_file, json.dumps(
            {"access_key": keys.access_key, "secret_key": keys.secret_key, "endpoint": self.endpoint}))
        return keys

    def _create_admin(self) -> RgwAdminKeys:
        """The platform's RGW admin user (Admin Ops API caps). Keys go to a 0600 file, never to logs."""
        out = self._run("radosgw-admin", "-c", self.conf, "user", "create", f"--uid={ADMIN_UID}",
                        "--display-name=odh-hub platform admin",
                        "--caps=users=*;buckets=*;usage=read;metadata=read")
        key = json.loads(out)["keys"][0]
        return self._save_admin(RgwAdminKeys(key["access_key"], key["secret_key"]))

    def _reuse_admin(self) -> RgwAdminKeys:
        """The admin keys of a cluster started again: from the keys file, else from RGW (file rewritten)."""
        try:
            with open(self.admin_keys_file, encoding="utf-8") as f:
                data = json.load(f)
            keys = RgwAdminKeys(data["access_key"], data["secret_key"])
        except FileNotFoundError:
            self.report("Ceph: the admin keys file is missing; reading the keys from RGW")
            out = self._run("radosgw-admin", "-c", self.conf, "user", "info", f"--uid={ADMIN_UID}")
            key = next(k for k in json.loads(out)["keys"] if k["user"] == ADMIN_UID)
            keys = RgwAdminKeys(key["access_key"], key["secret_key"])
        except (ValueError, KeyError, TypeError):
            raise CephError(f"{self.admin_keys_file} is not a valid admin keys file.") from None
        return self._save_admin(keys)  # mode 0600 again, and the endpoint of this start

    # -- supervision -----------------------------------------------------------------------------------------

    def supervise(self) -> list[str]:
        """Start again any daemon that exited on its own (same arguments, same ports); one message each.

        Call it periodically while the cluster should run. Raises CephError when a daemon keeps exiting
        (more often than its RestartBudget allows)."""
        messages = []
        for name in DAEMONS:
            d = self.daemons.get(name)
            if d is None or d.proc.poll() is None:
                continue
            how = exit_text(d.proc.returncode)
            if not d.budget.spend():
                raise CephError(f"The Ceph {name} keeps exiting ({len(d.budget.times)} times in "
                                f"{d.budget.window:.0f}s, last with {how}); see {self.dir}/log.")
            old = d.proc.pid
            d.proc = self._spawn(name, d.args)
            self._write_pids()
            msg = f"Ceph {name} (pid {old}) exited unexpectedly ({how}); restarted it as pid {d.proc.pid}"
            if name == "rgw":
                msg += f", same endpoint {self.endpoint}"
            self.report(msg)
            messages.append(msg)
        return messages

    # -- stop ------------------------------------------------------------------------------------------------

    def stop(self, timeout: float = 30) -> None:
        """Stop daemons one by one in reverse order (RGW, OSD, mon: the OSD tells the monitor it goes down and
        unmounts its store cleanly), by PID; SIGKILL what does not exit in time."""
        deadline = time.monotonic() + timeout
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.daemons.clear()
        pids = os.path.join(self.dir, "pids")
        if os.path.exists(pids):
            os.remove(pids)

    def _stop_leftovers(self) -> None:
        """Daemons of this cluster still running from a start that was killed (its `pids` file): stop them, by
        PID, after checking each really is one of ours (its command line names our ceph.conf)."""
        try:
            with open(os.path.join(self.dir, "pids")) as f:
                pids = [int(line) for line in f if line.strip().isdigit()]
        except FileNotFoundError:
            return
        ours = []
        for pid in pids:
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    args = f.read().split(b"\0")
            except OSError:
                continue
            if self.conf.encode() in args:
                ours.append(pid)
        if ours:
            self.report(f"Ceph: stopping {len(ours)} daemon(s) left running by an earlier start (pids {ours})")
            terminate_pids(ours, timeout=30)
