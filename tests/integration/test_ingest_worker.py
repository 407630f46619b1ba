"""The ingestion worker process against a real RGW and real Kafka (Apache Kafka 4, KRaft, from Maven Central;
smoke tests against noida-db, which `odh-hub up` starts by default, and Tansu): every record exactly once in the
bucket, in partition order, across kill -9 of the worker and broker restarts (SIGTERM and SIGKILL)."""

import json
import os
import signal
import subprocess
import sys
import time
import uuid

import boto3
import pytest
from botocore.config import Config

from odh_spawner.credentials.rgw import RgwCredentialStore
from odh_spawner.ingest.encode import decode
from odh_spawner.ingest.keys import parse_key
from odh_spawner.ingest.verify import verify
from tests.support.kafka import TANSU_CONSUMER, create_topic, end_offsets, produce, topic_values


def s3_for(creds, endpoint):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=creds.access_key,
                        aws_secret_access_key=creds.secret_key, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 3}))


@pytest.fixture(scope="module")
def owner(ceph):
    import asyncio

    store = RgwCredentialStore(ceph.endpoint, ceph.admin.access_key, ceph.admin.secret_key, timeout=10)
    creds = asyncio.run(store.ensure("ingest-worker-owner"))
    s3 = s3_for(creds, ceph.endpoint)
    s3.create_bucket(Bucket="ingest-raw")
    return creds, s3


class WorkerProc:
    def __init__(self, tmp, bootstrap, creds, endpoint, topic, fmt="jsonl", flush_records=1000,
                 flush_seconds=5.0, prefix=None, consumer=None, partition_by=None):
        self.status_path = os.path.join(tmp, f"status-{topic}.json")
        self.log_path = os.path.join(tmp, f"worker-{topic}.log")
        self.prefix = prefix if prefix is not None else f"{topic}/"
        self.cfg = {"name": topic, "bootstrap": bootstrap, "group": f"odh-ingest-test-{topic}", "topic": topic,
                    "bucket": "ingest-raw", "prefix": self.prefix, "format": fmt, "flush_records": flush_records,
                    "flush_seconds": flush_seconds, "partition_by": partition_by, "status_path": self.status_path,
                    "s3": {"endpoint": endpoint, "access_key": creds.access_key, "secret_key": creds.secret_key},
                    "consumer": consumer or {}}
        self.proc = None

    def start(self):
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "odh_spawner.ingest.worker"], stdin=subprocess.PIPE,
                                     stdout=log, stderr=subprocess.STDOUT, cwd=os.getcwd())
        self.proc.stdin.write(json.dumps(self.cfg).encode())
        self.proc.stdin.close()
        return self

    def status(self):
        try:
            with open(self.status_path) as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            assert self.proc.wait(30) == 0, open(self.log_path).read()[-3000:]

    def kill(self):
        self.proc.kill()
        self.proc.wait(10)


def committed(bootstrap, group, topic):
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group})
    try:
        parts = c.list_topics(topic, timeout=10).topics[topic].partitions
        return {tp.partition: tp.offset for tp in c.committed([TopicPartition(topic, p) for p in parts], timeout=10)}
    finally:
        c.close()


def wait_all_committed(bootstrap, w, timeout=180, ends=None):
    ends = ends or end_offsets(bootstrap, w.cfg["topic"])
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert w.proc.poll() is None, open(w.log_path).read()[-3000:]
        st = w.status()
        parts = st.get("partitions", {})
        if len(parts) == len(ends) and all(parts[str(p)]["committed"] == e for p, e in ends.items()):
            return st
        time.sleep(0.3)
    raise AssertionError(f"not all committed: {w.status()} vs {ends}\n" + open(w.log_path).read()[-3000:])


def read_back(s3, prefix, fmt):
    rows, ranges = [], {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket="ingest-raw", Prefix=prefix):
        for o in page.get("Contents", []):
            parsed = parse_key(o["Key"])
            assert parsed, o["Key"]
            _, p, first, last = parsed
            ranges.setdefault(p, []).append((first, last, o["Key"]))
            data = decode(s3.get_object(Bucket="ingest-raw", Key=o["Key"])["Body"].read(), fmt)
            assert [r["offset"] for r in data][0] == first and data[-1]["offset"] == last
            rows += data
    return rows, ranges


