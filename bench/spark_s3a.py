"""Spark reading parquet from the object store through s3a:// vs pyarrow + boto3 reading the same files.

A real Ceph RGW and one RGW user (the platform's credential store); BENCH_GIB (1) GiB of incompressible parquet in
that user's bucket (BENCH_FILES files, two int64 columns of random values). Ours: the user's standalone Spark
cluster as a notebook gets it (LocalSparkCluster, 1 worker x 1 core, the notebook driver's s3a settings from
spark.s3a with the user's keys) sums both columns of every file (`spark.read.parquet("s3a://...")`, so every byte
is read, not only the footers). Baseline: one Python process (the same count of processes reading: one executor)
fetching each object with boto3 and summing the same columns with pyarrow (the low 10 bits of each value,
so that the sums stay in range). Both sums are checked against what was
written. One warm-up per side, then the median of BENCH_RUNS runs; throughput in GiB/s, ratio ours/baseline,
target >= 0.8 (issue 20)."""

import asyncio
import io
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench._common import median, write_result  # noqa: E402
from odh_spawner.localplatform.ceph import CephCluster  # noqa: E402
from odh_spawner.profiles.resolve import SparkRequest  # noqa: E402
from odh_spawner.spark import LocalSparkCluster, s3a, spark_memory  # noqa: E402

RUNS = int(os.environ.get("BENCH_RUNS", "5"))
GIB = float(os.environ.get("BENCH_GIB", "1"))
FILES = int(os.environ.get("BENCH_FILES", "8"))
BUCKET, PREFIX = "bench-s3a", "numbers/"
MASK = 1023  # each value's low bits are summed (every value is read; the sums cannot overflow)
REQUEST = SparkRequest(workers=1, worker_cores=1, worker_memory=2 * 2**30)


def write_data(s3) -> tuple[int, int, int]:
    """FILES parquet objects holding GIB GiB in total; returns (bytes stored, sum a, sum b)."""
    import numpy as np
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = int(GIB * 2**30 / 16 / FILES)  # two int64 columns
    rng = np.random.default_rng(20)
    stored = sum_a = sum_b = 0
    s3.create_bucket(Bucket=BUCKET)
    for i in range(FILES):
        a = rng.integers(0, 2**62, rows, dtype=np.int64)  # random bits: parquet cannot shrink them
        b = rng.integers(0, 2**62, rows, dtype=np.int64)
        sum_a, sum_b = sum_a + int((a & MASK).sum()), sum_b + int((b & MASK).sum())
        buf = io.BytesIO()
        pq.write_table(pa.table({"a": a, "b": b}), buf, compression="snappy")
        stored += buf.tell()
        buf.seek(0)
        s3.upload_fileobj(buf, BUCKET, f"{PREFIX}part-{i:03d}.parquet")
    return stored, sum_a, sum_b


def baseline_run(s3, expected) -> float:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    t0 = time.perf_counter()
    sum_a = sum_b = 0
    for obj in s3.list_objects_v2(Bucket=BUCKET, Prefix=PREFIX)["Contents"]:
        body = s3.get_object(Bucket=BUCKET, Key=obj["Key"])["Body"].read()
        table = pq.read_table(io.BytesIO(body), columns=["a", "b"])
        sum_a += pc.sum(pc.bit_wise_and(table["a"], MASK)).as_py()
        sum_b += pc.sum(pc.bit_wise_and(table["b"], MASK)).as_py()
    elapsed = time.perf_counter() - t0
    assert (sum_a, sum_b) == expected, (sum_a, sum_b, expected)
    return elapsed


def spark_run(spark, expected) -> float:
    from pyspark.sql import functions as F

    t0 = time.perf_counter()
    df = spark.read.parquet(f"s3a://{BUCKET}/{PREFIX}")
    row = df.agg(F.sum(F.col("a").bitwiseAND(MASK)).alias("a"), F.sum(F.col("b").bitwiseAND(MASK)).alias("b")).first()
    elapsed = time.perf_counter() - t0
    assert (row["a"], row["b"]) == expected, (row, expected)
    return elapsed


async def main() -> None:
    import boto3
    from botocore.config import Config
    from pyspark.sql import SparkSession

    from odh_spawner.credentials.rgw import RgwCredentialStore

    os.environ["SPARK_LOCAL_IP"] = "127.0.0.1"
    with tempfile.TemporaryDirectory() as d:
        ceph = CephCluster(os.path.join(d, "ceph")).start()
        try:
            creds = await RgwCredentialStore(ceph.endpoint, ceph.admin.access_key, ceph.admin.secret_key).ensure("bench")
            s3 = boto3.client("s3", endpoint_url=ceph.endpoint, aws_access_key_id=creds.access_key,
                              aws_secret_access_key=creds.secret_key, region_name="us-east-1",
                              config=Config(s3={"addressing_style": "path"}, request_checksum_calculation="when_required",
                                            response_checksum_validation="when_required"))
            stored, sum_a, sum_b = write_data(s3)
            expected = (sum_a, sum_b)
            baseline_run(s3, expected)  # warm-up
            base = [baseline_run(s3, expected) for _ in range(RUNS)]
            # the user's cluster as the spawner makes it: the notebook's spark-defaults.conf (its SPARK_CONF_DIR)
            # holds the cluster's secret and the s3a settings with the user's keys
            cluster = LocalSparkCluster(os.path.join(d, "spark"), "bench", REQUEST,
                                        driver_conf=s3a.driver_conf(ceph.endpoint, creds.access_key, creds.secret_key))
            try:
                await cluster.start()
                os.environ["SPARK_CONF_DIR"] = cluster.notebook_env()["SPARK_CONF_DIR"]
                builder = SparkSession.builder.master(cluster.master_url).appName("bench-spark-s3a")
                conf = {"spark.driver.host": "127.0.0.1", "spark.driver.bindAddress": "127.0.0.1",
                        "spark.ui.enabled": "false", "spark.ui.showConsoleProgress": "false",
                        "spark.executor.memory": spark_memory(REQUEST.worker_memory), "spark.executor.cores": "1"}
                for k, v in conf.items():
                    builder = builder.config(k, v)
                spark = builder.getOrCreate()
                try:
                    spark_run(spark, expected)  # warm-up: the executor starts, s3a connects
                    ours_t = [spark_run(spark, expected) for _ in range(RUNS)]
                finally:
                    spark.stop()
            finally:
                await cluster.stop()
        finally:
            ceph.stop()
    gib = stored / 2**30
    ours, baseline = gib / median(ours_t), gib / median(base)
    write_result(
        "spark_s3a",
        figure=f"read throughput of {gib:.2f} GiB of parquet ({FILES} objects, two random int64 columns summed) from "
               f"Ceph RGW: Spark through s3a:// on the user's cluster (1 worker x 1 core) vs pyarrow + boto3 in one "
               f"process; median of {RUNS} runs after a warm-up",
        ours=ours, baseline=baseline, target=0.8, units="GiB/s (ratio Spark/pyarrow)", met=ours / baseline >= 0.8,
        samples={"spark_seconds": [round(x, 3) for x in ours_t], "pyarrow_seconds": [round(x, 3) for x in base]},
        load_average=round(os.getloadavg()[0], 2),
    )


if __name__ == "__main__":
    asyncio.run(main())
