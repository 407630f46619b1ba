"""The hub side's metrics, registered in prometheus_client's default registry: JupyterHub serves that registry
at /hub/metrics (behind its `read:metrics` scope), so these appear beside `jupyterhub_*`.

Spawners call the `record_*` functions; each is cheap and never raises into a spawn."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

# spawn stages run from milliseconds (profile) to minutes (a first environment build)
STAGE_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120, 300, 600)

SPAWNS = Counter("odh_spawns", "Server starts by profile and outcome.", ["profile", "outcome"])
SPAWN_STAGE_SECONDS = Histogram("odh_spawn_stage_duration_seconds", "Seconds of each spawn stage.",
                                ["profile", "stage"], buckets=STAGE_BUCKETS)
CREDENTIALS_ISSUED = Counter("odh_credentials_issued", "Object-storage credentials handed to a starting server.")
CREDENTIALS_FAILURES = Counter("odh_credentials_failures",
                               "Server starts that could not get object-storage credentials.")
SPARK_STARTS = Counter("odh_spark_cluster_starts", "Spark clusters started with a server, by outcome.",
                       ["outcome"])
SPARK_START_SECONDS = Histogram("odh_spark_cluster_start_seconds",
                                "Seconds from asking for a Spark cluster to its workers registered.",
                                buckets=(1, 2, 5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 300))

SUCCESS, FAILURE = "success", "failure"


def record_spawn(profile: str, ok: bool, stages: dict[str, float]) -> None:
    """One server start ended: its outcome and every stage's seconds, under the profile's slug ("" without a
    profile: "none")."""
    profile = profile or "none"
    SPAWNS.labels(profile=profile, outcome=SUCCESS if ok else FAILURE).inc()
    for stage, seconds in stages.items():
        SPAWN_STAGE_SECONDS.labels(profile=profile, stage=stage).observe(max(0.0, seconds))


def record_credentials(ok: bool) -> None:
    (CREDENTIALS_ISSUED if ok else CREDENTIALS_FAILURES).inc()


def record_spark_start(ok: bool, seconds: float | None = None) -> None:
    SPARK_STARTS.labels(outcome=SUCCESS if ok else FAILURE).inc()
    if ok and seconds is not None:
        SPARK_START_SECONDS.observe(max(0.0, seconds))
