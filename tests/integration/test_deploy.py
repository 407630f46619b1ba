"""One-click model deployment against a real hub, its proxy, the platform service, real RGW and real MLServer.

The kernel tests drive a real IPython kernel in the user's notebook server over the kernel websocket, as
JupyterLab does. MLServer processes are found through the platform's records and checked by PID and port.
"""

from __future__ import annotations

import json
import os
import signal

import boto3
import pytest
import requests

from odh_spawner.host import procs
from tests.support.fixtures import pid_alive
from tests.support.kernel import Kernel
from tests.support.wait import wait_for

TRAIN = """
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.tree import DecisionTreeClassifier
rng = np.random.default_rng(0)
X = rng.random((200, 4)); y = (X[:, 0] > 0.5).astype(int)
v1 = LogisticRegression().fit(X, y)
v2 = DecisionTreeClassifier(max_depth=1).fit(X, 1 - y)   # predicts the opposite: tells versions apart
probe = [[0.9, 0.1, 0.1, 0.1]]
from server_extension.deploy import deploy, DeployClient
"""


def records(hub) -> dict:
    """The platform's deployment records, by (owner, name)."""
    root = os.path.join(hub.runtime["state_dir"], "platform", "deployments")
    found = {}
    for dirpath, _, files in os.walk(root):
        if "deployment.json" in files:
            with open(os.path.join(dirpath, "deployment.json")) as f:
                d = json.load(f)
            found[(d["owner"], d["name"])] = d
    return found


def pids_where(match) -> list[int]:
    """PIDs whose command line (a list of str) satisfies `match`."""
    return [int(e) for e in os.listdir("/proc") if e.isdigit() and match(procs.cmdline(int(e)))]


def mlserver_pids(hub) -> list[int]:
    """This hub's model servers (other hubs on the machine run theirs: their model dirs are elsewhere)."""
    state = hub.runtime["state_dir"]
    return pids_where(lambda args: any(a.endswith("/mlserver") for a in args[:2]) and "start" in args
                      and any(a.startswith(state) for a in args))


def bucket_keys(creds_env: dict, bucket: str, prefix: str = "odh-deployments/") -> list[str]:
    s3 = boto3.client("s3", endpoint_url=creds_env["S3_ENDPOINT_URL"], aws_access_key_id=creds_env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=creds_env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    try:
        return [o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])]
    except s3.exceptions.NoSuchBucket:
        return []


def detail(server, name: str) -> dict:
    """The owner's view of a deployment (it holds the API key), through the owner's notebook server."""
    r = requests.get(f"{server.url}odh/api/deployments/{name}", headers={"Authorization": f"token {server.token}"},
                     timeout=30)
    r.raise_for_status()
    return r.json()


def bearer(credential: str) -> dict:
    return {"Authorization": f"Bearer {credential}"}


def proxy_routes(hub) -> dict:
    r = requests.get(hub.runtime["proxy_api_url"] + "/api/routes", timeout=10,
                     headers={"Authorization": f"token {hub.runtime['proxy_auth_token']}"})
    r.raise_for_status()
    return r.json()


@pytest.fixture(scope="module")
def alice(user_server):
    return user_server("alice")


@pytest.fixture(scope="module")
def kernel(alice):
    k = Kernel(alice.url, alice.token)
    k.execute(TRAIN, timeout=120)
    yield k
    k.close()


