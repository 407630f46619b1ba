"""Capacity: N users at once (10, 25, 50) each log in, spawn the Minimal Python profile, start a kernel, run a
cell, list their buckets and stop, against the local platform as `make up` runs it (hub, proxy, platform
service, Ceph RGW, per-user system users, RGW keys and lock environment), vs. vanilla JupyterHub with
LocalProcessSpawner (system users of the hub users' names) under the same load, on the same machine.

Both hubs run side by side with the same concurrent-spawn limit (platform.yaml `spawner.concurrent_spawn_limit`):
beyond it JupyterHub answers 429 with Retry-After, and the simulated user waits that long and tries again, as
the spawn page does; such waits are counted (`queued`), and are not errors. An error is anything else that
stops a user's journey (a 5xx, a timeout, a cell that fails).

Steps, each timed per user: login (the form), spawn (POST, then the spawn progress event stream until it says
ready, as the spawn page waits), kernel (POST api/kernels and the websocket open), cell (`sum(range(1000))` round
trip), list (ours: the bucket browser's API, GET /user/NAME/odh/... listing the user's buckets; vanilla has no
object storage, so its list step is the file browser's listing, GET /user/NAME/api/contents), stop (DELETE, then
the user model polled at 0.1 s backing off to 1 s until the hub has no server).

Between rounds (and after each) the bench's own admin stops whatever server a failed journey left and waits
until the hub lists none and no process of the users' server accounts is left, so that a round never meets the
round before's servers: an error counted is the platform's (with the step it happened in), not the bench's.
`ratio` = p95 of the whole journey at the largest N, ours / vanilla (target <= 1.2); every step's p95 per N
is in `steps`. Per N the JSON also records where the time went: the machine's CPU use and the CPU seconds of
the hub, the proxy, the platform service and the RGW during the round, which tells the knee and its cause.

First-ever work per user (creating the odh- system user and the RGW user) is done before the rounds with the
platform's own functions, as after each user's first login: the rounds measure a working day, not onboarding.
Needs root (system users). Kafka is not started: no step uses it.
"""

from __future__ import annotations

import asyncio
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import threading
import time

import psutil
import requests
import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import ROOT, write_result  # noqa: E402
from odh_spawner.auth.passwords import hash_password  # noqa: E402
from odh_spawner.credentials.rgw import RgwCredentialStore  # noqa: E402
from odh_spawner.host.users import ensure_system_user, ensure_traversable  # noqa: E402
from odh_spawner.localplatform.ceph import CephCluster  # noqa: E402
from odh_spawner.localplatform.hub import HubProcess, runtime_settings  # noqa: E402
from odh_spawner.localplatform.settings import load_settings  # noqa: E402
from odh_spawner.naming import state_dir_name, system_user  # noqa: E402
from server_extension.client import BucketClient  # noqa: E402
from tests.support.fixtures import build_lock_environments  # noqa: E402
from tests.support.hubclient import HubUserSession  # noqa: E402
from tests.support.kernel import Kernel  # noqa: E402

SIZES = [int(n) for n in os.environ.get("BENCH_USERS", "10,25,50").split(",")]
# BENCH_SIDES=ours runs one side only (e.g. to profile its hub under load); the JSON is written only when both ran
LOG_DIR = os.environ.get("BENCH_LOG_DIR", "")  # keep the hubs' logs there (else they go with the temporary dir)
SIDES = tuple(os.environ.get("BENCH_SIDES", "ours,vanilla").split(","))
STEPS = ("login", "spawn", "kernel", "cell", "list", "stop")
PASSWORD = "load-" + os.urandom(6).hex()
TIMEOUT = 300
ADMIN = "loadadmin"  # the bench's own hub admin: clears servers left by failed journeys between rounds
os.environ.setdefault("ODH_PROXY_COMMAND", os.path.join(ROOT, ".tools/chp/node_modules/.bin/configurable-http-proxy"))


def user_names(n: int) -> list[str]:
    return [f"load{i:02d}" for i in range(1, n + 1)]


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(0.95 * len(xs)) - 1))] if xs else float("nan")


