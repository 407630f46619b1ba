"""A hostile colleague on the Kafka broker. The local broker has no authentication: bob, from his own kernel (his
own system user and process), joins consumer groups, commits offsets and deletes groups on the real broker (the
tests' Apache Kafka), while alice's ingestion writes into her bucket on the real RGW. What lands in her
bucket stays exact — every record once, no loss, no duplicate — because her worker takes its position from its
own objects (which only she can write), never from the group; and the group and member ids carry random tokens.

Also, at the worker level (no hub): a worker whose group lost every commit (deleted, or a new group after a
migration) resumes from its objects.
"""

from __future__ import annotations

import json
import os
import re
import signal
import uuid

import boto3
import pytest
from botocore.config import Config

from odh_spawner.ingest.encode import decode
from odh_spawner.ingest.keys import parse_key
from odh_spawner.ingest.model import base_name
from odh_spawner.naming import state_dir_name
from server_extension.ingest import IngestClient, ingest
from tests.support.kafka import create_topic, end_offsets, produce
from tests.support.kernel import Kernel
from tests.support.wait import wait_for

PARTS = 3
AHEAD = 1_000_000_000  # bob's "far ahead" commit: skipping to it would lose every record in between
NAME = "hostile-k"


def s3_of(env: dict):
    return boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


def bucket_values(s3, bucket: str, prefix: str) -> tuple[list[int], int]:
    """Every record's `i` in the bucket's objects under `prefix`, and the number of objects."""
    values, n = [], 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            n += 1
            values += [json.loads(r["value"])["i"] for r in decode(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read(),
                                                                   "jsonl")]
    return values, n


def landed(s3, bucket: str, prefix: str) -> int:
    """How many offsets the objects' keys cover (listing only)."""
    n = 0
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            _, _, first, last = parse_key(o["Key"])
            n += last - first + 1
    return n


def refused(log: str, offset: str) -> bool:
    """The worker's log says it did not follow `offset` found in the group (on assignment, or its guard)."""
    return (f"committed offset {offset} is past this ingestion's objects" in log
            or re.search(r"committed offsets \{[^}\n]*: " + offset + r"[,}][^\n]*are not this worker's", log) is not None)


def caught_up(ing, bootstrap: str, topic: str) -> bool:
    """The worker's own position (its status) has reached every partition's end (not its counters: a worker
    killed between writing an object and writing its status misses that batch in them)."""
    ends, parts = end_offsets(bootstrap, topic), ing.status().get("partitions") or {}
    return len(parts) == len(ends) and all((parts[str(p)].get("committed") or -1) >= e for p, e in ends.items())


def run(kernel: Kernel, code: str, timeout: float = 180) -> dict:
    """bob's code; it prints one JSON object saying what happened."""
    return json.loads(kernel.execute(code, timeout=timeout).strip().splitlines()[-1])


def record(hub, name: str) -> dict:
    path = os.path.join(hub.state_dir, "platform", "ingestions", state_dir_name("alice"), name, "ingestion.json")
    with open(path) as f:
        return json.load(f)


def worker_log(hub, name: str) -> str:
    path = os.path.join(hub.state_dir, "platform", "ingestions", state_dir_name("alice"), name, "logs", "worker.log")
    with open(path, errors="replace") as f:
        return f.read()


# bob's tools, defined once in his kernel
BOB = '''
import json, os, threading, time
from confluent_kafka import Consumer, KafkaException, TopicPartition
from confluent_kafka.admin import AdminClient
BS = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
admin = AdminClient({"bootstrap.servers": BS})

def join(group, topic, instance=None, timeout=60):
    """Join `group` as a consumer of `topic` and keep the membership alive in a thread."""
    conf = {"bootstrap.servers": BS, "group.id": group, "enable.auto.commit": False, "session.timeout.ms": 10000,
            "auto.offset.reset": "earliest"}
    if instance:
        conf["group.instance.id"] = instance
    c = Consumer(conf)
    c.subscribe([topic])
    deadline = time.monotonic() + timeout
    while not c.assignment() and time.monotonic() < deadline:
        c.poll(0.2)
    lock, stop = threading.Lock(), threading.Event()
    def keep():
        while not stop.is_set():
            with lock:
                try:
                    c.poll(0.1)
                except Exception:  # fenced out again by the member he impersonates
                    pass
            time.sleep(0.05)
    t = threading.Thread(target=keep, daemon=True)
    t.start()
    return {"c": c, "lock": lock, "stop": stop, "t": t}

def leave(m):
    m["stop"].set(); m["t"].join(5)
    try:
        m["c"].close()
    except Exception:
        pass

def members(group):
    d = admin.describe_consumer_groups([group])[group].result(15)
    return sorted(m.group_instance_id or m.client_id for m in d.members)

def commit(m, topic, offsets):
    with m["lock"]:
        try:
            m["c"].commit(offsets=[TopicPartition(topic, p, o) for p, o in offsets.items()], asynchronous=False)
            return "committed"
        except KafkaException as e:
            return e.args[0].str()

def committed(m, topic, parts):
    with m["lock"]:
        return {tp.partition: tp.offset for tp in m["c"].committed([TopicPartition(topic, p) for p in parts], timeout=15)}
'''


