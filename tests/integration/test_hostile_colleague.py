"""A hostile colleague: user bob, from his own kernel (through the kernel protocol, as a user works), tries to
reach user alice's keys, token, files and processes, and the platform's own secrets. Every attempt fails.

Each test says what bob tried. Runs on the local platform as root (as `make up` and CI do): each hub user's
server runs as their own system user. Features add their attempts here as they land.
"""

import json
import os
import pwd
import signal
import time

import boto3
import pytest
import requests
from botocore.config import Config

from odh_spawner.deploy.local import LOG, LocalMLServerBackend
from odh_spawner.naming import state_dir_name, system_user
from server_extension.ingest import IngestClient, ingest
from tests.support.kafka import create_topic, produce
from tests.support.kernel import Kernel
from tests.support.wait import wait_for

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="system users need a root hub (CI runs as root)")


@pytest.fixture(scope="module")
def alice(user_server):
    server = user_server("alice")
    kernel = Kernel(server.url, server.token)
    kernel.execute("open('diary.txt', 'w').write('alice private notes')")
    yield server
    kernel.close()


@pytest.fixture(scope="module")
def bob_kernel(user_server):
    server = user_server("bob")
    kernel = Kernel(server.url, server.token)
    yield kernel
    kernel.close()


def attempt(kernel: Kernel, code: str) -> dict:
    """Run bob's attempt; it prints one JSON object saying what happened."""
    return json.loads(kernel.execute(code).strip().splitlines()[-1])


TRY = '''
import json, os
def attempt(fn):
    try:
        fn()
        return "succeeded"
    except Exception as e:
        return type(e).__name__
'''


def test_servers_run_as_their_own_system_users(alice, user_server, bob_kernel, hub):
    who = attempt(bob_kernel, "import json, os, pwd; print(json.dumps({'uid': os.getuid(), 'euid': os.geteuid(), "
                              "'name': pwd.getpwuid(os.getuid()).pw_name, 'home': os.environ['HOME'], "
                              "'umask': os.umask(0o077)}))")
    assert who["uid"] != 0 and who["euid"] != 0
    assert who["name"] == system_user("bob")
    assert who["home"] == os.path.join(hub.state_dir, "home", state_dir_name("bob"))
    st = os.stat(who["home"])
    assert (st.st_uid, st.st_mode & 0o777) == (pwd.getpwnam(system_user("bob")).pw_uid, 0o700)
    alice_uid = os.stat(f"/proc/{alice.pid}").st_uid
    assert pwd.getpwuid(alice_uid).pw_name == system_user("alice") != who["name"]


def test_bob_cannot_read_alices_process_environment_or_signal_it(alice, bob_kernel):
    """bob tries /proc/<alice's server>/environ (her S3 keys and hub token live there) and kill(pid, 0)."""
    result = attempt(bob_kernel, TRY + f'''
pid = {alice.pid}
print(json.dumps({{"environ": attempt(lambda: open(f"/proc/{{pid}}/environ", "rb").read()),
                  "signal": attempt(lambda: os.kill(pid, 0)),
                  "cwd": attempt(lambda: os.listdir(f"/proc/{{pid}}/cwd"))}}))''')
    assert result == {"environ": "PermissionError", "signal": "PermissionError", "cwd": "PermissionError"}, result


def test_no_process_bob_can_read_holds_alices_secrets(alice, bob_kernel):
    """bob scans every process environment and command line he can read for S3 keys and hub tokens."""
    found = attempt(bob_kernel, '''
import json, os
seen = set()
for pid in filter(str.isdigit, os.listdir("/proc")):
    for part in ("environ", "cmdline"):
        try:
            blob = open(f"/proc/{pid}/{part}", "rb").read().decode("utf8", "replace")
        except Exception:
            continue
        seen.update(blob.replace("=", "\\0").split("\\0"))
print(json.dumps(sorted(v for v in seen if len(v) >= 16)))''')
    alice_env = alice.env
    secrets = {k: alice_env[k] for k in ("AWS_SECRET_ACCESS_KEY", "JUPYTERHUB_API_TOKEN") if alice_env.get(k)}
    assert len(secrets) == 2
    leaked = [k for k, v in secrets.items() if any(v in s for s in found)]
    assert not leaked, f"bob found alice's {leaked} in a process he can read"