def assert_exactly_once(rows, n, start=0):
    values = [json.loads(r["value"])["i"] for r in rows]
    assert len(values) == n, f"{len(values)} rows for {n} records"
    assert sorted(values) == list(range(start, start + n))
    by_part = {}
    for r in sorted(rows, key=lambda r: (r["partition"], r["offset"])):
        by_part.setdefault(r["partition"], []).append(json.loads(r["value"])["i"])
    for p, vals in by_part.items():  # produced in increasing i: partition order is increasing i
        assert vals == sorted(vals), f"partition {p} out of order"


@pytest.mark.parametrize("fmt", ["parquet", "jsonl"])
def test_100k_records_exactly_once_in_partition_order(kafka_broker, ceph, owner, tmp_path, fmt):
    creds, s3 = owner
    topic = f"clicks-{fmt}-{uuid.uuid4().hex[:6]}"
    create_topic(kafka_broker.bootstrap, topic, 3)
    t0 = time.monotonic()
    produce(kafka_broker.bootstrap, topic, 100_000)
    w = WorkerProc(str(tmp_path), kafka_broker.bootstrap, creds, ceph.endpoint, topic, fmt,
                   flush_records=5000).start()
    t1 = time.monotonic()
    st = wait_all_committed(kafka_broker.bootstrap, w)
    took = time.monotonic() - t1
    print(f"{fmt}: 100,000 records produced in {t1 - t0:.1f}s, ingested in {took:.1f}s "
          f"({100_000 / took:.0f} records/s), {st['objects']} objects")
    assert st["records"] == 100_000 and st["last_error"] is None
    assert all(v["lag"] == 0 for v in st["partitions"].values())
    w.stop()
    rows, ranges = read_back(s3, w.prefix, fmt)
    assert_exactly_once(rows, 100_000)
    report = verify(ranges, committed(kafka_broker.bootstrap, w.cfg["group"], topic))
    assert report["ok"], report
    assert not report["uncommitted"]


def test_time_flush_fires_without_new_records(kafka_broker, ceph, owner, tmp_path):
    """kafka-connect-storage-cloud #144: a time flush must not wait for the next record."""
    creds, s3 = owner
    topic = f"trickle-{uuid.uuid4().hex[:6]}"
    create_topic(kafka_broker.bootstrap, topic, 1)
    w = WorkerProc(str(tmp_path), kafka_broker.bootstrap, creds, ceph.endpoint, topic, "jsonl",
                   flush_records=1_000_000, flush_seconds=1.5).start()
    try:
        time.sleep(3)  # joined the group
        produce(kafka_broker.bootstrap, topic, 7)
        t0 = time.monotonic()
        deadline = t0 + 20
        while w.status().get("objects", 0) < 1:
            assert time.monotonic() < deadline, open(w.log_path).read()[-2000:]
            time.sleep(0.1)
        assert time.monotonic() - t0 < 10
        rows, _ = read_back(s3, w.prefix, "jsonl")
        assert_exactly_once(rows, 7)
    finally:
        w.stop()


