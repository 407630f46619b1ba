"""Deploy a model from JupyterLab in a real browser, through the hub: right-click the model file, "Deploy
model…", watch the stages, get the URL, the example request (with the endpoint's key) and the test prediction;
then the Deployments panel: show the key, rotate it, make the endpoint public and private again, test a second
version, roll back to the first, delete."""

import os

import requests

from tests.browser.test_bucket_panel import login_and_open_lab
from tests.support.kernel import Kernel
from tests.support.wait import wait_for


def _train(path: str) -> None:
    import joblib
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    X = np.random.default_rng(3).random((100, 4))
    joblib.dump(LogisticRegression().fit(X, (X[:, 0] > 0.5).astype(int)), path)


def test_deploy_from_the_file_browser(hub, user_server, page, shot):
    alice = user_server("alice")
    home = os.path.join(hub.runtime["state_dir"], "home", "alice")
    _train(os.path.join(home, "churn_model.joblib"))
    page.context.set_default_timeout(60_000)
    login_and_open_lab(page, hub, "alice", "alice-odh")
    page.click('.lm-TabBar-tab[data-id="filebrowser"]')
    item = page.locator('.jp-DirListing-item[title*="churn_model.joblib"]')
    item.wait_for()
    item.click(button="right")
    page.click('.lm-Menu-item:has-text("Deploy model…")')
    name = page.locator("#odh-deploy-name")
    name.wait_for()
    assert name.input_value() == "churn-model"  # suggested from the file name, DNS-safe
    name.fill("Churn_Model")
    assert page.locator("#odh-deploy-name-problem").inner_text()  # says why the name is not allowed
    name.fill("churn")
    shot(page, "20-deploy-dialog")
    page.click(".jp-Dialog .jp-mod-accept")

    progress = page.locator("#odh-deploy-progress")
    progress.wait_for()
    page.locator('#odh-deploy-progress .odh-stage[data-stage="starting"][data-state="active"], '
                 '#odh-deploy-progress[data-result="ready"]').first.wait_for(timeout=60_000)
    page.locator('#odh-deploy-progress[data-result="ready"]').wait_for(timeout=120_000)
    for stage in ("uploading", "creating", "starting", "ready"):
        assert page.locator(f'#odh-deploy-progress .odh-stage[data-stage="{stage}"]').get_attribute(
            "data-state") == "done"
    url = page.locator("#odh-deploy-url").inner_text()
    assert url.endswith("/v2/models/alice.churn/infer"), url
    assert "→" in page.locator("#odh-deploy-test-prediction").inner_text() or \
        "[" in page.locator("#odh-deploy-test-prediction").inner_text()
    shot(page, "21-deploy-ready")
    h = {"Authorization": f"token {alice.token}"}
    key = requests.get(f"{alice.url}odh/api/deployments/churn", headers=h, timeout=30).json()["api_key"]
    example = page.locator("#odh-deploy-progress .odh-deploy-example").inner_text()
    assert f"Authorization: Bearer {key}" in example  # the example request works as copied
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0.9, 0.1, 0.1, 0.1]}]}
    assert requests.post(url, json=body, headers={"Authorization": f"Bearer {key}"},
                         timeout=10).json()["outputs"][0]["data"] == [1]
    assert requests.post(url, json=body, timeout=10).status_code == 401

    # the Deployments panel lists it; delete with confirmation
    page.click('.lm-TabBar-tab[data-id="odh-deployments-panel"]')
    row = page.locator('#odh-deployments-panel .odh-deployment[data-name="churn"][data-state="Available"]')
    row.wait_for()
    row.locator('button.odh-deployment-toggle').click()
    assert row.locator(".odh-deployment-access").get_attribute("data-public") == "false"
    row.locator('[data-action="show-key"]').click()
    assert f"Bearer {key}" in row.locator(".odh-deployment-example").inner_text()
    shot(page, "22-deployments-panel")
    row.locator('[data-action="rotate-key"]').click()
    page.locator(f'#odh-deployments-panel .odh-deployment[data-name="churn"] .odh-deployment-example:not(:has-text("{key}"))').wait_for()
    assert requests.post(url, json=body, headers={"Authorization": f"Bearer {key}"}, timeout=10).status_code == 401
    row.locator('[data-action="toggle-public"]').click()
    row.locator('.odh-deployment-access[data-public="true"]').wait_for()
    assert requests.post(url, json=body, timeout=10).status_code == 200
    row.locator('[data-action="toggle-public"]').click()
    row.locator('.odh-deployment-access[data-public="false"]').wait_for()
    assert requests.post(url, json=body, timeout=10).status_code == 401

    # a second version (from alice's kernel, as a notebook would); the panel's Test predicts the stored example
    # against the live endpoint, and Roll back serves version 1 again on the same URL
    kernel = Kernel(alice.url, alice.token)
    try:
        out = kernel.execute("import joblib\nfrom odh_hub import DeployClient\n"
                             "d = DeployClient().deploy(joblib.load('churn_model.joblib'), 'churn', "
                             "sample=[[0.9, 0.1, 0.1, 0.1]])\nprint('version', d.version)\n", timeout=300)
    finally:
        kernel.close()
    assert "version 2" in out, out
    page.click("#odh-deployments-panel [data-action='refresh']")
    row.locator('.odh-deployment-version:has-text("v2 of 2")').wait_for()
    row.locator('[data-action="test"]').click()
    result = row.locator('.odh-deployment-test[data-state="done"]')
    result.wait_for()
    assert "1" in result.inner_text(), result.inner_text()
    assert row.locator('[data-action="rollback"]').is_enabled()
    row.locator('[data-action="rollback"]').click()
    row.locator('.odh-deployment-version:has-text("v1 of 2")').wait_for(timeout=120_000)
    wait_for(lambda: requests.get(f"{alice.url}odh/api/deployments/churn", headers=h, timeout=30).json().get(
        "state") == "Available", 120, "version 1 serving again")
    assert requests.post(url, json=body, headers={"Authorization": f"token {alice.token}"},
                         timeout=10).json()["outputs"][0]["data"] == [1]

    row.locator('[data-action="delete"]').click()
    page.click(".jp-Dialog .jp-mod-accept")
    page.locator('#odh-deployments-panel .odh-deployment[data-name="churn"]').wait_for(state="detached")
    r = requests.get(f"{alice.url}odh/api/deployments", headers={"Authorization": f"token {alice.token}"}, timeout=30)
    assert r.json()["deployments"] == []
    assert not [e for e in page.js_errors if "403" not in e], page.js_errors
