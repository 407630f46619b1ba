"""The baseline of bench/ingest_throughput.py: a bare confluent-kafka consumer loop that writes the same
batches (flush_records records of one partition, newline-joined values) with boto3 to the same RGW and commits
after each. No fencing, no recovery, no status, no encoding beyond joining. Config JSON on stdin."""

import json
import sys
import time

from confluent_kafka import Consumer, TopicPartition

sys.path.insert(0, sys.argv[1])
from odh_spawner.ingest.worker import s3_client  # noqa: E402

cfg = json.loads(sys.stdin.read())
s3 = s3_client(cfg["s3"])
# the same client settings as the worker's (fetch sizes, static membership), nothing else. (Without static
# membership a synchronous commit of a dynamic member sometimes never returned on noida-db 0.2.3 here.)
c = Consumer({"bootstrap.servers": cfg["bootstrap"], "group.id": cfg["group"], "enable.auto.commit": False,
              "auto.offset.reset": "earliest", "queued.max.messages.kbytes": 16384, "fetch.max.bytes": 8 * 2**20,
              "group.instance.id": cfg["group"], "session.timeout.ms": 15000})


def on_assign(consumer, partitions):  # bench/ingest_latency.py waits for the group join before producing
    if cfg.get("ready_path") and partitions:
        open(cfg["ready_path"], "w").close()


c.subscribe([cfg["topic"]], on_assign=on_assign)
buffers: dict[int, list] = {}
done, total = 0, cfg["expect"]
t0 = time.monotonic()


def write(p, buf):
    first, last = buf[0].offset(), buf[-1].offset()
    s3.put_object(Bucket=cfg["bucket"], Key=f"{cfg['prefix']}{p}-{first}-{last}.jsonl",
                  Body=b"\n".join(x.value() for x in buf))
    c.commit(offsets=[TopicPartition(cfg["topic"], p, last + 1)], asynchronous=False)
    return len(buf)


opened: dict[int, float] = {}
while done < total:
    for m in c.consume(1000, 0.2):
        if m.error():
            continue
        buf = buffers.setdefault(m.partition(), [])
        if not buf:
            opened[m.partition()] = time.monotonic()
        buf.append(m)
        if len(buf) >= cfg["flush_records"]:
            done += write(m.partition(), buf)
            buffers[m.partition()] = []
    for p, buf in buffers.items():  # the same time flush as the worker's (flush_seconds)
        if buf and time.monotonic() - opened[p] >= cfg["flush_seconds"]:
            done += write(p, buf)
            buffers[p] = []
print(json.dumps({"records": done, "seconds": time.monotonic() - t0}))
c.close()
