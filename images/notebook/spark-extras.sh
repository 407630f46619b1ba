#!/bin/sh
# What the spark flavour adds to a notebook image (images/notebook/Dockerfile), in two steps:
#   spark-extras.sh java       — Java 17 for Spark (before the lock is installed)
#   spark-extras.sh jars DIR   — s3a://: the jars the build stage `s3a` fetched with Maven, checksum-verified
#                                (python -m odh_spawner.host.hadoop_jars --export DIR: hadoop-aws of exactly the
#                                Hadoop version pyspark bundles, and the AWS SDK v2 bundle and S3 analytics
#                                accelerator that Hadoop release declares), put beside the lock's pyspark (after
#                                the lock). Refuses jars made for another Hadoop than this pyspark's.
# No network access here: nothing is downloaded in the runtime stage.
set -eu
case ${1:-} in
  java)
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless
    rm -rf /var/lib/apt/lists/* ;;
  jars)
    src=${2:?usage: spark-extras.sh jars DIR}
    jars=${PYSPARK_JARS:-$(python -c 'import pyspark, os; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')}
    hadoop=$(ls "$jars" | sed -n 's/^hadoop-client-api-\(.*\)\.jar$/\1/p')
    [ -n "$hadoop" ] || { echo "spark-extras: no hadoop-client-api jar in $jars" >&2; exit 1; }
    [ -f "$src/hadoop-aws-$hadoop.jar" ] || {
      echo "spark-extras: $src has no hadoop-aws-$hadoop.jar (pyspark bundles Hadoop $hadoop; found: $(ls "$src" | tr '\n' ' '))" >&2
      exit 1; }
    for f in "$src"/*.jar; do
      install -m 0644 "$f" "$jars/$(basename "$f")"
      echo "spark-extras: $(basename "$f") -> $jars"
    done ;;
  *) echo "usage: spark-extras.sh java | jars DIR" >&2; exit 2 ;;
esac
