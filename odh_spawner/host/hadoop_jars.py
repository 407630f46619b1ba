"""s3a:// for an installed pyspark: `hadoop-aws` of exactly the Hadoop version pyspark bundles, and the AWS SDK v2
bundle (and S3 analytics accelerator) of the versions that Hadoop release declares, fetched from Maven Central with Maven and checked.

pyspark ships Hadoop's client jars (`hadoop-client-api-<version>.jar`) but not `hadoop-aws`, so without these two
jars `spark.read.parquet("s3a://...")` fails with "No FileSystem for scheme s3a". The versions come from the
Hadoop release's own `hadoop-project` pom (`<aws-java-sdk-v2.version>`, `<amazon-s3-analyticsaccelerator-s3.version>`),
never from a table of ours.

Maven is the client (`mvn -C dependency:get`: strict checksums, so a jar whose published SHA-1 does not match
fails the fetch); each jar is checked once more here against the `.sha1` Maven kept beside it. Everything is
cached in a Maven repository of our own (`~/.cache/odh-hub/maven/repository`, or $ODH_MAVEN_CACHE), and the
jars are hard-linked (else copied) into `pyspark/jars/` of the environment: what the Spark image does with
images/notebook/spark-extras.sh, the same two jars.

`python -m odh_spawner.host.hadoop_jars [PYSPARK_DIR]` installs them into the running interpreter's pyspark (or
the pyspark directory given) and prints what it did.

The pure parts (versions, coordinates, paths) are apart from the I/O (`install`).
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass

from odh_spawner.errors import OdhError

HADOOP_API_RE = re.compile(r"^hadoop-client-api-(\d+\.\d+\.\d+)\.jar$")
SDK_RE = re.compile(r"<aws-java-sdk-v2\.version>\s*([0-9][0-9A-Za-z.\-]*)\s*</aws-java-sdk-v2\.version>")
ANALYTICS_RE = re.compile(r"<amazon-s3-analyticsaccelerator-s3\.version>\s*([0-9][0-9A-Za-z.\-]*)\s*<")


class HadoopJarsError(OdhError):
    """The s3a jars could not be determined, fetched or verified (the message says which step)."""


@dataclass(frozen=True)
class Artifact:
    group: str
    artifact: str
    version: str
    packaging: str = "jar"

    @property
    def coordinates(self) -> str:
        return f"{self.group}:{self.artifact}:{self.version}:{self.packaging}"

    @property
    def filename(self) -> str:
        return f"{self.artifact}-{self.version}.{self.packaging}"

    def repo_path(self, repository: str) -> str:
        """Where Maven keeps it in a local repository."""
        return os.path.join(repository, *self.group.split("."), self.artifact, self.version, self.filename)


# -- pure ----------------------------------------------------------------------------------------------------------
def hadoop_version(jar_names) -> str:
    """The Hadoop version pyspark bundles, from the names in its jars/ directory."""
    found = sorted({m.group(1) for n in jar_names if (m := HADOOP_API_RE.match(n))})
    if len(found) != 1:
        raise HadoopJarsError(f"Cannot tell which Hadoop pyspark bundles (hadoop-client-api jars: {found or 'none'}).")
    return found[0]


def sdk_version(pom_text: str) -> str:
    """The AWS SDK v2 version a Hadoop release declares in its hadoop-project pom."""
    m = SDK_RE.search(pom_text)
    if not m:
        raise HadoopJarsError("The hadoop-project pom declares no aws-java-sdk-v2.version.")
    return m.group(1)


def project_pom(hadoop: str) -> Artifact:
    return Artifact("org.apache.hadoop", "hadoop-project", hadoop, "pom")


def analytics_version(pom_text: str) -> str:
    """The S3 analytics accelerator version a Hadoop release declares ('' before Hadoop 3.4.2, which has none)."""
    m = ANALYTICS_RE.search(pom_text)
    return m.group(1) if m else ""


def s3a_jars(hadoop: str, sdk: str, analytics: str = "") -> list[Artifact]:
    """What s3a needs beside pyspark's own jars: hadoop-aws's compile-scope dependencies (the SDK bundle and, from
    Hadoop 3.4.2, the analytics accelerator its S3AFileSystem links against; both carry no dependencies)."""
    jars = [Artifact("org.apache.hadoop", "hadoop-aws", hadoop), Artifact("software.amazon.awssdk", "bundle", sdk)]
    if analytics:
        jars.append(Artifact("software.amazon.s3.analyticsaccelerator", "analyticsaccelerator-s3", analytics))
    return jars


def mvn_get(mvn: str, repository: str, artifact: Artifact) -> list[str]:
    """The Maven command fetching one artifact (no transitive dependencies) into `repository`, strictly checked."""
    return [mvn, "-B", "-q", "-C", f"-Dmaven.repo.local={repository}",
            "org.apache.maven.plugins:maven-dependency-plugin:3.6.1:get",
            f"-Dartifact={artifact.coordinates}", "-Dtransitive=false"]


# -- I/O -----------------------------------------------------------------------------------------------------------
def default_repository() -> str:
    if os.environ.get("ODH_MAVEN_CACHE"):
        return os.environ["ODH_MAVEN_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "odh-hub", "maven", "repository")


def _sha1(path: str) -> str:
    h = hashlib.sha1()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def fetch(artifact: Artifact, repository: str, mvn: str = "", timeout: float = 1800) -> str:
    """The artifact's path in `repository`: fetched with Maven unless there, then checked against its SHA-1."""
    path = artifact.repo_path(repository)
    if not os.path.isfile(path) or not os.path.isfile(path + ".sha1"):
        mvn = mvn or shutil.which("mvn") or ""
        if not mvn:
            raise HadoopJarsError(f"Fetching {artifact.coordinates} needs Maven (mvn) on PATH: apt-get install maven.")
        try:
            proc = subprocess.run(mvn_get(mvn, repository, artifact), capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            raise HadoopJarsError(f"Fetching {artifact.coordinates} took more than {timeout:g} s.") from None
        if proc.returncode != 0:
            tail = "; ".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
            raise HadoopJarsError(f"Maven could not fetch {artifact.coordinates} (exit {proc.returncode}; its last "
                                  f"lines: {tail!r}); check that Maven Central is reachable and try again.")
    try:
        with open(path + ".sha1", encoding="ascii") as f:
            published = f.read().split()[0].strip().lower()
    except (OSError, IndexError):
        raise HadoopJarsError(f"No published SHA-1 beside {path}; delete the directory and fetch again.") from None
    actual = _sha1(path)
    if actual != published:
        raise HadoopJarsError(f"{artifact.filename}: SHA-1 {actual} is not the published {published}; delete "
                              f"{os.path.dirname(path)} and fetch again.")
    return path


def _place(src: str, dest: str) -> None:
    """`dest` becomes `src`'s content (hard link, else a copy), atomically."""
    tmp = f"{dest}.tmp-{os.getpid()}"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copyfile(src, tmp)
        os.chmod(tmp, 0o644)
    os.replace(tmp, dest)


def install(pyspark_dir: str, repository: str = "", log=print) -> list[str]:
    """Put hadoop-aws and its AWS SDK bundle into `<pyspark_dir>/jars` (idempotent); return their paths."""
    repository = repository or default_repository()
    jars_dir = os.path.join(pyspark_dir, "jars")
    try:
        names = os.listdir(jars_dir)
    except OSError as e:
        raise HadoopJarsError(f"{jars_dir} cannot be listed: {e.strerror}.") from None
    hadoop = hadoop_version(names)
    out = []
    os.makedirs(repository, exist_ok=True)
    pom = fetch(project_pom(hadoop), repository)
    with open(pom, encoding="utf-8") as f:
        text = f.read()
    wanted = s3a_jars(hadoop, sdk_version(text), analytics_version(text))
    for artifact in wanted:
        dest = os.path.join(jars_dir, artifact.filename)
        src = fetch(artifact, repository)
        if not (os.path.isfile(dest) and os.path.getsize(dest) == os.path.getsize(src) and _sha1(dest) == _sha1(src)):
            _place(src, dest)
            log(f"s3a: {artifact.filename} -> {jars_dir}")
        out.append(dest)
    return out


def pyspark_dir_of(python: str) -> str:
    """The pyspark package directory of an interpreter ('' when it has none)."""
    code = "import importlib.util as u; s = u.find_spec('pyspark'); print(s.submodule_search_locations[0] if s else '')"
    with tempfile.TemporaryDirectory() as cwd:  # never import from the caller's directory
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def main(argv: list[str]) -> int:
    target = argv[0] if argv else pyspark_dir_of(sys.executable)
    if not target:
        print("s3a: no pyspark in this environment; nothing to do.")
        return 0
    try:
        for path in install(target):
            print(f"s3a: {path}")
    except HadoopJarsError as e:
        print(f"s3a: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
