"""`odh-hub up` (what `make up` runs): starts Ceph RGW + hub + proxy + culler, prints the URL and logins,
and on Ctrl-C ends every process it started, leaving nothing listening."""

import os
import re
import signal
import socket
import stat
import subprocess
import sys
import time

import psutil
import requests

from tests.support.fixtures import pid_alive, process_env, server_pid
from tests.support.hubclient import HubUserSession
from tests.support.wait import wait_for


def _listening(pids: set[int]) -> set[int]:
    ports = set()
    for conn in psutil.net_connections(kind="tcp"):
        if conn.status == psutil.CONN_LISTEN and conn.pid in pids:
            ports.add(conn.laddr.port)
    return ports


def _port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


def test_up_runs_the_platform_and_ctrl_c_leaves_nothing(config_dir, tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-m", "odh_spawner.cli", "up", "--config-dir", config_dir, "--state-dir", str(tmp_path)],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True,
    )
    lines = []
    url = None
    deadline = time.monotonic() + 120
    try:
        for line in proc.stdout:
            lines.append(line)
            m = re.search(r"odh-hub is running:\s+(http://\S+)", line)
            if m:
                url = m.group(1)
            if url and "Press Ctrl-C" in line:
                break
            assert time.monotonic() < deadline, "".join(lines)
        out = "".join(lines)
        assert url, out
        # progress while starting, and how to log in as each demo user
        assert "Ceph RGW ready at http://127.0.0.1:" in out
        assert "(bluestore, created)" in out  # objects on disk by default
        # the state directory: others may pass through to their homes but not list it; Ceph's is root's alone
        assert stat.S_IMODE(os.stat(tmp_path).st_mode) == 0o711
        assert stat.S_IMODE(os.stat(tmp_path / "ceph").st_mode) == 0o700
        assert stat.S_IMODE(os.stat(tmp_path / "ceph" / "admin-keys.json").st_mode) == 0o600
        assert "alice" in out and "password alice-odh" in out and "data-science" in out
        assert "bob" in out and "ml-engineering" in out
        assert requests.get(f"{url}/hub/health", timeout=5).status_code == 200
        alice = HubUserSession(url, "alice", "alice-odh")
        assert alice.api("POST", "/users/alice/server", json={"profile": "minimal"}).status_code in (201, 202)
        alice.wait_ready()

        tree = {p.pid for p in psutil.Process(proc.pid).children(recursive=True)} | {proc.pid}
        tree.add(server_pid(HubUserSession(url, "admin", "admin-odh"), "alice"))
        ports = _listening(tree)
        names = {psutil.Process(p).name() for p in tree if pid_alive(p)}
        assert {"ceph-mon", "ceph-osd", "radosgw"} <= names, names
        # a local Kafka-protocol broker beside Ceph, its address in every server's environment
        m = re.search(r"Kafka broker \(noida-db\) ready at (127\.0\.0\.1:\d+)", out)
        assert m and f"Kafka (bootstrap): {m.group(1)}" in out, out
        assert "noida-db" in names, names
        assert process_env(server_pid(HubUserSession(url, "admin", "admin-odh"), "alice"))[
            "KAFKA_BOOTSTRAP_SERVERS"] == m.group(1)
        assert len(ports) >= 5, ports  # proxy, hub API, proxy API, RGW, mon v1/v2, server, ...
        # Prometheus on a loopback port of its own, scraping the hub and the platform service: every target up
        m = re.search(r"Prometheus: (http://127\.0\.0\.1:(\d+))", out)
        assert m and "prometheus" in names and int(m.group(2)) in ports, out
        prometheus = m.group(1)

        def all_up():
            active = requests.get(f"{prometheus}/api/v1/targets", timeout=5).json()["data"]["activeTargets"]
            jobs = {t["labels"]["job"]: t["health"] for t in active}
            return jobs == {"odh-hub": "up", "odh-platform": "up", "odh-models": "up"}

        wait_for(all_up, 30, "Prometheus to scrape the hub and the platform service", interval=1)
        assert stat.S_IMODE(os.stat(tmp_path / "prometheus" / "scrape-token").st_mode) == 0o600
        assert stat.S_IMODE(os.stat(tmp_path / "prometheus").st_mode) == 0o700

        proc.send_signal(signal.SIGINT)
        rest = proc.communicate(timeout=90)[0]
        assert proc.returncode == 0, rest
        assert "Stopped; nothing left running" in rest
        left = [p for p in tree if pid_alive(p)]
        assert not left, [(p, psutil.Process(p).cmdline()) for p in left]
        still_open = [p for p in ports if _port_open(p)]
        assert not still_open, still_open
    finally:
        if proc.poll() is None:  # after a failure: Ctrl-C first (Ceph and the rest run in sessions of their own)
            proc.send_signal(signal.SIGINT)
            try:
                proc.communicate(timeout=90)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