class Journey:
    """One simulated user's steps, timed; a 429 on spawn waits Retry-After and tries again (counted)."""

    def __init__(self, hub_url: str, name: str, ours: bool):
        self.hub_url, self.name, self.ours = hub_url, name, ours
        self.times: dict[str, float] = {}
        self.queued = 0
        self.error = ""
        self.step = ""  # the step running (the one that failed, after an error)

    def _timed(self, step: str, fn):
        self.step = step
        t0 = time.perf_counter()
        out = fn()
        self.times[step] = time.perf_counter() - t0
        return out

    def spawn(self, user: HubUserSession) -> None:
        body = {"profile": "minimal"} if self.ours else None
        deadline = time.monotonic() + TIMEOUT
        while True:
            r = user.api("POST", f"/users/{self.name}/server", json=body)
            if r.status_code == 429:
                self.queued += 1
                if time.monotonic() > deadline:
                    raise RuntimeError("still refused with 429 after the timeout")
                time.sleep(float(r.headers.get("Retry-After", "2")))
                continue
            if r.status_code not in (201, 202):
                raise RuntimeError(f"spawn answered {r.status_code}: {r.text[:200]}")
            break
        self.wait_ready(user)

    def wait_ready(self, user: HubUserSession) -> None:
        """Until the hub says the server is ready: its spawn progress event stream, as the spawn page reads it
        (no polling: 50 users polling the user model 4 times a second would be most of the hub's work)."""
        with requests.get(f"{user.url}/hub/api/users/{self.name}/server/progress", headers=user.auth, stream=True,
                          timeout=TIMEOUT) as r:
            r.raise_for_status()
            for line in r.iter_lines(decode_unicode=True):
                if line and line.startswith("data:"):
                    event = json.loads(line[5:])
                    if event.get("ready"):
                        return
                    if event.get("failed"):
                        raise RuntimeError(f"the spawn failed: {event.get('message', '')[:300]}")
        raise RuntimeError("the progress stream ended without ready or failed")

    def stop(self, user: HubUserSession) -> None:
        """DELETE the server, then until the hub lists it no more (polled at 0.1 s, backing off to 1 s)."""
        r = user.api("DELETE", f"/users/{self.name}/server")
        if r.status_code not in (202, 204):
            raise RuntimeError(f"stop answered {r.status_code}: {r.text[:200]}")
        deadline, wait = time.monotonic() + TIMEOUT, 0.1
        while user.model()["servers"].get(""):
            if time.monotonic() > deadline:
                raise RuntimeError(f"the server did not stop within {TIMEOUT}s")
            time.sleep(wait)
            wait = min(1.0, wait * 1.5)

    def run(self) -> None:
        try:
            user = self._timed("login", lambda: HubUserSession(self.hub_url, self.name, PASSWORD))
            self._timed("spawn", lambda: self.spawn(user))
            server = f"{self.hub_url.rstrip('/')}/user/{self.name}/"
            kernel = self._timed("kernel", lambda: Kernel(server, user.token))
            out = self._timed("cell", lambda: kernel.execute("print(sum(range(1000)))", timeout=TIMEOUT))
            if out.strip() != "499500":
                raise RuntimeError(f"the cell printed {out!r}")
            kernel.ws.close()
            if self.ours:
                self._timed("list", lambda: BucketClient(server, user.token).list_buckets())
            else:
                def contents():
                    r = requests.get(server + "api/contents", headers=user.auth, timeout=60)
                    r.raise_for_status()
                self._timed("list", contents)
            self._timed("stop", lambda: self.stop(user))
        except Exception as e:  # noqa: BLE001 - any failure ends this user's journey: counted, with its cause
            self.error = f"{self.step}: {type(e).__name__}: {str(e)[:300]}"


class CpuWatch:
    """CPU seconds of named processes (and their children) and the machine's CPU use over a round."""

    def __init__(self, procs: dict[str, list[int]]):
        self.pids = procs

    def _cpu(self) -> dict[str, float]:
        out = {}
        for name, pids in self.pids.items():
            total = 0.0
            for pid in pids:
                try:
                    t = psutil.Process(pid).cpu_times()
                    total += t.user + t.system
                except psutil.Error:
                    pass
            out[name] = total
        return out

    def __enter__(self):
        self.t0, self.cpu0, self.machine0 = time.perf_counter(), self._cpu(), psutil.cpu_times()
        return self

    def __exit__(self, *exc):
        wall = time.perf_counter() - self.t0
        cpu1, m1 = self._cpu(), psutil.cpu_times()
        busy = lambda t: t.user + t.system + t.nice + getattr(t, "irq", 0) + getattr(t, "softirq", 0)  # noqa: E731
        self.result = {
            "wall_s": round(wall, 2),
            "machine_cpu_utilisation": round((busy(m1) - busy(self.machine0)) / (wall * psutil.cpu_count()), 3),
            "cpu_seconds": {k: round(cpu1[k] - self.cpu0.get(k, 0.0), 2) for k in cpu1},
            "event_loop_share": {k: round((cpu1[k] - self.cpu0.get(k, 0.0)) / wall, 3) for k in ("hub", "proxy")
                                 if k in cpu1},
        }


