#!/bin/sh
# What the spark flavour adds to a notebook image (images/notebook/Dockerfile), in two steps:
#   spark-extras.sh java  — Java 17 for Spark, and curl for the jars (before the lock is installed)
#   spark-extras.sh jars  — s3a://: hadoop-aws of exactly the Hadoop version pyspark bundles, and the AWS SDK v2
#                           bundle (and S3 analytics accelerator) of the version that Hadoop release declares (from its hadoop-project pom),
#                           from Maven Central, each checked against its published SHA-1 (after the lock)
set -eu
case $1 in
  java)
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends openjdk-17-jre-headless curl ca-certificates
    rm -rf /var/lib/apt/lists/* ;;
  jars)
    jars=$(python -c 'import pyspark, os; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')
    hadoop=$(ls "$jars" | sed -n 's/^hadoop-client-api-\(.*\)\.jar$/\1/p')
    m2=https://repo1.maven.org/maven2
    pom=$(curl -fsSL "$m2/org/apache/hadoop/hadoop-project/$hadoop/hadoop-project-$hadoop.pom")
    sdk=$(echo "$pom" | sed -n 's:.*<aws-java-sdk-v2.version>\(.*\)</aws-java-sdk-v2.version>.*:\1:p')
    analytics=$(echo "$pom" | sed -n 's:.*<amazon-s3-analyticsaccelerator-s3.version>\(.*\)</amazon-s3-analyticsaccelerator-s3.version>.*:\1:p')
    fetch() { curl -fsSL -o "$jars/$2" "$m2/$1/$2"; echo "$(curl -fsSL "$m2/$1/$2.sha1")  $jars/$2" | sha1sum -c -; }
    fetch "org/apache/hadoop/hadoop-aws/$hadoop" "hadoop-aws-$hadoop.jar"
    fetch "software/amazon/awssdk/bundle/$sdk" "bundle-$sdk.jar"
    # hadoop-aws links against the S3 analytics accelerator from Hadoop 3.4.2 (odh_spawner/host/hadoop_jars.py)
    [ -z "$analytics" ] || fetch "software/amazon/s3/analyticsaccelerator/analyticsaccelerator-s3/$analytics" \
                                 "analyticsaccelerator-s3-$analytics.jar" ;;
  *) echo "usage: spark-extras.sh java|jars" >&2; exit 2 ;;
esac
