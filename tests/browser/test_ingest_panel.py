"""Stream a Kafka topic into a bucket from JupyterLab in a real browser, through the hub: "New ingestion"
(the dialog checks the settings as typed and shows the plan), submit, watch the records counter in the
Ingestions panel climb to what was produced, open the last object, pause (the counter stays put while records
keep arriving) and resume from the panel, change its settings, stop; another user's panel does not show it; delete with confirmation."""

import json
import re
import threading

import boto3
import requests
from botocore.config import Config
from playwright.sync_api import expect

from server_extension.ingest import produce_sample
from tests.browser.test_bucket_panel import login_and_open_lab
from tests.support.kernel import Kernel
from tests.support.secretscan import record_browser_answers

TOPIC, BUCKET, NAME = "clicks-ui", "alice-stream", "clicks-ui-alice-stream"
ROW = f'#odh-ingestions-panel .odh-ingestion[data-name="{NAME}"]'


def _bucket(env: dict):
    s3 = boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    return s3


def _begin_lab(page, hub, name: str, password: str) -> None:
    """Log in and start loading JupyterLab (it boots while the test goes on)."""
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", password)
    page.click("#login_submit")
    page.wait_for_load_state()
    page.goto(f"{hub.url}/user/{name}/lab?reset", wait_until="commit")


def _forget_ingestions(server) -> None:
    """Delete the user's ingestions (their objects stay) through their own server's API."""
    h = {"Authorization": f"token {server.token}"}
    for ing in requests.get(f"{server.url}odh/api/ingestions", headers=h, timeout=30).json()["ingestions"]:
        r = requests.delete(f"{server.url}odh/api/ingestions/{ing['name']}", headers=h, timeout=120)
        assert r.status_code == 200, r.text
    assert requests.get(f"{server.url}odh/api/ingestions", headers=h, timeout=30).json()["ingestions"] == []


def _no_problem_shown(page) -> None:
    """The dialog shows no problem for the settings as typed (waited for: each field's input event re-checks);
    else the failure names the problem and the values the dialog holds."""
    problem = page.locator("#odh-ingest-problem")
    try:
        expect(problem).to_be_hidden(timeout=10_000)
    except AssertionError:
        values = {f: page.locator(f"#odh-ingest-{f}").input_value()
                  for f in ("topic", "bucket", "prefix", "name", "flush-records", "flush-seconds")}
        raise AssertionError(f"The dialog still shows a problem ({problem.get_attribute('data-field')}): "
                             f"{problem.inner_text()!r}; its fields hold {values}") from None


def _records_reach(page, n: int, timeout: float = 60_000) -> None:
    page.locator(f'{ROW}[data-records="{n}"]').wait_for(timeout=timeout)


def _refreshed(page) -> None:
    """Click the panel's Refresh and wait for the platform's answer it asked for (so what the panel shows next
    is newer than anything that happened before the click)."""
    with page.expect_response(lambda r: "/odh/api/ingestions" in r.url and r.request.method == "GET"):
        page.click("#odh-ingestions-refresh")
    page.wait_for_timeout(200)  # the answer rendered