def pids_of(hub: HubProcess, ceph: CephCluster | None) -> dict[str, list[int]]:
    hub_proc = psutil.Process(hub.proc.pid)
    children = hub_proc.children(recursive=False)
    proxy = [p.pid for p in children if "configurable-http-proxy" in " ".join(p.cmdline())]
    platform = [p.pid for p in children if "odh_spawner.platform" in " ".join(p.cmdline())]
    out = {"hub": [hub.proc.pid], "proxy": proxy}
    if platform:
        out["platform"] = platform
    if ceph is not None:
        out["rgw"] = [d.proc.pid for name, d in ceph.daemons.items() if name.startswith("rgw") and d.proc]
    return out


def server_users(names: list[str], ours: bool) -> set[str]:
    """The system users the servers of `names` run as (ours: odh-<slug>; vanilla: the hub users' names)."""
    return {system_user(n) if ours else n for n in names}


def leftover_processes(users: set[str]) -> list[psutil.Process]:
    out = []
    for p in psutil.process_iter(["username"]):
        if p.info["username"] in users:
            out.append(p)
    return out


def clear_servers(hub_url: str, admin: HubUserSession, names: list[str], ours: bool) -> list[str]:
    """Before a round (and after the last): every bench user's server stopped and gone, so that no round meets a
    server a failed journey of the round before left running ("load02 is already running" is then the bench's
    fault, not the platform's). Gone means the hub lists no server (none pending either) and no process of the
    users' server accounts is left. Returns the users whose server had to be stopped here; raises when the
    hub cannot stop one within TIMEOUT (the round after it would measure nothing honest)."""
    deadline = time.monotonic() + TIMEOUT
    stopped = []
    pending = set(names)
    while pending:
        for n in sorted(pending):
            r = admin.api("GET", f"/users/{n}")
            if r.status_code != 404:  # 404: never logged in on this hub, so no server
                r.raise_for_status()
            if r.status_code == 404 or not r.json()["servers"].get(""):
                pending.discard(n)
                continue
            if n not in stopped:
                stopped.append(n)
            r = admin.api("DELETE", f"/users/{n}/server")  # 400 while a spawn or stop is pending: asked again
            if r.status_code not in (202, 204, 400):
                raise RuntimeError(f"clearing {n}'s server: the hub answered {r.status_code}: {r.text[:200]}")
        if pending:
            if time.monotonic() > deadline:
                raise RuntimeError(f"servers not stopped within {TIMEOUT}s between rounds: {sorted(pending)}")
            time.sleep(1)
    users = server_users(names, ours)
    while procs := leftover_processes(users):
        if time.monotonic() > deadline:
            raise RuntimeError(f"processes of stopped servers still running between rounds: "
                               f"{sorted((p.info['username'], p.pid) for p in procs)[:10]}")
        time.sleep(1)
    return stopped


