"""The hostile colleague and Spark: alice's server starts with a Spark cluster (her system user, her secret);
bob, from his own kernel, tries to run an application on her master, read her Spark secret and look into her
daemons' environments. Runs as root, as `make up` and CI do."""

import json
import os
import pwd

import pytest
import requests

from odh_spawner.naming import system_user
from odh_spawner.spark import procs
from tests.integration.test_hostile_colleague import TRY, attempt
from tests.support.fixtures import RunningServer, server_pid, wait_spark_ready
from tests.support.kernel import Kernel

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="system users need a root hub (CI runs as root)")

INTRUDER = '''
import subprocess, sys
app = """
from pyspark.sql import SparkSession
s = SparkSession.builder.master(%r).appName("bob-intrusion").config("spark.ui.enabled", "false").getOrCreate()
print("RAN", s.range(10).count(), flush=True)
"""
def text(x):
    return x.decode("utf8", "replace") if isinstance(x, bytes) else (x or "")
try:
    r = subprocess.run([sys.executable, "-c", app % MASTER], capture_output=True, text=True, timeout=TIMEOUT)
    out, err = r.stdout, r.stderr
except subprocess.TimeoutExpired as e:
    out, err = text(e.stdout), text(e.stderr) + "\\n(timed out)"
print(json.dumps({"ran": "RAN" in out, "why": [l for l in err.splitlines() if l.strip()][-3:]}))
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
    alice.stop()


def test_bob_cannot_use_or_read_alices_spark_cluster(alice_with_spark, user_server):
    alice = alice_with_spark
    env = alice.env
    master = env["SPARK_MASTER_URL"]
    conf = os.path.join(env["SPARK_CONF_DIR"], "spark-defaults.conf")
    assert "spark.authenticate" in open(conf).read() and (os.stat(conf).st_mode & 0o777) == 0o600
    port = master.rsplit(":", 1)[-1]
    daemons = [int(pid) for pid in filter(str.isdigit, os.listdir("/proc"))
               if any(a.startswith("org.apache.spark.deploy.") for a in procs.cmdline(int(pid)))
               and any(port in a for a in procs.cmdline(int(pid)))]
    assert daemons and all(pwd.getpwuid(os.stat(f"/proc/{p}").st_uid).pw_name == system_user("alice")
                           for p in daemons), "alice's master and worker run as her system user"

    bob = user_server("bob")
    kernel = Kernel(bob.url, bob.token)
    try:
        control = attempt(kernel, "import json\nMASTER, TIMEOUT = 'local[1]', 120\n" + INTRUDER)
        assert control["ran"], f"bob's kernel runs Spark itself (so a refusal below means something): {control}"
        result = attempt(kernel, "import json\nMASTER, TIMEOUT = %r, 25\n" % master + INTRUDER)
        reads = attempt(kernel, TRY + f'''
print(json.dumps({{"secret conf": attempt(lambda: open({conf!r}).read()),
                  "daemon environ": attempt(lambda: open("/proc/{daemons[0]}/environ", "rb").read())}}))''')
    finally:
        kernel.close()
    assert not result["ran"], "bob's application ran on alice's cluster"
    assert reads == {"secret conf": "PermissionError", "daemon environ": "PermissionError"}, reads
    apps = requests.get(alice.url + "odh/api/spark", headers={"Authorization": f"token {alice.token}"},
                        timeout=30).json()
    assert "bob-intrusion" not in json.dumps(apps)
