"""The notebook surface of Kafka ingestion without a browser: the widget's pure view model (plan, status
rows, which buttons) and the server extension's boundary validation of forwarded requests."""

import pytest

from server_extension.ingest_widget import (IngestForm, enabled_actions, form_settings, lag_text, plan_view,
                                            rows_html, status_rows)
from server_extension.ingestions import change_body, create_body
from server_extension.validate import BadRequest

FORM = {"topic": "clicks", "bucket": "alice-raw", "prefix": "clicks/", "format": "parquet", "flush_records": 500,
        "flush_seconds": 5, "partition_by_hour": True, "name": ""}


def test_the_form_becomes_ingest_arguments_with_a_default_name():
    s = form_settings(FORM)
    assert s == {"topic": "clicks", "bucket": "alice-raw", "prefix": "clicks/", "format": "parquet",
                 "flush_records": 500, "flush_seconds": 5, "partition_by": "hour", "name": "clicks-alice-raw"}
    assert form_settings({**FORM, "name": " mine ", "partition_by_hour": False})["partition_by"] is None
    assert form_settings({**FORM, "name": " mine "})["name"] == "mine"


def test_the_plan_shows_the_example_key_and_the_flush_rule():
    problem, rows = plan_view(form_settings(FORM))
    assert problem is None
    plan = dict(rows)
    assert plan["example key"].startswith("s3://alice-raw/clicks/topic=clicks/partition=0/dt=")
    assert plan["example key"].endswith("clicks+0+0000000000+0000000499.parquet")
    assert "500 records" in plan["flush"] and "5 s" in plan["flush"] and "hour" in plan["flush"]
    assert "objects already in your bucket" in plan["offsets"]


@pytest.mark.parametrize("change,words", [
    ({"topic": ""}, "topic"), ({"bucket": "Bad_Bucket"}, "bucket"), ({"flush_records": 0}, "flush_records"),
    ({"flush_seconds": 0}, "flush_seconds"), ({"prefix": "/abs"}, "prefix"), ({"name": "Not OK"}, "name"),
    ({"flush_records": 2_000_000}, "flush_records"), ({"format": "csv"}, "Format"),
])
def test_a_bad_form_says_why_and_shows_no_plan(change, words):
    problem, rows = plan_view(form_settings({**FORM, **change}))
    assert problem and words in problem and rows == []


STATUS = {"name": "clicks-alice-raw", "bucket": "alice-raw", "state": "running", "desired": "running",
          "records": 12345, "objects": 7, "records_per_second": 410.5, "bytes": 3 * 2**20, "bytes_per_second": 2048,
          "lag": 12, "partitions": {"10": {"lag": 0}, "2": {"lag": 12}, "0": {"lag": None}},
          "last_object": "clicks/topic=clicks/partition=2/clicks+2+0000000000+0000000099.jsonl",
          "hint": None, "last_error": None}


def test_status_rows_show_counters_rates_lag_per_partition_and_the_last_object():
    rows = dict(status_rows(STATUS))
    assert rows["state"] == "running"
    assert rows["records"] == "12,345 in 7 objects (410.5/s)"
    assert rows["bytes"] == "3 MiB (2 KiB/s)"
    assert rows["lag"] == "12 — p0: ? · p2: 12 · p10: 0"
    assert rows["last object"] == "s3://alice-raw/" + STATUS["last_object"]
    assert "hint" not in rows and "last error" not in rows
    rows = dict(status_rows({**STATUS, "state": "restarting", "hint": "The worker stopped.",
                             "last_error": "Kafka unreachable", "last_object": None}))
    assert rows["state"] == "restarting (wanted: running)"
    assert rows["hint"] == "The worker stopped." and rows["last error"] == "Kafka unreachable"
    assert rows["last object"] == "-"
    assert lag_text({}) == "-"


def test_rows_html_escapes_what_it_shows():
    html = rows_html([("last error", "<script>x</script>")])
    assert "<script>" not in html and "&lt;script&gt;" in html and "data-field='last error'" in html


def test_buttons_follow_the_state():
    assert enabled_actions("running") == {"pause": True, "resume": False, "stop": True, "delete": True}
    assert enabled_actions("paused") == {"pause": False, "resume": True, "stop": True, "delete": True}
    assert enabled_actions("stopped") == {"pause": False, "resume": True, "stop": False, "delete": True}
    assert not any(enabled_actions(None).values())


def test_the_widget_binds_the_view_model():
    form = IngestForm(topic="clicks", bucket="alice-raw", client=object())
    assert not form.submit.disabled and "example key" in form.plan.value
    form.fields["bucket"].value = "NO"
    assert form.submit.disabled and "bucket" in form.plan.value
    form.show(STATUS)
    assert "12,345" in form.status.value
    assert form.buttons["pause"].disabled is False and form.buttons["resume"].disabled is True
    form.close()


def test_the_server_extension_refuses_bad_requests_before_forwarding():
    body = create_body({"name": "c", "topic": "clicks", "bucket": "alice-raw", "flush_records": 10})
    assert body["name"] == "c" and body["flush_records"] == 10 and body["format"] == "jsonl"
    for bad, status in [({"topic": "clicks", "bucket": "alice-raw"}, 400),
                        ({"name": "c", "topic": "clicks", "bucket": "b"}, 400),
                        ({"name": "c", "topic": "clicks", "bucket": "alice-raw", "extra": 1}, 400),
                        ("nope", 400)]:
        with pytest.raises(BadRequest) as e:
            create_body(bad)
        assert e.value.status_code == status and str(e.value)
    assert change_body({"state": "paused"}) == {"state": "paused"}
    assert change_body({"flush_records": 5}) == {"flush_records": 5}
    for bad in ({}, {"state": "gone"}, {"topic": "other"}, {"flush_seconds": -1}, {"format": "csv"}):
        with pytest.raises(BadRequest):
            change_body(bad)


def test_topics_of_a_kafka_that_does_not_answer_are_a_503_with_a_message():
    from odh_spawner.host.ports import free_port
    from server_extension.ingestions import list_topics

    with pytest.raises(BadRequest) as e:
        list_topics(f"127.0.0.1:{free_port()}", timeout=0.5)
    assert e.value.status_code == 503 and "does not answer" in str(e.value)
