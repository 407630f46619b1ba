"""A consumer group's progress on its topic, read from Kafka itself: what the platform reports as an ingestion's
lag, whatever its worker says (a stuck or dead worker writes no status, but the broker's end offsets go on)."""

from __future__ import annotations


def group_progress(bootstrap: str, group: str, topic: str, timeout: float = 5) -> dict:
    """Per partition: committed offset, end offset and lag of `group` on `topic`; plus the records committed
    (committed minus the low watermark). Blocking (run in a thread)."""
    from confluent_kafka import Consumer, TopicPartition

    c = Consumer({"bootstrap.servers": bootstrap, "group.id": group, "enable.auto.commit": False})
    try:
        parts = sorted(c.list_topics(topic, timeout=timeout).topics[topic].partitions)
        committed = {tp.partition: tp.offset
                     for tp in c.committed([TopicPartition(topic, p) for p in parts], timeout=timeout)}
        out, records = {}, 0
        for p in parts:
            low, high = c.get_watermark_offsets(TopicPartition(topic, p), timeout=timeout)
            got = committed.get(p, -1)
            got = got if got >= 0 else None
            out[str(p)] = {"committed": got, "end": high, "lag": max(high - (got if got is not None else low), 0)}
            records += max((got or low) - low, 0)
        return {"partitions": out, "records": records}
    finally:
        c.close()
