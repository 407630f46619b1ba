"""Spawn time: OdhLocalSpawner doing what a user's spawn really does vs. JupyterHub's own LocalProcessSpawner
with system users, same machine, same server software.

Ours: a profile (minimal/medium), the user's own RGW user and keys from a real Ceph RGW (Admin Ops API), the
user's own system user (created on the warm-up spawn, checked on every spawn), and cgroup limits where the
machine allows; the JSON records which of these applied. Baseline: LocalProcessSpawner running the same
jupyterhub-singleuser as a pre-made system user of the hub user's name (what JupyterHub itself offers for
system users). Two real hubs, each with its real proxy, run side by side; spawns alternate between them so
both see the same load. Time = POST /hub/api/users/NAME/server until the hub has reached the server over HTTP.
Median of SPAWNS spawns each. Target: ratio <= 1.15. Needs root (system users).

A fixed anchor too, in the same run and interleaved with the spawns: a bare `jupyter server` of the same
environment (same extensions) started by hand, timed to its first 200 on /api/status (`anchor`, target: ours
<= 1.3x it), and the absolute target of 3.5 s. `breakdown`: the median seconds of each stage of our spawns, from
the hub's "odh spawn stages" log lines (odh_spawner.spawners.stages), plus what is left between the POST and the end of
the stages (the hub's own work: database, OAuth client, proxy route)."""

import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import ROOT, median, write_result  # noqa: E402
from odh_spawner.localplatform.ceph import CephCluster  # noqa: E402
from odh_spawner.localplatform.hub import HubProcess, runtime_settings  # noqa: E402
from odh_spawner.localplatform.hubconfig import cgroup_parent  # noqa: E402
from odh_spawner.host.limits import CgroupLimits  # noqa: E402
from odh_spawner.localplatform.settings import load_settings  # noqa: E402
from odh_spawner.host.users import ensure_traversable  # noqa: E402
from odh_spawner.naming import system_user  # noqa: E402
from odh_spawner.host.ports import free_port  # noqa: E402
from odh_spawner.auth.passwords import hash_password  # noqa: E402
from odh_spawner.spawners.stages import SpawnStages  # noqa: E402
from tests.support.hubclient import HubUserSession  # noqa: E402
from tests.support.profiles import hub_environments  # noqa: E402

SPAWNS = int(os.environ.get("BENCH_SPAWNS", "7"))
USER = "odhbench"  # the hub user; the baseline's system user has this very name, ours is odh-odhbench
PASSWORD = "odhbench-" + os.urandom(6).hex()
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