@pytest.mark.parametrize("broker_stop", ["sigterm", "sigkill"])
def test_kill9_worker_and_broker_restart_mid_run_still_exactly_once(kafka_broker, ceph, owner, tmp_path, broker_stop):
    creds, s3 = owner
    topic = f"crash-{broker_stop}-{uuid.uuid4().hex[:6]}"
    create_topic(kafka_broker.bootstrap, topic, 3)
    produce(kafka_broker.bootstrap, topic, 60_000)
    w = WorkerProc(str(tmp_path), kafka_broker.bootstrap, creds, ceph.endpoint, topic, "jsonl",
                   flush_records=700).start()
    # kill -9 after some objects have landed, mid-run
    deadline = time.monotonic() + 60
    while w.status().get("objects", 0) < 5:
        assert time.monotonic() < deadline, open(w.log_path).read()[-2000:]
        time.sleep(0.05)
    w.kill()
    before = w.status()["records"]
    assert before < 60_000
    produce(kafka_broker.bootstrap, topic, 20_000, start=60_000)
    w.start()
    deadline = time.monotonic() + 60
    while w.status().get("records", 0) <= before + 2000:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    if broker_stop == "sigterm":
        kafka_broker.restart()  # SIGTERM (controlled shutdown) + start, same ports and data, while the worker runs
    else:
        kafka_broker.kill()  # SIGKILL mid transaction: the next start recovers the logs and the transaction state
        assert kafka_broker.supervise()  # started again, same ports and data
    produce(kafka_broker.bootstrap, topic, 20_000, start=80_000)
    wait_all_committed(kafka_broker.bootstrap, w, timeout=240)
    w.stop()
    held = topic_values(kafka_broker.bootstrap, topic)  # the broker lost nothing it acknowledged
    assert len(held) == 100_000 and sorted(held) == list(range(100_000)), f"the broker holds {len(held)} records"
    rows, ranges = read_back(s3, w.prefix, "jsonl")
    assert_exactly_once(rows, 100_000)
    report = verify(ranges, committed(kafka_broker.bootstrap, w.cfg["group"], topic))
    assert report["ok"] and not report["uncommitted"], report


def test_tansu_smoke_exactly_once(tansu_broker, ceph, owner, tmp_path):
    """The same worker against a second, independent Kafka-protocol broker (Tansu). No lag asserted: Tansu's
    high watermarks are wrong."""
    creds, s3 = owner
    topic = f"tansu-{uuid.uuid4().hex[:6]}"
    create_topic(tansu_broker.bootstrap, topic, 3)
    produce(tansu_broker.bootstrap, topic, 5000)
    w = WorkerProc(str(tmp_path), tansu_broker.bootstrap, creds, ceph.endpoint, topic, "parquet",
                   flush_records=1000, flush_seconds=2, consumer=TANSU_CONSUMER).start()
    try:
        deadline = time.monotonic() + 120
        while w.status().get("records", 0) < 5000:
            assert time.monotonic() < deadline, (w.status(), open(w.log_path).read()[-3000:])
            time.sleep(0.3)
    finally:
        w.stop()
    rows, ranges = read_back(s3, w.prefix, "parquet")
    assert_exactly_once(rows, 5000)
    assert verify(ranges, committed(tansu_broker.bootstrap, w.cfg["group"], topic))["ok"]


def test_noida_smoke_exactly_once(noida_broker, ceph, owner, tmp_path):
    """The same worker against noida-db, the broker `odh-hub up` starts by default: exactly once, every partition
    committed to its end."""
    creds, s3 = owner
    topic = f"noida-{uuid.uuid4().hex[:6]}"
    create_topic(noida_broker.bootstrap, topic, 3)
    produce(noida_broker.bootstrap, topic, 5000)
    w = WorkerProc(str(tmp_path), noida_broker.bootstrap, creds, ceph.endpoint, topic, "jsonl",
                   flush_records=1000, flush_seconds=2).start()
    try:
        st = wait_all_committed(noida_broker.bootstrap, w, timeout=120)
        assert st["records"] == 5000 and st["last_error"] is None
    finally:
        w.stop()
    rows, ranges = read_back(s3, w.prefix, "jsonl")
    assert_exactly_once(rows, 5000)
    report = verify(ranges, committed(noida_broker.bootstrap, w.cfg["group"], topic))
    assert report["ok"] and not report["uncommitted"], report


