"""Apache Kafka itself as a local broker: the broker jars from Maven Central, one KRaft node (broker and
controller in one JVM), data on disk.

The jars (`org.apache.kafka:kafka_2.13` and its runtime dependencies, plus the SLF4J binding to the log4j2
that Kafka brings, which Kafka's own release tarball adds) are fetched with Maven (host.maven: strict
checksums, each jar checked against its published SHA-1) into the shared Maven repository, and copied once
per Kafka version into a flat classpath directory, `~/.cache/odh-hub/kafka/<version>/libs` (or
$ODH_KAFKA_JARS/<version>/libs): the second start fetches nothing. `python -m
odh_spawner.localplatform.apache_kafka fetch` only fetches them (scripts/install.sh runs it).

`ApacheKafkaBroker` has the interface of the noida-db `KafkaBroker` (localplatform.kafka): it formats the
storage once (`kafka.tools.StorageTool format`, a static one-voter quorum so a restart may use other ports),
starts `java -cp <libs>/* kafka.Kafka server.properties` on 127.0.0.1 (free random ports for the broker and the
controller listeners unless given), waits until a Kafka client really gets metadata with a broker in it, keeps
it running (`supervise`, same ports and data) and stops it by PID (SIGTERM: a controlled shutdown; SIGKILL
after a timeout). Everything it writes (properties, log4j2 configuration, data, JVM temp files, its log) is under
`data_dir`. Tests use it as their main broker; `odh-hub up` still starts noida-db (one small process, no JVM).

The pure parts (properties, log4j2 configuration, cluster id, command lines, the SLF4J binding to add) are apart
from the I/O.
"""

from __future__ import annotations

import base64
import os
import re
import shutil
import subprocess
import sys
import time
from typing import Callable

from odh_spawner.errors import OdhError
from odh_spawner.host import maven
from odh_spawner.host.maven import Artifact
from odh_spawner.host.ports import free_port
from odh_spawner.host.supervise import RestartBudget, exit_text
from odh_spawner.localplatform.kafka import BrokerProcess, KafkaError, answers

KAFKA_VERSION = "4.4.0"
SCALA = "2.13"
HEAP = "512m"
MAIN = "kafka.Kafka"
STORAGE_TOOL = "kafka.tools.StorageTool"
COMPLETE = ".complete"  # written last into a classpath directory: its jar names, one a line
SLF4J_BINDINGS = ("log4j-slf4j-impl-", "log4j-slf4j2-impl-", "slf4j-simple-", "slf4j-reload4j-", "logback-classic-")
JAR_VERSION_RE = r"^{name}-(\d[0-9A-Za-z.\-]*)\.jar$"


class ApacheKafkaError(KafkaError, OdhError):
    """Apache Kafka could not be fetched, formatted or started, or keeps exiting (the message says where its log
    is, or what to do)."""


# -- pure ----------------------------------------------------------------------------------------------------------
def kafka_artifact(version: str = KAFKA_VERSION) -> Artifact:
    return Artifact("org.apache.kafka", f"kafka_{SCALA}", version)


def jar_version(names, name: str) -> str:
    """The version of jar `name` among jar file names ('' when absent)."""
    pattern = re.compile(JAR_VERSION_RE.format(name=re.escape(name)))
    found = sorted({m.group(1) for n in names if (m := pattern.match(n))})
    return found[-1] if found else ""


def slf4j_binding(names) -> Artifact | None:
    """The SLF4J binding a classpath of these jar names lacks: the log4j2 binding of the log4j-core it carries
    (for SLF4J 1.x or 2.x, whichever it has), None when it has a binding or no SLF4J at all. Kafka's pom leaves
    the binding out (its release tarball adds it); without one the broker logs nothing."""
    names = list(names)
    if any(n.startswith(SLF4J_BINDINGS) for n in names):
        return None
    slf4j = jar_version(names, "slf4j-api")
    if not slf4j:
        return None
    log4j = jar_version(names, "log4j-core")
    if not log4j:
        return Artifact("org.slf4j", "slf4j-simple", slf4j)
    impl = "log4j-slf4j2-impl" if int(slf4j.split(".")[0]) >= 2 else "log4j-slf4j-impl"
    return Artifact("org.apache.logging.log4j", impl, log4j)