def bare_server_once(d: str) -> float:
    """A bare `jupyter server` of this environment, started by hand: seconds to its first 200 on /api/status."""
    port, token = free_port(), os.urandom(16).hex()
    root = tempfile.mkdtemp(dir=d)
    t0 = time.perf_counter()
    proc = subprocess.Popen([os.path.join(os.path.dirname(sys.executable), "jupyter-server"), "--allow-root",
                             "--no-browser", "--ip=127.0.0.1", f"--port={port}", f"--ServerApp.root_dir={root}"],
                            env={**os.environ, "JUPYTER_TOKEN": token}, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        while True:
            try:
                with opener.open(urllib.request.Request(f"http://127.0.0.1:{port}/api/status",
                                                        headers={"Authorization": f"token {token}"}), timeout=5) as r:
                    if r.status == 200:
                        return time.perf_counter() - t0
            except OSError:
                pass
            if proc.poll() is not None:
                raise RuntimeError(f"jupyter server exited with {proc.returncode}")
            if time.perf_counter() - t0 > 120:
                raise RuntimeError("jupyter server did not answer within 120 s")
            time.sleep(0.02)
    finally:
        proc.terminate()
        proc.wait(30)


def stage_breakdown(log_path: str, user: str, skip: int) -> dict:
    """Median seconds per stage over our spawns' "odh spawn stages" log lines (the first `skip` are warm-up)."""
    with open(log_path, errors="replace") as f:
        records = [r for r in map(SpawnStages.from_log_line, f) if r is not None and r["user"] == user][skip:]
    names = list(dict.fromkeys(name for r in records for name in r["stages"]))
    return {name: round(median([r["stages"].get(name, 0.0) for r in records]), 4) for name in names}


def bench_config(d: str) -> str:
    """The demo configuration with one more user (the demo's users are not system users)."""
    config = os.path.join(d, "config")
    shutil.copytree(os.path.join(ROOT, "config", "demo"), config)
    hub_environments(os.path.join(config, "profiles.yaml"))  # both sides run the hub's Python, as before locks
    path = os.path.join(config, "users.yaml")
    with open(path) as f:
        users = yaml.safe_load(f)
    users["users"][USER] = {"password_hash": hash_password(PASSWORD), "groups": ["data-science"], "admin": False}
    with open(path, "w") as f:
        yaml.safe_dump(users, f)
    return config


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("spawn_overhead compares spawns with system users: run it as root")
    with tempfile.TemporaryDirectory() as d:
        ensure_traversable(d)
        settings = load_settings(bench_config(d))
        baseline_home = os.path.join(d, "baseline-home")
        made_baseline_user = False
        try:
            pwd.getpwnam(USER)
        except KeyError:
            subprocess.run(["useradd", "--home-dir", baseline_home, "--create-home", "--shell", "/bin/bash", USER],
                           check=True)
            made_baseline_user = True
        hubs, ceph = {}, None
        try:
            ceph = CephCluster(os.path.join(d, "ceph")).start()
            for name, spawner in (("ours", "odh-local"), ("baseline", "localprocess")):
                runtime = runtime_settings(settings, os.path.join(d, name), ceph if name == "ours" else None)
                runtime.update(spawner_class=spawner, idle_culler={"enabled": False})
                hubs[name] = HubProcess(runtime, log_path=os.path.join(d, f"{name}.log")).start()
            users = {name: HubUserSession(h.url, USER, PASSWORD) for name, h in hubs.items()}
            options = {"ours": {"profile": "minimal", "size": "medium"}, "baseline": None}
            times = {"ours": [], "baseline": [], "anchor": []}
            spawn_once(users["ours"], options["ours"])  # warm caches; creates the RGW and the system user
            spawn_once(users["baseline"], options["baseline"])
            bare_server_once(d)
            for i in range(SPAWNS):
                order = ("ours", "baseline", "anchor") if i % 2 == 0 else ("anchor", "baseline", "ours")
                for name in order:
                    if name == "anchor":
                        times[name].append(bare_server_once(d))
                    else:
                        times[name].append(spawn_once(users[name], options[name]))
            breakdown = stage_breakdown(os.path.join(d, "ours.log"), USER, skip=1)
            applied = {
                "per_user_s3_credentials": True,
                "system_user": pwd.getpwnam(system_user(USER)).pw_name,
                "cgroup_limits": CgroupLimits("/sys/fs/cgroup", cgroup_parent(os.path.join(d, "ours"))).available(),
                "baseline_system_user": USER,
            }
        finally:
            for h in hubs.values():
                h.stop()
            if ceph is not None:
                ceph.stop()
            for name in ((USER,) if made_baseline_user else ()) + (system_user(USER),):
                subprocess.run(["userdel", name], capture_output=True)
    ours, baseline, anchor = median(times["ours"]), median(times["baseline"]), median(times["anchor"])
    breakdown["hub and client (rest of the spawn)"] = round(max(0.0, ours - sum(breakdown.values())), 4)
    write_result(
        "spawn_overhead",
        figure=f"median spawn-to-ready of a local JupyterLab server over {SPAWNS} spawns: OdhLocalSpawner "
               "(profile minimal/medium, per-user RGW keys, own system user, cgroup limits where available) vs "
               "JupyterHub's LocalProcessSpawner with a system user",
        ours=ours, baseline=baseline, target=1.15, units="seconds (ratio ours/baseline)",
        met=ours / baseline <= 1.15, applied=applied,
        absolute_target_s=3.5, absolute_met=ours <= 3.5,
        anchor={"figure": "median seconds of a bare `jupyter server` of the same environment, started by hand, "
                          "to its first 200 on /api/status", "seconds": round(anchor, 4),
                "ratio": round(ours / anchor, 4), "target": 1.3, "met": ours / anchor <= 1.3},
        breakdown=breakdown, load_average=round(os.getloadavg()[0], 2),
        samples={k: [round(x, 3) for x in v] for k, v in times.items()},
    )


if __name__ == "__main__":
    main()
