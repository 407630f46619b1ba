"""Spawn time: OdhLocalSpawner with a profile vs. JupyterHub's plain SimpleLocalProcessSpawner, same server.

Two real hubs (each with its real proxy) run side by side; spawns alternate between them so both see the same
machine load. Time = POST /hub/api/users/NAME/server until the server is ready (the hub has reached it over
HTTP). Median of SPAWNS spawns each. Target: ratio <= 1.15."""

import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import ROOT, median, write_result  # noqa: E402
from odh_spawner.localplatform.hub import HubProcess, runtime_settings  # noqa: E402
from odh_spawner.localplatform.settings import load_settings  # noqa: E402
from tests.support.hubclient import HubUserSession  # noqa: E402

SPAWNS = int(os.environ.get("BENCH_SPAWNS", "7"))
os.environ.setdefault("ODH_PROXY_COMMAND", os.path.join(ROOT, ".tools/chp/node_modules/.bin/configurable-http-proxy"))


def spawn_once(user: HubUserSession, options) -> float:
    t0 = time.perf_counter()
    r = user.api("POST", f"/users/{user.name}/server", json=options)
    assert r.status_code in (201, 202), r.text
    if r.status_code == 202:
        user.wait_ready()
    elapsed = time.perf_counter() - t0
    assert user.server_api("/api/status").status_code == 200
    user.stop()
    return elapsed


def main() -> None:
    settings = load_settings(os.path.join(ROOT, "config", "demo"))
    with tempfile.TemporaryDirectory() as d:
        hubs = {}
        try:
            for name, spawner in (("ours", "odh-local"), ("baseline", "simple")):
                runtime = runtime_settings(settings, os.path.join(d, name))
                runtime.update(spawner_class=spawner, idle_culler={"enabled": False})
                hubs[name] = HubProcess(runtime, log_path=os.path.join(d, f"{name}.log")).start()
            users = {name: HubUserSession(h.url, "alice", "alice-odh") for name, h in hubs.items()}
            options = {"ours": {"profile": "minimal", "size": "medium"}, "baseline": None}
            times = {"ours": [], "baseline": []}
            spawn_once(users["ours"], options["ours"])  # warm caches (imports, lab assets)
            spawn_once(users["baseline"], options["baseline"])
            for i in range(SPAWNS):
                order = ("ours", "baseline") if i % 2 == 0 else ("baseline", "ours")
                for name in order:
                    times[name].append(spawn_once(users[name], options[name]))
        finally:
            for h in hubs.values():
                h.stop()
    ours, baseline = median(times["ours"]), median(times["baseline"])
    write_result(
        "spawn_overhead",
        figure=f"median spawn-to-ready of a local JupyterLab server over {SPAWNS} spawns: OdhLocalSpawner "
               "(profile minimal/medium, cgroup limits) vs SimpleLocalProcessSpawner",
        ours=ours, baseline=baseline, target=1.15, units="seconds (ratio ours/baseline)",
        met=ours / baseline <= 1.15, samples={k: [round(x, 3) for x in v] for k, v in times.items()},
    )


if __name__ == "__main__":
    main()
