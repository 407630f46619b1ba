"""s3a:// for an installed pyspark: `hadoop-aws` of exactly the Hadoop version pyspark bundles, and the AWS SDK v2
bundle (and S3 analytics accelerator) of the versions that Hadoop release declares, fetched from Maven Central with Maven and checked.

pyspark ships Hadoop's client jars (`hadoop-client-api-<version>.jar`) but not `hadoop-aws`, so without these two
jars `spark.read.parquet("s3a://...")` fails with "No FileSystem for scheme s3a". The versions come from the
Hadoop release's own `hadoop-project` pom (`<aws-java-sdk-v2.version>`, `<amazon-s3-analyticsaccelerator-s3.version>`),
never from a table of ours.

Maven is the client (host.maven: `mvn -C dependency:get`, strict checksums, so a jar whose published SHA-1 does
not match fails the fetch); each jar is checked once more against the `.sha1` Maven kept beside it. Everything is
cached in a Maven repository of our own (`~/.cache/odh-hub/maven/repository`, or $ODH_MAVEN_CACHE), and the
jars are hard-linked (else copied) into `pyspark/jars/` of the environment. The Spark image gets the same jars
the same way: its build stage runs this module (with Maven) and its runtime stage copies them in
(images/notebook/spark-extras.sh).

`python -m odh_spawner.host.hadoop_jars [PYSPARK_DIR] [--export DIR]` installs them into the running interpreter's
pyspark (or the pyspark directory given) and prints what it did; with --export it also copies them into DIR (the
Spark image's build stage does this; its runtime stage, without Maven, puts them beside the lock's pyspark with
images/notebook/spark-extras.sh).

The pure parts (versions, coordinates, paths) are apart from the I/O (`install`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile

from odh_spawner.errors import OdhError
from odh_spawner.host import maven
from odh_spawner.host.maven import Artifact, default_repository, mvn_get  # noqa: F401 (this module's API)

HADOOP_API_RE = re.compile(r"^hadoop-client-api-(\d+\.\d+\.\d+)\.jar$")
SDK_RE = re.compile(r"<aws-java-sdk-v2\.version>\s*([0-9][0-9A-Za-z.\-]*)\s*</aws-java-sdk-v2\.version>")
ANALYTICS_RE = re.compile(r"<amazon-s3-analyticsaccelerator-s3\.version>\s*([0-9][0-9A-Za-z.\-]*)\s*<")


class HadoopJarsError(OdhError):
    """The s3a jars could not be determined, fetched or verified (the message says which step)."""


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


# -- I/O -----------------------------------------------------------------------------------------------------------
def fetch(artifact: Artifact, repository: str, mvn: str = "", timeout: float = 1800) -> str:
    """The artifact's path in `repository`: fetched with Maven unless there, then checked against its SHA-1
    (host.maven; its errors as HadoopJarsError)."""
    try:
        return maven.fetch(artifact, repository, mvn=mvn, timeout=timeout)
    except maven.MavenError as e:
        raise HadoopJarsError(str(e)) from None


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
        same = os.path.isfile(dest) and os.path.getsize(dest) == os.path.getsize(src)
        if not (same and maven.sha1_of(dest) == maven.sha1_of(src)):
            _place(src, dest)
            log(f"s3a: {artifact.filename} -> {jars_dir}")
        out.append(dest)
    return out


def export(pyspark_dir: str, dest: str, repository: str = "", log=print) -> list[str]:
    """`install` into `pyspark_dir`, then copy the s3a jars into `dest` too (what the Spark image's build stage
    hands to its runtime stage, which has no Maven); returns the copies' paths."""
    os.makedirs(dest, exist_ok=True)
    out = []
    for path in install(pyspark_dir, repository, log):
        copy = os.path.join(dest, os.path.basename(path))
        shutil.copyfile(path, copy)
        os.chmod(copy, 0o644)
        out.append(copy)
    return out


def pyspark_dir_of(python: str) -> str:
    """The pyspark package directory of an interpreter ('' when it has none)."""
    code = "import importlib.util as u; s = u.find_spec('pyspark'); print(s.submodule_search_locations[0] if s else '')"
    with tempfile.TemporaryDirectory() as cwd:  # never import from the caller's directory
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, cwd=cwd, timeout=120)
    return proc.stdout.strip() if proc.returncode == 0 else ""


def main(argv: list[str]) -> int:
    """[PYSPARK_DIR] [--export DIR]"""
    argv, dest = list(argv), ""
    if "--export" in argv:
        i = argv.index("--export")
        if i + 1 >= len(argv):
            print("s3a: --export needs a directory.", file=sys.stderr)
            return 2
        dest = argv[i + 1]
        del argv[i:i + 2]
    target = argv[0] if argv else pyspark_dir_of(sys.executable)
    if not target:
        print("s3a: no pyspark in this environment; nothing to do.")
        return 1 if dest else 0
    try:
        for path in (export(target, dest) if dest else install(target)):
            print(f"s3a: {path}")
    except HadoopJarsError as e:
        print(f"s3a: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
