"""A profile's Spark cluster starts with the server (through the real hub) and is gone when it stops."""

import time

import requests

from tests.support.fixtures import pid_alive, process_env, server_pid, wait_spark_ready


def test_server_with_spark_cluster_lives_and_dies_together(login):
    bob = login("bob")
    r = bob.api("POST", "/users/bob/server", json={"profile": "datascience", "spark": {"workers": 2}})
    assert r.status_code in (201, 202), r.text
    bob.wait_ready(timeout=180)
    env = process_env(server_pid(login("admin"), "bob"))
    master, ui = env["SPARK_MASTER_URL"], env["ODH_SPARK_UI_URL"]
    assert master.startswith("spark://127.0.0.1:") and env["MASTER"] == master
    status = wait_spark_ready(env, workers=2)
    alive = [w for w in status["workers"] if w["state"] == "ALIVE"]
    assert len(alive) == 2 and status["status"] == "ALIVE"
    spark_pids = []
    import psutil

    for proc in psutil.process_iter(["pid", "cmdline"]):
        cmd = " ".join(proc.info["cmdline"] or [])
        if "org.apache.spark.deploy" in cmd and "bob" in cmd:
            spark_pids.append(proc.info["pid"])
    assert len(spark_pids) >= 3, spark_pids  # master + 2 workers
    bob.stop()
    deadline = time.monotonic() + 30
    while any(pid_alive(p) for p in spark_pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not [p for p in spark_pids if pid_alive(p)], "Spark processes outlived the server"
    try:
        requests.get(ui + "/json/", timeout=2)
        raise AssertionError("the Spark master UI still answers")
    except requests.ConnectionError:
        pass


def test_spark_over_the_limit_is_refused(login):
    bob = login("bob")
    r = bob.api("POST", "/users/bob/server", json={"profile": "datascience", "spark": {"workers": 4}})
    assert r.status_code == 403 and "limit of 3" in r.json()["message"]
