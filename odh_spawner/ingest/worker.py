"""The ingestion worker: one process per ingestion, run as its owner. `python -m odh_spawner.ingest.worker`
reads its configuration (JSON, holding the owner's S3 keys) from stdin, or with `--config FILE` from a file (on
Kubernetes: a Secret volume) — never argv or the environment.

Position of record: the owner's bucket. Object keys carry partition and offsets (keys.object_key). When
partitions are assigned (start, and after every rebalance) the worker lists its own objects under its prefix
(and the prefixes it wrote under before a change of settings) and seeks each partition to right after the last
offset they hold (verify.position_of_record; the topic's beginning when there is none). Only the owner can write
into their bucket, so nobody else can move that position. The consumer group's committed offsets are a hint
for lag display only: a local broker has no authentication, and anyone may commit into a group whose id they
know (the broker's group list is public) — a commit far ahead, far behind, or a deleted group changes nothing
here; the worker sets the group's offsets back to its own (`foreign_commits` in its status) every few seconds.
The group id and the static member id each carry a random token from the ingestion's record (model.group_id,
model.member_id): nobody joins the group as the ingestion by guessing a name. (Who reads them from the broker
can still hold the ingestion's partitions, i.e. stall it — availability, not integrity: that needs Kafka ACLs.)

A member of the ingestion's own consumer group. For each batch (batching.Batcher decides when one closes):
1. fence: the partition is still ours (assignment) and the group still takes our commits — the batch's first
   offset is committed again synchronously; a worker that lost its generation gets an error here and drops
   the batch instead of writing (a zombie must not overwrite a newer file: kafka-connect-storage-cloud #800);
2. write the batch as one object (keys.object_key: same offsets, same key) with a single PUT;
3. only then commit the offset after its last record (the hint).
After a crash between 2 and 3 the next owner of the partition finds the object and goes on after it without
writing it again: every record lands exactly once. On SIGTERM open batches are written and committed, then the
process exits.

Status (counters, rates, lag per partition, last object, last error, a hint) goes to a JSON file written
atomically; the platform service reads it.
"""

from __future__ import annotations

import collections
import json
import logging
import os
import signal
import sys
import time

from odh_spawner.ingest.batching import Batch, Batcher, Record
from odh_spawner.ingest.encode import CONTENT_TYPES, encode
from odh_spawner.ingest.keys import object_key, parse_key, partition_prefix
from odh_spawner.ingest.verify import foreign_commits, position_of_record

log = logging.getLogger("odh_spawner.ingest.worker")
OFFSET_INVALID = -1001
GUARD_SECONDS = 5.0  # how often the group's committed offsets are compared with the worker's own


def s3_client(s3: dict):
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=s3["endpoint"] or None, aws_access_key_id=s3["access_key"],
                        aws_secret_access_key=s3["secret_key"], region_name="us-east-1",
                        config=Config(signature_version="s3v4", s3={"addressing_style": "path"},
                                      retries={"max_attempts": 3, "mode": "standard"}, connect_timeout=5,
                                      read_timeout=30, request_checksum_calculation="when_required",
                                      response_checksum_validation="when_required"))


def s3_problem(e: Exception, bucket: str) -> str:
    """A user-safe sentence for an S3 error."""
    code = getattr(e, "response", {}).get("Error", {}).get("Code", "") if hasattr(e, "response") else ""
    if code in ("AccessDenied", "403"):
        return f"No permission to write into bucket {bucket!r} with your keys."
    if code in ("NoSuchBucket", "404"):
        return f"Bucket {bucket!r} does not exist."
    if code == "QuotaExceeded":
        return "Your object-storage quota is full."
    return f"Writing to object storage failed ({code or type(e).__name__})."


def list_ranges(s3, bucket: str, prefix: str) -> list[tuple[int, int]]:
    out = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for o in page.get("Contents", []):
            parsed = parse_key(o["Key"])
            if parsed:
                out.append((parsed[2], parsed[3]))
    return out