def test_bob_cannot_read_alices_home(alice, bob_kernel, hub):
    home = os.path.join(hub.state_dir, "home", state_dir_name("alice"))
    assert os.path.exists(os.path.join(home, "diary.txt"))
    result = attempt(bob_kernel, TRY + f'''
home = {home!r}
print(json.dumps({{"list": attempt(lambda: os.listdir(home)),
                  "read": attempt(lambda: open(os.path.join(home, "diary.txt")).read()),
                  "write": attempt(lambda: open(os.path.join(home, "planted.py"), "w").write("x"))}}))''')
    assert result == {"list": "PermissionError", "read": "PermissionError", "write": "PermissionError"}, result


def test_bob_cannot_read_the_platforms_secrets(alice, bob_kernel, hub, ceph):
    """The hub database, cookie secret, runtime settings (proxy token), RGW admin keys, platform records."""
    targets = {
        "list the state directory": ("listdir", hub.state_dir),
        "hub database": ("read", os.path.join(hub.state_dir, "jupyterhub.sqlite")),
        "cookie secret": ("read", os.path.join(hub.state_dir, "jupyterhub_cookie_secret")),
        "hub settings (proxy token)": ("read", os.path.join(hub.state_dir, "hub-settings.json")),
        "hub log": ("read", hub.log_path),
        "RGW admin keys": ("read", ceph.admin_keys_file),
        "Ceph keyring": ("read", os.path.join(ceph.dir, "keyring")),
        "platform records": ("listdir", os.path.join(hub.state_dir, "platform")),
        "hub environment": ("read", f"/proc/{hub.proc.pid}/environ"),
    }
    for what, (_, path) in targets.items():
        assert os.path.exists(path), f"{what}: {path} should exist for this test to mean anything"
    result = attempt(bob_kernel, TRY + f'''
targets = {targets!r}
ops = {{"read": lambda p: open(p, "rb").read(), "listdir": os.listdir}}
print(json.dumps({{what: attempt(lambda op=op, p=p: ops[op](p)) for what, (op, p) in targets.items()}}))''')
    reached = {what: how for what, how in result.items() if how != "PermissionError"}
    assert not reached, f"bob reached: {reached}"


def test_bob_cannot_use_alices_server_or_hub_identity(alice, user_server):
    """bob's own hub token against alice's notebook server API and her hub user model."""
    bob = user_server("bob")
    r = requests.get(alice.url + "api/contents", headers={"Authorization": f"token {bob.env['JUPYTERHUB_API_TOKEN']}"},
                     timeout=30, allow_redirects=False)
    assert r.status_code in (403, 404), r.status_code
    hub_url = alice.url.split("/user/")[0]
    r = requests.get(hub_url + "/hub/api/users/alice", timeout=30,
                     headers={"Authorization": f"token {bob.env['JUPYTERHUB_API_TOKEN']}"})
    assert r.status_code in (403, 404), r.status_code


DEPLOY = '''
import numpy as np
from sklearn.linear_model import LogisticRegression
from server_extension.deploy import deploy
X = np.random.default_rng(0).random((60, 4)); y = (X[:, 0] > 0.5).astype(int)
d = deploy(LogisticRegression().fit(X, y), name="private-model")
print(d.infer_url)
'''


@pytest.fixture(scope="module")
def alices_model(alice, hub):
    kernel = Kernel(alice.url, alice.token)
    try:
        url = kernel.execute(DEPLOY, timeout=300).strip().splitlines()[-1]
        record = os.path.join(hub.state_dir, "platform", "deployments", state_dir_name("alice"), "private-model",
                              "deployment.json")
        with open(record) as f:
            serving = json.load(f)["runtime"]["serving"]
        yield {"url": url, **serving}
        kernel.execute('from server_extension.deploy import DeployClient; DeployClient().delete("private-model")')
    finally:
        kernel.close()


