"""Kafka ingestion through the platform service, against a real hub, real RGW and a real Apache Kafka broker:
submit from a notebook kernel, watch, pause/resume, change settings mid-run, survive a worker kill -9, the
notebook server stopping and a platform restart — every record exactly once — and a hostile colleague who
can neither see, control, redirect an ingestion nor make one write into another user's bucket."""

from __future__ import annotations

import json
import os
import pwd
import signal
import time

import boto3
import pytest
import requests
from botocore.config import Config

from odh_spawner.ingest.encode import decode
from odh_spawner.host import procs
from server_extension.client import OdhApiError
from server_extension.ingest import IngestClient, Ingestion, ingest
from tests.support.fixtures import INGESTIONS_PER_USER, pid_alive
from tests.support.kafka import create_topic, produce
from tests.support.kernel import Kernel
from tests.support.wait import wait_for


def platform_url(hub) -> str:
    return hub.runtime["platform_url"] + "/services/odh-platform/"


def s3_of(env: dict):
    return boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


def record(hub, owner: str, name: str) -> dict:
    path = os.path.join(hub.runtime["state_dir"], "platform", "ingestions", owner, name, "ingestion.json")
    with open(path) as f:
        return json.load(f)


def worker_pid(hub, owner, name) -> int:
    return record(hub, owner, name)["runtime"]["pid"]


def read_values(s3, bucket, prefix, fmt) -> list[int]:
    values = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            f = "parquet" if o["Key"].endswith(".parquet") else "jsonl"
            values += [json.loads(r["value"])["i"] for r in decode(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read(), f)]
    return values


@pytest.fixture(scope="module")
def alice(user_server):
    return user_server("alice")


@pytest.fixture(scope="module")
def bob(user_server):
    return user_server("bob")


@pytest.fixture(scope="module")
def alice_s3(alice):
    s3 = s3_of(alice.env)
    try:
        s3.create_bucket(Bucket="alice-raw")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    return s3


def test_servers_know_kafka_and_kernel_submits_an_ingestion(hub, alice, alice_s3, kafka_broker):
    env = alice.env
    assert env["KAFKA_BOOTSTRAP_SERVERS"] == kafka_broker.bootstrap
    k = Kernel(alice.url, alice.token)
    try:
        out = k.execute(
            "from server_extension.ingest import ingest, ingestion, produce_sample\n"
            "print('produced', produce_sample('nb-clicks', 3000))\n"
            "ing = ingest(topic='nb-clicks', bucket='alice-raw', prefix='nb/', format='parquet',"
            " flush_records=1000, flush_seconds=2, name='nb-clicks')\n"
            "s = ing.wait(3000, timeout=120)\n"
            "print('records', s['records'], s['state'], s['lag'])\n"
            "df = ingestion('nb-clicks').read()\n"
            "exact = all(g['offset'].tolist() == list(range(len(g))) for _, g in df.groupby('partition'))\n"
            "print('rows', len(df), 'each partition 0..n-1:', exact)\n"
            "v = ing.verify(); print('verify', v['ok'], len(v['gaps']), len(v['overlaps']))\n", timeout=180)
    finally:
        k.close()
    assert "produced 3000" in out, out
    assert "Ingestion plan: nb-clicks" in out and "example:" in out and "exactly once" in out, out
    assert "records 3000 running 0" in out, out
    assert "rows 3000 each partition 0..n-1: True" in out and "verify True 0 0" in out, out
    # the worker runs as alice's own system user; her secret is in neither its argv nor its environment
    pid = worker_pid(hub, "alice", "nb-clicks")
    with open(f"/proc/{pid}/status") as f:
        uid = int(next(line for line in f if line.startswith("Uid:")).split()[1])
    assert pwd.getpwuid(uid).pw_name == "odh-alice"
    secret = env["AWS_SECRET_ACCESS_KEY"]
    assert secret not in " ".join(procs.cmdline(pid))
    with open(f"/proc/{pid}/environ", "rb") as f:
        assert secret.encode() not in f.read()
    rec_path = os.path.join(hub.runtime["state_dir"], "platform", "ingestions", "alice", "nb-clicks")
    assert os.stat(os.path.join(rec_path, "ingestion.json")).st_mode & 0o777 == 0o600
    assert secret not in open(os.path.join(rec_path, "ingestion.json")).read()
    assert sorted(read_values(alice_s3, "alice-raw", "nb/", "parquet")) == list(range(3000))


