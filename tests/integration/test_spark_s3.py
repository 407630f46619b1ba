"""Data from object storage through the user's Spark cluster: a CSV in a real Ceph RGW bucket is read with
pyarrow's S3 filesystem, aggregated on the standalone cluster, and the result written back as Parquet.

(s3a:// is not available on these machines: no reachable registry carries hadoop-aws. Notebook images
built elsewhere carry it; here data moves between RGW and Spark through Arrow.)
"""

import uuid

import pytest

from tests.integration.test_spark_local import clusters, spark_driver, spark_root  # noqa: F401  (fixtures)

REGIONS = ("east", "north", "south", "west")
ROWS = 10_000


@pytest.fixture
def s3(ceph, monkeypatch):
    from pyarrow import fs

    # RGW 16 rejects the checksum headers newer AWS SDKs send by default (411 on multipart uploads)
    monkeypatch.setenv("AWS_REQUEST_CHECKSUM_CALCULATION", "WHEN_REQUIRED")
    monkeypatch.setenv("AWS_RESPONSE_CHECKSUM_VALIDATION", "WHEN_REQUIRED")
    return fs.S3FileSystem(endpoint_override=ceph.endpoint.removeprefix("http://"), scheme="http",
                           access_key=ceph.admin.access_key, secret_key=ceph.admin.secret_key, region="us-east-1",
                           allow_bucket_creation=True)


async def test_csv_from_a_bucket_aggregated_on_the_cluster_and_written_back(s3, clusters, spark_driver):
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq
    from pyarrow.fs import FileSelector, FileType
    from pyspark.sql import functions as F

    bucket = f"spark-{uuid.uuid4().hex[:12]}"
    s3.create_dir(bucket)
    rows = {"region": [REGIONS[i % 4] for i in range(ROWS)], "amount": [i % 97 for i in range(ROWS)]}
    with s3.open_output_stream(f"{bucket}/input/sales.csv") as out:
        pacsv.write_csv(pa.table(rows), out)
    expected = {r: (sum(a for g, a in zip(rows["region"], rows["amount"]) if g == r), ROWS // 4) for r in REGIONS}

    cluster = clusters("s3")
    await cluster.start()
    spark = spark_driver(cluster, app="s3-aggregate")
    with s3.open_input_stream(f"{bucket}/input/sales.csv") as f:
        table = pacsv.read_csv(f)
    assert table.num_rows == ROWS
    df = spark.createDataFrame(table).repartition(4)
    totals = (df.groupBy("region").agg(F.sum("amount").alias("total"), F.count("*").alias("n"))
              .orderBy("region").toArrow())
    status = await cluster.status()
    assert [a.name for a in status.running_applications] == ["s3-aggregate"]
    pq.write_table(totals, f"{bucket}/output/totals.parquet", filesystem=s3)

    back = pq.read_table(f"{bucket}/output/totals.parquet", filesystem=s3).to_pylist()
    assert {r["region"]: (r["total"], r["n"]) for r in back} == expected
    listing = s3.get_file_info(FileSelector(bucket, recursive=True))
    assert sorted(i.path for i in listing if i.type == FileType.File) == [f"{bucket}/input/sales.csv",
                                                                         f"{bucket}/output/totals.parquet"]