def test_alices_model_server_runs_as_her_and_bob_cannot_reach_it(alices_model, bob_kernel, user_server):
    """bob calls alice's endpoint through the hub anonymously and with his token, then connects straight to
    her model server's HTTP, gRPC and metrics ports on 127.0.0.1, and reads her model files."""
    assert pwd.getpwuid(os.stat(f"/proc/{alices_model['pid']}").st_uid).pw_name == system_user("alice")
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0.9, 0.1, 0.1, 0.1]}]}
    result = attempt(bob_kernel, TRY + f'''
import requests, socket
url, body = {alices_model["url"]!r}, {body!r}
token = os.environ["JUPYTERHUB_API_TOKEN"]
out = {{"anonymous": requests.post(url, json=body, timeout=30).status_code,
        "with bob's token": requests.post(url, json=body, timeout=30,
                                          headers={{"Authorization": "token " + token}}).status_code}}
for kind in ("port", "grpc_port", "metrics_port"):
    port = {alices_model!r}[kind]
    out["direct " + kind] = attempt(lambda: socket.create_connection(("127.0.0.1", port), timeout=5))
out["model files"] = attempt(lambda: os.listdir({alices_model["dir"]!r}))
print(json.dumps(out))''')
    assert result == {"anonymous": 401, "with bob's token": 403, "direct port": "ConnectionRefusedError",
                      "direct grpc_port": "ConnectionRefusedError", "direct metrics_port": "ConnectionRefusedError",
                      "model files": "PermissionError"}, result


SQUAT = '''
import json, socket, threading
seen = []
def squat(port):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("127.0.0.1", port))
    s.listen(16)
    def serve():
        while True:
            conn, _ = s.accept()
            conn.settimeout(2)
            try:
                data = conn.recv(65536)
            except OSError:
                data = b""
            seen.append(data.decode("latin-1")[:200])
            conn.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: text/html\\r\\nSet-Cookie: _xsrf=bob; Path=/\\r\\n"
                         b"Content-Length: 14\\r\\n\\r\\n<html>x</html>")
            conn.close()
    threading.Thread(target=serve, daemon=True).start()
    return s
'''


