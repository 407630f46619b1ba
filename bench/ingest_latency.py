"""Kafka ingestion latency: produce -> object visible in the bucket, per record, p50 and p95, at an ingestion's
DEFAULT flush settings (odh_spawner.ingest.spec: flush_records 10,000, flush_seconds 60), on a local noida-db
broker (3-partition topic) into a real Ceph RGW with a user's own keys.

ours:     the ingestion worker process (odh_spawner.ingest.worker), as bench/ingest_throughput.py runs it;
baseline: the bare confluent-kafka + boto3 consumer loop of bench/_ingest_baseline.py with the same flush rule
          (a partition's batch is written when it holds flush_records records or flush_seconds after its first).
Both consume the same topic at the same time (their own consumer groups and prefixes), joined before the first
record is produced. A producer sends RATE records/s evenly for SECONDS seconds; this process lists both prefixes
every 0.1 s, and a record's latency is the time from its produce() call to the first listing that shows the object
holding it (object keys carry each batch's partition and offset range). At a rate far below 10,000 records per
minute per partition the time rule closes every batch, so the latency is the wait for the flush timer: between 0
and flush_seconds, p50 about half of it. That is the answer at the defaults; `flush_1s` is the same measurement
at flush_seconds=1.

Also (`rss_100k`): the worker's peak and current RSS (/proc/PID/status VmHWM, VmRSS) with 100,000 records in
flight: produced, consumed and buffered but not yet written (flush_records 200,000, flush_seconds 3600; values of
VALUE_BYTES bytes, so the 100,000 records stay under the default 64 MiB buffer cap, which would otherwise close
the batches early by design). BENCH_QUICK=1 shortens the default-settings phase (not for the committed JSON)."""

import json
import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import HERE, ROOT, write_result  # noqa: E402
from odh_spawner.credentials.rgw import RgwCredentialStore  # noqa: E402
from odh_spawner.ingest.keys import parse_key  # noqa: E402
from odh_spawner.ingest.spec import DEFAULT_FLUSH_RECORDS, DEFAULT_FLUSH_SECONDS  # noqa: E402
from odh_spawner.localplatform.ceph import CephCluster  # noqa: E402
from odh_spawner.localplatform.kafka import KafkaBroker  # noqa: E402
from tests.support.kafka import create_topic  # noqa: E402

QUICK = os.environ.get("BENCH_QUICK") == "1"
PARTITIONS = 3
# default settings: 30 records/s for 120 s -> two full 60 s batches per partition (10 records/s per partition,
# far below flush_records): the distribution of waits covers the whole timer
DEFAULT_RATE, DEFAULT_SECONDS = 30, (20 if QUICK else 120)
FAST_RATE, FAST_SECONDS = 200, 20  # flush_seconds=1
IN_FLIGHT, VALUE_BYTES = 100_000, 400
BASE_KEY = re.compile(r"(\d+)-(\d+)-(\d+)\.jsonl")
POLL = 0.1


def percentile(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(q / 100 * len(xs) + 0.5) - 1))]  # nearest rank


def loadavg() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def proc_mem(pid: int) -> dict[str, int]:
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmHWM:", "VmRSS:")):
                out[line.split(":")[0]] = int(line.split()[1]) * 1024
    return out


