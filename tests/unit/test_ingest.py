"""Pure parts of Kafka ingestion: settings validation, object keys, batching and flush rules, verification,
recovery after a crash, encoding, hints and the plan a notebook shows."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from odh_spawner.ingest.batching import Batcher, Record
from odh_spawner.ingest.encode import decode, encode
from odh_spawner.ingest.keys import hour_of, object_key, parse_key
from odh_spawner.ingest.local import worker_config
from odh_spawner.ingest.model import Ingestion, base_name, group_id, hint, member_id, new_token
from odh_spawner.ingest.spec import (IngestError, Spec, build_spec, normalize_prefix, topic_creation,
                                    validate_name)
from odh_spawner.ingest.verify import foreign_commits, position_of_record, verify


def rec(offset, ts=0, value=b"v"):
    return Record(offset, ts, b"k", value)


# -- keys ----------------------------------------------------------------------------------------------
def test_object_key_names_topic_partition_and_offset_range():
    assert object_key("clicks/", "clicks", 0, 0, 999, "jsonl") == \
        "clicks/topic=clicks/partition=0/clicks+0+0000000000+0000000999.jsonl"
    assert object_key("", "t.x", 2, 5, 5, "parquet", "dt=2026-11-26/hour=11") == \
        "topic=t.x/partition=2/dt=2026-11-26/hour=11/t.x+2+0000000005+0000000005.parquet"
    with pytest.raises(ValueError):
        object_key("", "t", 0, 5, 4, "jsonl")


@given(st.from_regex(r"[A-Za-z0-9._-]{1,30}", fullmatch=True), st.integers(0, 99), st.integers(0, 10**12),
       st.integers(0, 10**6), st.sampled_from(["jsonl", "parquet"]))
def test_keys_round_trip(topic, partition, first, n, fmt):
    key = object_key("p/q/", topic, partition, first, first + n, fmt)
    assert parse_key(key) == (topic, partition, first, first + n)


def test_retried_batch_gets_the_same_key_and_foreign_keys_are_ignored():
    assert object_key("a/", "t", 1, 10, 20, "jsonl") == object_key("a/", "t", 1, 10, 20, "jsonl")
    assert parse_key("a/topic=t/partition=1/readme.txt") is None
    assert hour_of(0) == "dt=1970-01-01/hour=00"
    assert hour_of(1795693394000) == "dt=2026-11-26/hour=11"


# -- batching ------------------------------------------------------------------------------------------
def test_batch_closes_at_flush_records_whatever_the_poll_size():
    b = Batcher(flush_records=3, flush_seconds=60)
    closed = []
    for i in range(10):
        closed += b.add(0, rec(i), now=0)
    assert [(x.first, x.last, why) for x, why in closed] == [(0, 2, "records"), (3, 5, "records"), (6, 8, "records")]
    assert b.open[0].first == 9


def test_time_flush_fires_on_the_clock_without_a_new_record():
    b = Batcher(flush_records=1000, flush_seconds=5)
    b.add(0, rec(0), now=100.0)
    b.add(1, rec(7), now=102.0)
    assert b.due(104.9) == []
    assert b.next_deadline(104.0) == pytest.approx(1.0)
    due = b.due(105.0)  # no record arrived: the clock alone closes partition 0's batch
    assert [(x.partition, why) for x, why in due] == [(0, "time")]
    assert [(x.partition, why) for x, why in b.due(107.0)] == [(1, "time")]
    assert b.next_deadline(200) == 5


def test_hour_change_closes_the_batch_so_an_object_never_spans_two_hours():
    b = Batcher(flush_records=100, flush_seconds=60, partition_by="hour")
    hour = 3600 * 1000
    assert b.add(0, rec(0, ts=hour * 5 + 1), 0) == []
    assert b.add(0, rec(1, ts=hour * 5 + 2), 0) == []
    closed = b.add(0, rec(2, ts=hour * 6), 0)
    assert [(x.first, x.last, x.hour, why) for x, why in closed] == [(0, 1, "dt=1970-01-01/hour=05", "hour")]
    assert b.open[0].hour == "dt=1970-01-01/hour=06"


def test_memory_cap_writes_the_largest_batch_early():
    b = Batcher(flush_records=10**6, flush_seconds=60, max_bytes=10_000)
    for i in range(50):
        b.add(0, rec(i, value=b"x" * 100), 0)
    for i in range(20):
        b.add(1, rec(i, value=b"x" * 100), 0)
    assert b.nbytes > 10_000
    due = b.due(1)
    assert [(x.partition, why) for x, why in due] == [(0, "memory")]
    assert b.nbytes <= 10_000


def test_revoked_partitions_are_dropped_and_stop_takes_all():
    b = Batcher(10, 60)
    b.add(0, rec(0), 0)
    b.add(1, rec(0), 0)
    b.drop([0])
    assert [x.partition for x in b.take_all()] == [1] and not b.open


# -- verify and recovery -------------------------------------------------------------------------------
def test_verify_clean_chain():
    r = verify({0: [(0, 9, "a"), (10, 19, "b")], 1: [(0, 4, "c")]}, {0: 20, 1: 5})
    assert r["ok"] and not r["uncommitted"]
    assert r["partitions"][0]["offsets_covered"] == 20


def test_verify_reports_gap_overlap_missing_and_uncommitted():
    r = verify({0: [(0, 9, "a"), (5, 14, "dup"), (20, 29, "c")]}, {0: 40})
    assert not r["ok"]
    assert r["overlaps"] == [{"partition": 0, "from": 5, "to": 9, "key": "dup"}]
    assert r["gaps"] == [{"partition": 0, "from": 15, "to": 19}]
    assert r["missing"] == [{"partition": 0, "from": 30, "to": 39}]
    r = verify({0: [(0, 9, "a"), (10, 19, "b")]}, {0: 10})
    assert r["ok"] and r["uncommitted"] == [{"partition": 0, "key": "b"}]
    r = verify({0: [(5, 9, "a")]}, {0: 10}, start={0: 0})
    assert r["gaps"] == [{"partition": 0, "from": 0, "to": 4}]


def test_the_position_of_record_is_after_the_last_object_whatever_the_group_says():
    """The objects decide where a partition resumes; no committed offset is an input at all."""
    assert position_of_record([(0, 9), (10, 19), (20, 24)]) == 25
    assert position_of_record([(20, 24), (0, 9), (10, 19)]) == 25  # listing order does not matter
    assert position_of_record([(500, 999)]) == 1000  # the front removed (retention): never back to 0
    assert position_of_record([(0, 0)]) == 1
    assert position_of_record([]) is None  # nothing written yet: the topic's beginning


@given(st.lists(st.integers(1, 50), min_size=1, max_size=30), st.integers(0, 10**9))
def test_position_of_record_continues_any_chain_of_batches(sizes, start):
    ranges, first = [], start
    for n in sizes:
        ranges.append((first, first + n - 1))
        first += n
    assert position_of_record(ranges) == start + sum(sizes)


def test_foreign_commits_are_the_partitions_whose_group_offset_is_not_the_workers():
    own = {0: 100, 1: 50, 2: 7}
    assert foreign_commits(own, {0: 100, 1: 50, 2: 7}) == {}
    assert foreign_commits(own, {0: 10**9, 1: 0, 2: 7}) == {0: 10**9, 1: 0}  # far ahead, far behind
    assert foreign_commits(own, {}) == {0: -1, 1: -1, 2: -1}  # the group was deleted
    assert foreign_commits(own, {0: 100, 1: 50, 2: -1001}) == {2: -1001}  # OFFSET_INVALID: none committed


# -- spec --------------------------------------------------------------------------------------------------
def test_build_spec_defaults_and_changes():
    s = build_spec({"topic": "clicks", "bucket": "raw", "prefix": "a//b"})
    assert s == Spec(topic="clicks", bucket="raw", prefix="a/b/")
    s2 = build_spec({"flush_records": 5}, base=s)
    assert s2.flush_records == 5 and s2.topic == "clicks"
    with pytest.raises(IngestError, match="Unknown field"):
        build_spec({"topic": "other"}, base=s)  # the topic and bucket of an ingestion do not change


@pytest.mark.parametrize("body,text", [
    ({"bucket": "raw"}, "topic"),
    ({"topic": "a b", "bucket": "raw"}, "topic"),
    ({"topic": "t", "bucket": "Raw_X"}, "bucket"),
    ({"topic": "t", "bucket": "raw", "format": "csv"}, "Format"),
    ({"topic": "t", "bucket": "raw", "flush_records": 0}, "flush_records"),
    ({"topic": "t", "bucket": "raw", "flush_records": 2.5}, "flush_records"),
    ({"topic": "t", "bucket": "raw", "flush_records": True}, "flush_records"),
    ({"topic": "t", "bucket": "raw", "flush_seconds": 0}, "flush_seconds"),
    ({"topic": "t", "bucket": "raw", "flush_seconds": "5"}, "flush_seconds"),
    ({"topic": "t", "bucket": "raw", "partition_by": "day"}, "partition_by"),
    ({"topic": "t", "bucket": "raw", "prefix": "/abs"}, "prefix"),
    ({"topic": "t", "bucket": "raw", "prefix": "a/../b"}, "prefix"),
    ({"topic": "t", "bucket": "raw", "oops": 1}, "Unknown"),
    ([], "JSON object"),
])
def test_build_spec_refuses_bad_input_with_a_message(body, text):
    with pytest.raises(IngestError, match=text) as e:
        build_spec(body)
    assert e.value.status_code == 400


def test_topic_creation_is_opt_in_and_bounded():
    assert topic_creation(False, None) == 0
    assert topic_creation(True, None) == 3
    assert topic_creation(True, 12) == 12
    for create, parts, text in [("yes", None, "true or false"), (False, 3, "only with `create_topic: true`"),
                                (True, 0, "between 1 and 64"), (True, 65, "between 1 and 64"),
                                (True, 2.5, "whole number"), (True, True, "whole number")]:
        with pytest.raises(IngestError, match=text) as e:
            topic_creation(create, parts)
        assert e.value.status_code == 400


def test_names_and_groups_are_injective_and_safe():
    assert validate_name("clicks-raw") == "clicks-raw"
    for bad in ("", "-x", "X", "a/b", "a.b", "x" * 41, None):
        with pytest.raises(IngestError):
            validate_name(bad)
    t = new_token()
    assert base_name("alice", "clicks") == "odh-ingest.alice.clicks"
    assert group_id("alice", "clicks", t) == f"odh-ingest.alice.clicks.{t}"
    assert group_id("Bob.Smith", "c", t) != group_id("bob-smith", "c", t)
    assert member_id(t) == f"odh-ingest-worker.{t}"
    for bad in ("", "short", "a.b" * 8, None, "x" * 65):
        with pytest.raises(ValueError):
            group_id("alice", "c", bad)
        with pytest.raises(ValueError):
            member_id(bad)
    assert normalize_prefix(None) == "" and normalize_prefix("x") == "x/"
    assert normalize_prefix("clicks/date=2026-12-07/v1.2_a") == "clicks/date=2026-12-07/v1.2_a/"


@pytest.mark.parametrize("prefix", ["${secrets:odh/odh-s3:secret_key}/", "a b/", "a\nb", "caf\u00e9/", "a;b", "/a",
                                    "a/../b", "./a", "a%2F/", "a:b/", "~x/"])
def test_a_prefix_takes_only_safe_characters(prefix):
    """`${secrets:...}` in a prefix would be resolved by Kafka Connect (Strimzi) with its own credentials."""
    with pytest.raises(IngestError, match="not a valid key prefix"):
        normalize_prefix(prefix)


# -- records, worker config, hints -------------------------------------------------------------------------
def test_record_round_trip_and_worker_config_holds_only_the_owners_keys():
    from odh_spawner.credentials import S3Credentials

    ing = Ingestion(owner="alice", name="c", spec=build_spec({"topic": "t", "bucket": "raw"}))
    again = Ingestion.from_json(json.loads(json.dumps(ing.to_json())))
    assert again.to_json() == ing.to_json() and not again.migrated
    assert "secret" not in json.dumps(ing.to_json())
    cfg = worker_config(ing, S3Credentials("AK", "SK", "http://s3"), "k:9092", "/run", 1024)
    assert cfg["s3"] == {"endpoint": "http://s3", "access_key": "AK", "secret_key": "SK"}
    assert cfg["group"] == f"odh-ingest.alice.c.{ing.group_token}" and cfg["status_path"] == "/run/status.json"
    assert cfg["instance"] == f"odh-ingest-worker.{ing.member_token}" and cfg["previous_prefixes"] == []


def test_kafka_ids_are_unguessable_per_ingestion_and_survive_a_reload():
    spec = build_spec({"topic": "t", "bucket": "raw"})
    a, b = Ingestion(owner="alice", name="c", spec=spec), Ingestion(owner="alice", name="c", spec=spec)
    assert a.group != b.group and a.member != b.member  # the same owner and name: other tokens
    for ing in (a, b):
        assert ing.group.startswith("odh-ingest.alice.c.") and ing.group != base_name("alice", "c")
        assert ing.group_token != ing.member_token and ing.group_token not in ing.member
        assert len(ing.group_token) >= 22 and len(ing.member_token) >= 22  # 128 bits each
    assert len({new_token() for _ in range(1000)}) == 1000
    again = Ingestion.from_json(json.loads(json.dumps(a.to_json())))
    assert (again.group, again.member) == (a.group, a.member)


def test_a_record_from_before_the_tokens_gets_them_on_load():
    old = {"owner": "alice", "name": "c", "spec": {"topic": "t", "bucket": "raw"}, "desired": "running",
           "runtime": {"pid": 4}, "restarts": 2}
    ing = Ingestion.from_json(old)
    assert ing.migrated and ing.group.startswith("odh-ingest.alice.c.") and ing.member.startswith("odh-ingest-worker.")
    assert (ing.restarts, ing.runtime) == (2, {"pid": 4})
    saved = ing.to_json()
    again = Ingestion.from_json(json.loads(json.dumps(saved)))
    assert not again.migrated and (again.group, again.member) == (ing.group, ing.member)
    # a malformed token (hand-edited record) is replaced, the valid one kept
    bad = Ingestion.from_json({**saved, "group_token": "../x"})
    assert bad.migrated and bad.group != ing.group and bad.member == ing.member


def test_a_change_of_prefix_keeps_the_earlier_prefixes_for_the_position():
    ing = Ingestion(owner="alice", name="c", spec=build_spec({"topic": "t", "bucket": "raw", "prefix": "b/"}),
                    changes=[{"at": 1, "from": {"prefix": "a/"}, "to": {"prefix": "a/"}},
                             {"at": 2, "from": {"prefix": "a/"}, "to": {"prefix": "b/"}}])
    assert ing.prefixes() == ["b/", "a/"]
    assert Ingestion(owner="alice", name="c", spec=build_spec({"topic": "t", "bucket": "raw"})).prefixes() == [""]


def test_hints_say_why_nothing_lands():
    assert "no records" in hint("running", {"records": 0, "partitions": {"0": {"lag": 0}}}, None)
    assert "permission" in hint("running", {}, "No permission to write into bucket 'x' with your keys.")
    assert "cannot be reached" in hint("waiting", {}, "Kafka broker k:1 unreachable (x); retrying.")
    assert "paused" in hint("paused", {}, None)
    assert "joining" in hint("running", {"partitions": {}}, None)
    assert "started again" in hint("restarting", {}, None, "it was killed by signal 9")
    assert hint("running", {"records": 5, "objects": 1, "partitions": {"0": {"lag": 0}}}, None) is None


# -- encoding ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_encode_decode_keeps_every_record_in_order(fmt):
    b = Batcher(100, 60)
    for i in range(10):
        b.add(3, Record(100 + i, 1000 + i, None if i == 0 else str(i).encode(), json.dumps({"i": i}).encode()), 0)
    batch = b.take_all()[0]
    rows = decode(encode(batch, fmt), fmt)
    assert [r["offset"] for r in rows] == list(range(100, 110))
    assert [json.loads(r["value"])["i"] for r in rows] == list(range(10))
    assert rows[0]["key"] is None and rows[1]["key"] == "1" and all(r["partition"] == 3 for r in rows)


def test_plan_shows_example_key_flush_rule_and_where_offsets_are_kept():
    from server_extension.ingest import default_name, plan

    p = plan("clicks", "raw", "clicks/", "parquet", 1000, 30, "hour")
    assert p["example_key"].startswith("s3://raw/clicks/topic=clicks/partition=0/dt=")
    assert p["example_key"].endswith("clicks+0+0000000000+0000000999.parquet")
    assert "1,000 records" in p["flush"] and "30 s" in p["flush"] and "hour" in p["flush"]
    assert "objects already in your bucket" in p["offsets"]
    assert default_name("Clicks.V2", "raw") == "clicks-v2-raw"


def test_the_platform_keeps_the_tokens_it_makes_for_an_old_record(tmp_path):
    """A record written before the tokens (on disk, as an older platform left it): adopt_all gives it tokens and
    saves them, so the next start finds the same group and member ids."""
    import asyncio

    from odh_spawner.ingest.local import LocalIngestBackend
    from odh_spawner.ingest.manager import IngestionManager
    from odh_spawner.ingest.store import IngestionStore

    store = IngestionStore(str(tmp_path / "records"))
    path = tmp_path / "records" / "alice" / "clicks" / "ingestion.json"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps({"owner": "alice", "name": "clicks", "spec": {"topic": "t", "bucket": "raw"},
                                "desired": "stopped", "runtime": {}}))

    def adopted():
        m = IngestionManager(LocalIngestBackend(run_as_owner=False), store, credentials_for=None, bootstrap="")
        asyncio.run(m.adopt_all())
        return m.get("alice", "clicks")

    first = adopted()
    saved = json.loads(path.read_text())
    assert saved["group_token"] == first.group_token and saved["member_token"] == first.member_token
    second = adopted()
    assert (second.group, second.member) == (first.group, first.member) and not second.migrated
    assert first.group.startswith("odh-ingest.alice.clicks.") and first.group != "odh-ingest.alice.clicks"


def test_two_ingestions_of_one_owner_never_write_the_same_topic_under_one_prefix(tmp_path):
    """The objects under (bucket, prefix, topic) are one ingestion's position of record: a second one there is
    refused before anything reaches Kafka or S3 (also one that would reuse a prefix another wrote under)."""
    import asyncio

    from odh_spawner.ingest.local import LocalIngestBackend
    from odh_spawner.ingest.manager import IngestionManager
    from odh_spawner.ingest.spec import IngestionExists
    from odh_spawner.ingest.store import IngestionStore

    m = IngestionManager(LocalIngestBackend(run_as_owner=False), IngestionStore(str(tmp_path)), credentials_for=None,
                         bootstrap="")
    first = Ingestion(owner="alice", name="a", spec=build_spec({"topic": "t", "bucket": "raw", "prefix": "new/"}),
                      changes=[{"at": 1, "from": {"prefix": "old/"}, "to": {"prefix": "new/"}}])
    m.ingestions[first.key] = first
    for prefix in ("new/", "old/"):
        with pytest.raises(IngestionExists) as e:
            asyncio.run(m.create("alice", {"name": "b", "topic": "t", "bucket": "raw", "prefix": prefix}))
        assert e.value.status_code == 409
        assert e.value.message == f"Your ingestion 'a' writes topic 't' under s3://raw/{prefix}; choose another prefix."
    m._one_writer("alice", "b", build_spec({"topic": "t", "bucket": "raw", "prefix": "other/"}))  # elsewhere: fine
    m._one_writer("alice", "b", build_spec({"topic": "u", "bucket": "raw", "prefix": "new/"}))  # another topic
    m._one_writer("bob", "b", build_spec({"topic": "t", "bucket": "raw", "prefix": "new/"}))  # another owner
    m._one_writer("alice", "a", build_spec({"topic": "t", "bucket": "raw", "prefix": "old/"}))  # itself, back


def test_read_without_pandas_names_a_profile_that_has_it(monkeypatch):
    from server_extension.ingest import missing_stack_message

    monkeypatch.setenv("ODH_PROFILE", "minimal")
    text = missing_stack_message("Ingestion.read()")
    assert text.startswith("Ingestion.read() needs pandas and pyarrow, which your server's profile ('minimal')")
    assert "Standard Data Science" in text and "ing.objects()" in text
    monkeypatch.delenv("ODH_PROFILE")
    assert "which this environment leaves out" in missing_stack_message("Ingestion.read()")


def test_a_local_ingestions_lag_is_the_workers_position_against_the_later_end_offset():
    from odh_spawner.ingest.local import merge_partitions

    # a live worker wrote everything; Kafka's figures are a few seconds old: no lag
    worker = {"0": {"committed": 1500, "end": 1500, "lag": 0}, "1": {"committed": 1500, "end": 1500, "lag": 0}}
    broker = {"0": {"committed": 1000, "end": 1500, "lag": 500}, "1": {"committed": None, "end": 1200, "lag": 1200}}
    assert merge_partitions(worker, broker) == {"0": {"committed": 1500, "end": 1500, "lag": 0},
                                                "1": {"committed": 1500, "end": 1500, "lag": 0}}
    # a stuck worker's status stops; the broker's end offsets go on: the lag grows
    stuck = {"0": {"committed": 1500, "end": 1500, "lag": 0}}
    assert merge_partitions(stuck, {"0": {"committed": 1500, "end": 4500, "lag": 3000}}) == {
        "0": {"committed": 1500, "end": 4500, "lag": 3000}}
    # a colleague who knows the group commits far ahead on the broker: the position stays the worker's own
    assert merge_partitions({"0": {"committed": 1500, "end": 1500, "lag": 0}},
                            {"0": {"committed": 9999, "end": 4500, "lag": 0}}) == {
        "0": {"committed": 1500, "end": 4500, "lag": 3000}}
    # a partition only one side knows; one with no committed offset yet keeps the broker's lag (from the low mark)
    assert merge_partitions({}, {"2": {"committed": None, "end": 10, "lag": 10}}) == {
        "2": {"committed": None, "end": 10, "lag": 10}}
