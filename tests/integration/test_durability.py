"""Nothing is lost across restarts: a real bluestore Ceph cluster started again with its data, and a real
`odh-hub up` stopped with Ctrl-C, started again, and recovering from `kill -9` of the RGW, the platform service
and the hub, with a user's objects (sha256), running server and model deployment checked at every step."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import shutil
import signal
import socket
import stat
import subprocess
import sys
import threading
import time

import boto3
import psutil
import pytest
import requests
import yaml
from botocore.config import Config

from odh_spawner.localplatform.ceph import ADMIN_UID, CephCluster, CephError, ObjectStore
from tests.conftest import ARTIFACTS
from tests.support.fixtures import DEMO_DIR, PASSWORDS, pid_alive, process_env, server_pid
from tests.support.profiles import hub_environments
from tests.support.hubclient import HubUserSession
from tests.support.wait import wait_for

# RGW 16.2 wants no default checksums from recent botocore (REAL_COMPONENTS.md)
S3_CONFIG = Config(s3={"addressing_style": "path"}, signature_version="s3v4",
                   request_checksum_calculation="when_required", response_checksum_validation="when_required")
SIZES = {"empty": 0, "one-byte": 1, "text.csv": 1000, "odd-64k.bin": 65537, "five-mib.bin": 5 * 2**20,
         "nested/dir/seventeen-mib.bin": 17 * 2**20 + 3}  # the last one goes up in multipart


def step(msg: str) -> None:
    print(f"[durability {time.strftime('%H:%M:%S')}] {msg}", flush=True)


def s3_client(endpoint: str, access: str, secret: str):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=access, aws_secret_access_key=secret,
                        region_name="us-east-1", config=S3_CONFIG)


def put_objects(s3, bucket: str) -> dict[str, str]:
    """Objects of varied size (random bytes); returns key -> sha256."""
    sums = {}
    for key, size in SIZES.items():
        body = os.urandom(size)
        s3.upload_fileobj(io.BytesIO(body), bucket, key)
        sums[key] = hashlib.sha256(body).hexdigest()
    return sums


def read_sums(s3, bucket: str) -> dict[str, str]:
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    return {k: hashlib.sha256(s3.get_object(Bucket=bucket, Key=k)["Body"].read()).hexdigest() for k in keys}


def mode(path: str) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


# -- CephCluster alone -----------------------------------------------------------------------------------------

def test_bluestore_cluster_starts_again_with_its_data_and_survives_killed_daemons(tmp_path):
    d = str(tmp_path / "ceph")
    store = ObjectStore("bluestore", bluestore_size=2 * 2**30)
    t0 = time.monotonic()
    first = CephCluster(d, store=store, report=step).start()
    step(f"first start (mkfs) took {time.monotonic() - t0:.1f}s")
    try:
        fsid, endpoint, admin = first.record.fsid, first.endpoint, first.admin
        assert mode(d) == 0o700 and mode(first.admin_keys_file) == 0o600
        assert json.load(open(first.admin_keys_file))["access_key"] == admin.access_key
        s3 = s3_client(endpoint, admin.access_key, admin.secret_key)
        s3.create_bucket(Bucket="kept")
        sums = put_objects(s3, "kept")
        old_mon = first.record.mon_v1
    finally:
        first.stop()
    assert not [p for p in first.pids if pid_alive(p)]

    # someone else now listens on the old mon port: the monitor moves (monmap rewritten), the data stays
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", old_mon))
        squatter.listen()
        t0 = time.monotonic()
        again = CephCluster(d, store=store, report=step).start()
        step(f"restart took {time.monotonic() - t0:.1f}s")
    try:
        assert again.restarted and again.record.fsid == fsid and again.record.mon_v1 != old_mon
        assert again.endpoint == endpoint  # the recorded RGW port was free: same S3 endpoint
        assert (again.admin.access_key, again.admin.secret_key) == (admin.access_key, admin.secret_key)
        assert mode(again.admin_keys_file) == 0o600
        assert read_sums(s3, "kept") == sums
        step("after restart: same fsid, same admin keys, same endpoint, every object byte for byte")
        uids = json.loads(subprocess.run(["radosgw-admin", "-c", again.conf, "user", "list"], capture_output=True,
                                         text=True, check=True).stdout)
        assert ADMIN_UID in uids and "odh-admin" not in uids

        for name in ("rgw", "osd", "mon"):
            pid = again.daemons[name].proc.pid
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: again.daemons[name].proc.poll() is not None, 10, f"the {name} to die")
            msgs = again.supervise()
            assert len(msgs) == 1 and f"Ceph {name} (pid {pid}) exited unexpectedly (signal 9 (SIGKILL))" in msgs[0]
            assert again.daemons[name].proc.pid != pid and pid_alive(again.daemons[name].proc.pid)
            wait_for(lambda: _readable(s3, "kept", sums), 90, f"objects readable after the {name} restart")
            step(f"kill -9 {name}: restarted ({msgs[0]}); every object readable at {again.endpoint}")
        assert again.endpoint == endpoint
    finally:
        again.stop()

    # the data is bluestore's: asking for memstore on it is refused rather than wiping it
    with pytest.raises(CephError, match="holds a bluestore cluster"):
        CephCluster(d, store=ObjectStore("memstore")).start()
    assert os.path.exists(os.path.join(d, "osd", "0.block.img"))


def _readable(s3, bucket: str, sums: dict) -> bool:
    try:
        return read_sums(s3, bucket) == sums
    except Exception:  # RGW still reconnecting
        return False


# -- the whole platform ----------------------------------------------------------------------------------------

class Up:
    """A real `odh-hub up` process; its output is read by a thread so log lines can be awaited."""

    def __init__(self, config_dir: str, state_dir: str, name: str):
        self.log_path = os.path.join(ARTIFACTS, f"odh-hub-up-{name}.log")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "odh_spawner.cli", "up", "--config-dir", config_dir, "--state-dir", state_dir],
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()
        os.makedirs(ARTIFACTS, exist_ok=True)
        try:
            self.url = self.wait_line(r"odh-hub is running:\s+(http://\S+)", 180).group(1)
            self.s3 = self.wait_line(r"Ceph RGW \(S3\): (http://\S+)", 10).group(1)
            self.wait_line(r"Press Ctrl-C", 10)
        except BaseException:
            self.kill()
            raise

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    @property
    def text(self) -> str:
        return "".join(self.lines)

    def wait_line(self, pattern: str, timeout: float, after: int = 0):
        def found():
            for line in self.lines[after:]:
                m = re.search(pattern, line)
                if m:
                    return m
            assert self.proc.poll() is None or self.reader.is_alive(), self.text
            return None

        try:
            return wait_for(found, timeout, f"a line matching {pattern!r}")
        except AssertionError:
            raise AssertionError(f"no line matching {pattern!r} in:\n{self.text}") from None

    def tree(self) -> set[int]:
        return {p.pid for p in psutil.Process(self.proc.pid).children(recursive=True)} | {self.proc.pid}

    def named(self, fragment: str) -> int:
        """The one process of this platform whose command line contains `fragment`."""
        found = [p for p in self.tree() if pid_alive(p) and fragment in " ".join(_cmdline(p))]
        assert len(found) == 1, (fragment, found)
        return found[0]

    def ctrl_c(self, extra_pids=()) -> str:
        pids = self.tree() | set(extra_pids)
        self.proc.send_signal(signal.SIGINT)
        self.proc.wait(120)
        self.reader.join(10)
        self.save()
        assert self.proc.returncode == 0, self.text
        assert "Stopped; nothing left running" in self.text
        left = [p for p in pids if pid_alive(p)]
        assert not left, [(p, _cmdline(p)) for p in left]
        return self.text

    def save(self) -> None:
        """The launcher's own output, for the record (test-artifacts/)."""
        with open(self.log_path, "w") as f:
            f.write(self.text)

    def kill(self):
        """After a failure: stop the platform as a user does (Ctrl-C), then SIGKILL whatever it left, by PID
        (Ceph daemons and model servers run in sessions of their own: killing the launcher's group misses them)."""
        if self.proc.poll() is None:
            procs = psutil.Process(self.proc.pid).children(recursive=True)
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(120)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            for p in procs:  # psutil checks each is still the process it was (no PID reuse)
                try:
                    p.kill()
                except psutil.Error:
                    pass
        self.save()