@pytest.fixture(scope="module")
def alice(user_server):
    return user_server("alice")


@pytest.fixture(scope="module")
def bob_kernel(user_server):
    server = user_server("bob")
    kernel = Kernel(server.url, server.token)
    kernel.execute(BOB)
    yield kernel
    kernel.close()


@pytest.mark.skipif(os.geteuid() != 0, reason="system users need a root hub (CI runs as root)")
def test_bob_joins_commits_into_and_deletes_alices_group_and_her_bucket_stays_exact(hub, alice, bob_kernel,
                                                                                    kafka_broker):
    s3 = s3_of(alice.env)
    bucket, topic, prefix = "alice-hostile-kafka", f"hk-{uuid.uuid4().hex[:6]}", "hk/"
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    create_topic(kafka_broker.bootstrap, topic, PARTS)
    produce(kafka_broker.bootstrap, topic, 3000)
    client = IngestClient(hub.runtime["platform_url"] + "/services/odh-platform/", alice.token)
    ing = ingest(topic=topic, bucket=bucket, prefix=prefix, name=NAME, format="jsonl", flush_records=200,
                 flush_seconds=1, show_plan=False, client=client)
    total = 3000
    try:
        ing.wait(total, timeout=120)
        rec = record(hub, NAME)
        group, member = f"{base_name('alice', NAME)}.{rec['group_token']}", f"odh-ingest-worker.{rec['member_token']}"
        assert ing.status()["group"] == group
        pid = rec["runtime"]["pid"]

        # (a) bob joins under alice's old, derivable group name (with it as his static member id, as the old worker
        # had) and under a guess: he gets partitions — of groups that are not alice's; her worker is not there
        old, guess = base_name("alice", NAME), f"{base_name('alice', NAME)}.{'A' * 22}"
        a = run(bob_kernel, f'''
out = {{}}
for g, inst in (({old!r}, {old!r}), ({guess!r}, None)):
    m = join(g, {topic!r}, inst)
    out[g] = {{"assigned": sorted(tp.partition for tp in m["c"].assignment()),
              "commit": commit(m, {topic!r}, {{p: {AHEAD} for p in range({PARTS})}}), "members": members(g)}}
    leave(m)
print(json.dumps(out))''')
        for g in (old, guess):
            assert a[g]["assigned"] == list(range(PARTS)) and a[g]["commit"] == "committed", a
            assert member not in a[g]["members"], a  # alice's worker is in neither
        assert group not in (old, guess)
        assert record(hub, NAME)["runtime"]["pid"] == pid and ing.status()["state"] == "running"

        # (b) assume the worst: the broker's group list is public, so bob finds her real group, joins it as a
        # member (the broker takes a member's commits), freezes nothing of hers but commits far ahead on some of
        # her partitions and far behind on the others, and reads them back: the commits landed
        produce(kafka_broker.bootstrap, topic, 1000, start=total)
        total += 1000
        b = run(bob_kernel, f'''
groups = [g.group_id for g in admin.list_consumer_groups().result(15).valid]
found = [g for g in groups if g.startswith({old + "."!r}) and g != {guess!r}]
real = found[0]
m = join(real, {topic!r})
offsets = {{p: ({AHEAD} + p if p % 2 == 0 else 0) for p in range({PARTS})}}
out = {{"found": found, "members": members(real), "assigned": sorted(tp.partition for tp in m["c"].assignment()),
       "commit": commit(m, {topic!r}, offsets)}}
out["read_back"] = committed(m, {topic!r}, range({PARTS}))
print(json.dumps(out))''')
        assert b["found"] == [group], b  # the worst case holds: bob knows the real group id
        assert member in b["members"] and len(b["members"]) == 2, b  # alice's worker and bob in one group
        assert b["assigned"] and b["commit"] == "committed", b
        assert {int(p): o for p, o in b["read_back"].items()} == {p: (AHEAD + p if p % 2 == 0 else 0)
                                                                   for p in range(PARTS)}, b

        # alice's worker is killed (-9) while bob's commits stand (frozen first: it cannot set them back); the
        # platform starts it again and it resumes from its objects, not from bob's offsets
        os.kill(pid, signal.SIGSTOP)
        again = run(bob_kernel, f'''
print(json.dumps({{"commit": commit(m, {topic!r}, offsets), "read_back": committed(m, {topic!r}, range({PARTS}))}}))''')
        assert again["commit"] == "committed", again
        os.kill(pid, signal.SIGKILL)
        left = run(bob_kernel, '''
leave(m)
try:
    for f in admin.delete_consumer_groups([real]).values():
        f.result(15)
    deleted = "deleted"
except KafkaException as e:
    deleted = e.args[0].str()
print(json.dumps({"delete": deleted}))''')
        # the broker keeps a static member until its session ends (noida-db: until it rejoins), so the group
        # may refuse deletion; deleted or not, nothing below depends on it
        assert left["delete"] == "deleted" or "not empty" in left["delete"], left
        wait_for(lambda: record(hub, NAME)["runtime"].get("pid") not in (None, pid), 60, "the worker restart")
        produce(kafka_broker.bootstrap, topic, 2000, start=total)
        total += 2000
        wait_for(lambda: caught_up(ing, kafka_broker.bootstrap, topic), 180, "the worker to reach every end")
        values, _ = bucket_values(s3, bucket, prefix)
        assert len(values) == total and sorted(values) == list(range(total)), (len(values), len(set(values)), total)
        log = worker_log(hub, NAME)
        ahead = [p for p in range(PARTS) if p % 2 == 0]
        assert any(f"the group's committed offset {AHEAD + p} is past this ingestion's objects" in log for p in ahead), \
            log[-3000:]
        assert ing.status()["foreign_commits"] >= len(ahead)  # and says so in its status

        # bob joins once more while the new worker runs and commits 0 on every partition, staying a member: the
        # worker sets the offsets of its own partitions back (it compares every few seconds); then bob leaves and
        # deletes (or tries to delete) the group; alice produces more: still exact, and verify() clean
        c = run(bob_kernel, f'''
m = join(real, {topic!r})
print(json.dumps({{"commit": commit(m, {topic!r}, {{p: 0 for p in range({PARTS})}}),
                  "assigned": sorted(tp.partition for tp in m["c"].assignment())}}))''')
        assert c["commit"] == "committed" and c["assigned"], c
        seen = worker_log(hub, NAME).count("setting them back")
        wait_for(lambda: worker_log(hub, NAME).count("setting them back") > seen, 30,
                 "the worker to set its partitions' offsets back")
        c.update(run(bob_kernel, '''
leave(m)
out = {}
try:
    for f in admin.delete_consumer_groups([real]).values():
        f.result(15)
    out["delete"] = "deleted"
except KafkaException as e:
    out["delete"] = e.args[0].str()
print(json.dumps(out))'''))
        assert c["commit"] == "committed" and (c["delete"] == "deleted" or "not empty" in c["delete"]), c

        # the worst of all: the group's description is public too, with the worker's static member id; bob joins
        # as that member (the broker hands him every partition) and commits far ahead as "her"; her worker does
        # not follow his offsets (its guard sets them back). noida-db does not tell the replaced worker (Apache
        # Kafka fences it: it exits and is started again), so the ingestion may stall while bob holds the
        # membership; pause and resume start her worker again, which takes the membership back and goes on from
        # its objects
        d = run(bob_kernel, f'''
inst = [x for x in members(real) if x.startswith("odh-ingest-worker.")]
m = join(real, {topic!r}, inst[0])
print(json.dumps({{"instance": inst, "assigned": sorted(tp.partition for tp in m["c"].assignment()),
                  "commit": commit(m, {topic!r}, {{p: {AHEAD} + 10 + p for p in range({PARTS})}})}}))''')
        assert d["instance"] == [member] and d["assigned"] == list(range(PARTS)) and d["commit"] == "committed", d
        wait_for(lambda: any(refused(worker_log(hub, NAME), str(AHEAD + 10 + p)) for p in range(PARTS)), 60,
                 "alice's worker to refuse bob's offsets")
        run(bob_kernel, '''
leave(m)
print(json.dumps({}))''')
        ing.pause()
        ing.resume()
        produce(kafka_broker.bootstrap, topic, 1500, start=total)
        total += 1500
        wait_for(lambda: caught_up(ing, kafka_broker.bootstrap, topic), 180, "the worker to reach every end")
        report = {}

        def clean():
            report.update(ing.verify())
            return report["ok"] and not (report["gaps"] or report["overlaps"] or report["missing"])

        wait_for(clean, 60, "verify() clean")
        assert sum(p["offsets_covered"] for p in report["partitions"].values()) == total, report
        values, objects = bucket_values(s3, bucket, prefix)
        assert len(values) == total and sorted(values) == list(range(total)), (len(values), len(set(values)), total)
        assert landed(s3, bucket, prefix) == total and objects == sum(p["objects"] for p in report["partitions"].values())
        assert sum(end_offsets(kafka_broker.bootstrap, topic).values()) == total  # every record produced, once
    finally:
        ing.delete()


