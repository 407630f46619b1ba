"""`odh-hub status` and `odh-hub restart`: the running local platform's components, from its state directory
(up.json, and the hub's settings for the platform service), and restarting one of them.

A restart stops the component's process (SIGTERM, SIGCONT so a stopped one gets it, SIGKILL after a while; the
hub SIGKILL at once, so its users' servers keep running) and
waits for its supervisor to start it again on the same address: the launcher for what up.json records (Ceph
daemons, the Kafka broker, the hub, Prometheus), the hub for the platform service (its managed service).
"""

from __future__ import annotations

import json
import os
import signal
import time
from dataclasses import dataclass
from typing import Callable

from odh_spawner.errors import OdhError
from odh_spawner.host import procs
from odh_spawner.localplatform import runrecord
from odh_spawner.localplatform.hubconfig import PLATFORM

PLATFORM_COMPONENT = "platform"
# SIGKILL at once: a hub given SIGTERM stops its users' servers on the way out (cleanup_servers); killed, it
# leaves them running and the launcher's restart adopts them, as after a crash
KILL_AT_ONCE = ("hub",)


class StatusError(OdhError):
    """No local platform runs with this state directory, or the component named is not one of it."""


@dataclass(frozen=True)
class Component:
    name: str
    pid: int
    state: str     # "running", "stopped" (SIGSTOP or traced), "gone"
    address: str


def _state(pid: int, started: int | None = None) -> str:
    if not procs.alive(pid, started):
        return "gone"
    return "stopped" if procs.state_letter(pid) in ("T", "t") else "running"


def _hub_settings(state_dir: str) -> dict:
    try:
        with open(os.path.join(state_dir, "hub-settings.json"), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return {}


def platform_pids(state_dir: str, hub_pid: int) -> list[int]:
    """The platform service's process(es): the hub's children that run as its managed service odh-platform."""
    api = _hub_settings(state_dir).get("hub_bind_url", "").rstrip("/") + "/hub/api"
    pids = procs.pids_with_env(lambda env: env.get("JUPYTERHUB_SERVICE_NAME") == PLATFORM
                               and env.get("JUPYTERHUB_API_URL") == api)
    return [p for p in pids if procs.parent(p) == hub_pid]


def components(state_dir: str) -> list[Component]:
    """What the running `odh-hub up` with this state directory runs (the launcher first)."""
    entries = runrecord.read(state_dir)
    launcher = next((e for e in entries if e.what == "launcher"), None)
    if launcher is None or not procs.alive(launcher.pid, launcher.started):
        raise StatusError(f"No odh-hub up runs with the state directory {state_dir}.")
    found = [Component(e.what, e.pid, _state(e.pid, e.started), e.address) for e in entries]
    hub = next((e for e in entries if e.what == "hub"), None)
    if hub is not None:
        url = _hub_settings(state_dir).get("platform_url", "")
        pids = platform_pids(state_dir, hub.pid)
        found.append(Component(PLATFORM_COMPONENT, pids[0], _state(pids[0]), url) if pids
                     else Component(PLATFORM_COMPONENT, 0, "gone", url))
    return found


def find(state_dir: str, name: str) -> Component:
    comps = components(state_dir)
    for c in comps:
        if c.name == name and c.name != "launcher":
            return c
    names = ", ".join(c.name for c in comps if c.name != "launcher")
    raise StatusError(f"No component {name!r} runs; the components are: {names}.")


def restart(state_dir: str, name: str, timeout: float = 120, stop_timeout: float = 10,
            report: Callable[[str], None] = print) -> Component:
    """Stop component `name` and wait until its supervisor runs it again (a new PID); returns the new one."""
    old = find(state_dir, name)
    if old.pid:
        report(f"Stopping {name} (pid {old.pid}, {old.state})")
        if name in KILL_AT_ONCE:
            procs.signal_pid(old.pid, signal.SIGKILL)
        else:
            procs.signal_pid(old.pid, signal.SIGTERM)
            procs.signal_pid(old.pid, signal.SIGCONT)
            procs.terminate_pids([old.pid], timeout=stop_timeout)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            now = find(state_dir, name)
        except StatusError:
            now = None
        if now is not None and now.pid and now.pid != old.pid and now.state == "running":
            report(f"{name} runs again as pid {now.pid}" + (f" at {now.address}" if now.address else ""))
            return now
        time.sleep(0.5)
    raise StatusError(f"{name} did not start again within {timeout:.0f}s; see the odh-hub up output.")


def alerts(state_dir: str, timeout: float = 5) -> list[dict]:
    """The alerts the local Prometheus has pending or firing now (its /api/v1/alerts)."""
    import urllib.error
    import urllib.request

    url = find(state_dir, "prometheus").address
    try:
        with urllib.request.urlopen(url + "/api/v1/alerts", timeout=timeout) as r:
            return json.load(r)["data"]["alerts"]
    except (urllib.error.URLError, OSError, ValueError, KeyError) as e:
        raise StatusError(f"Prometheus at {url} did not answer: {e}") from None


def alert_lines(found: list[dict]) -> list[str]:
    """One line per alert: name, state, since, its labels but alertname and severity, and its summary. Pure."""
    lines = []
    for a in sorted(found, key=lambda a: (a["labels"].get("alertname", ""), a.get("activeAt", ""))):
        labels = {k: v for k, v in a["labels"].items() if k not in ("alertname", "severity")}
        where = " ".join(f"{k}={v}" for k, v in sorted(labels.items()))
        lines.append(f"{a['labels'].get('alertname', '?')} {a.get('state', '?')} "
                     f"({a['labels'].get('severity', '')}, since {a.get('activeAt', '?')[:19]}Z) {where}: "
                     f"{a.get('annotations', {}).get('summary', '')}")
    return lines