def cluster_id(raw: bytes) -> str:
    """A Kafka cluster id from 16 random bytes: URL-safe base64 without padding, as `kafka-storage random-uuid`
    prints (Kafka avoids ids starting with '-', which command lines would take for an option)."""
    if len(raw) != 16:
        raise ValueError("A cluster id is 16 bytes.")
    text = base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")
    return ("A" + text[1:]) if text.startswith("-") else text


def server_properties(broker_port: int, controller_port: int, log_dir: str, node_id: int = 1) -> str:
    """The broker's server.properties: one KRaft node in combined mode on 127.0.0.1, a static one-voter quorum,
    replication factors of one, no automatic topic creation (a missing topic is an error, as on a Strimzi
    cluster with KafkaTopic resources), no initial rebalance delay, small internal topics, a short broker session
    (the broker registers again after a SIGKILL when its old session has run out: 4 s, not the default 9 s)."""
    settings = {
        "process.roles": "broker,controller",
        "node.id": node_id,
        "controller.quorum.voters": f"{node_id}@127.0.0.1:{controller_port}",
        "listeners": f"PLAINTEXT://127.0.0.1:{broker_port},CONTROLLER://127.0.0.1:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://127.0.0.1:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": log_dir,
        "num.partitions": 1,
        "default.replication.factor": 1,
        "min.insync.replicas": 1,
        "auto.create.topics.enable": "false",
        "offsets.topic.replication.factor": 1,
        "offsets.topic.num.partitions": 5,
        "transaction.state.log.replication.factor": 1,
        "transaction.state.log.min.isr": 1,
        "transaction.state.log.num.partitions": 5,
        "share.coordinator.state.topic.replication.factor": 1,
        "share.coordinator.state.topic.min.isr": 1,
        "group.initial.rebalance.delay.ms": 0,
        "broker.session.timeout.ms": 4000,  # after a SIGKILL the new incarnation waits this long for the old one
        "broker.heartbeat.interval.ms": 1000,
        "num.network.threads": 2,
        "num.io.threads": 4,
        "num.recovery.threads.per.data.dir": 1,
    }
    return "".join(f"{k}={v}\n" for k, v in settings.items())


def log4j2_properties() -> str:
    """A log4j2 configuration to stdout (the broker's log file): warnings and errors, and the broker's start and
    shutdown lines; Kafka's full configuration dumps (thousands of INFO lines a start) left out."""
    return ("status = warn\n"
            "appender.out.type = Console\nappender.out.name = out\n"
            "appender.out.layout.type = PatternLayout\nappender.out.layout.pattern = [%d] %p %m (%c)%n\n"
            "rootLogger.level = WARN\nrootLogger.appenderRef.out.ref = out\n"
            "logger.raft.name = kafka.server.KafkaRaftServer\nlogger.raft.level = INFO\n")


def java_command(java: str, libs: str, main: str, args: list[str], *, log4j: str, tmpdir: str,
                 heap: str = HEAP) -> list[str]:
    """`java -cp <libs>/* MAIN ARGS` with a bounded heap, the given log4j2 configuration and temp directory."""
    return [java, f"-Xmx{heap}", f"-Xms{heap}", "-XX:+UseG1GC", "-XX:MaxGCPauseMillis=20",
            "-XX:+ExplicitGCInvokesConcurrent", "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}", f"-Djava.io.tmpdir={tmpdir}",
            "-cp", os.path.join(libs, "*"), main, *args]


def format_args(properties: str, cid: str) -> list[str]:
    """The StorageTool arguments formatting the log directory of `properties` for cluster `cid` (static quorum)."""
    return ["format", "-t", cid, "-c", properties]


