"""The Spark status item and panel in a real browser, through the hub: a server started with a Spark cluster,
the status bar shows its workers, the panel scales it to 2 and the Spark UI opens through the user's server."""

import pytest

from tests.browser.test_bucket_panel import login_and_open_lab


@pytest.fixture
def alice_with_spark(login):
    alice = login("alice")
    r = alice.api("POST", "/users/alice/server", json={"profile": "datascience", "spark": {"workers": 1}})
    assert r.status_code in (201, 202), r.text
    alice.wait_ready(timeout=180)
    yield alice
    alice.stop()


def test_spark_status_scale_and_ui(hub, alice_with_spark, page, shot):
    page.context.set_default_timeout(60_000)
    login_and_open_lab(page, hub, "alice", "alice-odh")
    status = page.locator("#odh-spark-status")
    status.wait_for(state="visible")
    page.wait_for_function("() => document.querySelector('#odh-spark-status').textContent.includes('1/1')",
                           timeout=60_000)
    status.click()
    panel = page.locator("#odh-spark-panel")
    panel.wait_for()
    page.fill("#odh-spark-workers", "4")
    panel.locator('[data-action="scale"]').click()
    error = page.locator("#odh-spark-error")
    error.wait_for(state="visible")
    assert "from 0 to 3" in error.inner_text()  # the profile allows 3 workers; checked before asking
    page.fill("#odh-spark-workers", "2")
    panel.locator('[data-action="scale"]').click()
    page.wait_for_function("() => document.querySelector('#odh-spark-status').textContent.includes('2/2')",
                           timeout=120_000)
    shot(page, "30-spark-panel")

    with page.context.expect_page() as new_page:
        page.click("#odh-spark-ui-link")
    ui = new_page.value
    ui.wait_for_load_state()
    assert "/user/alice/odh/spark-ui/" in ui.url
    ui.locator("text=Spark Master at spark://127.0.0.1:").first.wait_for()
    ui.locator("text=2 Alive").first.wait_for()
    assert ui.locator("text=Workers (2)").count() == 1
    shot(ui, "31-spark-ui-through-proxy")
    # a link inside the UI stays under the user's server (reverse-proxy mode)
    ui.locator("a:has-text('worker-')").first.click()
    ui.wait_for_load_state()
    assert "/user/alice/odh/spark-ui/" in ui.url and ui.locator("text=Spark Worker").count() >= 1
