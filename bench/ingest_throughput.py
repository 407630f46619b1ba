"""Kafka ingestion throughput: records/s for 1 KiB records, 20,000 records (BENCH_N) in a 3-partition topic on a local
noida-db broker, written as JSON-lines objects of 10,000 records into a real Ceph RGW with a user's own keys.

ours:     the ingestion worker process (odh_spawner.ingest.worker: batching, fencing commit before each
          upload, encoding with offsets/keys/timestamps, one PUT per batch, commit after it, status file);
baseline: a bare confluent-kafka consumer loop writing the same batches with boto3 to the same RGW and
          committing after each (bench/_ingest_baseline.py).
Both measured from process start to the last record written and committed (group join included), the median
of RUNS alternating runs. Ours is read from the worker's status file (polled every 20 ms; written at once after
each object), whose `records` counts only records whose object is written and offsets committed; its `lag`
needs the partitions' end offsets, which the worker asks for every 3 s, so the bench does not wait for it. Target: ours >= 0.8x baseline. Also: the worker's peak RSS.

At 100,000 records of 1 KiB (BENCH_N=100000) runs on noida-db 0.2.3 here did not finish: once the baseline
loop stopped receiving answers, once the broker process exited without a message; the committed figure is
at 20,000 records until that is understood."""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import HERE, ROOT, median, write_result  # noqa: E402
from odh_spawner.credentials.rgw import RgwCredentialStore  # noqa: E402
from odh_spawner.localplatform.ceph import CephCluster  # noqa: E402
from odh_spawner.localplatform.kafka import KafkaBroker  # noqa: E402
from tests.support.kafka import create_topic, produce  # noqa: E402

FLUSH_SECONDS = 1.0  # both: a partition's last, partial batch is written 1 s after its first record
N, SIZE, FLUSH, RUNS = int(os.environ.get("BENCH_N", 20_000)), 1024, 10_000, int(os.environ.get("BENCH_RUNS", 3))


def run_worker(cfg: dict, tmp: str) -> tuple[float, int]:
    status = os.path.join(tmp, f"status-{cfg['group']}.json")
    cfg = {**cfg, "status_path": status, "partition_by": None, "format": "jsonl",
           "instance": cfg["group"], "name": cfg["group"]}
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "odh_spawner.ingest.worker"], stdin=subprocess.PIPE, cwd=ROOT,
                         stderr=subprocess.DEVNULL)
    p.stdin.write(json.dumps(cfg).encode())
    p.stdin.close()
    peak = 0
    while True:
        try:
            with open(status) as f:
                st = json.load(f)
        except (OSError, ValueError):
            st = {}
        try:
            with open(f"/proc/{p.pid}/status") as f:
                peak = max(peak, next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")))
        except (OSError, StopIteration):
            pass
        if st.get("records", 0) >= N:  # counted only once an object is written and its offsets committed
            took = time.monotonic() - t0
            break
        if p.poll() is not None:
            raise RuntimeError("worker exited")
        time.sleep(0.02)
    p.terminate()
    p.wait(30)
    return took, peak * 1024


def run_baseline(cfg: dict) -> float:
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, os.path.join(HERE, "_ingest_baseline.py"), ROOT],
                         input=json.dumps({**cfg, "expect": N}).encode(), capture_output=True, check=True, cwd=ROOT,
                         timeout=600)
    result = json.loads(out.stdout)
    assert result["records"] == N
    return time.monotonic() - t0


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="odh-bench-ingest-") as tmp:
        ceph = CephCluster(os.path.join(tmp, "ceph"), report=print).start()
        broker = KafkaBroker(os.path.join(tmp, "kafka")).start()
        try:
            store = RgwCredentialStore(ceph.endpoint, ceph.admin.access_key, ceph.admin.secret_key, timeout=10)
            creds = asyncio.run(store.ensure("bench-ingest"))
            from odh_spawner.ingest.worker import s3_client

            s3cfg = {"endpoint": ceph.endpoint, "access_key": creds.access_key, "secret_key": creds.secret_key}
            s3_client(s3cfg).create_bucket(Bucket="bench-ingest")
            create_topic(broker.bootstrap, "bench", 3)
            t0 = time.monotonic()
            produce(broker.bootstrap, "bench", N, size=SIZE - 20)
            print(f"produced {N} records of ~{SIZE} B in {time.monotonic() - t0:.1f}s")
            ours, base, rss = [], [], []
            for i in range(RUNS):
                common = {"bootstrap": broker.bootstrap, "topic": "bench", "bucket": "bench-ingest",
                          "flush_records": FLUSH, "flush_seconds": FLUSH_SECONDS, "s3": s3cfg}
                took, peak = run_worker({**common, "group": f"ours-{i}", "prefix": f"ours-{i}/"}, tmp)
                ours.append(N / took)
                rss.append(peak)
                base.append(N / run_baseline({**common, "group": f"base-{i}", "prefix": f"base-{i}/"}))
                print(f"run {i}: ours {ours[-1]:.0f} records/s, baseline {base[-1]:.0f} records/s, "
                      f"worker peak RSS {peak / 2**20:.0f} MiB")
        finally:
            broker.stop()
            ceph.stop()
    o, b = median(ours), median(base)
    write_result("ingest_throughput", figure=f"records/s ingesting {N:,} records of 1 KiB into RGW "
                 f"(JSON lines, {FLUSH:,}-record objects), ours vs a bare confluent-kafka + boto3 loop",
                 ours=o, baseline=b, target=0.8, units="records/s", met=o >= 0.8 * b,
                 runs={"ours": [round(x) for x in ours], "baseline": [round(x) for x in base]},
                 worker_peak_rss_mib=round(max(rss) / 2**20, 1), broker="noida-db 0.2.3",
                 note="Both from process start (group join included) to the last record committed.")


if __name__ == "__main__":
    main()