def test_bob_binds_the_port_of_alices_dead_model_server_and_gets_no_request(alices_model, bob_kernel, alice):
    """alice's model server dies; bob binds its HTTP port from his kernel before the platform restarts it (as
    alice did to her own in issue 18). Callers of alice's endpoint must never reach bob's server: the gateway
    refuses (503) until the platform has restarted alice's server on other ports (then her model answers)."""
    port = alices_model["port"]
    os.kill(alices_model["pid"], signal.SIGKILL)
    bound = attempt(bob_kernel, SQUAT + f'''
import time
for _ in range(200):
    try:
        sock = squat({port})
        break
    except OSError:
        time.sleep(0.01)
else:
    sock = None
print(json.dumps(sock is not None))''')
    assert bound is True, "bob could not bind the port (the test would prove nothing)"
    key = requests.get(f"{alice.url}odh/api/deployments/private-model", timeout=30,
                       headers={"Authorization": f"token {alice.token}"}).json()["api_key"]
    body = {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP64", "data": [0.9, 0.1, 0.1, 0.1]}]}
    statuses = []
    for _ in range(20):
        r = requests.post(alices_model["url"], json=body, headers={"Authorization": f"Bearer {key}"}, timeout=30)
        statuses.append(r.status_code)
        assert "set-cookie" not in r.headers and r.headers["content-type"] == "application/json", r.headers
        assert r.status_code in (200, 503), (r.status_code, r.text)
        if r.status_code == 503:
            assert r.json()["message"].startswith("The model server is not running; ")
        else:
            assert r.json()["outputs"][0]["data"] in ([0], [1])  # alice's model, restarted elsewhere
        time.sleep(0.25)
    assert 503 in statuses, statuses  # the record still named the dead server's port for a while
    seen = attempt(bob_kernel, "print(json.dumps(seen))")
    # no byte of a request; an empty connection may come from the platform's restart asking whether the old
    # port is free (host.procs.listening connects and sends nothing), never from the gateway
    assert [data for data in seen if data] == [], f"bob's server on alice's old port received: {seen}"


# -- buckets are owned (issue 18) ---------------------------------------------------------------------------
S3 = '''
import json
from server_extension.s3 import client_from_env
s3 = client_from_env()
'''


def last_json(kernel: Kernel, code: str) -> dict:
    """The last JSON object `code` printed (libraries may print warnings to stderr after it)."""
    out = kernel.execute(code)
    for line in reversed(out.strip().splitlines()):
        if line.startswith("{"):
            return json.loads(line)
    raise AssertionError(f"no JSON in the output:\n{out[-3000:]}")


def _new_hub_log(hub, offset: int) -> str:
    with open(hub.log_path, "rb") as f:
        f.seek(offset)
        return f.read().decode("utf-8", "replace")


def test_a_squatted_models_bucket_refuses_the_victims_first_deploy(bob_kernel, user_server, hub, ceph):
    """The measured attack: bob creates `odh-models-admin` before admin's storage exists and lets everyone
    write it, hoping admin's first one-click deploy uploads the pickle there. Admin's credential step does not
    use it (the hub logs it for the admin) and the deploy refuses with the reason; nothing lands in it."""
    import asyncio

    from odh_spawner.credentials.rgw import RgwCredentialStore
    from odh_spawner.naming import models_bucket, rgw_uid

    bucket = models_bucket("admin")
    store = RgwCredentialStore(ceph.endpoint, ceph.admin.access_key, ceph.admin.secret_key)
    asyncio.run(store.remove("admin"))  # admin's storage starts fresh, as on a first login (other modules may have made it)
    made = attempt(bob_kernel, S3 + f'''
_ = s3.create_bucket(Bucket={bucket!r}, ACL="public-read-write")
print(json.dumps({{"owner": s3.get_bucket_acl(Bucket={bucket!r})["Owner"]["ID"]}}))''')
    assert made == {"owner": rgw_uid("bob")}
    log_offset = os.path.getsize(hub.log_path)
    admin = user_server("admin")  # the credential step runs at this spawn and succeeds
    logged = _new_hub_log(hub, log_offset)
    assert f"Bucket {bucket} of hub user 'admin' is owned by RGW user {rgw_uid('bob')}" in logged, logged[-3000:]
    kernel = Kernel(admin.url, admin.token)
    try:
        out = last_json(kernel, '''
import json, joblib, numpy as np
from sklearn.linear_model import LogisticRegression
from server_extension.deploy import DeployError, deploy
X = np.random.default_rng(0).random((40, 4)); y = (X[:, 0] > 0.5).astype(int)
model = LogisticRegression().fit(X, y)
joblib.dump(model, "first-model.joblib")
try:
    deploy(model, name="first-model")
    out = {"deployed": True}
except DeployError as e:
    out = {"status": e.status, "message": e.message}
print(json.dumps(out))''')
    finally:
        kernel.close()
    refusal = (f"Your models bucket {bucket} belongs to another user (the name was taken before your storage was "
               "set up), so your model is not uploaded there. Tell your platform admin; nothing was deployed.")
    assert out == {"status": 403, "message": refusal}, out
    # the JupyterLab command's path (a file of the server) refuses the same way
    auth = {"Authorization": f"token {admin.token}"}
    r = requests.post(admin.url + "odh/api/deployments", json={"name": "first-model", "path": "first-model.joblib"},
                      headers=auth, timeout=60)
    assert (r.status_code, r.json()["message"]) == (403, refusal), r.text
    r = requests.get(admin.url + "odh/api/deployments", headers=auth, timeout=60)
    assert r.json()["deployments"] == []
    left = attempt(bob_kernel, S3 + f'''
keys = s3.list_objects_v2(Bucket={bucket!r}).get("KeyCount")
_ = s3.delete_bucket(Bucket={bucket!r})
print(json.dumps({{"keys": keys}}))''')
    assert left == {"keys": 0}, "admin's model landed in bob's bucket"


def test_bobs_open_bucket_is_refused_as_alices_ingestion_target(alice, bob_kernel, hub):
    """bob offers alice a bucket everyone may write (`bob-open-inbox`): an ingestion of alice's into it is
    refused on her notebook server and by the platform, though her keys could write there."""
    from server_extension.ingest import IngestClient
    from server_extension.client import OdhApiError

    bucket = "bob-open-inbox"
    attempt(bob_kernel, S3 + f'''
_ = s3.create_bucket(Bucket={bucket!r}, ACL="public-read-write")
print(json.dumps({{}}))''')
    env = alice.env
    import boto3
    from botocore.config import Config

    hers = boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))
    hers.put_object(Bucket=bucket, Key="probe", Body=b"x")  # the cause is ownership, not access
    hers.delete_object(Bucket=bucket, Key="probe")
    refusal = f"The bucket {bucket} belongs to another user; choose one of your own buckets."
    body = {"name": "into-bob", "topic": "bucket-owner-test", "bucket": bucket}
    r = requests.post(alice.url + "odh/api/ingestions", json=body, timeout=60,
                      headers={"Authorization": f"token {alice.token}"})
    assert (r.status_code, r.json()["message"]) == (403, refusal), r.text
    platform = IngestClient(hub.runtime["platform_url"] + "/services/odh-platform/", alice.token)
    with pytest.raises(OdhApiError) as e:
        platform.call("POST", json={**body, "create_topic": True})
    assert (e.value.status, e.value.message) == (403, refusal)
    assert "into-bob" not in [i["name"] for i in platform.call("GET")["ingestions"]]
    # a model in bob's bucket is refused the same way (deploy by model_uri)
    r = requests.post(alice.url + "odh/api/deployments", json={"name": "from-bob", "model_uri": f"s3://{bucket}/m/"},
                      timeout=60, headers={"Authorization": f"token {alice.token}"})
    assert (r.status_code, r.json()["message"]) == (403, refusal), r.text
    r = requests.post(hub.runtime["platform_url"] + "/services/odh-platform/api/deployments", timeout=60,
                      json={"name": "from-bob", "model_uri": f"s3://{bucket}/m/"},
                      headers={"Authorization": f"token {alice.token}"})  # the platform checks it itself
    assert (r.status_code, r.json()["message"]) == (403, refusal), r.text
    attempt(bob_kernel, S3 + f'''
_ = s3.delete_bucket(Bucket={bucket!r})
print(json.dumps({{}}))''')


