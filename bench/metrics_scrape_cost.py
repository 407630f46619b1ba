"""What scraping costs the users: the hub's and the platform service's p95 request latency while the local
Prometheus scrapes both every 5 s (as `make up` runs it), vs. the same requests with Prometheus stopped.

One real platform (Ceph RGW, hub with its proxy, platform service) and a logged-in user without a server. A steady client calls two authenticated APIs in turn, 20 times a second: the
hub's `GET /hub/api/users/NAME` and the platform's `GET /services/odh-platform/api/deployments` (both through
the hub's token check, as JupyterLab's calls are). Windows of WINDOW seconds alternate: Prometheus running
(scraping /hub/metrics and /services/odh-platform/metrics every 5 s), then stopped, and so on, WINDOWS pairs, so
drift in the machine's load falls on both sides. `ours` = p95 with scraping, `baseline` = p95 without;
target ratio <= 1.05. Each side's scrape count is checked from Prometheus's own `up` series.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import ROOT, write_result  # noqa: E402
from odh_spawner.localplatform.ceph import CephCluster  # noqa: E402
from odh_spawner.localplatform.hub import HubProcess, runtime_settings  # noqa: E402
from odh_spawner.localplatform.prometheus import RULES_FILE, PrometheusProcess  # noqa: E402
from odh_spawner.localplatform.settings import load_settings  # noqa: E402
from tests.support.hubclient import HubUserSession  # noqa: E402

WINDOW = float(os.environ.get("BENCH_WINDOW", "40"))
WINDOWS = int(os.environ.get("BENCH_WINDOWS", "3"))
RATE = 20.0  # requests per second
os.environ.setdefault("ODH_PROXY_COMMAND", os.path.join(ROOT, ".tools/chp/node_modules/.bin/configurable-http-proxy"))


def p95(xs: list[float]) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, max(0, round(0.95 * len(xs)) - 1))]


def window(urls: list[str], headers: dict, seconds: float) -> list[float]:
    """Calls at a steady RATE for `seconds`; the latency of each (all must answer 200)."""
    s = requests.Session()
    times, i = [], 0
    t_end = time.monotonic() + seconds
    next_at = time.monotonic()
    while time.monotonic() < t_end:
        url = urls[i % len(urls)]
        i += 1
        t0 = time.perf_counter()
        r = s.get(url, headers=headers, timeout=30)
        times.append(time.perf_counter() - t0)
        if r.status_code != 200:
            raise RuntimeError(f"{url} answered {r.status_code}: {r.text[:200]}")
        next_at += 1 / RATE
        time.sleep(max(0.0, next_at - time.monotonic()))
    return times


def scrapes(prom: PrometheusProcess) -> dict:
    """Scrapes per job during the last window, from Prometheus's own `up` series."""
    r = requests.get(prom.url + "/api/v1/query", params={"query": f"count_over_time(up[{int(WINDOW)}s])"},
                     timeout=10)
    r.raise_for_status()
    return {x["metric"]["job"]: int(float(x["value"][1])) for x in r.json()["data"]["result"]}


def main() -> None:
    with tempfile.TemporaryDirectory() as d:
        settings = load_settings(os.path.join(ROOT, "config", "demo"))
        ceph = CephCluster(os.path.join(d, "ceph")).start()
        hub = prom = None
        try:
            runtime = runtime_settings(settings, os.path.join(d, "hub"), ceph)
            runtime.update(idle_culler={"enabled": False})
            hub = HubProcess(runtime, log_path=os.path.join(d, "hub.log")).start()
            user = HubUserSession(hub.url, "alice", "alice-odh")
            urls = [f"{hub.url.rstrip('/')}/hub/api/users/alice",
                    runtime["platform_url"] + "/services/odh-platform/api/deployments"]
            prom = PrometheusProcess(os.path.join(d, "prometheus"), hub_url=hub.url,
                                     platform_url=runtime["platform_url"], token=runtime["prometheus_token"],
                                     rules_files=[RULES_FILE])
            window(urls, user.auth, 5)  # warm
            with_scrapes, without = [], []
            for _ in range(WINDOWS):
                prom.start()
                time.sleep(6)  # the first scrapes are under way
                with_scrapes += window(urls, user.auth, WINDOW)
                seen = scrapes(prom)
                prom.stop()
                without += window(urls, user.auth, WINDOW)
            if min(seen.get("odh-hub", 0), seen.get("odh-platform", 0)) < WINDOW / 5:
                raise RuntimeError(f"Prometheus did not scrape both targets every 5 s: {seen}")
        finally:
            if prom is not None and prom.proc is not None and prom.proc.poll() is None:
                prom.stop()
            if hub is not None:
                hub.stop()
            ceph.stop()
    ours, baseline = p95(with_scrapes), p95(without)
    write_result(
        "metrics_scrape_cost",
        figure="p95 latency of the hub's and the platform service's authenticated APIs at 20 requests/s while "
               "Prometheus scrapes both every 5 s vs. with Prometheus stopped (alternating windows)",
        ours=ours * 1000, baseline=baseline * 1000, target=1.05, units="milliseconds (ratio scraped/not)",
        met=ours / baseline <= 1.05, requests={"with_scrapes": len(with_scrapes), "without": len(without)},
        medians_ms={"with_scrapes": round(sorted(with_scrapes)[len(with_scrapes) // 2] * 1000, 3),
                    "without": round(sorted(without)[len(without) // 2] * 1000, 3)},
        scrapes_in_last_window=seen, windows=WINDOWS, window_s=WINDOW, load_average=round(os.getloadavg()[0], 2),
    )


if __name__ == "__main__":
    main()
