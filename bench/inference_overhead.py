"""Inference through the platform URL (the hub's proxy route to the deployment) vs. straight to MLServer.

One deployed scikit-learn model; REQUESTS V2 inference requests each way, interleaved in blocks of 50, over
keep-alive sessions. p50 of each; the figure is the p50 overhead in ms. Target: <= 2 ms."""

import os
import statistics
import sys
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import write_result  # noqa: E402
from bench._deploy import Platform, train, v2_body  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "1000"))


def p50(xs):
    return statistics.median(xs)


def main() -> None:
    with Platform() as p:
        rows = train(os.path.join(p.home, "model.joblib"))
        info = p.deploy("latency", "model.joblib")
        direct_port = None
        import json

        rec_dir = os.path.join(p.hub.runtime["state_dir"], "platform", "deployments")
        for dirpath, _, files in os.walk(rec_dir):
            if "deployment.json" in files:
                direct_port = json.load(open(os.path.join(dirpath, "deployment.json")))["runtime"]["serving"]["port"]
        urls = {"ours": info["infer_url"],
                "baseline": f"http://127.0.0.1:{direct_port}/v2/models/alice.latency/infer"}
        body = v2_body(rows)
        sessions = {k: requests.Session() for k in urls}
        times = {k: [] for k in urls}
        for k in urls:  # warm connections
            for _ in range(20):
                sessions[k].post(urls[k], json=body, timeout=10).raise_for_status()
        for block in range(REQUESTS // 50):
            for k in (("ours", "baseline") if block % 2 == 0 else ("baseline", "ours")):
                for _ in range(50):
                    t0 = time.perf_counter()
                    r = sessions[k].post(urls[k], json=body, timeout=10)
                    times[k].append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, r.text
        p.delete("latency")
    ours, baseline = p50(times["ours"]), p50(times["baseline"])
    overhead = ours - baseline
    write_result(
        "inference_overhead",
        figure=f"p50 latency of a V2 inference request over {len(times['ours'])} requests: through the platform "
               "URL (hub proxy route) vs direct to MLServer; target is on the difference (overhead_ms)",
        ours=ours, baseline=baseline, target=2.0, units="milliseconds (target: p50 overhead <= 2 ms)",
        met=overhead <= 2.0, overhead_ms=round(overhead, 3),
        p90={k: round(statistics.quantiles(v, n=10)[-1], 3) for k, v in times.items()},
    )


if __name__ == "__main__":
    main()
