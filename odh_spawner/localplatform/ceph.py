"""A real single-node Ceph cluster (1 mon, 1 memstore OSD, 1 radosgw) as local processes, no systemd.

Every daemon binds 127.0.0.1 on free random ports (mon v1/v2 included), so clusters never collide with
anything else on the machine. Used by `odh-hub up` and by the test session.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from typing import Callable

from .ports import free_port

CEPH_BINARIES = ("ceph-mon", "ceph-osd", "radosgw", "radosgw-admin", "ceph", "ceph-authtool", "monmaptool")


class CephError(RuntimeError):
    pass


@dataclass
class RgwAdminKeys:
    access_key: str
    secret_key: str

    def __repr__(self) -> str:  # never print the secret
        return f"RgwAdminKeys(access_key={self.access_key!r}, secret_key=***)"


def missing_binaries() -> list[str]:
    return [b for b in CEPH_BINARIES if shutil.which(b) is None]


def _conf(d: str, fsid: str, mon_v2: int, mon_v1: int, rgw_port: int) -> str:
    return f"""[global]
fsid = {fsid}
mon host = [v2:127.0.0.1:{mon_v2},v1:127.0.0.1:{mon_v1}]
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
osd objectstore = memstore
memstore device bytes = {8 * 2**30}
osd memory target = 939524096
osd max object name len = 460
osd max object namespace len = 64
[client.rgw.a]
rgw frontends = beast endpoint=127.0.0.1:{rgw_port}
rgw data = {d}/rgw
rgw enable usage log = true
rgw dns name = localhost
"""


class CephCluster:
    """Start and stop a single-node Ceph cluster rooted in `directory`."""

    def __init__(self, directory: str, rgw_port: int = 0, report: Callable[[str], None] | None = None):
        self.dir = os.path.abspath(directory)
        self.rgw_port = rgw_port or free_port()
        self.report = report or (lambda msg: None)
        self.procs: list[subprocess.Popen] = []
        self.admin: RgwAdminKeys | None = None

    @property
    def conf(self) -> str:
        return os.path.join(self.dir, "ceph.conf")

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.rgw_port}"

    @property
    def admin_keys_file(self) -> str:
        """JSON {access_key, secret_key, endpoint} of the platform's RGW admin user (mode 0600)."""
        return os.path.join(self.dir, "admin-keys.json")

    @property
    def pids(self) -> list[int]:
        return [p.pid for p in self.procs]

    def _run(self, *args: str, timeout: float = 30, input_: str | None = None) -> str:
        try:
            out = subprocess.run(args, capture_output=True, text=True, timeout=timeout, input=input_)
        except subprocess.TimeoutExpired:
            raise CephError(f"{args[0]} {args[1] if len(args) > 1 else ''} timed out after {timeout}s") from None
        if out.returncode != 0:
            raise CephError(f"{' '.join(args[:3])} failed: {out.stderr.strip()[-500:]}")
        return out.stdout

    def _daemon(self, name: str, *args: str) -> None:
        log = open(os.path.join(self.dir, "log", f"{name}.stdout"), "ab")
        proc = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                start_new_session=True)
        log.close()
        self.procs.append(proc)
        with open(os.path.join(self.dir, "pids"), "a") as f:
            f.write(f"{proc.pid}\n")

    def _wait(self, what: str, check: Callable[[], bool], timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            for p in self.procs:
                if p.poll() is not None:
                    raise CephError(f"a Ceph daemon exited while waiting for {what}; see {self.dir}/log")
            if time.monotonic() > deadline:
                raise CephError(f"timed out after {timeout:.0f}s waiting for {what}; see {self.dir}/log")
            time.sleep(0.2)

    def start(self, timeout: float = 120) -> "CephCluster":
        missing = missing_binaries()
        if missing:
            raise CephError(f"Ceph is not installed (missing {', '.join(missing)}); run `make install`")
        t0 = time.monotonic()
        try:
            self._start(timeout)
        except BaseException:
            self.stop()
            raise
        self.report(f"Ceph RGW ready at {self.endpoint} in {time.monotonic() - t0:.1f}s")
        return self

    def _start(self, timeout: float) -> None:
        d = self.dir
        if os.path.exists(d):
            shutil.rmtree(d)
        for sub in ("mon/a", "osd/0", "run", "log", "rgw"):
            os.makedirs(os.path.join(d, sub))
        mon_v2, mon_v1 = free_port(), free_port()
        fsid = str(uuid.uuid4())
        with open(self.conf, "w") as f:
            f.write(_conf(d, fsid, mon_v2, mon_v1, self.rgw_port))
        c = ("-c", self.conf)
        keyring = os.path.join(d, "keyring")
        self._run("ceph-authtool", "--create-keyring", keyring, "--gen-key", "-n", "mon.", "--cap", "mon", "allow *")
        self._run("ceph-authtool", keyring, "--gen-key", "-n", "client.admin", "--cap", "mon", "allow *",
                  "--cap", "osd", "allow *", "--cap", "mgr", "allow *", "--cap", "mds", "allow *")
        monmap = os.path.join(d, "monmap")
        self._run("monmaptool", "--create", "--addv", "a", f"[v2:127.0.0.1:{mon_v2},v1:127.0.0.1:{mon_v1}]",
                  "--fsid", fsid, monmap)
        self._run("ceph-mon", *c, "--mkfs", "-i", "a", "--monmap", monmap, "--keyring", keyring)
        self.report("Ceph: starting monitor")
        self._daemon("mon", "ceph-mon", *c, "-f", "-i", "a")
        self._wait("the Ceph monitor", lambda: self._ok("ceph", *c, "--connect-timeout", "2", "-s"), timeout)
        osd_uuid = str(uuid.uuid4())
        secret = self._run("ceph-authtool", "--gen-print-key").strip()
        new_json = os.path.join(d, "osd", "new.json")
        with open(new_json, "w") as f:
            json.dump({"cephx_secret": secret}, f)
        osd_id = self._run("ceph", *c, "osd", "new", osd_uuid, "-i", new_json).strip()
        os.remove(new_json)
        osd_keyring = os.path.join(d, "osd", osd_id, "keyring")
        os.makedirs(os.path.dirname(osd_keyring), exist_ok=True)
        self._run("ceph-authtool", "--create-keyring", osd_keyring, "--name", f"osd.{osd_id}", "--add-key", secret)
        self._run("ceph-osd", *c, "-i", osd_id, "--mkfs", "--osd-uuid", osd_uuid, "--keyring", osd_keyring, timeout=60)
        self.report("Ceph: starting object storage daemon (memstore)")
        self._daemon("osd", "ceph-osd", *c, "-f", "-i", osd_id, "--keyring", osd_keyring)
        self._wait("the Ceph OSD", lambda: f"osd.{osd_id} up" in self._out("ceph", *c, "osd", "dump"), timeout)
        rgw_keyring = os.path.join(d, "rgw", "keyring")
        with open(rgw_keyring, "w") as f:
            f.write(self._run("ceph", *c, "auth", "get-or-create", "client.rgw.a", "mon", "allow rw",
                              "osd", "allow rwx", "mgr", "allow rw"))
        self.report("Ceph: starting RADOS gateway (S3)")
        self._daemon("rgw", "radosgw", *c, "-f", "-n", "client.rgw.a", "--keyring", rgw_keyring)
        self._wait("the RADOS gateway to answer S3", self._rgw_ready, timeout)
        self.admin = self._create_admin()

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

    def _rgw_ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.endpoint + "/", timeout=2) as r:
                return r.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def _create_admin(self) -> RgwAdminKeys:
        """The platform's RGW admin user (Admin Ops API caps). Keys go to a 0600 file, never to logs."""
        out = self._run("radosgw-admin", "-c", self.conf, "user", "create", "--uid=odh-admin",
                        "--display-name=odh-hub platform admin",
                        "--caps=users=*;buckets=*;usage=read;metadata=read")
        key = json.loads(out)["keys"][0]
        keys = RgwAdminKeys(key["access_key"], key["secret_key"])
        fd = os.open(self.admin_keys_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"access_key": keys.access_key, "secret_key": keys.secret_key, "endpoint": self.endpoint}, f)
        return keys

    def stop(self, timeout: float = 10) -> None:
        """Stop daemons in reverse order, by PID; SIGKILL what does not exit in time."""
        for p in reversed(self.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for p in reversed(self.procs):
            try:
                p.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(5)
        self.procs.clear()
        pids = os.path.join(self.dir, "pids")
        if os.path.exists(pids):
            os.remove(pids)
