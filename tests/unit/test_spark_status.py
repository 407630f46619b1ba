"""The standalone master's JSON -> SparkStatus (the shape Spark 4.3's master serves at /json/)."""

from odh_spawner.spark import parse_master_json

MASTER_JSON = {
    "url": "spark://127.0.0.1:7077",
    "workers": [
        {"id": "worker-1", "host": "127.0.0.1", "port": 40001, "webuiaddress": "http://127.0.0.1:40002", "cores": 2,
         "coresused": 1, "coresfree": 1, "memory": 1024, "memoryused": 512, "memoryfree": 512, "state": "ALIVE"},
        {"id": "worker-2", "host": "127.0.0.1", "port": 40003, "cores": 2, "coresused": 0, "memory": 1024,
         "memoryused": 0, "state": "DEAD"},
        {"id": "worker-3", "host": "127.0.0.1", "port": 40005, "cores": 1, "coresused": 0, "memory": 512,
         "memoryused": 0, "state": "ALIVE"},
        {"id": "other", "host": "127.0.0.1", "port": 49999, "cores": 8, "memory": 8192, "state": "ALIVE"},
    ],
    "aliveworkers": 3,
    "activeapps": [{"id": "app-1", "name": "etl", "cores": 1, "memoryperexecutor": 512, "user": "alice",
                    "state": "RUNNING", "duration": 1234, "starttime": 1}],
    "completedapps": [],
    "status": "ALIVE",
}


def test_counts_only_alive_workers_of_this_cluster():
    s = parse_master_json(MASTER_JSON, "http://127.0.0.1:8080", ports=[40001, 40003, 40005])
    assert s.state == "ALIVE" and s.master_url == "spark://127.0.0.1:7077"
    assert [w.id for w in s.workers] == ["worker-1", "worker-2", "worker-3"]
    assert s.workers_alive == 2 and s.cores == 3 and s.cores_used == 1
    assert s.memory == 1536 * 2**20 and s.memory_used == 512 * 2**20


def test_applications_and_summary():
    s = parse_master_json(MASTER_JSON, "http://127.0.0.1:8080", ports=[40001])
    (app,) = s.running_applications
    assert (app.id, app.name, app.cores, app.memory_per_executor, app.user) == ("app-1", "etl", 1, 2**29, "alice")
    d = s.to_dict()
    assert d["workers_alive"] == 1 and d["applications"][0]["name"] == "etl" and d["ui_url"].endswith(":8080")


def test_tolerates_a_master_that_is_not_leading_yet():
    s = parse_master_json({"status": "STANDBY"})
    assert s.state == "STANDBY" and s.workers == () and s.applications == () and s.cores == 0
