"""The admin view in a real browser: an admin logs in to the hub, opens <hub>/services/odh-platform/admin/ (the
page logs in through the hub by OAuth), sees every user (a server whose start failed with the hub's message),
stops a user's server after confirming, and sees it stopped (the hub confirms), then deletes another user's
failed deployment; a user who is not an admin gets the 403 page with its message."""

from __future__ import annotations

import requests

from odh_spawner.naming import models_bucket
from tests.support import secretscan
from tests.support.fixtures import PASSWORDS
from tests.support.profiles import broken_profile, extra_profiles
from tests.support.wait import wait_for

PAGE = "/services/odh-platform/admin/"
API = "/services/odh-platform/api"
DEPLOYMENT = "admin-page-missing"
BROKEN = "admin-page-broken"
RECORD = {"response": secretscan.record_requests_response}  # every answer joins the secret scan


def log_in(page, hub, name: str) -> None:
    page.goto(f"{hub.url}/hub/login")
    page.fill("#username_input", name)
    page.fill("#password_input", PASSWORDS[name])
    page.click("#login_submit")
    page.wait_for_url(lambda url: "/hub/login" not in url)


def test_an_admin_sees_every_user_and_stops_a_users_server(hub, login, config_dir, page, shot):
    # carol's start from a profile whose environment cannot be read fails in the spawner's start
    carol = login("carol")
    with extra_profiles(config_dir, broken_profile(BROKEN, ["carol"])):
        wait_for(lambda: BROKEN in carol.offered_profiles(), 30, "the hub to offer the broken profile")
        r = carol.api("POST", "/users/carol/server", json={"profile": BROKEN})
    assert r.status_code == 400 and "Cannot read the lock" in r.json()["message"], r.text
    bob = login("bob")
    r = bob.api("POST", "/users/bob/server", json={"profile": "minimal"})
    assert r.status_code in (201, 202), r.text
    bob.wait_ready()
    # alice's deployment of a model that is not there: it fails, with a last error
    alice = login("alice")
    r = requests.post(f"{hub.url}{API}/deployments", headers=alice.auth, timeout=60, hooks=RECORD,
                      json={"name": DEPLOYMENT, "model_uri": f"s3://{models_bucket('alice')}/admin-view/missing.joblib"})
    assert r.status_code == 202, r.text

    log_in(page, hub, "admin")
    answer = page.goto(hub.url + PAGE)
    assert answer.status == 200 and page.url == hub.url + PAGE  # back from the hub's OAuth, on the page
    page.locator("#odh-admin-status", has_text="Up to date.").wait_for(timeout=30_000)
    assert page.locator("#odh-admin-user").inner_text() == "admin"
    users = page.locator("#odh-admin-users tbody tr").evaluate_all("rows => rows.map(r => r.dataset.user)")
    assert {"admin", "bob"} <= set(users) and users == sorted(users), users
    failed = page.locator(f'#odh-admin-deployments tbody tr[data-user="alice"][data-name="{DEPLOYMENT}"]')
    for _ in range(60):  # until the deployment has failed (the page refreshes by itself every 20 s; faster here)
        if failed.count() and failed.get_attribute("data-state") == "Failed":
            break
        page.click("#odh-admin-refresh")
        page.wait_for_timeout(1000)
    assert "admin-view/missing.joblib" in failed.locator("td.error").inner_text()
    row = page.locator('#odh-admin-servers tbody tr[data-user="bob"][data-name=""]')
    assert row.get_attribute("data-state") == "running"
    assert "minimal" in row.inner_text()
    broken = page.locator('#odh-admin-servers tbody tr[data-user="carol"][data-name=""]')
    assert broken.get_attribute("data-state") == "failed"
    assert broken.locator("td.error").inner_text().startswith(
        f"Spawn failed: The '{BROKEN}' environment is misconfigured: Cannot read the lock")
    assert broken.locator("button").count() == 0  # nothing runs: nothing to stop
    shot(page, "50-admin-view")

    # the page's session cookie alone does not act: a call without the page's XSRF token is refused
    refused = page.evaluate("""() => fetch("/services/odh-platform/api/admin/users/bob/server/stop", {method: "POST",
        credentials: "same-origin", headers: {"Content-Type": "application/json"}, body: "{}"})
        .then(r => r.json().then(j => [r.status, j.message]))""")
    assert refused == [403, "This call lacks the admin page's XSRF token; reload the page and try again."], refused
    assert bob.model()["servers"][""]["ready"]

    row.locator('button[data-action="stop-server"]').click()
    dialog = page.locator("#odh-admin-confirm")
    dialog.wait_for(state="visible")
    assert page.locator("#odh-admin-confirm-text").inner_text().startswith("Stop bob's server?")
    shot(page, "51-admin-confirm-stop")
    page.click("#odh-admin-confirm-ok")
    page.locator("#odh-admin-status", has_text="bob's server is stopped.").wait_for(timeout=90_000)
    assert row.count() == 0
    assert not bob.model()["servers"].get(""), "the hub still lists bob's server"
    shot(page, "52-admin-server-stopped")

    failed.locator('button[data-action="delete-deployment"]').click()
    assert page.locator("#odh-admin-confirm-text").inner_text().startswith(f"Delete alice's deployment '{DEPLOYMENT}'?")
    page.click("#odh-admin-confirm-ok")
    page.locator("#odh-admin-status", has_text=f"alice's deployment '{DEPLOYMENT}' is deleted.").wait_for(timeout=60_000)
    assert failed.count() == 0
    r = requests.get(f"{hub.url}{API}/deployments/{DEPLOYMENT}", headers=alice.auth, timeout=30, hooks=RECORD)
    assert r.status_code == 404, r.text  # gone for its owner too
    assert page.js_errors == [], page.js_errors


def test_a_user_who_is_not_an_admin_gets_the_403_page(hub, page, shot):
    log_in(page, hub, "alice")
    answer = page.goto(hub.url + PAGE)
    assert answer.status == 403
    assert page.locator("#odh-admin-message").inner_text() == (
        "Only hub admins may use the admin view: you are logged in as alice, who is not a hub admin.")
    assert page.locator("#odh-admin").count() == 0  # no page, no script, no data
    shot(page, "53-admin-view-refused")
    # nor does her session reach the API
    refused = page.evaluate("""() => fetch("/services/odh-platform/api/admin/overview", {credentials: "same-origin"})
        .then(r => r.json().then(j => [r.status, j.message]))""")
    assert refused[0] == 403, refused
    assert page.js_errors == [], page.js_errors
