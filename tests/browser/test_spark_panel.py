"""The Spark status item and panel in a real browser, through the hub: a server started with a Spark cluster,
the status bar shows its workers, the panel scales it to 2, the Spark UI opens through the user's server, and
"Restart cluster" (after its confirmation) brings up new master and worker processes with the same size."""

import pytest
import requests

from tests.support.wait import wait_for

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

    # Restart cluster: asks first; then new workers (new ids) register with the restarted master, 2/2 again
    def workers():
        r = requests.get(f"{alice_with_spark.url}/user/alice/odh/spark-ui/json/",
                         headers={"Authorization": f"token {alice_with_spark.token}"}, timeout=10)
        return {w["id"] for w in r.json().get("workers", []) if w.get("state") == "ALIVE"} if r.ok else set()

    before = workers()
    assert len(before) == 2, before
    page.bring_to_front()
    panel.locator('[data-action="restart"]').click()
    dialog = page.locator(".jp-Dialog")
    dialog.wait_for()
    assert "Running applications are stopped" in dialog.inner_text()
    page.click(".jp-Dialog .jp-mod-accept")
    after = wait_for(lambda: (lambda w: w if len(w) == 2 and not (w & before) else None)(workers()), 180,
                     "two new workers after the restart")
    assert not (after & before)
    page.wait_for_function("() => document.querySelector('#odh-spark-status').textContent.includes('2/2')",
                           timeout=120_000)
    assert page.locator("#odh-spark-error").is_hidden()
