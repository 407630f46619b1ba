"""A profile leaves features out on purpose (issue 19), in a real browser: alice's server started from a test-only
profile without Kafka ingestion and model deployment. The Ingestions and Deployments panels show the reason (naming
her profiles that have them) instead of their content: no buttons, no polling of the feature's API, no error;
the Buckets panel, still on, lists her buckets."""

import pytest
from playwright.sync_api import expect

from tests.browser.test_bucket_panel import login_and_open_lab
from tests.integration.test_leave_out import DEPLOY_OFF, INGEST_OFF, alice_on_the_lean_profile


@pytest.fixture(scope="module")
def lean_lab(hub, login, config_dir):
    with alice_on_the_lean_profile(login, config_dir) as alice:
        yield alice


def test_left_out_panels_show_the_reason(hub, lean_lab, page, shot):
    page.context.set_default_timeout(60_000)
    asked = []
    page.on("request", lambda r: asked.append((r.method, r.url)) if "/odh/api/" in r.url else None)
    login_and_open_lab(page, hub, "alice", "alice-odh")
    page.locator("#odh-bucket-browser .odh-row[data-bucket]").first.wait_for()  # buckets: still on

    page.click('.lm-TabBar-tab[data-id="odh-ingestions-panel"]')
    off = page.locator('#odh-ingestions-panel .odh-feature-off[data-feature="ingestions"]')
    expect(off).to_have_text(INGEST_OFF)
    assert page.locator("#odh-ingestions-panel button").count() == 0  # no New ingestion, no Refresh
    news = page.locator(".jp-Notification-Toast-Close, .Toastify__close-button")
    if news.count():
        news.first.click()  # JupyterLab's "news?" toast, which may show up after the lab opened
    shot(page, "42-ingestions-left-out")

    page.click('.lm-TabBar-tab[data-id="odh-deployments-panel"]')
    expect(page.locator('#odh-deployments-panel .odh-feature-off[data-feature="deployments"]')).to_have_text(
        DEPLOY_OFF)
    assert page.locator("#odh-deployments-panel button").count() == 0

    page.wait_for_timeout(6_000)  # longer than the panels' 5 s polling period
    feature_calls = [u for m, u in asked if "/odh/api/ingestions" in u or "/odh/api/deployments" in u
                     or "/odh/api/kafka" in u]
    assert feature_calls == [], feature_calls  # asked /odh/api/features, never the left-out APIs
    assert sum("/odh/api/features" in u for _, u in asked) == 1, asked
    assert page.locator(".odh-error:visible").count() == 0
    assert page.locator(".jp-Notification-Toast-error, .Toastify__toast--error").count() == 0
    assert page.js_errors == []