SWAP = '''
import io, json, joblib, numpy as np
from sklearn.linear_model import LogisticRegression
from server_extension.deploy import DeployClient, DeployError
X = np.random.default_rng(1).random((40, 4)); y = (X[:, 0] > 0.5).astype(int)
c = DeployClient()
uri, framework, example, digests = c.upload(LogisticRegression().fit(X, y), "swapped")
bucket, _, prefix = uri[len("s3://"):].partition("/")
other = io.BytesIO(); joblib.dump(LogisticRegression().fit(X, 1 - y), other)
c.s3.put_object(Bucket=bucket, Key=prefix + "model.joblib", Body=other.getvalue())  # replaced after upload
c._json("POST", c._url(), json={"name": "swapped", "model_uri": uri, "framework": framework,
                                "example_input": example, "model_sha256": digests})
try:
    c.wait("swapped", 1, timeout=120)
    out = {"served": True}
except DeployError as e:
    out = {"status": e.status, "message": e.message}
print(json.dumps({**out, "digests": digests}))
'''


def test_a_model_file_replaced_after_upload_is_not_loaded(alice, hub):
    """The model object is replaced between upload and load (here with alice's own keys, standing in for
    anyone who could write it): the platform's loader finds another SHA-256 than the one recorded at upload,
    refuses to load it, and says so in the deployment's state; no model server starts."""
    kernel = Kernel(alice.url, alice.token)
    try:
        out = last_json(kernel, SWAP)
        changed = "The model file changed after upload; deploy it again."
        assert (out.get("status"), out.get("message")) == (502, changed), out
        assert list(out["digests"]) == ["model.joblib"]
        record = os.path.join(hub.state_dir, "platform", "deployments", state_dir_name("alice"), "swapped",
                              "deployment.json")
        with open(record) as f:
            saved = json.load(f)
        assert saved["state"] == "Failed" and saved["last_error"] == changed
        assert saved["versions"][0]["sha256"] == out["digests"] and saved["versions"][0]["error"] == changed
        assert not saved["runtime"].get("serving") and not saved["runtime"].get("pending")
        assert not os.path.exists(os.path.join(os.path.dirname(record), "v1", "model.joblib"))
    finally:
        kernel.execute('from server_extension.deploy import DeployClient\n'
                       'try:\n    DeployClient().delete("swapped")\nexcept Exception:\n    pass')
        kernel.close()