# -- the worker alone: a group that lost every commit --------------------------------------------------------
@pytest.fixture(scope="module")
def owner_s3(ceph):
    import asyncio

    from odh_spawner.credentials.rgw import RgwCredentialStore

    store = RgwCredentialStore(ceph.endpoint, ceph.admin.access_key, ceph.admin.secret_key, timeout=10)
    creds = asyncio.run(store.ensure("hostile-kafka-owner"))
    s3 = s3_of({"S3_ENDPOINT_URL": ceph.endpoint, "AWS_ACCESS_KEY_ID": creds.access_key,
                "AWS_SECRET_ACCESS_KEY": creds.secret_key})
    try:
        s3.create_bucket(Bucket="hostile-kafka-raw")
    except (s3.exceptions.BucketAlreadyOwnedByYou, s3.exceptions.BucketAlreadyExists):
        pass
    return creds, s3


def start_worker(tmp, bootstrap, creds, endpoint, topic, group, prefix, previous=()):
    import subprocess
    import sys

    cfg = {"name": topic, "bootstrap": bootstrap, "group": group, "instance": f"{group}.w", "topic": topic,
           "bucket": "hostile-kafka-raw", "prefix": prefix, "previous_prefixes": list(previous), "format": "jsonl",
           "flush_records": 300, "flush_seconds": 1, "status_path": os.path.join(tmp, f"status-{group}.json"),
           "s3": {"endpoint": endpoint, "access_key": creds.access_key, "secret_key": creds.secret_key}}
    log_path = os.path.join(tmp, f"worker-{group}.log")
    with open(log_path, "ab") as log:
        proc = subprocess.Popen([sys.executable, "-m", "odh_spawner.ingest.worker"], stdin=subprocess.PIPE,
                                stdout=log, stderr=subprocess.STDOUT)
    proc.stdin.write(json.dumps(cfg).encode())
    proc.stdin.close()
    return proc, cfg["status_path"], log_path