class Worker:
    def __init__(self, cfg: dict, s3=None, consumer=None):
        self.cfg = cfg
        self.topic = cfg["topic"]
        self.bucket = cfg["bucket"]
        self.prefix = cfg.get("prefix", "")
        self.prefixes = [self.prefix] + [p for p in cfg.get("previous_prefixes") or [] if p != self.prefix]
        self.fmt = cfg.get("format", "jsonl")
        self.status_path = cfg.get("status_path")
        self.batcher = Batcher(cfg["flush_records"], cfg["flush_seconds"], cfg.get("partition_by"),
                               cfg.get("max_buffer_bytes", 64 * 2**20))
        self.s3 = s3 or s3_client(cfg["s3"])
        self.consumer = consumer
        self.assigned: set[int] = set()
        self.committed: dict[int, int] = {}
        self.rewound: dict[int, int] = {}  # partition -> the offset it was sought back to, until that arrives
        self.ends: dict[int, int] = {}
        self.stopping = False
        self.fatal = False
        self.broker_error: str | None = None
        self.last_error: str | None = None
        self.last_error_at: float | None = None
        self.last_object: str | None = None
        self.last_object_at: float | None = None
        prev = self._previous_status()
        self.records = prev.get("records", 0)
        self.bytes = prev.get("bytes", 0)
        self.objects = prev.get("objects", 0)
        self.fenced = prev.get("fenced", 0)
        self.foreign = prev.get("foreign_commits", 0)
        self._guard_at = time.monotonic()
        self.started = time.time()
        self.samples: collections.deque = collections.deque(maxlen=30)
        self._status_at = 0.0
        self._ends_at = 0.0
        self._polls = 0

    # -- Kafka ------------------------------------------------------------------------------------
    def make_consumer(self):
        from confluent_kafka import Consumer

        conf = {
            "bootstrap.servers": self.cfg["bootstrap"],
            "group.id": self.cfg["group"],
            # static membership: a restarted worker takes its partitions back at once, and a zombie still
            # holding the same id is fenced by the broker (FENCED_INSTANCE_ID on its next commit)
            "group.instance.id": self.cfg.get("instance") or self.cfg["group"],
            "session.timeout.ms": 15000,
            "client.id": f"odh-ingest-{self.cfg.get('name', '')}",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "queued.max.messages.kbytes": 16384,  # bounded prefetch (memory)
            "fetch.max.bytes": 8 * 2**20,
            "error_cb": self._on_error,
            "logger": logging.getLogger("rdkafka"),
        }
        conf.update(self.cfg.get("consumer") or {})
        return Consumer(conf)

    def _on_error(self, err) -> None:
        from confluent_kafka import KafkaError

        if err.fatal() or err.code() == KafkaError._FATAL:  # e.g. fenced by a newer worker of this ingestion: this process must stop writing
            log.error("Kafka: fatal error, stopping: %s", err.str())
            self._error(f"Stopped by Kafka: {err.str()[:200]}")
            self.assigned.clear()
            self.batcher.drop(list(self.batcher.open))
            self.fatal = True
            self.stopping = True
        elif err.code() in (KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE):
            self.broker_error = f"Kafka broker {self.cfg['bootstrap']} unreachable ({err.str()[:120]}); retrying."
            self._error(self.broker_error)
        else:
            log.warning("Kafka: %s", err)

    def ranges(self, p: int) -> list[tuple[int, int]]:
        """(first, last) of every object of partition `p` under the current prefix and the earlier ones."""
        return [r for prefix in self.prefixes
                for r in list_ranges(self.s3, self.bucket, partition_prefix(prefix, self.topic, p))]

    def _group_offsets(self, consumer, partitions) -> dict[int, int]:
        """The group's committed offsets (a hint; {} when the broker does not say)."""
        from confluent_kafka import KafkaException

        try:
            return {tp.partition: tp.offset for tp in consumer.committed(partitions, timeout=30)}
        except KafkaException as e:
            log.warning("could not read the group's committed offsets (%s); resuming from the bucket", e)
            return {}

    def _on_assign(self, consumer, partitions) -> None:
        from confluent_kafka import OFFSET_BEGINNING, KafkaException, TopicPartition

        committed = self._group_offsets(consumer, partitions)
        hints = []
        for tp in partitions:
            p = tp.partition
            c = committed.get(p, OFFSET_INVALID)
            start = written = position_of_record(self.ranges(p))  # the bucket decides, never the group
            if start is None:  # no object yet: from the topic's beginning
                try:
                    start = consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=30)[0]
                except KafkaException:
                    start = None
            self.assigned.add(p)
            self.rewound.pop(p, None)
            if start is None:
                tp.offset = OFFSET_BEGINNING
                self.committed.pop(p, None)
                continue
            if c > start:
                log.warning("partition %d: the group's committed offset %d is past this ingestion's objects "
                            "(next offset %d): not the worker's; resuming from the bucket", p, c, start)
                self.foreign += 1
            elif written is not None and c != start:
                log.info("partition %d: objects up to offset %d were written before a restart; committing them",
                         p, start - 1)
            tp.offset = start
            self.committed[p] = start
            if c != start:
                hints.append(TopicPartition(self.topic, p, start))
        log.info("assigned partitions %s at offsets %s", sorted(self.assigned),
                 {tp.partition: tp.offset for tp in partitions})
        consumer.assign(partitions)
        if hints:
            self._commit_hint(hints)

    def _commit_hint(self, offsets) -> None:
        """Commit offsets for lag display; a failure changes nothing (the bucket is the position)."""
        from confluent_kafka import KafkaException

        try:
            self.consumer.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            log.warning("could not commit offsets %s (%s)", {tp.partition: tp.offset for tp in offsets}, e)

    def guard_commits(self, force: bool = False) -> None:
        """Set the group's committed offsets back to this worker's where someone else moved (or deleted) them."""
        from confluent_kafka import KafkaException, TopicPartition

        now = time.monotonic()
        if (self.consumer is None or not self.assigned or self.broker_error
                or (not force and now - self._guard_at < GUARD_SECONDS)):
            return
        self._guard_at = now
        own = {p: self.committed[p] for p in self.assigned if p in self.committed}
        if not own:
            return
        try:
            group = {tp.partition: tp.offset for tp in self.consumer.committed(
                [TopicPartition(self.topic, p) for p in own], timeout=2)}
        except KafkaException:
            return
        moved = foreign_commits(own, group)
        if not moved:
            return
        self.foreign += len(moved)
        log.warning("the group's committed offsets %s are not this worker's %s (moved by someone else, or a commit "
                    "failed); setting them back (the worker goes on from its objects)", moved, {p: own[p] for p in moved})
        self._commit_hint([TopicPartition(self.topic, p, own[p]) for p in moved])

    def _on_revoke(self, consumer, partitions) -> None:
        lost = {tp.partition for tp in partitions}
        self.batcher.drop(lost)  # not ours any more: the next owner goes on after the last object
        self.assigned -= lost
        for p in lost:
            self.rewound.pop(p, None)
        log.info("revoked partitions %s", sorted(lost))

    # -- writing ----------------------------------------------------------------------------------
    def fence(self, b: Batch) -> bool:
        """Still the owner of this partition, in the group's current generation?"""
        from confluent_kafka import KafkaException, TopicPartition

        if b.partition not in self.assigned:
            return False
        try:
            self.consumer.commit(offsets=[TopicPartition(self.topic, b.partition, b.first)], asynchronous=False)
        except KafkaException as e:
            err = e.args[0] if e.args else None
            log.warning("partition %d: fenced before writing offsets %d-%d (%s); dropping the batch",
                        b.partition, b.first, b.last, err.str() if err is not None else e)
            self.fenced += 1
            if err is not None and (err.fatal() or "Fatal" in err.str()):
                self._on_error(err)
            return False
        return True

    def write(self, b: Batch, reason: str) -> bool:
        from confluent_kafka import KafkaException, TopicPartition

        key = object_key(self.prefix, self.topic, b.partition, b.first, b.last, self.fmt, b.hour)
        data = encode(b, self.fmt)
        delay = 0.5
        while True:
            if not self.fence(b):
                self._rewind(b)
                return False
            try:
                self.s3.put_object(Bucket=self.bucket, Key=key, Body=data, ContentType=CONTENT_TYPES[self.fmt])
                break
            except Exception as e:  # S3 down, no permission, quota: keep the batch, retry, say why
                self._error(s3_problem(e, self.bucket))
                if self.stopping:
                    return False  # not committed: read again after the restart
                self._wait_paused(delay)
                delay = min(delay * 2, 10)
        try:
            self.consumer.commit(offsets=[TopicPartition(self.topic, b.partition, b.last + 1)], asynchronous=False)
        except KafkaException as e:
            # the object is durable; the partition's next owner goes on after it (position_of_record)
            log.warning("partition %d: commit after %s failed (%s)", b.partition, key, e)
        self.committed[b.partition] = b.last + 1
        self.records += len(b.records)
        self.bytes += len(data)
        self.objects += 1
        self.last_object, self.last_object_at = key, time.time()
        if self.last_error and not self.broker_error:
            self.last_error = None
        log.info("wrote %s (%d records, %d bytes, %s flush)", key, len(b.records), len(data), reason)
        self.write_status(force=True)
        return True

    def _rewind(self, b: Batch) -> None:
        """A batch that was not written: if the partition is still ours, read it again from its first offset
        (later records already buffered go too); if not, its next owner reads it from the committed offset.
        Records of the partition fetched before the seek and still to be taken (the rest of the current
        consume() list) are skipped until the batch's first offset comes again (`_take`): written, they would
        make an object after a gap, and the bucket's last offset, the position of record, would then skip the
        dropped batch for good (seen on noida-db: 700 records lost after a fence failed during a restart)."""
        from confluent_kafka import KafkaException, TopicPartition

        self.batcher.drop([b.partition])
        if b.partition in self.assigned and not self.stopping:
            self.rewound[b.partition] = b.first
            try:
                self.consumer.seek(TopicPartition(self.topic, b.partition, b.first))
            except KafkaException as e:
                log.warning("partition %d: could not seek back to %d (%s)", b.partition, b.first, e)

    def _wait_paused(self, seconds: float) -> None:
        """Wait without fetching more (memory), still serving the group (callbacks, heartbeats)."""
        parts = self.consumer.assignment()
        if parts:
            self.consumer.pause(parts)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline and not self.stopping:
            for m in self.consumer.consume(100, 0.2):
                self._take(m)
        if parts:
            self.consumer.resume([tp for tp in parts if tp.partition in self.assigned])
        self.write_status()

    def _take(self, m) -> None:
        if m.error():
            log.warning("Kafka: %s", m.error())
            return
        if m.partition() not in self.assigned:
            return
        want = self.rewound.get(m.partition())
        if want is not None:
            if m.offset() != want:
                return  # fetched before the seek back to `want` (a batch that was not written)
            del self.rewound[m.partition()]
        ts = m.timestamp()[1]
        for b, reason in self.batcher.add(m.partition(), Record(m.offset(), ts if ts >= 0 else int(time.time() * 1000),
                                                               m.key(), m.value()), time.monotonic()):
            self.write(b, reason)

    # -- main loop ----------------------------------------------------------------------------------
    def run(self) -> int:
        if self.consumer is None:
            self.consumer = self.make_consumer()
        self.consumer.subscribe([self.topic], on_assign=self._on_assign, on_revoke=self._on_revoke,
                                on_lost=self._on_revoke)
        self.write_status(force=True)
        try:
            while not self.stopping:
                # short: consume() returns only at its timeout when fewer than 1,000 records come, and a record
                # waiting in it has not started its batch's flush timer yet
                timeout = max(0.05, min(0.2, self.batcher.next_deadline(time.monotonic())))
                msgs = self.consumer.consume(1000, timeout)
                if msgs and self.broker_error:
                    self.broker_error = None
                    self.last_error = None
                for m in msgs:
                    self._take(m)
                for b, reason in self.batcher.due(time.monotonic()):
                    self.write(b, reason)
                self.guard_commits()
                self.write_status()
            for b in self.batcher.take_all():  # stopping: what is open is written and committed
                self.write(b, "stop")
        finally:
            self.stopping = True
            self.write_status(force=True, state="stopped")
            if not self.fatal:
                self.consumer.close()
        return 3 if self.fatal else 0

    def stop(self, *_args) -> None:
        self.stopping = True

    # -- status ----------------------------------------------------------------------------------
    def _error(self, message: str) -> None:
        if message != self.last_error:
            log.warning("%s", message)
        self.last_error, self.last_error_at = message, time.time()

    def _previous_status(self) -> dict:
        if not self.status_path:
            return {}
        try:
            with open(self.status_path, encoding="utf-8") as f:
                return json.load(f)
        except (OSError, ValueError):
            return {}

    def _refresh_ends(self) -> None:
        from confluent_kafka import KafkaException, TopicPartition

        now = time.monotonic()
        if now - self._ends_at < 3 or self.consumer is None:
            return
        self._ends_at = now
        for p in list(self.assigned):
            try:
                self.ends[p] = self.consumer.get_watermark_offsets(TopicPartition(self.topic, p), timeout=1)[1]
            except KafkaException:
                pass

    def status(self, state: str | None = None) -> dict:
        now = time.time()
        self.samples.append((now, self.records, self.bytes))
        t0, r0, b0 = next((s for s in self.samples if now - s[0] <= 10), self.samples[0])
        span = max(now - t0, 1e-9)
        parts = {}
        for p in sorted(self.assigned):
            c, end = self.committed.get(p), self.ends.get(p)
            parts[str(p)] = {"committed": c, "end": end,
                             "lag": max(end - c, 0) if end is not None and c is not None else None}
        if state is None:
            state = "waiting" if self.broker_error else "running"
        return {"pid": os.getpid(), "state": state, "records": self.records, "bytes": self.bytes,
                "objects": self.objects, "fenced": self.fenced, "foreign_commits": self.foreign,
                "records_per_second": round((self.records - r0) / span, 1) if span > 1e-6 else 0.0,
                "bytes_per_second": round((self.bytes - b0) / span, 1) if span > 1e-6 else 0.0,
                "last_object": self.last_object, "last_object_at": self.last_object_at,
                "last_error": self.last_error, "last_error_at": self.last_error_at, "partitions": parts,
                "buffered_records": sum(len(b.records) for b in self.batcher.open.values()),
                "buffered_bytes": self.batcher.nbytes, "started": self.started, "updated": now}

    def write_status(self, force: bool = False, state: str | None = None) -> None:
        now = time.monotonic()
        if not self.status_path or (not force and now - self._status_at < 1.0):
            return
        self._status_at = now
        self._refresh_ends()
        tmp = self.status_path + ".tmp"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, 0o600)
            os.fchmod(fd, 0o640)  # the run directory's group (the platform service's, when it is not root) reads it
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                json.dump(self.status(state), f)
            os.replace(tmp, self.status_path)
        except OSError as e:
            log.warning("could not write status: %s", e)


