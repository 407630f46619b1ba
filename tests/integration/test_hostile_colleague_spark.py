"""The hostile colleague and Spark: alice's server starts with a Spark cluster (her system user, her secret, her
guarded UI ports); bob, from his own kernel, tries to run an application on her master (without a secret, and
with a guessed one), read her Spark secret, look into her daemons' environments and open her master's, worker's
and driver's web UIs. Each refusal is proven by its cause: Spark's authentication error in bob's own driver
output, PermissionError, ECONNREFUSED from the port guard. Runs as root, as `make up` and CI do."""

import html
import json
import os
import pwd
import re

import pytest
import requests

from odh_spawner.host.portguard import PortGuard
from odh_spawner.naming import system_user
from odh_spawner.spark import procs
from odh_spawner.spark.state import read_state
from tests.integration.test_hostile_colleague import TRY, attempt
from tests.integration.test_spark_auth import NO_SECRET, WRONG_SECRET
from tests.support.fixtures import RunningServer, server_pid, wait_spark_ready
from tests.support.kernel import Kernel

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="system users need a root hub (CI runs as root)")

# bob's application, from his kernel: its driver's output is read until it ran or says why it was refused (the
# driver would retry its registration for a minute: the cause is in its log long before)
INTRUDER = '''
import json, os, secrets, select, subprocess, sys, tempfile, time
app = """
from pyspark.sql import SparkSession
s = SparkSession.builder.master(%r).appName("bob-intrusion").config("spark.ui.enabled", "false").getOrCreate()
print("RAN", s.range(10).count(), flush=True)
"""
conf = tempfile.mkdtemp()  # bob's own Spark configuration: none, or a guessed secret
if GUESS:
    with open(os.path.join(conf, "spark-defaults.conf"), "w") as f:
        f.write("spark.authenticate true\\nspark.authenticate.secret %s\\n" % secrets.token_urlsafe(32))
env = {**os.environ, "SPARK_CONF_DIR": conf}
p = subprocess.Popen([sys.executable, "-c", app % MASTER], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                     text=True, env=env, start_new_session=True)
out, deadline = [], time.monotonic() + TIMEOUT
while time.monotonic() < deadline and not any(m in "".join(out) for m in MARKERS + ["RAN "]):
    if select.select([p.stdout], [], [], 0.5)[0]:
        line = p.stdout.readline()
        if not line:
            break
        out.append(line)
os.killpg(p.pid, 9)
p.wait()
text = "".join(out)
print(json.dumps({"ran": "RAN " in text, "why": [l.strip() for l in out if any(m in l for m in MARKERS)][:1],
                  "tail": text[-1500:]}))
'''

# bob opens a TCP connection to each of alice's UI ports, and asks for the page if it connects
PROBE = '''
import json, socket
def probe(port):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
    except OSError as e:
        return [type(e).__name__, e.errno]
    try:
        s.sendall(b"GET / HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n")
        return ["connected", s.recv(200).decode("latin-1")]
    except OSError as e:
        return [type(e).__name__, e.errno]
    finally:
        s.close()
print(json.dumps({str(port): probe(port) for port in PORTS}))
'''

ALICE_APP = '''
from pyspark.sql import SparkSession
spark = SparkSession.builder.appName("alice-ui").getOrCreate()
print("count", spark.range(100).count(), "ui-port", spark.sparkContext.getConf().get("spark.ui.port"))
'''


@pytest.fixture(scope="module")
def alice_with_spark(login):
    alice = login("alice")
    r = alice.api("POST", "/users/alice/server", json={"profile": "datascience", "spark": {"workers": 1}})
    assert r.status_code in (201, 202), r.text
    alice.wait_ready()
    server = RunningServer(alice, server_pid(login("admin"), "alice"))
    wait_spark_ready(server.env, workers=1)  # bob is refused by her cluster, not by a master still booting
    yield server
    if alice.model()["servers"].get(""):  # the last test stops it itself
        alice.stop()


def alices_daemons(master_url: str) -> list[int]:
    port = master_url.rsplit(":", 1)[-1]
    return [int(pid) for pid in filter(str.isdigit, os.listdir("/proc"))
            if any(a.startswith("org.apache.spark.deploy.") for a in procs.cmdline(int(pid)))
            and any(port in a for a in procs.cmdline(int(pid)))]


