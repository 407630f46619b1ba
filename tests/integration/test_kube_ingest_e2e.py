"""An ingestion on Kubernetes end to end, through the IngestionManager: KubeIngestBackend ("deployment" mode, with
the chart's Role) against the real API server, the worker running for real against the test Kafka broker
(Apache Kafka) and RGW.

There is no kubelet and no container runtime: the test kubelet reports the worker's pod Running, and
`PodRuntime` below plays the container runtime for it — it runs the pod's own command with the pod's config file
taken from the Secret the pod mounts (read through the API, as a kubelet would), the mount paths moved into a
temporary directory, and sends SIGTERM when the pod goes away. So what is proven: the manager's checks and
records, the objects the backend applies, the Secret's config file being exactly what the worker needs, the
status read back (pod state + the consumer group's committed offsets), pause and delete."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import signal
import subprocess
import sys

import pytest

from odh_spawner.credentials.rgw import RgwCredentialStore
from odh_spawner.ingest import kube_manifests as km
from odh_spawner.ingest.kube import KubeIngestBackend
from odh_spawner.ingest.manager import IngestionManager
from odh_spawner.ingest.spec import IngestionNotFound
from odh_spawner.ingest.store import IngestionStore
from tests.integration.test_ingest_worker import s3_for
from tests.support.chart_rbac import ingest_rules
from tests.support.kafka import create_topic, produce
from tests.support.kube_real import apps, core, get, kubelet, make_identity, wait_until  # noqa: F401

N = 3000


class PodRuntime:
    """Plays the container runtime for the worker pods the test kubelet reports running (see the docstring)."""

    def __init__(self, cp, ns: str, tmp):
        self.cp, self.ns, self.tmp = cp, ns, tmp
        self.procs: dict[str, subprocess.Popen] = {}

    def sync(self) -> None:
        pods = self.cp.api("GET", core(self.ns, "pods") + f"?labelSelector={km.LIST_SELECTOR}").body["items"]
        live = {p["metadata"]["name"]: p for p in pods if p["status"].get("phase") == "Running"
                and not p["metadata"].get("deletionTimestamp")}
        for name, proc in list(self.procs.items()):
            if name not in live and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)  # the pod is going: its container gets SIGTERM
                proc.wait(30)
        for name, pod in live.items():
            if name not in self.procs:
                self.procs[name] = self.run(pod)

    def run(self, pod: dict) -> subprocess.Popen:
        spec = pod["spec"]
        (c,) = spec["containers"]
        (vol,) = [v for v in spec["volumes"] if "secret" in v]
        secret = get(self.cp, core(self.ns, "secrets", vol["secret"]["secretName"]))
        d = self.tmp / pod["metadata"]["name"]
        d.mkdir()
        cfg = json.loads(base64.b64decode(secret["data"][km.CONFIG_FILE]))
        # the mounts: the Secret volume, the emptyDir and the termination-log file, moved under d
        cfg["status_path"] = str(d / "status.json")
        cfg["termination_log"] = str(d / "termination-log")
        (d / km.CONFIG_FILE).write_text(json.dumps(cfg))
        argv = [sys.executable if a == "python" else a for a in c["command"]]
        argv[argv.index(f"{km.CONFIG_DIR}/{km.CONFIG_FILE}")] = str(d / km.CONFIG_FILE)
        env = {e["name"]: e["value"] for e in c["env"]}
        env.update(PATH=os.environ["PATH"], HOME=str(d), PYTHONPATH=os.getcwd())
        return subprocess.Popen(argv, env=env, cwd=str(d), stdout=open(d / "log", "wb"), stderr=subprocess.STDOUT)

    def stop(self) -> None:
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


async def test_ingestion_runs_as_a_deployment_and_lands_exactly_once(
        k8s_control_plane, k8s_namespace, kubelet, kafka_broker, ceph, tmp_path):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    store = RgwCredentialStore(ceph.endpoint, ceph.admin.access_key, ceph.admin.secret_key, timeout=10)
    creds = await store.ensure("kube-ingest-owner")
    s3 = s3_for(creds, ceph.endpoint)
    s3.create_bucket(Bucket="kube-raw")
    create_topic(kafka_broker.bootstrap, "kube-clicks", 2)
    await asyncio.to_thread(produce, kafka_broker.bootstrap, "kube-clicks", N)

    _, kubeconfig = make_identity(cp, ns, "odh-platform", ingest_rules("deployment"), tmp_path)
    backend = KubeIngestBackend(kubeconfig=kubeconfig, namespace=ns, worker_image="quay.io/odh/hub:test",
                                offsets_interval=0, request_timeout=5, retry_timeout=10)
    manager = IngestionManager(backend, IngestionStore(str(tmp_path / "records")), lambda owner: store.ensure(owner),
                               kafka_broker.bootstrap)
    runtime = PodRuntime(cp, ns, tmp_path)
    try:
        ing = await manager.create("kube-ingest-owner", {"name": "clicks", "topic": "kube-clicks",
                                                         "bucket": "kube-raw", "flush_records": 500,
                                                         "flush_seconds": 1})
        name = ing.runtime["name"]
        assert get(cp, apps(ns, "deployments", name))["spec"]["replicas"] == 1

        async def described(pred, what, timeout=90):
            deadline = asyncio.get_running_loop().time() + timeout
            while True:
                runtime.sync()
                await manager.watch_once()
                d = manager.describe(ing)
                if pred(d):
                    return d
                assert asyncio.get_running_loop().time() < deadline, (what, d, [
                    (p.args, p.poll()) for p in runtime.procs.values()])
                await asyncio.sleep(0.3)

        d = await described(lambda d: d["state"] == "running" and d["records"] == N and d["lag"] == 0,
                            "all records committed")
        assert set(d["partitions"]) == {"0", "1"} and d["restarts"] == 0
        report = await manager.verify("kube-ingest-owner", "clicks")
        assert report["ok"] and sum(p["offsets_covered"] for p in report["partitions"].values()) == N, report
        objects = await manager.objects("kube-ingest-owner", "clicks")
        assert sum(o["records"] for o in objects) == N

        # another user cannot see it
        with pytest.raises(IngestionNotFound):
            manager.get("someone-else", "clicks")

        # pause: the Deployment goes to 0 replicas, the pod's worker gets SIGTERM
        await manager.set_desired("kube-ingest-owner", "clicks", "paused")
        assert get(cp, apps(ns, "deployments", name))["spec"]["replicas"] == 0
        await wait_until(lambda: (runtime.sync() or True) and all(p.poll() is not None
                                                                  for p in runtime.procs.values()),
                         60, "the worker to stop with its pod")
        assert all(p.returncode == 0 for p in runtime.procs.values())
        assert manager.describe(ing)["state"] == "paused"

        # delete: the Deployment and the Secret go, the objects in the bucket stay
        await manager.delete("kube-ingest-owner", "clicks")
        assert get(cp, apps(ns, "deployments", name)) is None and get(cp, core(ns, "secrets", name)) is None
        assert s3.list_objects_v2(Bucket="kube-raw", Prefix="topic=kube-clicks/")["KeyCount"] == len(objects)
    finally:
        runtime.stop()
        await backend.close()