def test_one_click_deploy_redeploy_rollback_delete_from_a_kernel(hub, alice, kernel):
    before = set(mlserver_pids(hub))
    out = kernel.execute('d = deploy(v1, name="churn", sample=probe)\nprint("URL", d.infer_url)')
    # the stages the user saw, in order, and the live URL through the hub's proxy
    stages = [line for line in out.splitlines() if line.startswith("[")]
    assert stages[0] == "[uploading]" and stages[-1] == "[ready]", out
    assert "[starting]" in stages
    url = out.split("URL ", 1)[1].split()[0]
    assert url == f"{hub.url}/v2/models/alice.churn/infer"
    assert "test prediction: [[0.9, 0.1, 0.1, 0.1]] -> [1]" in out
    # the ready-made example request, with the key as $ODH_MODEL_KEY: the key itself is never printed
    assert "curl -s -X POST " + url in out and '"Authorization: Bearer $ODH_MODEL_KEY"' in out
    key = detail(alice, "churn")["api_key"]
    assert key.startswith("odhk_") and key not in out
    h = bearer(key)
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0.9, 0.1, 0.1, 0.1]}]}
    assert requests.post(url, json=body, headers=h, timeout=10).json()["outputs"][0]["data"] == [1]
    assert requests.post(url, json=body, timeout=10).status_code == 401

    rec = records(hub)[("alice", "churn")]
    pid1 = rec["runtime"]["serving"]["pid"]
    # the proxy routes the model to the platform's gateway, not to the model server
    assert proxy_routes(hub)["/v2/models/alice.churn"]["target"] == hub.runtime["platform_url"]
    assert pid_alive(pid1) and set(mlserver_pids(hub)) - before == {pid1}
    assert rec["test_prediction"]["outputs"][0]["data"] == [1]  # the platform's own test prediction

    # redeploy v2: same URL, new answer, the v1 process stopped
    out = kernel.execute('d = d.redeploy(v2, sample=probe)\nprint("V", d.version, d.predict(probe))')
    assert "V 2 [0]" in out
    pid2 = records(hub)[("alice", "churn")]["runtime"]["serving"]["pid"]
    assert pid2 != pid1 and not pid_alive(pid1)
    assert requests.post(url, json=body, headers=h, timeout=10).json()["outputs"][0]["data"] == [0]

    # roll back to v1
    out = kernel.execute('d = d.rollback()\nprint("V", d.version, d.predict(probe), [v["state"] for v in d.versions])')
    assert "V 1 [1] ['Available', 'Retired']" in out
    assert requests.post(url, json=body, headers=h, timeout=10).json()["outputs"][0]["data"] == [1]

    # artifacts: two uploads in the user's models bucket; delete removes them, the process and the route
    bucket = alice.env["ODH_MODELS_BUCKET"]
    assert len(bucket_keys(alice.env, bucket, "odh-deployments/churn/")) == 2
    pid3 = records(hub)[("alice", "churn")]["runtime"]["serving"]["pid"]
    kernel.execute('DeployClient().delete("churn")')
    assert ("alice", "churn") not in records(hub)
    assert not pid_alive(pid3) and set(mlserver_pids(hub)) == before
    assert bucket_keys(alice.env, bucket, "odh-deployments/churn/") == []
    assert "/v2/models/alice.churn" not in proxy_routes(hub)  # no route left
    assert requests.post(url, json=body, headers=h, timeout=10).status_code != 200


MLFLOW = """
import mlflow.sklearn, tempfile, os
from mlflow.models import infer_signature
folder = os.path.join(tempfile.mkdtemp(), "flow-model")
mlflow.sklearn.save_model(v1, folder, signature=infer_signature(X, v1.predict(X)))
f = deploy(folder, name="flow", sample=probe)
print("FW", f.framework, "P", f.predict(probe), "URL", f.infer_url)
"""


def test_an_mlflow_model_folder_deploys_and_serves(hub, alice, kernel):
    before = set(mlserver_pids(hub))
    out = kernel.execute(MLFLOW, timeout=180)
    assert "[ready]" in out and "FW mlflow P [1]" in out, out
    url = out.split("URL ", 1)[1].split()[0]
    assert url == f"{hub.url}/v2/models/alice.flow/infer"
    body = {"inputs": [{"name": "x", "shape": [2, 4], "datatype": "FP64",
                        "data": [0.9, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1, 0.1]}]}
    h = bearer(detail(alice, "flow")["api_key"])
    assert requests.post(url, json=body, headers=h, timeout=10).json()["outputs"][0]["data"] == [1, 0]
    rec = records(hub)[("alice", "flow")]
    assert rec["versions"][0]["framework"] == "mlflow"
    keys = bucket_keys(alice.env, alice.env["ODH_MODELS_BUCKET"], "odh-deployments/flow/")
    assert any(k.endswith("/MLmodel") for k in keys) and len(keys) > 1  # the whole folder (MLmodel, model, env)
    kernel.execute('DeployClient().delete("flow")')
    assert set(mlserver_pids(hub)) == before and ("alice", "flow") not in records(hub)