def test_ingest_from_the_dialog_and_watch_the_panel(hub, user_server, kafka_broker, browser, page, shot):
    alice = user_server("alice")
    bob_starts = threading.Thread(target=user_server, args=("bob",))  # meanwhile: bob's server, for the end
    bob_starts.start()
    s3 = _bucket(alice.env)
    _forget_ingestions(alice)  # the panel starts empty, whatever earlier suites of this session left
    assert produce_sample(TOPIC, 200, bootstrap=kafka_broker.bootstrap, partitions=2) == 200
    page.context.set_default_timeout(60_000)
    login_and_open_lab(page, hub, "alice", "alice-odh")
    page.click('.lm-TabBar-tab[data-id="odh-ingestions-panel"]')
    page.locator("#odh-ingestions-panel .odh-empty:has-text('No ingestions yet')").wait_for()

    # the dialog: refuses a bad bucket as typed, then shows the plan (example key, flush rule)
    page.click("#odh-ingestions-new")
    page.locator(f'#odh-ingest-topics option[value="{TOPIC}"]').wait_for(state="attached")  # Kafka's topics offered
    page.fill("#odh-ingest-topic", TOPIC)
    page.fill("#odh-ingest-bucket", "Alice_Stream")
    assert page.locator('#odh-ingest-problem[data-field="bucket"]').is_visible()
    assert page.locator(".jp-Dialog .jp-mod-accept").is_disabled()
    page.fill("#odh-ingest-bucket", BUCKET)
    page.fill("#odh-ingest-prefix", "clicks/")
    page.fill("#odh-ingest-flush-records", "50")
    page.fill("#odh-ingest-flush-seconds", "1")
    _no_problem_shown(page)
    example = page.locator('#odh-ingest-plan [data-plan="example-key"]').inner_text()
    assert f"s3://{BUCKET}/clicks/topic={TOPIC}/partition=0/{TOPIC}+0+0000000000+0000000049.jsonl" in example
    assert "50 records, or 1 s" in page.locator('#odh-ingest-plan [data-plan="flush"]').inner_text()
    assert page.locator("#odh-ingest-name").get_attribute("placeholder") == NAME
    shot(page, "40-ingest-dialog")
    page.click(".jp-Dialog .jp-mod-accept")

    # the panel: the counter climbs to what was produced, and again after more records arrive
    page.locator(ROW).wait_for()
    # bob's JupyterLab boots in another browser context meanwhile (checked at the end)
    bob_starts.join()
    bob = user_server("bob")
    other = browser.new_context(viewport={"width": 1280, "height": 860})
    record_browser_answers(other)
    bob_page = other.new_page()
    bob_page.context.set_default_timeout(60_000)
    _begin_lab(bob_page, hub, "bob", "bob-odh")
    _records_reach(page, 200)
    assert produce_sample(TOPIC, 150, bootstrap=kafka_broker.bootstrap) == 150
    _records_reach(page, 350)
    row = page.locator(ROW)
    assert row.get_attribute("data-state") == "running"
    assert "350 in" in row.locator('[data-stat="records"]').inner_text()
    row.locator('[data-stat="lag"]:has-text("0 (p0: 0 · p1: 0)")').wait_for()

    # open the last object: its JSON lines are shown, one per record of its offset range
    last = row.locator('[data-action="open-last"]')
    key_name = last.inner_text()
    first, last_offset = (int(x) for x in re.fullmatch(rf"{TOPIC}\+\d+\+(\d+)\+(\d+)\.jsonl", key_name).groups())
    last.click()
    view = page.locator('.odh-ingested-object[data-loaded="text"]')
    view.wait_for()
    lines = view.locator("#odh-ingested-object-content").inner_text().strip().splitlines()
    assert [json.loads(x)["offset"] for x in lines] == list(range(first, last_offset + 1))
    assert all("page" in json.loads(json.loads(x)["value"]) for x in lines)
    shot(page, "41-ingestions-panel")

    # pause and resume from the panel: nothing lands while paused, everything after resuming
    row.locator('[data-action="pause"]').click()
    page.locator(f'{ROW}[data-state="paused"]').wait_for()
    assert row.locator('[data-action="resume"]').is_enabled() and row.locator('[data-action="pause"]').is_disabled()
    assert produce_sample(TOPIC, 50, bootstrap=kafka_broker.bootstrap) == 50
    page.wait_for_timeout(2500)  # longer than two flush periods (flush_seconds=1) with records waiting
    _refreshed(page)  # the panel asked the platform again after that: still 350
    assert row.get_attribute("data-records") == "350" and row.get_attribute("data-state") == "paused"
    row.locator('[data-action="resume"]').click()
    _records_reach(page, 400)

    # the notebook widget on the same ingestion, in alice's kernel: live status, buttons by state, pause/resume
    kernel = Kernel(alice.url, alice.token)
    try:
        out = kernel.execute(
            "from server_extension.ingest_widget import IngestForm, status_rows\n"
            f"form = IngestForm.attach({NAME!r}, refresh_seconds=3600)\n"
            "print(dict(status_rows(form.ingestion.status()))['records'])\n"
            "print(sorted(a for a, b in form.buttons.items() if not b.disabled))\n"
            "form.act('pause'); print('after pause:', form.ingestion.status()['desired'])\n"
            "form.act('resume'); print('after resume:', form.ingestion.status()['desired']); form.close()\n")
    finally:
        kernel.close()
    assert "400 in " in out and "['delete', 'pause', 'stop']" in out, out
    assert "after pause: paused" in out and "after resume: running" in out, out
    page.locator(f'{ROW}[data-state="running"]').wait_for()

    # another user: not in their listing, not reachable by name
    h = {"Authorization": f"token {bob.token}"}
    assert requests.get(f"{bob.url}odh/api/ingestions", headers=h, timeout=30).json()["ingestions"] == []
    assert requests.get(f"{bob.url}odh/api/ingestions/{NAME}", headers=h, timeout=30).status_code == 404
    try:
        bob_page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=90_000)
        bob_page.click('.lm-TabBar-tab[data-id="odh-ingestions-panel"]')
        bob_page.locator("#odh-ingestions-panel .odh-empty:has-text('No ingestions yet')").wait_for()
        assert bob_page.locator("#odh-ingestions-panel .odh-ingestion").count() == 0
    finally:
        other.close()

    # the boundary refuses bad settings with a message (no traceback)
    r = requests.post(f"{alice.url}odh/api/ingestions", headers={"Authorization": f"token {alice.token}"},
                      json={"name": "x", "topic": TOPIC, "bucket": BUCKET, "flush_records": 0}, timeout=30)
    assert r.status_code == 400 and "flush_records" in r.json()["message"]

    # Settings…: the dialog shows the current settings (topic, bucket and name fixed); Parquet from now on, in
    # files of 25 records; what was written stays, nothing is lost or doubled
    row.locator('[data-action="settings"]').click()
    page.locator("#odh-ingest-flush-records").wait_for()
    assert page.input_value("#odh-ingest-flush-records") == "50" and page.input_value("#odh-ingest-format") == "jsonl"
    assert page.locator("#odh-ingest-topic").get_attribute("readonly") is not None
    page.fill("#odh-ingest-flush-records", "0")
    assert page.locator('#odh-ingest-problem[data-field="flush_records"]').is_visible()
    assert page.locator(".jp-Dialog .jp-mod-accept").is_disabled()
    page.fill("#odh-ingest-flush-records", "25")
    page.select_option("#odh-ingest-format", "parquet")
    page.click(".jp-Dialog .jp-mod-accept")
    page.locator("#odh-ingestions-panel :text('changed format, flush_records')").wait_for()
    h = {"Authorization": f"token {alice.token}"}
    changed = requests.get(f"{alice.url}odh/api/ingestions/{NAME}", headers=h, timeout=30).json()
    assert (changed["format"], changed["flush_records"], changed["topic"]) == ("parquet", 25, TOPIC), changed
    assert produce_sample(TOPIC, 50, bootstrap=kafka_broker.bootstrap) == 50
    _records_reach(page, 450)
    page.locator(f'{ROW} [data-action="open-last"]:text-matches("\\.parquet$")').wait_for()

    # stop: the worker writes what it holds and exits; records arriving afterwards wait in the topic
    row.locator('[data-action="stop"]').click()
    page.locator(f'{ROW}[data-state="stopped"]').wait_for()
    assert row.locator('[data-action="resume"]').is_enabled() and row.locator('[data-action="stop"]').is_disabled()
    assert produce_sample(TOPIC, 20, bootstrap=kafka_broker.bootstrap) == 20
    page.wait_for_timeout(2500)
    _refreshed(page)
    assert row.get_attribute("data-records") == "450" and row.get_attribute("data-state") == "stopped"

    # delete with confirmation; the objects stay
    row.locator('[data-action="delete"]').click()
    page.click(".jp-Dialog .jp-mod-accept")
    page.locator(ROW).wait_for(state="detached")
    r = requests.get(f"{alice.url}odh/api/ingestions", headers={"Authorization": f"token {alice.token}"}, timeout=30)
    assert r.json()["ingestions"] == []
    kept = s3.list_objects_v2(Bucket=BUCKET, Prefix=f"clicks/topic={TOPIC}/")["Contents"]
    assert sum(int(o["Key"].rsplit("+", 1)[1].split(".")[0]) - int(o["Key"].rsplit("+", 2)[1]) + 1
               for o in kept) == 450  # every record exactly once, in the objects that stay
    assert {o["Key"].rsplit(".", 1)[1] for o in kept} == {"jsonl", "parquet"}
    assert not [e for e in page.js_errors if "403" not in e], page.js_errors