@pytest.fixture
def private_config(tmp_path):
    d = tmp_path / "config"
    d.mkdir()
    for name in ("platform.yaml", "profiles.yaml", "users.yaml"):
        shutil.copy(os.path.join(DEMO_DIR, name), d / name)
    # these tests are about the platform's own processes (kill -9, Ctrl-C, up again) and run no user code in a
    # kernel: the servers run in the hub's Python, so no test here waits for a lock environment's first build
    hub_environments(d / "profiles.yaml")
    platform = yaml.safe_load((d / "platform.yaml").read_text())
    assert platform["ceph"]["objectstore"] == "bluestore"  # what `make up` uses
    platform["ceph"]["bluestore_size"] = "2Gi"
    (d / "platform.yaml").write_text(yaml.safe_dump(platform))
    return str(d)


def spawn(url: str, name: str) -> tuple[HubUserSession, int, dict]:
    user = HubUserSession(url, name, PASSWORDS[name])
    r = user.api("POST", f"/users/{name}/server", json={"profile": "minimal"})
    assert r.status_code in (201, 202), r.text
    user.wait_ready(120)
    pid = server_pid(HubUserSession(url, "admin", PASSWORDS["admin"]), name)
    return user, pid, process_env(pid)


def user_s3(env: dict):
    return s3_client(env["S3_ENDPOINT_URL"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])