def test_other_users_cannot_see_or_change_a_deployment(hub, alice, kernel, user_server):
    kernel.execute('d = deploy(v1, name="private", sample=probe)')
    bob = user_server("bob")
    bob_api = f"{bob.url}odh/api/deployments"
    h = {"Authorization": f"token {bob.token}"}
    assert requests.get(bob_api, headers=h, timeout=30).json()["deployments"] == []
    for method, path in [("GET", "/private"), ("DELETE", "/private"), ("POST", "/private/rollback"),
                         ("POST", "/private/predict")]:
        r = requests.request(method, bob_api + path, headers=h, json={}, timeout=30)
        assert r.status_code == 404, (method, path, r.text)
    # directly at the platform service with bob's token: still only bob's own; ?user= needs admin
    platform = hub.runtime["platform_url"] + "/services/odh-platform/api/deployments"
    assert requests.get(platform, headers=h, timeout=30).json()["deployments"] == []
    r = requests.get(platform + "?user=alice", headers=h, timeout=30)
    assert r.status_code == 403 and "admins" in r.json()["message"]
    r = requests.delete(platform + "/private?user=alice", headers=h, timeout=30)
    assert r.status_code == 403
    assert requests.get(platform, timeout=30).status_code == 403  # no token
    # bob cannot deploy alice's model either: the platform refuses a bucket he does not own, at once
    uri = records(hub)[("alice", "private")]["versions"][0]["model_uri"]
    bucket = uri[len("s3://"):].split("/")[0]
    r = requests.post(bob_api, headers=h, json={"name": "stolen", "model_uri": uri}, timeout=30)
    assert (r.status_code, r.json()["message"]) == (
        403, f"The bucket {bucket} belongs to another user; choose one of your own buckets."), r.text
    assert requests.get(bob_api + "/stolen", headers=h, timeout=30).status_code == 404
    # alice's deployment untouched
    assert records(hub)[("alice", "private")]["state"] == "Available"
    kernel.execute('DeployClient().delete("private")')


BOB_TRIES = """
import os, requests
r = requests.post({url!r}, json={body!r}, timeout=30,
                  headers={{"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"]}})
print("BOB", r.status_code, r.json()["message"])
"""


