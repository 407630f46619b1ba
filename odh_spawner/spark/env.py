"""What a notebook needs to use its Spark cluster, as environment variables. Pure.

`MASTER`, `SPARK_EXECUTOR_MEMORY` and `SPARK_EXECUTOR_CORES` are read by spark-submit (which pyspark runs to
start its driver), so a plain `SparkSession.builder.getOrCreate()` in the notebook uses the cluster, with one
executor per worker that fits the worker exactly.
"""

from __future__ import annotations

from odh_spawner.profiles.resolve import SparkRequest

MIB = 2**20


def spark_memory(n: int) -> str:
    """bytes -> a Spark memory string in MiB ('512m'), rounded down, at least 1m."""
    return f"{max(1, n // MIB)}m"


def spark_env(master_url: str, ui_url: str, request: SparkRequest, ui_proxy_url: str = "") -> dict[str, str]:
    """`ui_proxy_url`: where the user's server proxies the master UI. The notebook's driver then runs in Spark's
    reverse-proxy mode under it too (`SPARK_SUBMIT_OPTS` system properties, which SparkConf reads and a
    builder's .config() still overrides), so the master's link to a running application's UI works through
    the hub's proxy."""
    env = {
        "SPARK_MASTER_URL": master_url,
        "MASTER": master_url,
        "SPARK_EXECUTOR_MEMORY": spark_memory(request.worker_memory),
        "SPARK_EXECUTOR_CORES": str(request.worker_cores),
        "ODH_SPARK_UI_URL": ui_url,
    }
    if ui_proxy_url:
        env["SPARK_SUBMIT_OPTS"] = reverse_proxy_opts(ui_proxy_url)
    return env


def reverse_proxy_opts(ui_proxy_url: str) -> str:
    """JVM options turning on Spark's reverse-proxy mode under `ui_proxy_url` (master, workers, drivers)."""
    return f"-Dspark.ui.reverseProxy=true -Dspark.ui.reverseProxyUrl={ui_proxy_url.rstrip('/')}"