def run_round(hub: HubProcess, ceph, names: list[str], ours: bool) -> dict:
    journeys = [Journey(hub.url, n, ours) for n in names]
    threads = [threading.Thread(target=j.run) for j in journeys]
    with CpuWatch(pids_of(hub, ceph)) as watch:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    done = [j for j in journeys if not j.error]
    total = [sum(j.times.values()) for j in done]
    failed: dict[str, int] = {}
    for j in journeys:
        if j.error:
            failed[j.step] = failed.get(j.step, 0) + 1
    return {
        "users": len(names), "errors": len(journeys) - len(done), "errors_by_step": failed,
        "error_samples": sorted({j.error for j in journeys if j.error})[:5],
        "queued_retries": sum(j.queued for j in journeys),
        "journey_p95_s": round(p95(total), 3),
        "steps_p95_s": {s: round(p95([j.times[s] for j in done if s in j.times]), 3) for s in STEPS},
        "steps_median_s": {s: round(sorted(x)[len(x) // 2], 3) if (x := [j.times[s] for j in done if s in j.times])
                           else None for s in STEPS},
        "resources": watch.result,
    }


def bench_config(d: str, names: list[str]) -> str:
    config = os.path.join(d, "config")
    shutil.copytree(os.path.join(ROOT, "config", "demo"), config)
    path = os.path.join(config, "users.yaml")
    with open(path) as f:
        users = yaml.safe_load(f)
    hashed = hash_password(PASSWORD)
    for n in names:
        users["users"][n] = {"password_hash": hashed, "groups": ["data-science"], "admin": False}
    users["users"][ADMIN] = {"password_hash": hashed, "groups": ["platform-admins"], "admin": True}
    with open(path, "w") as f:
        yaml.safe_dump(users, f)
    return config


def main() -> None:
    if os.geteuid() != 0:
        sys.exit("hub_load compares spawns with system users: run it as root")
    names = user_names(max(SIZES))
    made: list[str] = []
    with tempfile.TemporaryDirectory() as d:
        ensure_traversable(d)
        config = bench_config(d, names)
        build_lock_environments(config)  # as `make up` prebuilds them
        settings = load_settings(config)
        hubs, ceph, results = {}, None, {}
        try:
            ceph = CephCluster(os.path.join(d, "ceph")).start()
            for name, spawner in (("ours", "odh-local"), ("vanilla", "localprocess")):
                if name not in SIDES:
                    continue
                runtime = runtime_settings(settings, os.path.join(d, name), ceph if name == "ours" else None)
                runtime.update(spawner_class=spawner, idle_culler={"enabled": False})
                if name == "vanilla":
                    runtime["platform_url"] = ""  # no platform service: JupyterHub and its proxy only
                hubs[name] = HubProcess(runtime, log_path=os.path.join(LOG_DIR or d, f"{name}.log")).start()
            # each user's first-ever work, done once as their first login would (see the docstring)
            store = RgwCredentialStore(ceph.endpoint, ceph.admin.access_key, ceph.admin.secret_key)
            home_root = os.path.join(d, "ours", "home")
            os.makedirs(home_root, exist_ok=True)
            for n in names:
                ensure_system_user(n, os.path.join(home_root, state_dir_name(n)))  # makes system_user(n)
                asyncio.run(store.ensure(n))
                try:
                    pwd.getpwnam(n)
                except KeyError:
                    subprocess.run(["useradd", "--home-dir", os.path.join(d, "vanilla-home", n), "--create-home",
                                    "--shell", "/bin/bash", n], check=True, capture_output=True)
                    made.append(n)
                made.append(system_user(n))
            admins = {name: HubUserSession(h.url, ADMIN, PASSWORD) for name, h in hubs.items()}
            # warm both sides (first imports, caches) with one journey each
            for name in hubs:
                j = Journey(hubs[name].url, names[0], name == "ours")
                j.run()
                if j.error:
                    raise RuntimeError(f"the warm-up journey on {name} failed: {j.error}")
                clear_servers(hubs[name].url, admins[name], names, name == "ours")
            for i, n in enumerate(SIZES):
                order = ("ours", "vanilla") if i % 2 == 0 else ("vanilla", "ours")
                for name in (o for o in order if o in hubs):
                    print(f"{n} users, {name}: hub pid {hubs[name].proc.pid}", flush=True)
                    ours_side = name == "ours"
                    left = clear_servers(hubs[name].url, admins[name], names, ours_side)
                    r = run_round(hubs[name], ceph if ours_side else None, names[:n], ours_side)
                    r["stopped_before_round"] = left  # always [] unless a journey of the round before failed
                    r["stopped_after_round"] = clear_servers(hubs[name].url, admins[name], names, ours_side)
                    r["load_average_after"] = round(os.getloadavg()[0], 2)
                    results.setdefault(str(n), {})[name] = r
                    print(f"{n} users, {name}: journey p95 {r['journey_p95_s']} s, errors {r['errors']} "
                          f"{r['errors_by_step']}, 429 retries {r['queued_retries']}, "
                          f"cpu {r['resources']['machine_cpu_utilisation']}, hub cpu-s "
                          f"{r['resources']['cpu_seconds'].get('hub')}, load {r['load_average_after']}",
                          flush=True)
        finally:
            for h in hubs.values():
                h.stop()
            if ceph is not None:
                ceph.stop()
            for n in made:
                subprocess.run(["userdel", n], capture_output=True)
    if set(SIDES) != {"ours", "vanilla"}:
        print("one side only: no result written")
        return
    top = str(max(SIZES))
    ours, vanilla = results[top]["ours"]["journey_p95_s"], results[top]["vanilla"]["journey_p95_s"]
    step_ratios = {s: round(results[top]["ours"]["steps_p95_s"][s] / results[top]["vanilla"]["steps_p95_s"][s], 3)
                   for s in STEPS if results[top]["vanilla"]["steps_p95_s"][s]}
    errors = sum(r["errors"] for per_n in results.values() for r in per_n.values())
    write_result(
        "hub_load",
        figure=f"p95 seconds of a whole user journey (login, spawn Minimal Python, kernel, cell, list, stop) with "
               f"{top} users at once: the local platform vs vanilla JupyterHub with LocalProcessSpawner",
        ours=ours, baseline=vanilla, target=1.2, units="seconds (ratio ours/vanilla)",
        met=ours / vanilla <= 1.2 and errors == 0 and all(r <= 1.2 for r in step_ratios.values()),
        step_ratios_at_top=step_ratios, errors_total=errors,
        concurrent_spawn_limit=settings.concurrent_spawn_limit, rounds=results,
        load_average=round(os.getloadavg()[0], 2),
    )


if __name__ == "__main__":
    main()