def test_model_endpoints_need_the_owners_token_or_the_key(hub, alice, kernel, user_server):
    """Anonymous 401, another user's token 403 (also from bob's own kernel), the owner's token and the key 200;
    a rotated key stops at once; public on/off."""
    kernel.execute('d = deploy(v1, name="guarded", sample=probe)')
    url = f"{hub.url}/v2/models/alice.guarded/infer"
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0.9, 0.1, 0.1, 0.1]}]}
    api = f"{alice.url}odh/api/deployments/guarded"
    h = {"Authorization": f"token {alice.token}"}
    info = detail(alice, "guarded")
    key = info["api_key"]
    assert info["public"] is False and info["example_request"]["headers"]["Authorization"] == f"Bearer {key}"
    assert f"'Authorization: Bearer {key}'" in info["example_request"]["curl"]
    # the listing holds no key
    listing = requests.get(f"{alice.url}odh/api/deployments", headers=h, timeout=30).json()["deployments"]
    assert key not in json.dumps(listing)

    def call(headers=None, target=url):
        return requests.post(target, json=body, headers=headers or {}, timeout=30)

    r = call()
    assert r.status_code == 401 and "needs a credential" in r.json()["message"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")
    bob = user_server("bob")
    r = call({"Authorization": f"token {bob.token}"})
    assert r.status_code == 403 and "belongs to another user" in r.json()["message"]
    assert call({"Authorization": "Bearer not-a-token"}).status_code == 401
    assert call(bearer("odhk_wrong")).status_code == 401
    for scheme in ("token", "Bearer"):  # the owner's hub token, as JupyterHub API tokens are sent
        r = call({"Authorization": f"{scheme} {alice.token}"})
        assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [1], r.text
    assert call({"Authorization": f"token {key}"}).json()["outputs"][0]["data"] == [1]
    assert call(bearer(key)).json()["outputs"][0]["data"] == [1]
    ready = requests.get(f"{hub.url}/v2/models/alice.guarded/ready", timeout=30)
    assert ready.status_code == 401  # every path of the model, not only /infer
    r = call(bearer(key), target=f"{hub.url}/v2/models/alice.nothing/infer")
    assert r.status_code in (403, 404)  # no route for an unknown model: the proxy's default (the hub) answers

    # bob, from a real kernel of his own server, with his server's own token
    bob_kernel = Kernel(bob.url, bob.token)
    try:
        out = bob_kernel.execute(BOB_TRIES.format(url=url, body=body))
    finally:
        bob_kernel.close()
    assert "BOB 403" in out and "belongs to another user" in out, out

    # rotate: the old key stops at once, the new one works; the key is the owner's to see
    new = requests.post(api + "/key", headers=h, timeout=30).json()
    assert new["api_key"] != key and new["api_key"].startswith("odhk_")
    r = call(bearer(key))
    assert r.status_code == 401 and "rotated" in r.json()["message"]
    assert call(bearer(new["api_key"])).json()["outputs"][0]["data"] == [1]
    # from the notebook's Python client: rotate again, predict with the new key
    out = kernel.execute('d = d.rotate_key(); print("P", d.predict(probe), d.api_key != %r)' % new["api_key"])
    assert "P [1] True" in out and new["api_key"] not in out
    assert call(bearer(new["api_key"])).status_code == 401

    # public on: anyone; off again: 401
    r = requests.patch(api, headers=h, json={"public": True}, timeout=30)
    assert r.status_code == 200 and r.json()["public"] is True
    assert "Authorization" not in r.json()["example_request"]["headers"]
    assert call().json()["outputs"][0]["data"] == [1]
    out = kernel.execute('d = d.set_public(False); print("PUB", d.public)')
    assert "PUB False" in out
    assert call().status_code == 401
    # bad settings are refused with a message
    for bad, words in [({"public": "yes"}, "true or false"), ({"color": 1}, "Unknown field"), ({}, "Missing")]:
        r = requests.patch(api, headers=h, json=bad, timeout=30)
        assert r.status_code == 400 and words in r.json()["message"], (bad, r.text)
    # bob can neither rotate nor open alice's endpoint (his own namespace: 404; the platform with ?user=: 403)
    hb = {"Authorization": f"token {bob.token}"}
    assert requests.post(f"{bob.url}odh/api/deployments/guarded/key", headers=hb, timeout=30).status_code == 404
    platform = hub.runtime["platform_url"] + "/services/odh-platform/api/deployments/guarded"
    assert requests.patch(platform + "?user=alice", headers=hb, json={"public": True},
                          timeout=30).status_code == 403
    assert call().status_code == 401
    kernel.execute('DeployClient().delete("guarded")')


def test_bad_input_gets_clear_errors_and_leaves_nothing(hub, alice, kernel):
    before = set(mlserver_pids(hub))
    api = f"{alice.url}odh/api/deployments"
    h = {"Authorization": f"token {alice.token}"}
    cases = [
        ({"name": "Bad_Name", "model_uri": "s3://x/y/"}, 400, "DNS-safe"),
        ({"name": "a" * 41, "model_uri": "s3://x/y/"}, 400, "DNS-safe"),
        ({"name": "ok", "model_uri": "http://x/y"}, 400, "s3://"),
        ({"name": "ok", "model_uri": "s3://x/y/", "framework": "tensorflow"}, 400, "Unsupported model framework"),
        ({"name": "ok"}, 400, "Give the model"),
        ({"name": "ok", "path": "../../etc/passwd"}, 404, "No such file"),
        ({"name": "ok", "bogus": 1}, 400, "Unknown field"),
    ]
    for body, status, words in cases:
        r = requests.post(api, headers=h, json=body, timeout=30)
        assert r.status_code == status and words in r.json()["message"], (body, r.status_code, r.text)
    r = requests.post(api, headers=h, data="{not json", timeout=30)
    assert r.status_code == 400

    # an unserialisable model and an object that is no model: clear errors from the client, nothing made
    out = kernel.execute(
        "import threading\n"
        "from server_extension.deploy import DeployError\n"
        "class Holder(LogisticRegression):\n"
        "    pass\n"
        "bad = Holder().fit(X, y); bad.lock = threading.Lock()\n"
        "for m in (bad, {'not': 'a model'}):\n"
        "    try:\n"
        "        deploy(m, name='bad')\n"
        "    except DeployError as e:\n"
        "        print('ERR', e.status, e.message)\n")
    assert "ERR 400 The model cannot be serialised with joblib" in out
    assert "ERR 400 Cannot deploy a dict" in out

    # a duplicate name
    kernel.execute('d = deploy(v1, name="dup")')
    out = kernel.execute(
        "try:\n    DeployClient().deploy(v1, 'dup', new_version=False)\nexcept DeployError as e:\n    print('ERR', e.status)")
    assert "ERR 409" in out
    r = requests.post(api, headers=h, json={"name": "dup", "model_uri": "s3://x/y/"}, timeout=30)
    assert r.status_code == 409 and "already have a deployment" in r.json()["message"]
    kernel.execute('DeployClient().delete("dup")')

    # MLServer cannot load the model: the error and the server's log reach the user; nothing is left
    bucket = alice.env["ODH_MODELS_BUCKET"]
    out = kernel.execute(
        "import boto3, os\n"
        "s3 = boto3.client('s3', endpoint_url=os.environ['S3_ENDPOINT_URL'])\n"
        f"s3.put_object(Bucket={bucket!r}, Key='odh-deployments/broken/v/model.joblib', Body=b'not a pickle')\n"
        "c = DeployClient()\n"
        "info = c._json('POST', c._url(), json={'name': 'broken', 'model_uri': "
        f"'s3://{bucket}/odh-deployments/broken/v/'}})\n"
        "try:\n"
        "    c.wait('broken', info['target_version'], cleanup_on_failure=True)\n"
        "except DeployError as e:\n"
        "    print('ERR', e.status, e.message); print('TAIL', len(e.log_tail), 'joblib' in ' '.join(e.log_tail) or 'pickle' in ' '.join(e.log_tail))\n")
    assert "ERR 502 The model server could not load the model" in out, out
    assert "TAIL" in out and out.split("TAIL ")[1].split()[1] == "True", out
    assert ("alice", "broken") not in records(hub)
    assert set(mlserver_pids(hub)) == before
    assert bucket_keys(alice.env, bucket, "odh-deployments/broken/") == []

    # a model over the platform's size limit (this test configuration allows 8 MiB)
    out = kernel.execute(
        f"s3.put_object(Bucket={bucket!r}, Key='odh-deployments/huge/v/model.joblib', Body=b'0' * (9 * 2**20))\n"
        f"info = c._json('POST', c._url(), json={{'name': 'huge', 'model_uri': 's3://{bucket}/odh-deployments/huge/v/'}})\n"
        "try:\n"
        "    c.wait('huge', info['target_version'], cleanup_on_failure=True)\n"
        "except DeployError as e:\n"
        "    print('ERR', e.message)\n")
    assert "is 9 MiB; deployments take at most 8 MiB" in out, out
    assert ("alice", "huge") not in records(hub)


def test_killed_model_server_recovers_and_platform_restart_readopts(hub, alice, kernel):
    kernel.execute('d = deploy(v1, name="sturdy", sample=probe)')
    url = f"{hub.url}/v2/models/alice.sturdy/infer"
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0.9, 0.1, 0.1, 0.1]}]}
    api = f"{alice.url}odh/api/deployments/sturdy"
    h = {"Authorization": f"token {alice.token}"}
    key = requests.post(api + "/key", headers=h, timeout=30).json()["api_key"]  # a rotated key persists too

    pid = records(hub)[("alice", "sturdy")]["runtime"]["serving"]["pid"]
    os.kill(pid, signal.SIGKILL)
    failed = wait_for(lambda: (lambda i: i if i["state"] == "Failed" or i["restarts"] else None)(
        requests.get(api, headers=h, timeout=30).json()), 30, "the failure to show")
    assert "stopped unexpectedly" in failed["last_error"] and "signal 9" in failed["last_error"]
    info = wait_for(lambda: (lambda i: i if i["state"] == "Available" and i["restarts"] == 1 else None)(
        requests.get(api, headers=h, timeout=30).json()), 60, "the restart")
    assert "Restarted automatically" in info["last_error"]
    assert requests.post(url, json=body, headers=bearer(key), timeout=10).json()["outputs"][0]["data"] == [1]
    new_pid = records(hub)[("alice", "sturdy")]["runtime"]["serving"]["pid"]
    assert new_pid != pid and pid_alive(new_pid)

    # restart the platform service (the hub restarts managed services that exit): re-adopted, same process
    service_pid = wait_for(lambda: _service_pid(hub), 10, "the platform service process")
    os.kill(service_pid, signal.SIGTERM)
    wait_for(lambda: not pid_alive(service_pid), 15, "the service to stop")
    # the model server keeps running; its URL answers again once the gateway (in the service) is back
    wait_for(lambda: _service_pid(hub) not in (None, service_pid), 90, "the hub to restart the service")
    info = wait_for(lambda: (lambda r: r.json() if r.status_code == 200 else None)(
        requests.get(api, headers=h, timeout=30)), 60, "the service to answer again")
    assert info["state"] == "Available" and info["restarts"] == 1
    assert records(hub)[("alice", "sturdy")]["runtime"]["serving"]["pid"] == new_pid  # adopted, not restarted
    assert [p for p in mlserver_pids(hub) if p == new_pid] == [new_pid] and len(
        [k for k in records(hub) if k == ("alice", "sturdy")]) == 1
    assert info["api_key"] == key and info["public"] is False  # the key and the flag survived the restart
    answer = wait_for(lambda: (lambda r: r if r.status_code == 200 else None)(
        requests.post(url, json=body, headers=bearer(key), timeout=10)), 30, "the gateway route")
    assert answer.json()["outputs"][0]["data"] == [1]
    assert requests.post(url, json=body, timeout=10).status_code == 401  # still private
    kernel.execute('DeployClient().delete("sturdy")')
    assert not pid_alive(new_pid)