def _shadow_lines() -> list[str]:
    """What /etc/shadow holds (as root): lines no API answer or record may ever contain."""
    with open("/etc/shadow") as f:
        return [line for line in f.read().splitlines() if line.count(":") >= 8]


def test_alices_links_in_her_model_dir_never_bring_etc_shadow_into_her_deployment(alices_model, alice, hub):
    """alice (issue 18's measured attack) replaces her model server's old log, in her own version directory,
    with a link to /etc/shadow, tries to plant one where the platform keeps the log now, and kills her model
    server: the platform reads the log tail for the failure, restarts it, and shadow's lines are nowhere."""
    api = f"{alice.url}odh/api/deployments/private-model"
    h = {"Authorization": f"token {alice.token}"}
    record = os.path.join(hub.state_dir, "platform", "deployments", state_dir_name("alice"), "private-model",
                          "deployment.json")
    with open(record) as f:  # the model server running now (an earlier test may have had it restarted)
        serving = json.load(f)["runtime"]["serving"]
    restarts = requests.get(api, headers=h, timeout=30).json()["restarts"]
    version_dir, log = serving["dir"], serving["log"]
    assert log and os.path.dirname(os.path.dirname(log)) == os.path.dirname(version_dir) != version_dir
    st, service = os.stat(os.path.dirname(log)), os.stat(os.path.join(hub.state_dir, "platform")).st_uid
    assert st.st_uid in (0, service) and st.st_mode & 0o777 == 0o700, (st.st_uid, oct(st.st_mode))
    assert st.st_uid != pwd.getpwnam(system_user("alice")).pw_uid  # the platform's alone: she cannot plant there
    kernel = Kernel(alice.url, alice.token)
    try:
        result = attempt(kernel, TRY + f'''
import signal
old, log = os.path.join({version_dir!r}, "mlserver.log"), {log!r}
if os.path.lexists(old):
    os.unlink(old)
out = {{"old log": attempt(lambda: os.symlink("/etc/shadow", old)),
        "new log": attempt(lambda: os.unlink(log)),
        "link beside it": attempt(lambda: os.symlink("/etc/shadow", log + ".x")),
        "read it": attempt(lambda: open(log).read()),
        "kill": attempt(lambda: os.kill({serving["pid"]}, signal.SIGKILL))}}
print(json.dumps(out))''')
    finally:
        kernel.close()
    # as root the platform hands the version directory to her; after it dropped root (host.privsep) the directory
    # stays the service's and her group may only read it: she cannot even plant the old link
    hers = os.stat(version_dir).st_uid == pwd.getpwnam(system_user("alice")).pw_uid
    assert result == {"old log": "succeeded" if hers else "PermissionError", "new log": "PermissionError",
                      "link beside it": "PermissionError", "read it": "PermissionError", "kill": "succeeded"}, result

    info = wait_for(lambda: (lambda i: i if i["restarts"] > restarts and i["state"] == "Available" else None)(
        requests.get(api, headers=h, timeout=30).json()), 90, "the model server to be restarted")
    assert "signal 9" in info["last_error"], info
    assert info["log_tail"], info  # the tail was read: from root's own log, MLServer's lines
    with open(record) as f:
        stored = f.read()
    for line in _shadow_lines():
        assert line not in json.dumps(info) and line not in stored
    # a runtime record from before logs moved names no log: the old place is read safely, the link refused
    legacy = {k: v for k, v in serving.items() if k not in ("log", "log_offset", "url")}
    if not hers:  # planted as the directory's owner would have
        os.symlink("/etc/shadow", os.path.join(version_dir, LOG))
    assert os.path.islink(os.path.join(version_dir, LOG))
    assert LocalMLServerBackend(run_as_owner=False).log_tail(legacy) == [
        "(odh-hub: the log was not read: it is a symbolic link)"]


