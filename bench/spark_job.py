"""A fixed Spark job on the user's standalone cluster (2 workers x 1 core) vs. local[*] in the driver.

Job: spark.range(10_000_000) grouped by id % 100, sum(id), collected (100 rows, checked). One session per
side in the same driver process; one warm-up run, then the median of RUNS runs. Report only (no target):
the standalone cluster pays for executors in separate JVMs and a shuffle over the network stack."""

import asyncio
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import median, write_result  # noqa: E402
from odh_spawner.profiles.resolve import SparkRequest  # noqa: E402
from odh_spawner.spark import LocalSparkCluster, spark_memory  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
N, KEYS = 10_000_000, 100
REQUEST = SparkRequest(workers=2, worker_cores=1, worker_memory=1024 * 2**20)
EXPECTED = {k: sum(range(k, N, KEYS)) for k in range(KEYS)}


def run_job(spark) -> float:
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    rows = spark.range(N).groupBy((F.col("id") % KEYS).alias("k")).agg(F.sum("id").alias("s")).collect()
    elapsed = time.perf_counter() - t0
    assert {r["k"]: r["s"] for r in rows} == EXPECTED
    return elapsed


def timed(master: str, conf: dict) -> list[float]:
    from pyspark.sql import SparkSession

    builder = SparkSession.builder.master(master).appName("bench-spark-job")
    for k, v in {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
                 "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false", **conf}.items():
        builder = builder.config(k, v)
    spark = builder.getOrCreate()
    try:
        run_job(spark)  # warm-up: executors start, code paths load
        return [run_job(spark) for _ in range(RUNS)]
    finally:
        spark.stop()


async def main() -> None:
    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    with tempfile.TemporaryDirectory() as d:
        cluster = LocalSparkCluster(d, "bench", REQUEST)
        try:
            await cluster.start()
            standalone = timed(cluster.master_url, {"spark.executor.memory": spark_memory(REQUEST.worker_memory),
                                                    "spark.executor.cores": "1"})
        finally:
            await cluster.stop()
    local = timed("local[*]", {})
    ours, baseline = median(standalone), median(local)
    write_result(
        "spark_job",
        figure=f"median time of a {N:,}-row aggregation (range, group by id % {KEYS}, sum) over {RUNS} runs after a "
               f"warm-up: standalone cluster (2 workers x 1 core, 1g) vs local[*] in the driver "
               f"({os.cpu_count()} cores)",
        ours=ours, baseline=baseline, target=None, units="seconds (ratio standalone/local)", met=None,
        samples={"standalone": [round(x, 3) for x in standalone], "local": [round(x, 3) for x in local]},
        load_average=round(os.getloadavg()[0], 2),
    )


if __name__ == "__main__":
    asyncio.run(main())