def deployments(user: HubUserSession) -> list[str]:
    r = requests.get(f"{user.url}/user/{user.name}/odh/api/deployments", headers=user.auth, timeout=30)
    r.raise_for_status()
    return [d["name"] for d in r.json()["deployments"]]


def records_serving_pid(state: str) -> int:
    """The PID of the model server alice's deployment record names."""
    for dirpath, _, files in os.walk(os.path.join(state, "platform", "deployments")):
        if "deployment.json" in files:
            with open(os.path.join(dirpath, "deployment.json")) as f:
                return json.load(f)["runtime"]["serving"]["pid"]
    raise AssertionError("no deployment record")


def predict(url: str, user: HubUserSession) -> list | None:
    """A prediction through the hub's URL with the owner's hub token (model endpoints need a credential)."""
    body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [0.5]}]}
    try:
        r = requests.post(f"{url}/v2/models/alice.seven/infer", json=body, timeout=10, headers=user.auth)
        return r.json()["outputs"][0]["data"] if r.status_code == 200 else None
    except (requests.RequestException, ValueError, KeyError):
        return None


def deploy_seven(user: HubUserSession) -> None:
    """A scikit-learn model saved in the user's home through the Jupyter contents API, deployed through the
    notebook server's deployments API (what the Deploy model command and the Python client call)."""
    import joblib
    from sklearn.dummy import DummyClassifier

    buf = io.BytesIO()
    joblib.dump(DummyClassifier(strategy="constant", constant=7).fit([[0], [1]], [7, 7]), buf)
    base = f"{user.url}/user/{user.name}"
    r = requests.put(f"{base}/api/contents/seven.joblib", headers=user.auth, timeout=30, json={
        "type": "file", "format": "base64", "content": base64.b64encode(buf.getvalue()).decode()})
    assert r.status_code in (200, 201), r.text
    r = requests.post(f"{base}/odh/api/deployments", headers=user.auth, json={"name": "seven", "path": "seven.joblib"},
                      timeout=60)
    assert r.status_code == 202, r.text
    wait_for(lambda: requests.get(f"{base}/odh/api/deployments/seven", headers=user.auth,
                                  timeout=30).json()["stage"] == "ready", 120, "the deployment to be ready")


def ingest_workers(state: str) -> list[int]:
    """The ingestion workers of the platform whose state directory is `state` (they run as their owners, apart
    from the launcher's process tree)."""
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            cmd = " ".join(_cmdline(int(entry)))
            if "odh_spawner.ingest.worker" in cmd and state in cmd:
                found.append(int(entry))
    return found


