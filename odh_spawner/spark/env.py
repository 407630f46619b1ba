"""What a notebook needs to use its Spark cluster, as environment variables. Pure.

`MASTER`, `SPARK_EXECUTOR_MEMORY` and `SPARK_EXECUTOR_CORES` are read by spark-submit (which pyspark runs to
start its driver), so a plain `SparkSession.builder.getOrCreate()` in the notebook uses the cluster, with one
executor per worker that fits the worker exactly.
"""

from __future__ import annotations

from ..resolve import SparkRequest

MIB = 2**20


def spark_memory(n: int) -> str:
    """bytes -> a Spark memory string in MiB ('512m'), rounded down, at least 1m."""
    return f"{max(1, n // MIB)}m"


def spark_env(master_url: str, ui_url: str, request: SparkRequest) -> dict[str, str]:
    return {
        "SPARK_MASTER_URL": master_url,
        "MASTER": master_url,
        "SPARK_EXECUTOR_MEMORY": spark_memory(request.worker_memory),
        "SPARK_EXECUTOR_CORES": str(request.worker_cores),
        "ODH_SPARK_UI_URL": ui_url,
    }