def test_bad_input_is_a_clear_4xx(hub, alice, alice_s3, kafka_broker):
    c = IngestClient(platform_url(hub), alice.token)
    create_topic(kafka_broker.bootstrap, "bad-input", 1)
    cases = [
        ({"name": "x1", "topic": "no-such-topic", "bucket": "alice-raw"}, 404, "does not exist"),
        ({"name": "x2", "topic": "bad-input", "bucket": "alice-raw", "format": "csv"}, 400, "Format must be"),
        ({"name": "x3", "topic": "bad-input", "bucket": "alice-raw", "flush_records": 0}, 400, "flush_records"),
        ({"name": "x4", "topic": "bad-input", "bucket": "alice-raw", "flush_seconds": -1}, 400, "flush_seconds"),
        ({"name": "x5", "topic": "bad-input", "bucket": "alice-raw", "partition_by": "day"}, 400, "partition_by"),
        ({"name": "x6", "topic": "bad-input", "bucket": "no-such-bucket-x"}, 400, "does not exist"),
        ({"name": "x7", "topic": "bad-input", "bucket": "alice-raw", "prefix": "../up"}, 400, "prefix"),
        ({"name": "Bad Name", "topic": "bad-input", "bucket": "alice-raw"}, 400, "name"),
        ({"name": "x8", "topic": "bad-input", "bucket": "alice-raw", "colour": "red"}, 400, "Unknown field"),
    ]
    for body, status, text in cases:
        with pytest.raises(OdhApiError) as e:
            c.call("POST", json=body)
        assert e.value.status == status and text in e.value.message, (body, e.value.status, e.value.message)
    r = requests.post(c.api, data="not json", headers={"Authorization": f"token {alice.token}"}, timeout=30)
    assert r.status_code == 400 and "JSON" in r.json()["message"]
    assert requests.get(c.api, timeout=30).status_code == 403  # no token
    assert c.call("GET")["ingestions"] and all(i["name"] == "nb-clicks" for i in c.call("GET")["ingestions"])


def test_hostile_colleague_cannot_see_control_redirect_or_write_into_alices_bucket(hub, alice, bob, alice_s3,
                                                                                   kafka_broker):
    b = IngestClient(platform_url(hub), bob.token)
    assert b.call("GET")["ingestions"] == []
    for method, path, body in [("GET", "/nb-clicks", None), ("PATCH", "/nb-clicks", {"prefix": "stolen/"}),
                               ("DELETE", "/nb-clicks", None), ("POST", "/nb-clicks/pause", None),
                               ("GET", "/nb-clicks/objects", None), ("GET", "/nb-clicks/verify", None)]:
        with pytest.raises(OdhApiError) as e:
            b.call(method, path, json=body)
        assert e.value.status == 404, (method, path, e.value.message)
    as_alice = IngestClient(platform_url(hub), bob.token, user="alice")
    for method, path in [("GET", ""), ("GET", "/nb-clicks"), ("DELETE", "/nb-clicks")]:
        with pytest.raises(OdhApiError) as e:
            as_alice.call(method, path)
        assert e.value.status == 403
    # bob's own ingestion into alice's bucket: refused at submit (it is not his bucket)
    with pytest.raises(OdhApiError) as e:
        b.call("POST", json={"name": "steal", "topic": "nb-clicks", "bucket": "alice-raw", "prefix": "nb/"})
    assert (e.value.status, e.value.message) == (
        403, "The bucket alice-raw belongs to another user; choose one of your own buckets.")
    assert b.call("GET")["ingestions"] == []
    # alice's ingestion is untouched
    a = Ingestion("nb-clicks", IngestClient(platform_url(hub), alice.token)).status()
    assert a["state"] == "running" and a["prefix"] == "nb/"