def read_json(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


class Worker:
    """odh_spawner.ingest.worker as a child process (config on stdin), its status file polled."""

    def __init__(self, cfg: dict, tmp: str):
        self.status_path = os.path.join(tmp, f"status-{cfg['group']}.json")
        cfg = {**cfg, "status_path": self.status_path, "partition_by": None, "format": "jsonl",
               "instance": cfg["group"], "name": cfg["group"]}
        self.log = open(os.path.join(tmp, f"{cfg['group']}.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, "-m", "odh_spawner.ingest.worker"], stdin=subprocess.PIPE,
                                     cwd=ROOT, stderr=self.log)
        self.proc.stdin.write(json.dumps(cfg).encode())
        self.proc.stdin.close()

    def status(self) -> dict:
        if self.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {self.proc.returncode}")
        return read_json(self.status_path)

    def joined(self) -> bool:
        return len(self.status().get("partitions") or {}) == PARTITIONS

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


class Baseline:
    """bench/_ingest_baseline.py as a child process; it exits by itself after `expect` records."""

    def __init__(self, cfg: dict, tmp: str):
        self.ready_path = os.path.join(tmp, f"ready-{cfg['group']}")
        self.err = open(os.path.join(tmp, f"{cfg['group']}.log"), "wb")
        self.proc = subprocess.Popen([sys.executable, os.path.join(HERE, "_ingest_baseline.py"), ROOT],
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, cwd=ROOT)
        self.proc.stdin.write(json.dumps({**cfg, "ready_path": self.ready_path}).encode())
        self.proc.stdin.close()

    def joined(self) -> bool:
        if self.proc.poll() is not None:
            raise RuntimeError(f"baseline exited with {self.proc.returncode}")
        return os.path.exists(self.ready_path)

    def finish(self, timeout: float = 60) -> None:
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.proc.stdout.close()
        self.err.close()


def produce_at_rate(bootstrap: str, topic: str, n: int, rate: float, sent: dict, value_bytes: int = 100) -> None:
    """n records, evenly spaced at `rate`/s; sent[(partition, offset)] = monotonic time of the produce() call."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 0, "enable.idempotence": False})
    pad = "x" * value_bytes
    t0 = time.monotonic()
    for i in range(n):
        due = t0 + i / rate
        while (wait := due - time.monotonic()) > 0:
            p.poll(min(wait, 0.05))
        t = time.monotonic()

        def delivered(err, msg, t=t):
            if err is None:
                sent[(msg.partition(), msg.offset())] = t

        p.produce(topic, key=str(i % 97).encode(), value=json.dumps({"i": i, "pad": pad}).encode(),
                  on_delivery=delivered)
        p.poll(0)
    assert p.flush(60) == 0, "records left unsent"


def list_keys(s3, bucket: str, prefix: str) -> list[str]:
    keys, token = [], None
    while True:
        kw = {"Bucket": bucket, "Prefix": prefix, **({"ContinuationToken": token} if token else {})}
        r = s3.list_objects_v2(**kw)
        keys += [o["Key"] for o in r.get("Contents", [])]
        if not r.get("IsTruncated"):
            return keys
        token = r["NextContinuationToken"]


def ranges(keys: list[str], ours: bool) -> list[tuple[int, int, int]]:
    out = []
    for k in keys:
        if ours:
            parsed = parse_key(k)
            if parsed:
                out.append(parsed[1:])
        else:
            m = BASE_KEY.fullmatch(k.rsplit("/", 1)[-1])
            if m:
                out.append(tuple(int(g) for g in m.groups()))
    return out


def latency_run(ceph, broker, s3, s3cfg: dict, tmp: str, tag: str, flush_records: int, flush_seconds: float,
                rate: float, seconds: float) -> dict:
    """Both consumers on one topic at the same time; per-record produce -> visible latencies of each."""
    topic, n = f"lat-{tag}", int(rate * seconds)
    create_topic(broker.bootstrap, topic, PARTITIONS)
    common = {"bootstrap": broker.bootstrap, "topic": topic, "bucket": "bench-latency", "s3": s3cfg,
              "flush_records": flush_records, "flush_seconds": flush_seconds}
    worker = Worker({**common, "group": f"ours-{tag}", "prefix": f"ours-{tag}/"}, tmp)
    base = Baseline({**common, "group": f"base-{tag}", "prefix": f"base-{tag}/", "expect": n}, tmp)
    try:
        deadline = time.monotonic() + 90
        while not (worker.joined() and base.joined()):
            if time.monotonic() > deadline:
                raise RuntimeError("consumers did not join their groups")
            time.sleep(0.05)
        load_before = loadavg()
        sent: dict = {}
        producer = threading.Thread(target=produce_at_rate, args=(broker.bootstrap, topic, n, rate, sent))
        producer.start()
        seen = {"ours": {}, "baseline": {}}  # (partition, first, last) -> monotonic time first listed
        deadline = time.monotonic() + seconds + 3 * flush_seconds + 60
        while True:
            for side, prefix in (("ours", f"ours-{tag}/"), ("baseline", f"base-{tag}/")):
                keys = list_keys(s3, "bench-latency", prefix)
                now = time.monotonic()
                for r in ranges(keys, side == "ours"):
                    seen[side].setdefault(r, now)
            counts = {side: sum(last - first + 1 for _, first, last in s) for side, s in seen.items()}
            if not producer.is_alive() and all(c >= n for c in counts.values()):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"not all {n} records visible: {counts}")
            worker.status()  # raises if the worker died
            time.sleep(POLL)
        producer.join()
        load_after = loadavg()
    finally:
        worker.stop()
        base.finish()
    out = {"records": n, "rate_per_second": rate, "seconds_producing": seconds, "flush_records": flush_records,
           "flush_seconds": flush_seconds, "load_average_before": load_before, "load_average_after": load_after}
    for side, s in seen.items():
        lat = [at - sent[(p, off)] for (p, first, last), at in s.items() for off in range(first, last + 1)]
        assert len(lat) == n, (side, len(lat), n)  # every record exactly once
        out[side] = {"p50_s": round(percentile(lat, 50), 3), "p95_s": round(percentile(lat, 95), 3),
                     "max_s": round(max(lat), 3), "objects": len(s)}
    print(f"{tag}: ours p50 {out['ours']['p50_s']} s p95 {out['ours']['p95_s']} s; baseline p50 "
          f"{out['baseline']['p50_s']} s p95 {out['baseline']['p95_s']} s ({n} records, load {load_after})")
    return out


def rss_run(broker, s3cfg: dict, tmp: str) -> dict:
    """The worker's memory with IN_FLIGHT records consumed and buffered, none written."""
    from tests.support.kafka import produce

    topic = "rss"
    create_topic(broker.bootstrap, topic, PARTITIONS)
    worker = Worker({"bootstrap": broker.bootstrap, "topic": topic, "bucket": "bench-latency", "s3": s3cfg,
                     "flush_records": 2 * IN_FLIGHT, "flush_seconds": 3600, "group": "rss", "prefix": "rss/"}, tmp)
    try:
        deadline = time.monotonic() + 60
        while not worker.joined():
            assert time.monotonic() < deadline, "worker did not join"
            time.sleep(0.05)
        idle = proc_mem(worker.proc.pid)
        t0 = time.monotonic()
        produce(broker.bootstrap, topic, IN_FLIGHT, size=VALUE_BYTES)
        produced = time.monotonic() - t0
        deadline = time.monotonic() + 180
        while (st := worker.status()).get("buffered_records", 0) < IN_FLIGHT:
            assert time.monotonic() < deadline, st
            time.sleep(0.2)
        assert st["objects"] == 0 and st["records"] == 0, st  # nothing written yet: all in flight
        mem = proc_mem(worker.proc.pid)
    finally:
        worker.stop()
    out = {"records_in_flight": st["buffered_records"], "buffered_bytes_counted": st["buffered_bytes"],
           "value_bytes": VALUE_BYTES, "vm_hwm_mib": round(mem["VmHWM"] / 2**20, 1),
           "vm_rss_mib": round(mem["VmRSS"] / 2**20, 1), "idle_rss_mib": round(idle["VmRSS"] / 2**20, 1),
           "produce_seconds": round(produced, 1), "max_buffer_bytes": 64 * 2**20}
    print(f"rss: {out}")
    return out


def main() -> None:
    import asyncio

    from odh_spawner.ingest.worker import s3_client

    t_start = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="odh-bench-latency-") as tmp:
        ceph = CephCluster(os.path.join(tmp, "ceph"), report=print).start()
        broker = KafkaBroker(os.path.join(tmp, "kafka")).start()
        try:
            store = RgwCredentialStore(ceph.endpoint, ceph.admin.access_key, ceph.admin.secret_key, timeout=10)
            creds = asyncio.run(store.ensure("bench-latency"))
            s3cfg = {"endpoint": ceph.endpoint, "access_key": creds.access_key, "secret_key": creds.secret_key}
            s3 = s3_client(s3cfg)
            s3.create_bucket(Bucket="bench-latency")
            default = latency_run(ceph, broker, s3, s3cfg, tmp, "default", DEFAULT_FLUSH_RECORDS,
                                  DEFAULT_FLUSH_SECONDS, DEFAULT_RATE, DEFAULT_SECONDS)
            fast = latency_run(ceph, broker, s3, s3cfg, tmp, "flush1s", DEFAULT_FLUSH_RECORDS, 1.0,
                               FAST_RATE, FAST_SECONDS)
            rss = rss_run(broker, s3cfg, tmp)
        finally:
            broker.stop()
            ceph.stop()
    o, b = default["ours"]["p50_s"], default["baseline"]["p50_s"]
    write_result(
        "ingest_latency",
        figure=(f"p50 latency produce -> object visible in the bucket at the default flush settings "
                f"(flush_records {DEFAULT_FLUSH_RECORDS:,}, flush_seconds {DEFAULT_FLUSH_SECONDS}), "
                f"{DEFAULT_RATE} records/s over {PARTITIONS} partitions: ingestion worker vs a bare confluent-kafka "
                f"+ boto3 loop with the same flush rule, both consuming at the same time"),
        ours=o, baseline=b, target=None, units="seconds (ratio ours/baseline)", met=None,
        p95={"ours": default["ours"]["p95_s"], "baseline": default["baseline"]["p95_s"],
             "ratio": round(default["ours"]["p95_s"] / default["baseline"]["p95_s"], 4)},
        default_settings=default, flush_1s=fast, rss_100k=rss, broker="noida-db 0.2.3", quick=QUICK,
        load_average=loadavg(), bench_seconds=round(time.monotonic() - t_start),
        note=("Per-record latency from produce() to the first bucket listing (every 0.1 s) that shows the "
              "record's object. At the defaults every batch is closed by the 60 s timer, so latencies spread "
              "over 0-60 s. Run on a machine shared with other test sessions (load_average)."))


if __name__ == "__main__":
    main()