def read_config(argv: list[str]) -> dict:
    """The configuration: from stdin (the local backend), or with `--config FILE` from a file (on Kubernetes, a
    file of a Secret volume: the keys never appear in the pod spec, argv or the environment)."""
    if "--config" in argv:
        i = argv.index("--config")
        if i + 1 >= len(argv):
            raise SystemExit("--config needs a file name")
        with open(argv[i + 1], encoding="utf-8") as f:
            return json.load(f)
    cfg = json.loads(sys.stdin.read())
    sys.stdin.close()
    return cfg


def write_termination_message(path: str | None, message: str | None) -> None:
    """On Kubernetes: the last error, where the kubelet takes the container's termination message from (the
    platform reads it from the pod's status: the worker needs no API access to report why it stopped)."""
    if not path or not message:
        return
    try:
        with open(path, "w", encoding="utf-8") as f:
            f.write(message[:1000])
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    cfg = read_config(sys.argv[1:] if argv is None else argv)
    w = Worker(cfg)
    signal.signal(signal.SIGTERM, w.stop)
    signal.signal(signal.SIGINT, w.stop)
    try:
        code = w.run()
    except Exception as e:
        write_termination_message(cfg.get("termination_log"), w.last_error or f"the worker failed ({type(e).__name__})")
        raise
    if code:
        write_termination_message(cfg.get("termination_log"), w.last_error)
    return code


if __name__ == "__main__":
    sys.exit(main())
