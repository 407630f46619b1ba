"""Per-spawn profile work with 500 profiles and 50 groups: store check (hot reload) + resolve -> SpawnPlan.

Baseline in the same run: the same path with one profile and one group, so the ratio shows what 500 profiles
cost. Target: <= 1 ms per spawn (absolute)."""

import os
import random
import sys
import tempfile
import time

import yaml

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import median, write_result  # noqa: E402
from odh_spawner.profiles.store import ProfileStore  # noqa: E402
from odh_spawner.profiles.resolve import resolve  # noqa: E402

DIGEST = "sha256:" + "b" * 64
N_PROFILES, N_GROUPS, SPAWNS = 500, 50, 2000


def document(n_profiles: int, n_groups: int, rng: random.Random) -> dict:
    profiles = []
    for i in range(n_profiles):
        p = {
            "slug": f"profile-{i}",
            "display_name": f"Profile {i}",
            "image": f"quay.io/example/p{i}@{DIGEST}",
            "groups": [f"group-{g}" for g in rng.sample(range(n_groups), k=min(3, n_groups))],
            "sizes": [{"slug": s, "cpu": {"limit": c}, "memory": {"limit": m}}
                      for s, c, m in (("small", 1, "2Gi"), ("medium", 2, "4Gi"), ("large", 4, "8Gi"))],
        }
        if i % 5 == 0:
            p["gpu"] = {"max": 2}
        if i % 7 == 0:
            p["spark"] = {"workers": {"default": 1, "max": 4}}
        profiles.append(p)
    return {"profiles": profiles}


def per_spawn_ms(path: str, requests: list) -> float:
    store = ProfileStore(path)
    times = []
    for user, groups, options in requests:
        t0 = time.perf_counter()
        profiles = store.get()
        resolve(profiles, user, groups, options)
        times.append((time.perf_counter() - t0) * 1000)
    return median(times)


def main() -> None:
    rng = random.Random(42)
    with tempfile.TemporaryDirectory() as d:
        big, small = os.path.join(d, "big.yaml"), os.path.join(d, "small.yaml")
        doc = document(N_PROFILES, N_GROUPS, rng)
        with open(big, "w") as f:
            yaml.safe_dump(doc, f)
        with open(small, "w") as f:
            yaml.safe_dump(document(1, 1, rng), f)
        reqs = []
        for _ in range(SPAWNS):
            groups = [f"group-{g}" for g in rng.sample(range(N_GROUPS), k=3)]
            visible = [p for p in doc["profiles"] if set(p["groups"]) & set(groups)]
            p = rng.choice(visible)
            reqs.append(("user", groups, {"profile": p["slug"], "size": rng.choice(["small", "medium", "large"])}))
        small_reqs = [("user", ["group-0"], {"profile": "profile-0", "size": "medium"})] * SPAWNS
        per_spawn_ms(big, reqs[:200])  # warm up
        ours = per_spawn_ms(big, reqs)
        baseline = per_spawn_ms(small, small_reqs)
    write_result(
        "profile_resolution",
        figure=f"median per-spawn store check + resolve, {N_PROFILES} profiles / {N_GROUPS} groups "
               f"(baseline: 1 profile / 1 group), {SPAWNS} spawns",
        ours=ours, baseline=baseline, target=1.0, units="ms per spawn", met=ours <= 1.0,
    )


if __name__ == "__main__":
    main()