def test_pause_resume_change_settings_kill9_platform_restart_and_server_stop_exactly_once(
        hub, alice, alice_s3, kafka_broker, login):
    c = IngestClient(platform_url(hub), alice.token)
    create_topic(kafka_broker.bootstrap, "events", 3)
    produce(kafka_broker.bootstrap, "events", 20_000)
    ing = ingest(topic="events", bucket="alice-raw", prefix="ev/", format="jsonl", flush_records=2000,
                 flush_seconds=2, name="events", client=c)
    ing.wait(20_000, timeout=120)
    ing.pause()
    assert ing.status()["state"] == "paused"
    # records keep arriving while it is paused; for longer than two flush intervals (2 s each) nothing is consumed:
    # the count and the objects in the bucket stay put
    objects_before = len(read_values(alice_s3, "alice-raw", "ev/", "jsonl"))
    began, counts = time.monotonic(), []
    for k in range(5):
        produce(kafka_broker.bootstrap, "events", 2_000, start=20_000 + 2_000 * k)
        time.sleep(1.2)
        counts.append(ing.status()["records"])
    assert time.monotonic() - began > 2 * 2 + 1 and counts == [20_000] * 5, counts
    assert len(read_values(alice_s3, "alice-raw", "ev/", "jsonl")) == objects_before == 20_000
    assert ing.status()["state"] == "paused"
    ing.resume()
    ing.wait(25_000, timeout=120)
    changed = ing.update(flush_records=777, format="parquet")  # mid-run
    assert changed["flush_records"] == 777 and changed["format"] == "parquet" and changed["changes"]
    produce(kafka_broker.bootstrap, "events", 10_000, start=30_000)
    ing.wait(40_000, timeout=120)

    # kill -9 the worker: the platform starts it again; nothing lost or doubled
    pid = worker_pid(hub, "alice", "events")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: worker_pid(hub, "alice", "events") != pid, 30, "the worker restart")
    produce(kafka_broker.bootstrap, "events", 5_000, start=40_000)
    ing.wait(45_000, timeout=120)

    # the notebook server stops: the ingestion goes on
    alice.session.stop()
    produce(kafka_broker.bootstrap, "events", 5_000, start=45_000)
    ing.wait(50_000, timeout=120)

    # the platform service restarts: the worker is adopted, not restarted, and goes on
    wpid = worker_pid(hub, "alice", "events")
    service = [int(e) for e in os.listdir("/proc") if e.isdigit() and "odh_spawner.platform" in procs.cmdline(int(e))
               and any(hub.runtime["state_dir"] in a for a in procs.cmdline(int(e)))]
    assert len(service) == 1
    os.kill(service[0], signal.SIGTERM)
    wait_for(lambda: not pid_alive(service[0]), 15, "the service to stop")
    def answers():
        try:
            return requests.get(c.api + "/events", headers={"Authorization": f"token {alice.token}"},
                                timeout=10).status_code == 200
        except requests.ConnectionError:
            return False

    wait_for(answers, 90, "the platform service again")
    assert worker_pid(hub, "alice", "events") == wpid and pid_alive(wpid)
    produce(kafka_broker.bootstrap, "events", 10_000, start=50_000)
    s = ing.wait(60_000, timeout=120)
    assert s["lag"] == 0 or s["records"] == 60_000
    report = ing.verify()
    assert report["ok"] and not report["gaps"] and not report["overlaps"], report
    values = read_values(alice_s3, "alice-raw", "ev/", "jsonl")
    assert len(values) == 60_000 and sorted(values) == list(range(60_000))
    objs = ing.objects(limit=100_000)
    assert any(o["key"].endswith(".parquet") for o in objs) and any(o["key"].endswith(".jsonl") for o in objs)
    ing.delete()
    wait_for(lambda: not pid_alive(wpid), 40, "the worker to stop")
    with pytest.raises(OdhApiError) as e:
        ing.status()
    assert e.value.status == 404


