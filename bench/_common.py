"""Shared by the benchmarks: write bench/results/NAME.json with the agreed fields."""

import json
import os
import platform
import statistics
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def write_result(name: str, *, figure: str, ours: float, baseline: float, target: float, units: str,
                 met: bool, **extra) -> dict:
    result = {
        "figure": figure,
        "ours": round(ours, 6),
        "baseline": round(baseline, 6),
        "ratio": round(ours / baseline, 4) if baseline else None,
        "target": target,
        "units": units,
        "met": met,
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        **extra,
    }
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    with open(os.path.join(HERE, "results", f"{name}.json"), "w") as f:
        json.dump(result, f, indent=2)
    print(json.dumps(result, indent=2))
    return result


def median(xs):
    return statistics.median(xs)
