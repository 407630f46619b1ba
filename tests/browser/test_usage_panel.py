"""The Usage panel in a real browser, through the hub: carol (group `students`: 2 MiB of storage, no
deployments, 1 ingestion, 1 Spark worker; tests/support/fixtures.py) sees her CPU hours, memory, stored bytes
against her quota with a bar, and her running resources against their limits, each naming the group it comes
from; Refresh fetches new figures. The bucket browser's upload over her quota fails with a message naming
the quota and the group."""

import requests
from playwright.sync_api import expect

from tests.browser.test_bucket_panel import login_and_open_lab
from tests.integration.test_usage_quotas import platform_url, s3_of
from tests.support.kafka import create_topic

BUCKET = "carol-usage"
PANEL = "#odh-usage-panel"
STUDENTS = "group students"


def _row(page, name: str):
    return page.locator(f'{PANEL} [data-usage="{name}"] .odh-field-value')


def test_usage_panel_and_an_upload_over_the_quota(hub, user_server, kafka_broker, page, shot, tmp_path):
    carol = user_server("carol")
    s3 = s3_of(carol.env)
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    s3.put_object(Bucket=BUCKET, Key="half.bin", Body=b"h" * 2**20)  # half of her 2 MiB quota
    create_topic(kafka_broker.bootstrap, "carol-usage-events", 1)
    auth = {"Authorization": f"token {carol.token}"}
    r = requests.post(platform_url(hub) + "api/ingestions", headers=auth, timeout=60,
                      json={"name": "usage-demo", "topic": "carol-usage-events", "bucket": BUCKET, "prefix": "in/"})
    assert r.status_code == 201, r.text
    try:
        page.context.set_default_timeout(60_000)
        login_and_open_lab(page, hub, "carol", "carol-odh")

        # the bucket browser's upload over the quota: refused by the object store, named by the panel
        page.click(f'#odh-bucket-browser .odh-row[data-bucket="{BUCKET}"] .odh-row-name')
        page.locator('#odh-bucket-browser .odh-row[data-key="half.bin"]').wait_for()
        big = tmp_path / "too-big.bin"
        big.write_bytes(b"b" * (3 * 2**20))
        with page.expect_file_chooser() as chooser:
            page.click("#odh-upload-button")
        chooser.value.set_files(str(big))
        failed = page.locator('#odh-bucket-browser .odh-upload-progress[data-key="too-big.bin"][data-state="error"]')
        failed.wait_for()
        expect(failed).to_contain_text(f"Your storage quota of 2 MiB ({STUDENTS}) is full; delete objects first.")
        shot(page, "61-upload-over-quota")

        # the Usage panel: open it from its sidebar tab; Refresh until the object store's stats (read every
        # 30 s) show her 1 MiB
        page.click('.lm-TabBar-tab[data-id="odh-usage-panel"]')
        page.locator(f'{PANEL} [data-usage="cpu"]').wait_for()
        for _ in range(45):
            if _row(page, "storage").inner_text().startswith("1 MiB of 2 MiB"):
                break
            with page.expect_response(lambda r: "/odh/api/usage" in r.url and r.status == 200):
                page.click("#odh-usage-refresh")
            page.wait_for_timeout(2000)
        expect(_row(page, "storage")).to_have_text("1 MiB of 2 MiB")
        bar = page.locator(f"{PANEL} .odh-usage-bar")
        expect(bar).to_have_attribute("aria-valuenow", "50")
        expect(page.locator(f'{PANEL} [data-usage="storage-percent"]')).to_have_text(
            f"50% used · quota from {STUDENTS}")
        expect(_row(page, "deployments")).to_have_text(f"0 of 0 · {STUDENTS}")
        expect(_row(page, "ingestions")).to_have_text(f"1 of 1 · {STUDENTS}")
        expect(page.locator(f'{PANEL} [data-usage="ingestions"]')).to_have_attribute("data-full", "true")
        expect(_row(page, "spark-workers")).to_have_text(f"0 of 1 · {STUDENTS}")
        expect(_row(page, "cpu")).to_contain_text("hours")
        assert _row(page, "memory").inner_text().endswith("MiB")  # her server's memory now
        assert not page.locator(f"{PANEL} .odh-error:visible").count()
        shot(page, "60-usage-panel")

        # Refresh after deleting the ingestion: the count follows
        assert requests.delete(platform_url(hub) + "api/ingestions/usage-demo", headers=auth,
                               timeout=120).status_code == 200
        with page.expect_response(lambda r: "/odh/api/usage" in r.url and r.status == 200):
            page.click("#odh-usage-refresh")
        expect(_row(page, "ingestions")).to_have_text(f"0 of 1 · {STUDENTS}")
        assert not page.js_errors, page.js_errors
    finally:
        requests.delete(platform_url(hub) + "api/ingestions/usage-demo", headers=auth, timeout=120)
        for obj in s3.list_objects_v2(Bucket=BUCKET).get("Contents", []):
            s3.delete_object(Bucket=BUCKET, Key=obj["Key"])
        s3.delete_bucket(Bucket=BUCKET)
