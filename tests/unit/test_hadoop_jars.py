"""The s3a jars (host.hadoop_jars) and the driver's s3a settings (spark.s3a): pure parts, no network."""

import hashlib
import os

import pytest

from odh_spawner.host import hadoop_jars as hj
from odh_spawner.spark import s3a

pytestmark = pytest.mark.unit


def test_hadoop_version_comes_from_pysparks_own_client_jar():
    names = ["spark-core_2.13-4.3.0.jar", "hadoop-client-api-3.5.0.jar", "hadoop-client-runtime-3.5.0.jar"]
    assert hj.hadoop_version(names) == "3.5.0"
    with pytest.raises(hj.HadoopJarsError, match="none"):
        hj.hadoop_version(["spark-core_2.13-4.3.0.jar"])
    with pytest.raises(hj.HadoopJarsError, match="3.4.1"):
        hj.hadoop_version(["hadoop-client-api-3.4.1.jar", "hadoop-client-api-3.5.0.jar"])


def test_sdk_version_comes_from_the_hadoop_project_pom():
    pom = "<properties>\n  <aws-java-sdk-v2.version>2.35.4</aws-java-sdk-v2.version>\n</properties>"
    assert hj.sdk_version(pom) == "2.35.4"
    assert hj.analytics_version(pom) == ""
    assert hj.analytics_version("<amazon-s3-analyticsaccelerator-s3.version>1.3.1</amazon-s3-analyticsaccelerator-s3.version>") == "1.3.1"
    with pytest.raises(hj.HadoopJarsError, match="aws-java-sdk-v2.version"):
        hj.sdk_version("<aws-java-sdk.version>1.12.0</aws-java-sdk.version>")


def test_artifacts_paths_and_the_maven_command():
    aws, bundle, analytics = hj.s3a_jars("3.5.0", "2.35.4", "1.3.1")
    assert analytics.coordinates == "software.amazon.s3.analyticsaccelerator:analyticsaccelerator-s3:1.3.1:jar"
    assert len(hj.s3a_jars("3.4.1", "2.24.6")) == 2
    assert aws.coordinates == "org.apache.hadoop:hadoop-aws:3.5.0:jar"
    assert bundle.repo_path("/r") == "/r/software/amazon/awssdk/bundle/2.35.4/bundle-2.35.4.jar"
    assert hj.project_pom("3.5.0").filename == "hadoop-project-3.5.0.pom"
    cmd = hj.mvn_get("mvn", "/r", aws)
    assert "-C" in cmd and "-Dmaven.repo.local=/r" in cmd and "-Dtransitive=false" in cmd  # strict checksums
    assert "-Dartifact=org.apache.hadoop:hadoop-aws:3.5.0:jar" in cmd


def test_a_cached_jar_whose_sha1_differs_is_refused(tmp_path):
    art = hj.Artifact("org.example", "thing", "1.0")
    path = art.repo_path(str(tmp_path))
    (tmp_path / "org/example/thing/1.0").mkdir(parents=True)
    open(path, "wb").write(b"the real bytes")
    open(path + ".sha1", "w").write(hashlib.sha1(b"the real bytes").hexdigest() + "  thing-1.0.jar\n")
    assert hj.fetch(art, str(tmp_path), mvn="/nonexistent/mvn") == path  # cached and right: no Maven run
    open(path, "wb").write(b"swapped bytes")
    with pytest.raises(hj.HadoopJarsError, match="is not the published"):
        hj.fetch(art, str(tmp_path), mvn="/nonexistent/mvn")


def test_install_places_both_jars_beside_pysparks_and_is_idempotent(tmp_path):
    repo, pyspark = tmp_path / "repo", tmp_path / "pyspark"
    (pyspark / "jars").mkdir(parents=True)
    (pyspark / "jars" / "hadoop-client-api-3.5.0.jar").write_bytes(b"api")
    files = {hj.project_pom("3.5.0"): b"<aws-java-sdk-v2.version>2.35.4</aws-java-sdk-v2.version>"}
    files.update({a: a.filename.encode() for a in hj.s3a_jars("3.5.0", "2.35.4")})
    for art, data in files.items():  # a repository as Maven leaves it
        p = art.repo_path(str(repo))
        os.makedirs(os.path.dirname(p))
        open(p, "wb").write(data)
        open(p + ".sha1", "w").write(hashlib.sha1(data).hexdigest())
    said = []
    out = hj.install(str(pyspark), str(repo), log=said.append)
    assert sorted(p.rsplit("/", 1)[1] for p in out) == ["bundle-2.35.4.jar", "hadoop-aws-3.5.0.jar"]
    assert (pyspark / "jars" / "bundle-2.35.4.jar").read_bytes() == b"bundle-2.35.4.jar"
    assert len(said) == 2
    hj.install(str(pyspark), str(repo), log=said.append)
    assert len(said) == 2  # nothing to do the second time


def test_the_driver_conf_for_rgw():
    conf = s3a.driver_conf("http://127.0.0.1:8080", "AK", "SK")
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:8080"
    assert conf["spark.hadoop.fs.s3a.path.style.access"] == "true"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert (conf["spark.hadoop.fs.s3a.access.key"], conf["spark.hadoop.fs.s3a.secret.key"]) == ("AK", "SK")
    assert conf["spark.hadoop.fs.s3a.aws.credentials.provider"].split(",")[0].endswith("SimpleAWSCredentialsProvider")
    assert conf["spark.hadoop.fs.s3a.signing-algorithm"] == "AWS4UnsignedPayloadSignerType"  # RGW 16 and empty PUTs
    keyless = s3a.driver_conf("https://rgw.example:443")
    assert "spark.hadoop.fs.s3a.secret.key" not in keyless
    assert keyless["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "true"
    assert "EnvironmentVariableCredentialsProvider" in keyless["spark.hadoop.fs.s3a.aws.credentials.provider"]
    for bad in ("", "ftp://x", "http://", "http://a b"):
        with pytest.raises(s3a.S3aConfigError):
            s3a.driver_conf(bad)
    with pytest.raises(s3a.S3aConfigError, match="secret key"):
        s3a.driver_conf("http://x:1", "AK", "S K")


def test_export_without_a_directory_is_refused_with_a_message(capsys):
    assert hj.main(["/nonexistent/pyspark", "--export"]) == 2
    assert "--export needs a directory" in capsys.readouterr().err


def test_export_of_a_pyspark_that_is_not_there_names_the_directory(tmp_path, capsys):
    assert hj.main([str(tmp_path / "nope"), "--export", str(tmp_path / "out")]) == 1
    assert f"{tmp_path / 'nope' / 'jars'} cannot be listed" in capsys.readouterr().err