# -- jars (I/O) ------------------------------------------------------------------------------------------------------
def jars_root() -> str:
    if os.environ.get("ODH_KAFKA_JARS"):
        return os.environ["ODH_KAFKA_JARS"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "odh-hub", "kafka")


def libs_dir(version: str = KAFKA_VERSION, root: str = "") -> str:
    return os.path.join(root or jars_root(), version, "libs")


def cached_libs(version: str = KAFKA_VERSION, root: str = "") -> str:
    """The classpath directory of `version` if it is complete, else ''."""
    libs = libs_dir(version, root)
    try:
        with open(os.path.join(libs, COMPLETE), encoding="utf-8") as f:
            names = f.read().split()
    except OSError:
        return ""
    ok = names and all(os.path.isfile(os.path.join(libs, n)) for n in names)
    return libs if ok else ""


def fetch_jars(version: str = KAFKA_VERSION, root: str = "", repository: str = "", log=print) -> str:
    """The classpath directory of Apache Kafka `version` (broker and tools), fetched with Maven unless cached."""
    libs = cached_libs(version, root)
    if libs:
        return libs
    libs = libs_dir(version, root)
    tmp = f"{libs}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    t0 = time.monotonic()
    try:
        jars = maven.copy_dependencies([kafka_artifact(version)], tmp, repository)
        binding = slf4j_binding(os.path.basename(j) for j in jars)
        if binding is not None:
            jars = maven.copy_dependencies([binding], tmp, repository)
        names = sorted(os.path.basename(j) for j in jars)
        with open(os.path.join(tmp, COMPLETE), "w", encoding="utf-8") as f:
            f.write("".join(f"{n}\n" for n in names))
        shutil.rmtree(libs, ignore_errors=True)  # an incomplete one
        os.rename(tmp, libs)
    except maven.MavenError as e:
        raise ApacheKafkaError(f"Apache Kafka {version}: {e}") from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    log(f"Apache Kafka {version}: {len(names)} jars in {libs} ({time.monotonic() - t0:.1f}s)")
    return libs


def java_binary() -> str:
    java = shutil.which("java")
    if not java:
        raise ApacheKafkaError("Apache Kafka needs Java 17 or newer (java on PATH): apt-get install "
                               "openjdk-17-jre-headless, or run `make install`.")
    return java


