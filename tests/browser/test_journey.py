"""The user journey in a real browser: log in -> choose profile and size -> JupyterLab loads."""

import os

from tests.browser.conftest import SCREENSHOTS
from tests.support.hubclient import HubUserSession


def test_login_choose_profile_and_size_land_in_jupyterlab(hub, page, shot):
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", "bob")
    page.fill("#password_input", "bob-odh")
    shot(page, "01-login")
    page.click("#login_submit")
    page.wait_for_url("**/hub/spawn**")
    form = page.locator("#odh-spawn-form")
    form.wait_for()
    cards = page.locator(".odh-card")
    assert cards.count() == 3
    assert "PyTorch with GPU" in form.inner_text()
    page.check("#odh-profile-datascience")
    page.select_option("#odh-size-datascience", "medium")
    shot(page, "02-spawn-form")
    page.click("form button[type=submit], form input[type=submit]")
    page.wait_for_url("**/spawn-pending/bob**", timeout=15_000)
    page.locator("#progress-message, .progress-bar, #progress-log").first.wait_for(timeout=15_000)
    shot(page, "03-spawn-progress")
    page.wait_for_url("**/user/bob/lab**", timeout=90_000)
    page.locator("#jupyterlab-splash").wait_for(state="detached", timeout=90_000)
    page.locator(".jp-LauncherCard").first.wait_for(timeout=60_000)
    shot(page, "04-jupyterlab")
    assert page.js_errors == [], page.js_errors
    for name in ("01-login", "02-spawn-form", "03-spawn-progress", "04-jupyterlab"):
        assert os.path.getsize(os.path.join(SCREENSHOTS, f"{name}.png")) > 10_000
    HubUserSession(hub.url, "bob", "bob-odh").stop()


def test_group_restricted_profile_is_not_shown_in_browser(hub, page, shot):
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", "alice")
    page.fill("#password_input", "alice-odh")
    page.click("#login_submit")
    page.locator("#odh-spawn-form").wait_for()
    slugs = page.locator("input[name=profile]").evaluate_all("els => els.map(e => e.value)")
    assert slugs == ["minimal", "datascience"]
    assert page.locator("#odh-profile-datascience").is_checked() or page.locator("#odh-profile-minimal").is_checked()
    shot(page, "05-spawn-form-alice")
    assert page.js_errors == [], page.js_errors