def test_bob_cannot_use_or_read_alices_spark_cluster(alice_with_spark, user_server):
    alice = alice_with_spark
    env = alice.env
    master = env["SPARK_MASTER_URL"]
    conf = os.path.join(env["SPARK_CONF_DIR"], "spark-defaults.conf")
    assert "spark.authenticate" in open(conf).read() and (os.stat(conf).st_mode & 0o777) == 0o600
    daemons = alices_daemons(master)
    assert daemons and all(pwd.getpwuid(os.stat(f"/proc/{p}").st_uid).pw_name == system_user("alice")
                           for p in daemons), "alice's master and worker run as her system user"

    bob = user_server("bob")
    kernel = Kernel(bob.url, bob.token)
    run = "import json\nMASTER, TIMEOUT, GUESS, MARKERS = %r, %d, %r, %r\n"
    try:
        control = attempt(kernel, run % ("local[1]", 120, False, []) + INTRUDER)
        assert control["ran"], f"bob's kernel runs Spark itself (so a refusal below means something): {control}"
        no_secret = attempt(kernel, run % (master, 180, False, [NO_SECRET]) + INTRUDER)
        guessed = attempt(kernel, run % (master, 180, True, [WRONG_SECRET]) + INTRUDER)
        reads = attempt(kernel, TRY + f'''
print(json.dumps({{"secret conf": attempt(lambda: open({conf!r}).read()),
                  "daemon environ": attempt(lambda: open("/proc/{daemons[0]}/environ", "rb").read())}}))''')
    finally:
        kernel.close()
    # refused by authentication, as bob's own driver says, and nothing of his ran
    assert not no_secret["ran"] and no_secret["why"] and NO_SECRET in no_secret["why"][0], no_secret["tail"]
    assert not guessed["ran"] and guessed["why"] and WRONG_SECRET in guessed["why"][0], guessed["tail"]
    assert reads == {"secret conf": "PermissionError", "daemon environ": "PermissionError"}, reads
    apps = requests.get(alice.url + "odh/api/spark", headers={"Authorization": f"token {alice.token}"},
                        timeout=30).json()
    assert "bob-intrusion" not in json.dumps(apps)


def test_bob_cannot_open_alices_spark_uis(alice_with_spark, user_server, hub):
    alice = alice_with_spark
    env = alice.env
    state = read_state(os.path.dirname(env["SPARK_CONF_DIR"]))
    assert state is not None and state.guard_id and state.driver_ui_ports
    h = {"Authorization": f"token {alice.token}"}
    mine = Kernel(alice.url, alice.token)  # alice's notebook runs a driver: its UI is up on her guarded port
    try:
        out = mine.execute(ALICE_APP)
        assert "count 100" in out, out
        driver_ui = state.driver_ui_ports[0]
        assert f"ui-port {driver_ui}" in out, f"her driver's UI is pinned to the first guarded port: {out}"
        ports = {"master": state.master.ui_port, "worker": state.workers[0].ui_port, "driver": driver_ui}

        bob = user_server("bob")
        kernel = Kernel(bob.url, bob.token)
        try:
            probes = attempt(kernel, f"PORTS = {sorted(ports.values())!r}\n" + PROBE)
            # the same probe from alice's own kernel: her UIs are up and hers to open
            own = attempt(mine, f"PORTS = {sorted(ports.values())!r}\n" + PROBE)
        finally:
            kernel.close()
        for role, port in ports.items():
            assert probes[str(port)] == ["ConnectionRefusedError", 111], (role, probes[str(port)])
            assert own[str(port)][0] == "connected" and own[str(port)][1].startswith("HTTP/1."), (role, own)

        # alice's own server proxy path still works: the master's page, her worker's and her driver's UI
        ui = f"{hub.url}/user/alice/odh/spark-ui/"
        r = requests.get(ui, headers=h, timeout=30)
        assert r.status_code == 200 and "Spark Master" in r.text and "alice-ui" in r.text
        # the master's UI offers no kill link (spark.ui.killEnabled=false), not even to its owner
        assert "app/kill" not in r.text and "kill-link" not in r.text
        links = {html.unescape(link) for link in re.findall(r'href="([^"]+)"', r.text)}
        worker = next(link for link in links if "/proxy/worker-" in link)
        r = requests.get(hub.url + worker, headers=h, timeout=30)
        assert r.status_code == 200 and "Spark Worker" in r.text
        app = next(link for link in links if re.search(r"/proxy/app-[0-9-]+$", link))
        r = requests.get(hub.url + app + "/jobs/", headers=h, timeout=30)
        assert r.status_code == 200 and "Spark Jobs" in r.text and "alice-ui" in r.text
        mine.execute("spark.stop()")
    finally:
        mine.close()


def test_alices_ui_ports_are_released_when_her_server_stops(alice_with_spark):
    alice = alice_with_spark
    state = read_state(os.path.dirname(alice.env["SPARK_CONF_DIR"]))
    guard = PortGuard(state.guard_id)
    uid = pwd.getpwnam(system_user("alice")).pw_uid
    assert {p: guard.owned().get(p) for p in state.ui_ports} == {p: {uid} for p in state.ui_ports}
    alice.session.stop()
    left = set(guard.owned()) & set(state.ui_ports)
    assert not left, f"alice's stopped cluster still guards {sorted(left)}"