class Stream:
    """An ingestion of alice's through the platform's API (her hub token), and the records produced for it:
    record i is {"i": i}; after every step all of 0..produced-1 must be in her bucket exactly once."""

    def __init__(self, up: "Up", user: HubUserSession, name="durable", bucket="alice-ingested"):
        from server_extension.ingest import IngestClient, Ingestion

        self.up, self.user, self.name, self.bucket, self.produced = up, user, name, bucket, 0
        self.ing = Ingestion(name, IngestClient(f"{up.url}/services/odh-platform/", user.token))

    @property
    def bootstrap(self) -> str:
        return self.up.wait_line(r"Kafka \(bootstrap\): (\S+)", 10).group(1)

    def start(self) -> None:
        from server_extension.ingest import ingest
        from tests.support.kafka import create_topic

        r = requests.post(f"{self.up.url}/user/{self.user.name}/odh/api/buckets", headers=self.user.auth,
                          json={"name": self.bucket}, timeout=30)
        assert r.status_code in (200, 201), r.text
        create_topic(self.bootstrap, self.name, 3)
        self.more(3000)
        ingest(topic=self.name, bucket=self.bucket, prefix="ing/", format="jsonl", flush_records=500,
               flush_seconds=1, name=self.name, client=self.ing.client, show_plan=False)
        self.landed()

    def more(self, n: int) -> None:
        from tests.support.kafka import produce

        produce(self.bootstrap, self.name, n, start=self.produced)
        self.produced += n

    def landed(self, timeout: float = 180) -> dict:
        """Every record produced so far is in the bucket exactly once, and verify() finds nothing wrong."""
        self.ing.client.api = f"{self.up.url}/services/odh-platform/api/ingestions"  # the hub's port changes
        wait_for(lambda: _answers(lambda: self.ing.status()["records"] >= self.produced), timeout,
                 f"{self.produced} records of ingestion {self.name}")
        report = self.ing.verify()
        assert report["ok"] and not report["gaps"] and not report["overlaps"], report
        s3 = self.user_s3()
        values = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix="ing/"):
            for o in page.get("Contents", []):
                body = s3.get_object(Bucket=self.bucket, Key=o["Key"])["Body"].read().decode()
                values += [json.loads(json.loads(line)["value"])["i"] for line in body.splitlines() if line]
        assert sorted(values) == list(range(self.produced)), (len(values), self.produced)
        return self.ing.status()

    def user_s3(self):
        env = self.env
        return s3_client(env["S3_ENDPOINT_URL"], env["AWS_ACCESS_KEY_ID"], env["AWS_SECRET_ACCESS_KEY"])