def status_of(path: str) -> dict:
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def reached_ends(path: str, bootstrap: str, topic: str) -> bool:
    ends, parts = end_offsets(bootstrap, topic), status_of(path).get("partitions") or {}
    return len(parts) == len(ends) and all((parts[str(p)].get("committed") or -1) >= e for p, e in ends.items())


def test_a_worker_whose_group_lost_its_commits_resumes_from_its_objects(kafka_broker, ceph, owner_s3, tmp_path):
    """A deleted group, or the new group a record from before the tokens gets: no committed offset at all.
    The worker (killed -9 first) goes on after its objects — also under the prefix it wrote before a change."""
    creds, s3 = owner_s3
    topic = f"lost-{uuid.uuid4().hex[:6]}"
    create_topic(kafka_broker.bootstrap, topic, PARTS)
    produce(kafka_broker.bootstrap, topic, 2000)
    proc, status, log = start_worker(str(tmp_path), kafka_broker.bootstrap, creds, ceph.endpoint, topic,
                                     f"g1-{topic}", f"{topic}/a/")
    try:
        wait_for(lambda: reached_ends(status, kafka_broker.bootstrap, topic), 120, "the first worker to catch up")
    finally:
        proc.kill()
        proc.wait(10)
    produce(kafka_broker.bootstrap, topic, 1000, start=2000)
    # a new group (nothing committed) and a new prefix: the position comes from the objects under the old one
    proc, status, log = start_worker(str(tmp_path), kafka_broker.bootstrap, creds, ceph.endpoint, topic,
                                     f"g2-{topic}", f"{topic}/b/", previous=[f"{topic}/a/"])
    try:
        wait_for(lambda: reached_ends(status, kafka_broker.bootstrap, topic), 120, "the second worker to catch up")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(30) == 0, open(log).read()[-3000:]
    first, _ = bucket_values(s3, "hostile-kafka-raw", f"{topic}/a/")
    second, _ = bucket_values(s3, "hostile-kafka-raw", f"{topic}/b/")
    assert sorted(first + second) == list(range(3000)), (len(first), len(second))
    assert len(second) == 1000 and "were written before a restart" in open(log).read()
