"""Inference through the platform URL (the hub's proxy -> the platform's model gateway, which checks the
credential -> MLServer) vs. straight to MLServer, in the same run.

One deployed scikit-learn model; REQUESTS V2 inference requests per path, interleaved in blocks of 50, over
keep-alive sessions: "ours" with the deployment's API key, "baseline" direct to the model server's port. Also
reported (not the figure): the owner's hub token (cached by the gateway after the first check) and the proxy
route alone (no gateway: what the platform did before endpoints were authenticated), measured by pointing a
second, longer proxy route (the model's versioned path) straight at MLServer for the run. p50 of each; the target is on the p50 overhead: <= 2 ms."""

import json
import os
import statistics
import sys
import time

import requests

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import write_result  # noqa: E402
from bench._deploy import Platform, train, v2_body  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_REQUESTS", "1000"))
BLOCK = 50


def p50(xs):
    return statistics.median(xs)


def serving_port(p: Platform) -> int:
    rec_dir = os.path.join(p.hub.runtime["state_dir"], "platform", "deployments")
    for dirpath, _, files in os.walk(rec_dir):
        if "deployment.json" in files:
            with open(os.path.join(dirpath, "deployment.json")) as f:
                return json.load(f)["runtime"]["serving"]["port"]
    raise RuntimeError("no deployment record")


def main() -> None:
    load_before = os.getloadavg()[0]
    with Platform() as p:
        rows = train(os.path.join(p.home, "model.joblib"))
        info = p.deploy("latency", "model.joblib")
        key = info["api_key"]
        port = serving_port(p)
        # the "proxy only" reference: the model's versioned path routed by the proxy straight to MLServer
        # (the longer route wins; removed afterwards)
        direct = "/v2/models/alice.latency/versions/v1"
        proxy = p.hub.runtime["proxy_api_url"] + "/api/routes" + direct
        proxy_auth = {"Authorization": f"token {p.hub.runtime['proxy_auth_token']}"}
        requests.post(proxy, json={"target": f"http://127.0.0.1:{port}"}, headers=proxy_auth,
                      timeout=10).raise_for_status()
        urls = {"ours": (info["infer_url"], {"Authorization": f"Bearer {key}"}),
                "baseline": (f"http://127.0.0.1:{port}/v2/models/alice.latency/infer", {}),
                "hub_token": (info["infer_url"], {"Authorization": f"token {p.alice.token}"}),
                "proxy_only": (f"{p.hub.url}{direct}/infer", {})}
        body = v2_body(rows)
        sessions = {k: requests.Session() for k in urls}
        times = {k: [] for k in urls}
        assert requests.post(info["infer_url"], json=body, timeout=10).status_code == 401  # auth is on
        for k, (url, headers) in urls.items():  # warm connections (and the gateway's token cache)
            for _ in range(20):
                sessions[k].post(url, json=body, headers=headers, timeout=10).raise_for_status()
        order = list(urls)
        for block in range(REQUESTS // BLOCK):
            for k in (order if block % 2 == 0 else order[::-1]):
                url, headers = urls[k]
                for _ in range(BLOCK):
                    t0 = time.perf_counter()
                    r = sessions[k].post(url, json=body, headers=headers, timeout=10)
                    times[k].append((time.perf_counter() - t0) * 1000)
                    assert r.status_code == 200, r.text
        requests.delete(proxy, headers=proxy_auth, timeout=10)
        p.delete("latency")
    q = {k: round(p50(v), 3) for k, v in times.items()}
    ours, baseline = p50(times["ours"]), p50(times["baseline"])
    overhead = ours - baseline
    write_result(
        "inference_overhead",
        figure=f"p50 latency of a V2 inference request over {len(times['ours'])} requests: through the platform "
               "URL with the deployment's API key (hub proxy -> model gateway, credential checked -> MLServer) "
               "vs direct to MLServer; target is on the difference (overhead_ms)",
        ours=ours, baseline=baseline, target=2.0, units="milliseconds (target: p50 overhead <= 2 ms)",
        met=overhead <= 2.0, overhead_ms=round(overhead, 3),
        p50=q,
        overhead_by_path_ms={k: round(v - q["baseline"], 3) for k, v in q.items() if k != "baseline"},
        p90={k: round(statistics.quantiles(v, n=10)[-1], 3) for k, v in times.items()},
        # the machine is shared: the 1-minute load average before and after, to judge the numbers by
        load_average_1m={"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
    )


if __name__ == "__main__":
    main()