def test_missing_topic_is_created_on_request_and_ingestions_per_user_are_limited(hub, alice, alice_s3,
                                                                                 kafka_broker):
    from confluent_kafka.admin import AdminClient

    c = IngestClient(platform_url(hub), alice.token)
    with pytest.raises(OdhApiError) as e:
        c.call("POST", json={"name": "fresh", "topic": "fresh-topic", "bucket": "alice-raw"})
    assert e.value.status == 404 and "create_topic" in e.value.message
    with pytest.raises(OdhApiError) as e:
        c.call("POST", json={"name": "fresh", "topic": "fresh-topic", "bucket": "alice-raw", "create_topic": True,
                             "partitions": 0})
    assert e.value.status == 400 and "partitions" in e.value.message
    ing = ingest(topic="fresh-topic", bucket="alice-raw", prefix="fresh/", name="fresh", flush_seconds=1,
                 create_topic=True, partitions=2, client=c, show_plan=False)
    topics = AdminClient({"bootstrap.servers": kafka_broker.bootstrap}).list_topics(timeout=10).topics
    assert len(topics["fresh-topic"].partitions) == 2
    produce(kafka_broker.bootstrap, "fresh-topic", 500)
    assert ing.wait(500, timeout=60)["records"] == 500
    # the worker's memory is bounded: its own cgroup, at the backend's memory_limit_mb (512 MiB by default)
    pid = worker_pid(hub, "alice", "fresh")
    group = record(hub, "alice", "fresh")["runtime"]["cgroup"]
    assert group.startswith("alice.fresh.")
    limits = memory_limit_files(pid)
    assert limits and all(int(open(f).read()) == 512 * 2**20 for f in limits), limits

    # at most INGESTIONS_PER_USER each: the next one is refused with the reason; bob's count is his own
    mine = [i["name"] for i in c.call("GET")["ingestions"]]
    extra = [f"fill-{n}" for n in range(INGESTIONS_PER_USER - len(mine))]
    try:
        for name in extra:
            c.call("POST", json={"name": name, "topic": "fresh-topic", "bucket": "alice-raw", "prefix": f"{name}/"})
        with pytest.raises(OdhApiError) as e:
            c.call("POST", json={"name": "one-too-many", "topic": "fresh-topic", "bucket": "alice-raw"})
        assert e.value.status == 403 and f"You may have at most {INGESTIONS_PER_USER} ingestions (the platform default); delete one first." == e.value.message
        assert len(c.call("GET")["ingestions"]) == INGESTIONS_PER_USER
    finally:
        for name in extra + ["fresh"]:
            c.call("DELETE", f"/{name}")
    assert "fresh" not in [i["name"] for i in c.call("GET")["ingestions"]]
    assert not any(os.path.exists(os.path.dirname(f)) for f in limits)  # the group went with the ingestion


def memory_limit_files(pid: int) -> list[str]:
    """The memory limit file(s) of the cgroup `pid` is in (v2 `memory.max`, v1 `memory.limit_in_bytes`)."""
    found = []
    with open(f"/proc/{pid}/cgroup") as f:
        for line in f:
            _, controllers, path = line.rstrip("\n").split(":", 2)
            if controllers == "":
                found.append(f"/sys/fs/cgroup{path}/memory.max")
            elif "memory" in controllers.split(","):
                found.append(f"/sys/fs/cgroup/memory{path}/memory.limit_in_bytes")
    return [p for p in found if os.path.exists(p) and "odh-hub-ingest" in p]
