"""Spark cluster ready time: LocalSparkCluster launch-to-ready (1 worker) vs. the same Master + Worker started by hand.

Both sides run the very same `bin/spark-class` commands with the same environment (daemon heap and JVM
options, 127.0.0.1, a spark-defaults.conf) and poll the same master JSON (`/json/`) every 0.1 s until one
worker is ALIVE. By hand means what a person does: start the master, start the worker right after it, wait.
Runs alternate so both see the same machine load. Time = launch to ready. Median of RUNS each; target
ratio <= 1.2. Ours is what OdhLocalSpawner does: `launch()` (during the spawn) then `wait_started()` (in the
background, beside the notebook server).

Also, through a real hub: spawn-to-ready with a 1-worker cluster vs the same profile without Spark, reported as
`spawn_added_seconds` (target <= 0.5 s: the JVMs boot beside the notebook server, not before it)."""

import asyncio
import json
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import median, write_result  # noqa: E402
from odh_spawner.host.ports import free_port  # noqa: E402
from odh_spawner.profiles.resolve import SparkRequest  # noqa: E402
from odh_spawner.spark import LocalSparkCluster  # noqa: E402
from odh_spawner.spark.daemon import SPARK_DEFAULTS  # noqa: E402
from odh_spawner.spark.procs import find_spark_home  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "3"))
REQUEST = SparkRequest(workers=1, worker_cores=1, worker_memory=512 * 2**20)
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def by_hand(directory: str) -> float:
    """Master and worker started with spark-class, one after the other; poll until the worker is ALIVE."""
    defaults = LocalSparkCluster.class_traits()
    conf = os.path.join(directory, "conf")
    os.makedirs(conf, exist_ok=True)
    with open(os.path.join(conf, "spark-defaults.conf"), "w") as f:
        f.writelines(f"{k} {v}\n" for k, v in SPARK_DEFAULTS.items())
    home = find_spark_home()
    env = {k: os.environ[k] for k in ("PATH", "HOME", "LANG", "JAVA_HOME") if k in os.environ}
    env.update(SPARK_HOME=home, SPARK_CONF_DIR=conf, SPARK_LOCAL_IP="127.0.0.1",
               SPARK_DAEMON_MEMORY=defaults["daemon_memory"].default_value,
               SPARK_DAEMON_JAVA_OPTS=defaults["daemon_java_opts"].default_value)
    mport, uport, wport, wuport = free_port(), free_port(), free_port(), free_port()
    spark_class = os.path.join(home, "bin", "spark-class")
    t0 = time.perf_counter()
    mlog_path, wlog_path = os.path.join(directory, "master.log"), os.path.join(directory, "worker.log")
    with open(mlog_path, "ab") as mlog, open(wlog_path, "ab") as wlog:
        master = subprocess.Popen([spark_class, "org.apache.spark.deploy.master.Master", "--host", "127.0.0.1",
                                   "--port", str(mport), "--webui-port", str(uport)],
                                  env=env, stdout=mlog, stderr=subprocess.STDOUT, start_new_session=True)
        worker = subprocess.Popen([spark_class, "org.apache.spark.deploy.worker.Worker", "--host", "127.0.0.1",
                                   "--port", str(wport), "--webui-port", str(wuport), "--cores", "1", "--memory",
                                   "512m", "--work-dir", os.path.join(directory, "work"), f"spark://127.0.0.1:{mport}"],
                                  env=env, stdout=wlog, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        while True:
            try:
                with NO_PROXY.open(f"http://127.0.0.1:{uport}/json/", timeout=2) as r:
                    data = json.load(r)
                if data.get("status") == "ALIVE" and any(w["state"] == "ALIVE" for w in data["workers"]):
                    return time.perf_counter() - t0
            except OSError:
                pass
            if time.perf_counter() - t0 > 180:
                raise RuntimeError("by-hand cluster not ready after 180s")
            time.sleep(0.1)
    finally:
        for p in (worker, master):
            p.terminate()
        for p in (worker, master):
            try:
                p.wait(15)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


async def ours(root: str, name: str) -> float:
    cluster = LocalSparkCluster(root, name, REQUEST)
    t0 = time.perf_counter()
    try:
        await cluster.launch()
        await cluster.wait_started()
        return time.perf_counter() - t0
    finally:
        await cluster.stop()


def spawn_added_seconds(runs: int) -> dict:
    """Through a real hub: spawn-to-ready of alice's datascience server with a 1-worker cluster vs without."""
    from odh_spawner.localplatform.hub import HubProcess, runtime_settings
    from odh_spawner.localplatform.settings import load_settings
    from tests.support.hubclient import HubUserSession
    from tests.support.profiles import demo_config_in_hub_environment

    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    os.environ.setdefault("ODH_PROXY_COMMAND", os.path.join(root, ".tools/chp/node_modules/.bin/configurable-http-proxy"))
    spawns = {"with_spark": [], "without": []}
    options = {"with_spark": {"profile": "datascience", "spark": {"workers": 1}}, "without": {"profile": "datascience"}}
    with tempfile.TemporaryDirectory() as d:
        # the hub's Python, as before the demo profiles named image locks (no environment build in the numbers)
        runtime = runtime_settings(load_settings(demo_config_in_hub_environment(os.path.join(d, "demo-config"))), d)
        runtime["idle_culler"] = {"enabled": False}
        hub = HubProcess(runtime, log_path=os.path.join(d, "hub.log")).start()
        try:
            user = HubUserSession(hub.url, "alice", "alice-odh")
            for i in range(runs + 1):  # the first pair warms caches and is not counted
                for kind in (("with_spark", "without") if i % 2 == 0 else ("without", "with_spark")):
                    t0 = time.perf_counter()
                    r = user.api("POST", "/users/alice/server", json=options[kind])
                    assert r.status_code in (201, 202), r.text
                    user.wait_ready(timeout=180)
                    if i:
                        spawns[kind].append(time.perf_counter() - t0)
                    user.stop()
        finally:
            hub.stop()
    added = median(spawns["with_spark"]) - median(spawns["without"])
    return {"spawn_with_spark_s": round(median(spawns["with_spark"]), 3),
            "spawn_without_s": round(median(spawns["without"]), 3),
            "spawn_added_seconds": round(added, 3), "spawn_added_target_s": 0.5, "spawn_added_met": added <= 0.5,
            "spawn_samples": {k: [round(x, 3) for x in v] for k, v in spawns.items()}}


def main() -> None:
    times = {"ours": [], "baseline": []}
    with tempfile.TemporaryDirectory() as d:
        for i in range(RUNS):
            order = ("ours", "baseline") if i % 2 == 0 else ("baseline", "ours")
            for side in order:
                if side == "ours":
                    times["ours"].append(asyncio.run(ours(os.path.join(d, "ours"), f"run-{i}")))
                else:
                    times["baseline"].append(by_hand(os.path.join(d, "hand", f"run-{i}")))
                print(side, round(times[side][-1], 2), flush=True)
    o, b = median(times["ours"]), median(times["baseline"])
    spawn = spawn_added_seconds(RUNS)
    write_result(
        "spark_cluster_ready",
        figure=f"median launch-to-ready of a local Spark standalone cluster (1 master + 1 worker, 1 core, 512m) over "
               f"{RUNS} runs each: LocalSparkCluster.launch() + wait_started() (what the spawn does) vs the same "
               "spark-class commands started by hand",
        ours=o, baseline=b, target=1.2, units="seconds (ratio ours/baseline)", met=o / b <= 1.2,
        samples={k: [round(x, 3) for x in v] for k, v in times.items()},
        load_average=round(os.getloadavg()[0], 2), **spawn,
    )


if __name__ == "__main__":
    main()