def _service_pid(hub) -> int | None:
    state = hub.runtime["state_dir"]
    found = pids_where(lambda args: "odh_spawner.platform" in args and any(state in a for a in args))
    return found[0] if found else None


def test_deploy_widgets_headless(hub, alice):
    """The Deploy button and the deployments list, headless, against the real server and platform."""
    import numpy as np
    from sklearn.linear_model import LogisticRegression

    from server_extension.deploy import DeployClient
    from server_extension.deploy_widget import DeployButton, DeploymentsList

    env = alice.env
    s3 = boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    client = DeployClient(alice.url, alice.token, bucket=env["ODH_MODELS_BUCKET"], s3=s3)
    X = np.random.default_rng(1).random((50, 3))
    model = LogisticRegression().fit(X, (X[:, 1] > 0.5).astype(int))
    ui = DeployButton(model, name="widget", sample=[[0.1, 0.9, 0.1]], client=client)
    assert "data-state='pending'" in ui.stages.value and ui.actions["delete"].disabled
    ui.deploy()
    assert "data-stage='ready' data-state='done'" in ui.stages.value, ui.result.value
    assert "/v2/models/alice.widget/infer" in ui.result.value and "[1]" in ui.result.value
    assert ui.actions["rollback"].disabled  # only one version so far
    ui.redeploy(LogisticRegression().fit(X, (X[:, 1] < 0.5).astype(int)))
    assert "v2 of 2" in ui.result.value and not ui.actions["rollback"].disabled
    ui.rollback()
    assert "v1 of 2" in ui.result.value
    ui.test()
    assert "test: [[0.1, 0.9, 0.1]] → [1]" in ui.result.value

    listing = DeploymentsList(client)
    assert "data-name='widget'" in listing.table.value and listing.select.options == ("widget",)
    bad = DeployButton(object(), name="Not_DNS", client=client)
    bad.deploy()
    assert "Error" in bad.result.value and "Cannot deploy a object" in bad.result.value
    ui.delete()
    assert "Deleted widget" in ui.result.value
    listing.refresh()
    assert "No deployments yet" in listing.table.value