# -- the broker (I/O) ------------------------------------------------------------------------------------------------
class ApacheKafkaBroker(BrokerProcess):
    """One Apache Kafka node (KRaft, broker and controller) with its data under `data_dir` (kept across restarts).
    A SIGTERM is a controlled shutdown (logs flushed, clean-shutdown markers written); after a SIGKILL the next
    start recovers the logs, which were written to the page cache."""

    error = ApacheKafkaError
    keeps_exiting = "Apache Kafka"
    restart_timeout = 120.0
    stop_timeout = 30.0
    reap_timeout = 10.0

    def __init__(self, data_dir: str, port: int = 0, report: Callable[[str], None] | None = None,
                 version: str = KAFKA_VERSION, controller_port: int = 0, heap: str = HEAP,
                 jars_root: str = ""):
        self.data_dir = os.path.abspath(data_dir)
        self.port = port or 0
        self.controller_port = controller_port or 0
        self.report = report or (lambda msg: None)
        self.version = version
        self.heap = heap
        self.jars_root = jars_root
        self.libs = ""
        self.java = ""
        self.proc: subprocess.Popen | None = None
        self.budget = RestartBudget()

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> str:
        return os.path.join(self.data_dir, "broker.log")

    @property
    def log_dir(self) -> str:
        return os.path.join(self.data_dir, "data")

    def _path(self, name: str) -> str:
        return os.path.join(self.data_dir, name)

    def log_tail(self, lines: int = 20) -> str:
        try:
            with open(self.log_path, encoding="utf-8", errors="replace") as f:
                text = f.read()[-20000:]
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def _java(self, main: str, args: list[str]) -> list[str]:
        return java_command(self.java, self.libs, main, args, log4j=self._path("log4j2.properties"),
                            tmpdir=self._path("tmp"), heap=self.heap)

    def _prepare(self) -> None:
        """Jars, directories, configuration files; the storage formatted once."""
        self.java = java_binary()
        self.libs = fetch_jars(self.version, self.jars_root, log=self.report)
        os.makedirs(self._path("tmp"), mode=0o700, exist_ok=True)
        os.chmod(self.data_dir, 0o700)
        if not self.port:
            self.port = free_port()
        if not self.controller_port:
            self.controller_port = free_port()
            while self.controller_port == self.port:
                self.controller_port = free_port()
        for name, text in (("server.properties", server_properties(self.port, self.controller_port, self.log_dir)),
                           ("log4j2.properties", log4j2_properties())):
            with open(self._path(name), "w", encoding="utf-8") as f:
                f.write(text)
        if os.path.isfile(os.path.join(self.log_dir, "meta.properties")):
            return
        cmd = self._java(STORAGE_TOOL, format_args(self._path("server.properties"), cluster_id(os.urandom(16))))
        with open(self.log_path, "ab") as log:
            proc = subprocess.run(cmd, cwd=self.data_dir, stdout=log, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, timeout=120)
        if proc.returncode != 0:
            raise ApacheKafkaError(f"Formatting Apache Kafka's storage failed ({exit_text(proc.returncode)}): "
                                   f"{self.log_tail(5)}; see {self.log_path}.")

    def _spawn(self) -> subprocess.Popen:
        log = os.open(self.log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            return subprocess.Popen(self._java(MAIN, [self._path("server.properties")]), cwd=self.data_dir,
                                    stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True)
        finally:
            os.close(log)

    def start(self, timeout: float = 120) -> "ApacheKafkaBroker":
        os.makedirs(self.data_dir, mode=0o700, exist_ok=True)
        self._prepare()
        t0 = time.monotonic()
        self.proc = self._spawn()
        self._wait(timeout)
        self.report(f"Kafka broker (Apache Kafka {self.version}, KRaft) ready at {self.bootstrap} in "
                    f"{time.monotonic() - t0:.1f}s")
        return self

    def _wait(self, timeout: float) -> None:
        """Until a Kafka client gets metadata naming a broker (an open port alone is not ready: the broker
        listens before it has registered with its controller)."""
        from confluent_kafka.admin import AdminClient

        deadline = time.monotonic() + timeout
        admin = None
        while True:
            if self.proc.poll() is not None:
                raise ApacheKafkaError(f"Apache Kafka exited with {exit_text(self.proc.returncode)}: "
                                       f"{self.log_tail(5)}; see {self.log_path}.")
            if time.monotonic() > deadline:
                self.stop()
                raise ApacheKafkaError(f"Apache Kafka did not answer within {timeout:.0f}s; see {self.log_path}.")
            if admin is None and answers("127.0.0.1", self.port):
                admin = AdminClient({"bootstrap.servers": self.bootstrap, "log_level": 2})
            if admin is not None:
                try:
                    if admin.list_topics(timeout=2).brokers:
                        return
                except Exception:  # KafkaException: not ready yet
                    pass
            time.sleep(0.1)


def main(argv: list[str]) -> int:
    """`fetch [VERSION]`: put Apache Kafka's jars into the cache (make install) and print their directory."""
    if not argv or argv[0] != "fetch" or len(argv) > 2:
        print("usage: python -m odh_spawner.localplatform.apache_kafka fetch [VERSION]", file=sys.stderr)
        return 2
    try:
        print(fetch_jars(argv[1] if len(argv) > 1 else KAFKA_VERSION, log=lambda m: print(m, file=sys.stderr)))
    except ApacheKafkaError as e:
        print(f"apache-kafka: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