def test_platform_keeps_objects_servers_deployments_and_ingestions_across_ctrl_c_and_kill_9(private_config, tmp_path):
    state = str(tmp_path / "state")
    up = Up(private_config, state, "durability-1")
    try:
        step(f"platform up at {up.url}, S3 at {up.s3}")
        assert mode(state) == 0o711 and mode(os.path.join(state, "ceph")) == 0o700
        assert mode(os.path.join(state, "ceph", "admin-keys.json")) == 0o600
        assert mode(os.path.join(state, "jupyterhub.sqlite")) == 0o600
        assert "(bluestore, created)" in up.text

        alice, pid, env = spawn(up.url, "alice")
        bucket_api = f"{up.url}/user/alice/odh/api/buckets"
        r = requests.post(bucket_api, headers=alice.auth, json={"name": "alice-durable"}, timeout=30)
        assert r.status_code in (200, 201), r.text
        sums = put_objects(user_s3(env), "alice-durable")
        step(f"alice's server (pid {pid}) running; wrote {len(sums)} objects ({sum(SIZES.values())} bytes) "
             f"with her own keys")
        deploy_seven(alice)
        assert deployments(alice) == ["seven"] and predict(up.url, alice) == [7]
        step("deployed alice.seven; it predicts [7] through the hub")
        stream = Stream(up, alice)
        stream.env = env
        stream.start()
        (worker,) = ingest_workers(state)
        step(f"ingestion 'durable' (worker pid {worker}): {stream.produced} records landed exactly once")

        up.ctrl_c(extra_pids=[pid, worker])
        step("Ctrl-C: everything stopped, nothing left running")

        up = Up(private_config, state, "durability-2")
        assert "(bluestore, started again with its data)" in up.text
        step(f"started again at {up.url}; Ceph started with its data, S3 at {up.s3}")
        assert up.s3 == env["S3_ENDPOINT_URL"]  # the recorded RGW port was free
        # the platform service serves the deployment again before any server runs
        wait_for(lambda: predict(up.url, alice) == [7], 120, "the deployment to serve again after the restart")
        alice, pid, env2 = spawn(up.url, "alice")
        bucket_api = f"{up.url}/user/alice/odh/api/buckets"  # the hub's URL changed (hub.port: 0)
        assert env2["AWS_ACCESS_KEY_ID"] == env["AWS_ACCESS_KEY_ID"]  # her RGW user and keys were kept
        assert read_sums(user_s3(env2), "alice-durable") == sums
        assert "alice-durable" in [b["name"] for b in
                                   requests.get(bucket_api, headers=alice.auth, timeout=30).json()["buckets"]]
        assert deployments(alice) == ["seven"]
        step(f"after the restart: every object equal (sha256), deployment listed and predicting, "
             f"alice's new server pid {pid}")
        stream.up, stream.env = up, env2
        stream.more(2000)
        stream.landed()
        step(f"the ingestion runs again after Ctrl-C and up: {stream.produced} records exactly once")

        # kill -9 the Kafka broker: the launcher starts it again with its data; the worker reconnects
        broker = up.named("noida")
        mark = len(up.lines)
        os.kill(broker, signal.SIGKILL)
        up.wait_line(rf"Kafka broker \(pid {broker}\) exited unexpectedly \(signal 9 \(SIGKILL\)\); restarted it",
                     30, mark)
        stream.more(2000)
        stream.landed()
        step(f"kill -9 Kafka broker (pid {broker}): restarted; {stream.produced} records exactly once")

        # kill -9 the RGW: the launcher starts it again on the same port; the running server keeps working
        rgw = up.named("radosgw")
        mark = len(up.lines)
        os.kill(rgw, signal.SIGKILL)
        up.wait_line(rf"Ceph rgw \(pid {rgw}\) exited unexpectedly \(signal 9 \(SIGKILL\)\); restarted it as pid "
                     rf"\d+, same endpoint {re.escape(up.s3)}", 30, mark)
        wait_for(lambda: _readable(user_s3(env2), "alice-durable", sums), 90, "objects after the RGW restart")
        r = requests.get(bucket_api, headers=alice.auth, timeout=30)
        assert r.status_code == 200 and "alice-durable" in r.text
        step(f"kill -9 radosgw (pid {rgw}): restarted on the same endpoint; objects equal; alice's server "
             f"lists her buckets")

        # kill -9 the platform service: JupyterHub restarts its managed services when they exit (it polls
        # them every ~30 s). The model server is not the service's child and keeps running, but its endpoint
        # goes through the service's gateway (it checks credentials), so it answers again once the service is
        # back: nothing is lost, the endpoint is unavailable for that while
        service = up.named("odh_spawner.platform")
        model_server = records_serving_pid(state)
        os.kill(service, signal.SIGKILL)
        new_service = wait_for(lambda: _other(up, "odh_spawner.platform", service), 90,
                               "JupyterHub to start the platform service again")
        wait_for(lambda: _answers(lambda: deployments(alice) == ["seven"]), 60, "the platform service to answer")
        wait_for(lambda: predict(up.url, alice) == [7], 60, "the endpoint through the restarted gateway")
        assert records_serving_pid(state) == model_server and pid_alive(model_server), "the same model server"
        step(f"kill -9 platform service (pid {service}): JupyterHub restarted it as pid {new_service}; "
             f"deployment listed and predicting")

        # kill -9 the hub: the launcher stops its orphaned services and starts it again on the same addresses;
        # alice's server keeps running (same PID) and is reached through the new proxy
        hub = up.named("-m jupyterhub -f")
        culler = up.named("jupyterhub_idle_culler")
        mark = len(up.lines)
        os.kill(hub, signal.SIGKILL)
        up.wait_line(rf"JupyterHub \(pid {hub}\) exited unexpectedly \(signal 9 \(SIGKILL\)\)", 30, mark)
        up.wait_line(r"JupyterHub restarted as pid \d+", 90, mark)
        assert not pid_alive(new_service) and not pid_alive(culler)  # the dead hub's services were stopped
        wait_for(lambda: _answers(lambda: alice.model()["servers"][""]["ready"]), 60, "the hub API")
        assert pid_alive(pid) and server_pid(HubUserSession(up.url, "admin", PASSWORDS["admin"]), "alice") == pid
        wait_for(lambda: _answers(lambda: alice.server_api("/api/status").status_code == 200), 60,
                 "alice's server through the new proxy")
        wait_for(lambda: predict(up.url, alice) == [7], 90, "the model route through the new proxy")
        assert _readable(user_s3(env2), "alice-durable", sums)
        wait_for(lambda: _answers(lambda: deployments(alice) == ["seven"]), 60, "deployments after the hub restart")
        up.named("odh_spawner.platform"), up.named("jupyterhub_idle_culler")  # exactly one of each again
        step(f"kill -9 hub (pid {hub}): restarted on {up.url}; alice's server still pid {pid}; objects equal; "
             f"deployment listed and predicting")
        stream.more(2000)
        stream.landed()
        step(f"after kill -9 of the platform service and of the hub: {stream.produced} records exactly once")
        (worker,) = ingest_workers(state)

        up.ctrl_c(extra_pids=[pid, worker])
        step("Ctrl-C: everything stopped, nothing left running")
    finally:
        up.kill()