def test_deployment_keeps_serving_across_server_stop_and_hub_restart(ceph, config_dir, tmp_path_factory):
    """A private hub (sharing the session's Ceph): deploy, stop the user's server, stop the hub (SIGTERM: it
    stops its servers, services and proxy), start it again: the same model process is re-adopted and routed."""
    from odh_spawner.localplatform.hub import HubProcess, runtime_settings
    from odh_spawner.localplatform.settings import load_settings
    from tests.conftest import ARTIFACTS
    from tests.support.hubclient import HubUserSession

    state = tmp_path_factory.mktemp("hub-restart")
    runtime = runtime_settings(load_settings(config_dir), str(state), ceph)
    runtime["idle_culler"] = {"enabled": False}
    log = os.path.join(ARTIFACTS, "jupyterhub-restart.log")
    hub = HubProcess(runtime, log_path=log).start()
    try:
        user = HubUserSession(hub.url, "bob", "bob-odh")
        assert user.api("POST", "/users/bob/server", json={"profile": "minimal"}).status_code in (201, 202)
        user.wait_ready()
        import joblib
        from sklearn.dummy import DummyClassifier

        joblib.dump(DummyClassifier(strategy="constant", constant=7).fit([[0], [1]], [7, 7]),
                    os.path.join(str(state), "home", "bob", "seven.joblib"))
        h = {"Authorization": f"token {user.token}"}
        api = f"{hub.url}/user/bob/odh/api/deployments"
        assert requests.post(api, headers=h, json={"name": "seven", "path": "seven.joblib"}, timeout=60).status_code == 202
        wait_for(lambda: requests.get(f"{api}/seven", headers=h, timeout=30).json()["stage"] == "ready", 90, "ready")
        url = f"{hub.url}/v2/models/bob.seven/infer"
        body = {"inputs": [{"name": "x", "shape": [1, 1], "datatype": "FP64", "data": [0.5]}]}
        kh = bearer(requests.get(f"{api}/seven", headers=h, timeout=30).json()["api_key"])
        assert requests.post(url, json=body, headers=kh, timeout=10).json()["outputs"][0]["data"] == [7]
        pid = records(hub)[("bob", "seven")]["runtime"]["serving"]["pid"]

        user.stop()  # the server stops; the deployment does not
        assert requests.post(url, json=body, headers=kh, timeout=10).json()["outputs"][0]["data"] == [7]
        hub.proc.send_signal(signal.SIGTERM)
        hub.proc.wait(60)
        assert pid_alive(pid)  # outlives the hub, the proxy and the platform service

        hub = HubProcess(runtime, log_path=log).start()
        platform = runtime["platform_url"] + "/services/odh-platform/api/deployments/seven"
        info = wait_for(lambda: (lambda r: r.json() if r.status_code == 200 else None)(
            requests.get(platform, headers=h, timeout=30)), 60, "the platform service after the hub restart")
        assert info["state"] == "Available" and info["restarts"] == 0
        assert records(hub)[("bob", "seven")]["runtime"]["serving"]["pid"] == pid  # re-adopted, not restarted
        wait_for(lambda: "/v2/models/bob.seven" in proxy_routes(hub), 30, "the route to be re-added")
        assert requests.post(url, json=body, headers=kh, timeout=10).json()["outputs"][0]["data"] == [7]
        assert requests.post(url, json=body, timeout=10).status_code == 401
        assert requests.delete(platform, headers=h, timeout=60).status_code == 200
        assert not pid_alive(pid)
    finally:
        hub.stop()