def test_object_written_before_a_crash_is_adopted_not_written_again(kafka_broker, ceph, owner, tmp_path):
    """A crash between the upload and the commit: the next worker finds the object starting at the committed
    offset and commits past it (no overlap, even with other flush settings)."""
    from odh_spawner.ingest.batching import Batcher, Record
    from odh_spawner.ingest.encode import encode
    from odh_spawner.ingest.keys import object_key

    creds, s3 = owner
    topic = f"adopt-{uuid.uuid4().hex[:6]}"
    create_topic(kafka_broker.bootstrap, topic, 1)
    produce(kafka_broker.bootstrap, topic, 3000)
    # what a crashed worker left: offsets 0..499 written, nothing committed
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": kafka_broker.bootstrap, "group.id": "peek"})
    c.assign([TopicPartition(topic, 0, 0)])
    msgs = []
    while len(msgs) < 500:
        msgs += [m for m in c.consume(500, 5) if not m.error()]
    c.close()
    b = Batcher(10**6, 60)
    for m in msgs[:500]:
        b.add(0, Record(m.offset(), m.timestamp()[1], m.key(), m.value()), 0)
    batch = b.take_all()[0]
    key = object_key(f"{topic}/", topic, 0, 0, 499, "jsonl")
    s3.put_object(Bucket="ingest-raw", Key=key, Body=encode(batch, "jsonl"))
    w = WorkerProc(str(tmp_path), kafka_broker.bootstrap, creds, ceph.endpoint, topic, "jsonl",
                   flush_records=1000).start()
    try:
        wait_all_committed(kafka_broker.bootstrap, w, timeout=60)
    finally:
        w.stop()
    assert "were written before a restart" in open(w.log_path).read()
    rows, ranges = read_back(s3, w.prefix, "jsonl")
    assert_exactly_once(rows, 3000)
    assert [r[:2] for r in sorted(ranges[0])] == [(0, 499), (500, 1499), (1500, 2499), (2500, 2999)]
    assert verify(ranges, committed(kafka_broker.bootstrap, w.cfg["group"], topic))["ok"]


def test_zombie_worker_is_fenced_and_never_writes(kafka_broker, ceph, owner, tmp_path):
    """kafka-connect-storage-cloud #800 / iceberg #17551: a worker frozen while holding a batch, replaced by a
    new one, must not write that batch when it wakes up."""
    creds, s3 = owner
    topic = f"zombie-{uuid.uuid4().hex[:6]}"
    create_topic(kafka_broker.bootstrap, topic, 2)
    a = WorkerProc(str(tmp_path / "a"), kafka_broker.bootstrap, creds, ceph.endpoint, topic, "jsonl",
                   flush_records=100_000, flush_seconds=4)
    os.makedirs(tmp_path / "a")
    a.start()
    time.sleep(3)  # joined
    produce(kafka_broker.bootstrap, topic, 1000)
    deadline = time.monotonic() + 20
    while a.status().get("buffered_records", 0) < 1000:
        assert time.monotonic() < deadline, a.status()
        time.sleep(0.05)
    os.kill(a.proc.pid, signal.SIGSTOP)  # frozen with 1000 records in hand, before its time flush
    os.makedirs(tmp_path / "b")
    b = WorkerProc(str(tmp_path / "b"), kafka_broker.bootstrap, creds, ceph.endpoint, topic, "jsonl",
                   flush_records=300, flush_seconds=1).start()  # other settings: other keys if A wrote
    try:
        wait_all_committed(kafka_broker.bootstrap, b, timeout=60, ends=end_offsets(kafka_broker.bootstrap, topic))
        os.kill(a.proc.pid, signal.SIGCONT)  # wakes up past its flush deadline
        assert a.proc.wait(30) == 3, open(a.log_path).read()[-2000:]  # fenced: a fatal error, exits
        log = open(a.log_path).read()
        assert "fenced" in log.lower() and " wrote " not in log
        produce(kafka_broker.bootstrap, topic, 500, start=1000)
        wait_all_committed(kafka_broker.bootstrap, b, timeout=60)
    finally:
        if a.proc.poll() is None:
            os.kill(a.proc.pid, signal.SIGCONT)
            a.kill()
        b.stop()
    rows, ranges = read_back(s3, b.prefix, "jsonl")
    assert_exactly_once(rows, 1500)
    assert verify(ranges, committed(kafka_broker.bootstrap, b.cfg["group"], topic))["ok"]
