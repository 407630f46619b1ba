"""Apache Kafka as the local test broker (localplatform.apache_kafka) and the Maven helper it shares with
host.hadoop_jars (host.maven): pure parts and the cached-classpath logic, no network, no JVM."""

import hashlib
import os
import xml.etree.ElementTree as ET

import pytest

from odh_spawner.errors import OdhError
from odh_spawner.host import maven
from odh_spawner.localplatform import apache_kafka as ak
from odh_spawner.localplatform.kafka import KafkaError

pytestmark = pytest.mark.unit


def props(text):
    return dict(line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#"))


def test_server_properties_are_one_kraft_node_on_loopback():
    p = props(ak.server_properties(40001, 40002, "/d/data"))
    assert p["process.roles"] == "broker,controller"
    assert p["controller.quorum.voters"] == "1@127.0.0.1:40002"  # static: a restart may change ports
    assert p["listeners"] == "PLAINTEXT://127.0.0.1:40001,CONTROLLER://127.0.0.1:40002"
    assert p["advertised.listeners"] == "PLAINTEXT://127.0.0.1:40001"
    assert p["controller.listener.names"] == "CONTROLLER"
    assert p["log.dirs"] == "/d/data"
    for key in ("offsets.topic.replication.factor", "transaction.state.log.replication.factor",
                "transaction.state.log.min.isr", "default.replication.factor"):
        assert p[key] == "1", key
    assert p["group.initial.rebalance.delay.ms"] == "0"
    assert p["auto.create.topics.enable"] == "false"  # like Strimzi with KafkaTopics: a missing topic is an error
    assert "0.0.0.0" not in ak.server_properties(1, 2, "/x")


def test_the_java_command_lines():
    cmd = ak.java_command("/usr/bin/java", "/c/libs", ak.MAIN, ["/d/server.properties"], log4j="/d/log4j2.properties",
                          tmpdir="/d/tmp")
    assert cmd[0] == "/usr/bin/java" and "-Xmx512m" in cmd
    assert "-Dlog4j2.configurationFile=/d/log4j2.properties" in cmd and "-Djava.io.tmpdir=/d/tmp" in cmd
    assert cmd[-4:] == ["-cp", "/c/libs/*", "kafka.Kafka", "/d/server.properties"]
    assert ak.java_command("j", "/l", ak.STORAGE_TOOL, [], log4j="l", tmpdir="t", heap="256m")[1] == "-Xmx256m"
    assert ak.format_args("/d/server.properties", "ID") == ["format", "-t", "ID", "-c", "/d/server.properties"]
    assert "rootLogger.level = WARN" in ak.log4j2_properties()


def test_cluster_ids_look_like_kafkas():
    cid = ak.cluster_id(bytes(range(16)))
    assert cid == "AAECAwQFBgcICQoLDA0ODw" and len(cid) == 22
    assert not ak.cluster_id(b"\xfb" + bytes(15)).startswith("-")
    with pytest.raises(ValueError):
        ak.cluster_id(b"short")


def test_the_slf4j_binding_kafkas_pom_leaves_out():
    names = ["kafka_2.13-4.4.0.jar", "slf4j-api-1.7.36.jar", "log4j-api-2.25.5.jar", "log4j-core-2.25.5.jar"]
    b = ak.slf4j_binding(names)
    assert b.coordinates == "org.apache.logging.log4j:log4j-slf4j-impl:2.25.5:jar"
    assert ak.slf4j_binding(["slf4j-api-2.0.17.jar", "log4j-core-2.25.5.jar"]).artifact == "log4j-slf4j2-impl"
    assert ak.slf4j_binding(["slf4j-api-1.7.36.jar"]).coordinates == "org.slf4j:slf4j-simple:1.7.36:jar"
    assert ak.slf4j_binding(names + ["log4j-slf4j-impl-2.25.5.jar"]) is None
    assert ak.slf4j_binding(["kafka-clients-4.4.0.jar"]) is None
    assert ak.jar_version(["log4j-core-2.25.5.jar", "log4j-core-api-9.jar"], "log4j-core") == "2.25.5"


def test_the_classpath_directory_is_used_only_when_complete(tmp_path, monkeypatch):
    monkeypatch.setenv("ODH_KAFKA_JARS", str(tmp_path))
    assert ak.libs_dir("4.4.0") == str(tmp_path / "4.4.0" / "libs")
    libs = tmp_path / "4.4.0" / "libs"
    libs.mkdir(parents=True)
    (libs / "kafka_2.13-4.4.0.jar").write_bytes(b"k")
    assert ak.cached_libs("4.4.0") == ""  # no marker: an interrupted fetch
    (libs / ak.COMPLETE).write_text("kafka_2.13-4.4.0.jar\nkafka-clients-4.4.0.jar\n")
    assert ak.cached_libs("4.4.0") == ""  # a jar missing
    (libs / "kafka-clients-4.4.0.jar").write_bytes(b"c")
    assert ak.cached_libs("4.4.0") == str(libs)
    assert ak.fetch_jars("4.4.0", repository="/nonexistent", log=None) == str(libs)  # cached: no Maven run


def test_errors_are_typed():
    assert issubclass(ak.ApacheKafkaError, OdhError) and issubclass(ak.ApacheKafkaError, KafkaError)
    assert issubclass(maven.MavenError, OdhError)


def test_runtime_pom_and_copy_command():
    pom = maven.runtime_pom([ak.kafka_artifact("4.4.0")], "k")
    ns = {"m": "http://maven.apache.org/POM/4.0.0"}
    dep = ET.fromstring(pom).find("m:dependencies/m:dependency", ns)
    assert [dep.find(f"m:{t}", ns).text for t in ("groupId", "artifactId", "version", "scope")] == [
        "org.apache.kafka", "kafka_2.13", "4.4.0", "runtime"]
    cmd = maven.mvn_copy_dependencies("mvn", "/r", "/o/pom.xml", "/o")
    assert "-C" in cmd and "-Dmaven.repo.local=/r" in cmd and "-DoutputDirectory=/o" in cmd  # strict checksums
    assert cmd[cmd.index("-f") + 1] == "/o/pom.xml" and "-DincludeScope=runtime" in cmd


def test_copied_jars_must_match_a_published_sha1(tmp_path):
    repo, out = tmp_path / "repo", tmp_path / "out"
    art = maven.Artifact("org.example", "thing", "1.0")
    path = art.repo_path(str(repo))
    os.makedirs(os.path.dirname(path))
    open(path, "wb").write(b"the real bytes")
    open(path + ".sha1", "w").write(hashlib.sha1(b"the real bytes").hexdigest() + "\n")
    out.mkdir()
    (out / "thing-1.0.jar").write_bytes(b"the real bytes")
    maven.check_against_repository([str(out / "thing-1.0.jar")], str(repo))
    (out / "thing-1.0.jar").write_bytes(b"swapped bytes")
    with pytest.raises(maven.MavenError, match="matches no published SHA-1"):
        maven.check_against_repository([str(out / "thing-1.0.jar")], str(repo))
    (out / "other-1.0.jar").write_bytes(b"x")
    with pytest.raises(maven.MavenError, match="other-1.0.jar"):
        maven.check_against_repository([str(out / "other-1.0.jar")], str(repo))


def test_maven_missing_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn
    with pytest.raises(maven.MavenError, match="apt-get install maven"):
        maven.copy_dependencies([ak.kafka_artifact()], str(tmp_path / "out"), str(tmp_path / "repo"))


def test_the_fetch_entry_point_usage(capsys):
    assert ak.main([]) == 2 and "fetch" in capsys.readouterr().err
