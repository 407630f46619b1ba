"""The worker's rewind after a fence failure (ingest.worker): records fetched before the seek back must not be
written past the dropped batch. Fakes of the consumer and S3 injected from here; no broker, no network."""

import json

import pytest
from confluent_kafka import KafkaError, KafkaException

from odh_spawner.ingest.keys import parse_key
from odh_spawner.ingest.worker import Worker

pytestmark = pytest.mark.unit


class Message:
    def __init__(self, partition, offset):
        self._p, self._o = partition, offset

    def error(self):
        return None

    def partition(self):
        return self._p

    def offset(self):
        return self._o

    def timestamp(self):
        return (1, 1_700_000_000_000 + self._o)

    def key(self):
        return b"k"

    def value(self):
        return json.dumps({"i": self._o}).encode()


class FlakyGroupConsumer:
    """Refuses the fence of the batch starting at `refuse`, once (as noida-db did while restarting: an
    ILLEGAL_GENERATION, then the next commit taken). The commit after batch `refuse - 3`'s object, of the same
    offset, comes first and is taken."""

    def __init__(self, refuse):
        self.refuse = refuse
        self.seen = 0
        self.seeks = []

    def commit(self, offsets, asynchronous=False):
        if offsets[0].offset == self.refuse:
            self.seen += 1
            if self.seen == 2:
                raise KafkaException(KafkaError(KafkaError.ILLEGAL_GENERATION))

    def seek(self, tp):
        self.seeks.append((tp.partition, tp.offset))


class Bucket:
    def __init__(self):
        self.keys = []

    def put_object(self, Bucket, Key, Body, ContentType):
        self.keys.append(Key)


def worker(consumer, s3):
    w = Worker({"topic": "t", "bucket": "b", "prefix": "p/", "format": "jsonl", "flush_records": 3,
                "flush_seconds": 60}, s3=s3, consumer=consumer)
    w.assigned.add(0)
    return w


def test_records_fetched_before_the_seek_back_are_not_written_after_a_gap():
    consumer, s3 = FlakyGroupConsumer(refuse=3), Bucket()
    w = worker(consumer, s3)
    for o in range(9):  # one consume() list: the fence of 3-5 fails while 6-8 are still in hand
        w._take(Message(0, o))
    assert consumer.seeks == [(0, 3)]
    assert [parse_key(k)[2:] for k in s3.keys] == [(0, 2)]  # not 6-8: that would leave 3-5 behind for good
    for o in range(3, 9):  # after the seek: 3.. again
        w._take(Message(0, o))
    assert [parse_key(k)[2:] for k in s3.keys] == [(0, 2), (3, 5), (6, 8)]
    assert w.committed[0] == 9 and w.fenced == 1


def test_a_new_assignment_forgets_a_rewind():
    consumer, s3 = FlakyGroupConsumer(refuse=3), Bucket()
    w = worker(consumer, s3)
    for o in range(6):
        w._take(Message(0, o))
    assert w.rewound == {0: 3}
    w._on_revoke(consumer, [type("TP", (), {"partition": 0})()])
    assert w.rewound == {}