def _cmdline(pid: int) -> list[str]:
    try:
        return psutil.Process(pid).cmdline()
    except psutil.Error:  # gone, or a zombie not yet reaped
        return []


def _other(up: Up, fragment: str, old: int) -> int | None:
    try:
        pid = up.named(fragment)
    except AssertionError:
        return None
    return pid if pid != old else None


def _answers(check) -> bool:
    try:
        return bool(check())
    except (requests.RequestException, ValueError, KeyError, AssertionError):
        return False


def test_a_killed_launcher_leaves_nothing_once_up_runs_again(private_config, tmp_path):
    """kill -9 of `odh-hub up` itself: its hub, Kafka broker and Ceph daemons keep running, orphaned. A second
    `up` beside a live one is refused with the reason; the next `up` after the kill stops what the dead run left
    (up.json), starts on the same data, and Ctrl-C then leaves nothing running."""
    state = str(tmp_path / "state")
    up = Up(private_config, state, "killed-launcher-1")
    try:
        alice, pid, env = spawn(up.url, "alice")
        r = requests.post(f"{up.url}/user/alice/odh/api/buckets", headers=alice.auth, json={"name": "alice-kept"},
                          timeout=30)
        assert r.status_code in (200, 201), r.text
        sums = put_objects(user_s3(env), "alice-kept")
        second = subprocess.run([sys.executable, "-m", "odh_spawner.cli", "up", "--config-dir", private_config,
                                 "--state-dir", state], capture_output=True, text=True, timeout=60)
        assert second.returncode == 1, second.stdout + second.stderr
        assert f"Another odh-hub up (pid {up.proc.pid}) runs with the state directory" in second.stdout
        left = {p: _cmdline(p) for p in up.tree() if p != up.proc.pid}
        hub, rgw = up.named("-m jupyterhub -f"), up.named("radosgw")
        os.kill(up.proc.pid, signal.SIGKILL)
        up.proc.wait(10)
        assert pid_alive(hub) and pid_alive(rgw) and pid_alive(pid)  # orphaned, still running
        step(f"kill -9 odh-hub up (pid {up.proc.pid}): hub {hub}, radosgw {rgw} and alice's server {pid} left running")

        up = Up(private_config, state, "killed-launcher-2")
        assert re.search(r"The previous odh-hub up \(pid \d+\) ended without stopping what it started; stopping "
                         r".*hub \(pid \d+\)", up.text), up.text
        assert "(bluestore, started again with its data)" in up.text
        assert not pid_alive(hub) and not pid_alive(rgw)
        still = [p for p in left if pid_alive(p) and _cmdline(p) == left[p] and p != pid]
        assert not still, [(p, left[p]) for p in still]
        step("up again: the dead run's hub, Kafka and Ceph daemons stopped; started on the same data")
        alice, pid2, env2 = spawn(up.url, "alice")
        assert read_sums(user_s3(env2), "alice-kept") == sums
        up.ctrl_c(extra_pids=[pid, pid2])
        assert not os.path.exists(os.path.join(state, "up.json"))
        step("alice's objects equal; Ctrl-C: nothing left running, no record left")
    finally:
        up.kill()
