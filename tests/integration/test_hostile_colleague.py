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

import pytest
import requests

from odh_spawner.naming import state_dir_name, system_user
from tests.support.kernel import Kernel

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