def test_a_fifo_alice_plants_for_her_ingestions_status_does_not_block_the_platform(alice, hub, kafka_broker):
    """alice freezes her own ingestion worker (SIGSTOP) and replaces its status.json, which the platform reads for
    every status request, with a FIFO, then with a link to /etc/shadow: the platform answers within a second each
    time, says in its log why it did not read the file, and shadow's lines are nowhere."""
    env = alice.env
    s3 = boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                      aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                      config=Config(s3={"addressing_style": "path"}))
    try:
        s3.create_bucket(Bucket="alice-fifo")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    create_topic(kafka_broker.bootstrap, "fifo-events", 1)
    produce(kafka_broker.bootstrap, "fifo-events", 100)
    client = IngestClient(hub.runtime["platform_url"] + "/services/odh-platform/", alice.token)
    ing = ingest(topic="fifo-events", bucket="alice-fifo", prefix="f/", flush_records=50, flush_seconds=1,
                 name="fifo", show_plan=False, client=client)
    try:
        ing.wait(100, timeout=120)
        path = os.path.join(hub.state_dir, "platform", "ingestions", state_dir_name("alice"), "fifo",
                            "ingestion.json")
        with open(path) as f:
            rt = json.load(f)["runtime"]
        status = os.path.join(rt["run_dir"], "status.json")
        kernel = Kernel(alice.url, alice.token)
        try:
            result = attempt(kernel, TRY + f'''
import signal
status = {status!r}
out = {{"stop": attempt(lambda: os.kill({rt["pid"]}, signal.SIGSTOP)), "unlink": attempt(lambda: os.unlink(status)),
        "fifo": attempt(lambda: (os.mkfifo(status), os.chmod(status, 0o644)))}}
print(json.dumps(out))''')
            assert result == {"stop": "succeeded", "unlink": "succeeded", "fifo": "succeeded"}, result
            api = client.api + "/fifo"
            h = {"Authorization": f"token {alice.token}"}
            for planted in ("FIFO", "symbolic link"):
                t0 = time.monotonic()
                r = requests.get(api, headers=h, timeout=10)
                assert r.status_code == 200 and time.monotonic() - t0 < 1, (r.status_code, time.monotonic() - t0)
                for line in _shadow_lines():
                    assert line not in r.text
                wait_for(lambda: f"Not reading {status}: it is a {planted}" in open(hub.log_path,
                                                                                     errors="replace").read(),
                         10, f"the platform to say it refused a {planted}")
                if planted == "FIFO":
                    attempt(kernel, TRY + f'''
os.unlink({status!r}); os.symlink("/etc/shadow", {status!r}); print(json.dumps({{}}))''')
            attempt(kernel, TRY + f'''
import signal; os.unlink({status!r}); os.kill({rt["pid"]}, signal.SIGCONT); print(json.dumps({{}}))''')
        finally:
            kernel.close()
    finally:
        ing.delete()
