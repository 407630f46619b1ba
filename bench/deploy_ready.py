"""Click-to-ready: deploying a model file from the notebook (upload to the user's bucket, platform service,
MLServer from the bucket, proxy route, ready) vs. a bare `mlserver start` of the same model, same run.

Ours: POST /user/alice/odh/api/deployments {"path": "model.joblib"} (what the JupyterLab command sends) until
the deployment reports stage "ready" (the platform's readiness check passed and the route is in place).
Baseline: `mlserver start DIR` until GET /v2/models/NAME/ready answers 200. Runs alternate; medians.
Target: ratio <= 1.3."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import median, write_result  # noqa: E402
from bench._deploy import BareMLServer, Platform, train  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))


def main() -> None:
    times = {"ours": [], "baseline": []}
    with Platform() as p:
        model = os.path.join(p.home, "model.joblib")
        train(model)
        p.delete(p.deploy("warm", "model.joblib")["name"])  # imports and caches warm, both sides
        bare = BareMLServer(model, p.tmp.name)
        bare.start_until_ready()
        bare.stop()
        for i in range(RUNS):
            for side in (("ours", "baseline") if i % 2 == 0 else ("baseline", "ours")):
                if side == "ours":
                    import time

                    t0 = time.perf_counter()
                    p.deploy(f"bench-{i}", "model.joblib")
                    times["ours"].append(time.perf_counter() - t0)
                    p.delete(f"bench-{i}")
                else:
                    times["baseline"].append(bare.start_until_ready())
                    bare.stop()
    ours, baseline = median(times["ours"]), median(times["baseline"])
    write_result(
        "deploy_ready",
        figure=f"median click-to-ready of a scikit-learn model over {RUNS} runs: deploy from a notebook file "
               "(upload to the user's bucket, platform service, MLServer, proxy route) vs bare `mlserver start`",
        ours=ours, baseline=baseline, target=1.3, units="seconds (ratio ours/baseline)",
        met=ours / baseline <= 1.3, samples={k: [round(x, 3) for x in v] for k, v in times.items()},
    )


if __name__ == "__main__":
    main()
