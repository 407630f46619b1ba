"""Maven Central through Maven itself: one artifact (`fetch`) or an artifact with its runtime dependencies
(`copy_dependencies`), into a Maven repository of our own, strictly checked.

Maven is the client, run with `-C` (strict checksums: a file whose published SHA-1 does not match fails the
fetch); each jar is then checked once more here against the `.sha1` Maven kept beside it in the repository, so
a cache altered after the fetch is refused too. The repository is `~/.cache/odh-hub/maven/repository` (or
$ODH_MAVEN_CACHE), shared by every user of this module (host.hadoop_jars, localplatform.apache_kafka).

The pure parts (coordinates, paths, commands, the pom) are apart from the I/O (`fetch`, `copy_dependencies`).
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from dataclasses import dataclass
from xml.sax.saxutils import escape

from odh_spawner.errors import OdhError

DEPENDENCY_PLUGIN = "org.apache.maven.plugins:maven-dependency-plugin:3.6.1"


class MavenError(OdhError):
    """An artifact could not be fetched or verified (the message says which and what to do)."""


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
def mvn_get(mvn: str, repository: str, artifact: Artifact) -> list[str]:
    """The Maven command fetching one artifact (no transitive dependencies) into `repository`, strictly checked."""
    return [mvn, "-B", "-q", "-C", f"-Dmaven.repo.local={repository}", f"{DEPENDENCY_PLUGIN}:get",
            f"-Dartifact={artifact.coordinates}", "-Dtransitive=false"]


def runtime_pom(artifacts: list[Artifact], name: str = "classpath") -> str:
    """A pom whose only content is `artifacts` as runtime dependencies (for `copy-dependencies`)."""
    deps = "".join(
        f"    <dependency><groupId>{escape(a.group)}</groupId><artifactId>{escape(a.artifact)}</artifactId>"
        f"<version>{escape(a.version)}</version><scope>runtime</scope></dependency>\n" for a in artifacts)
    return ('<project xmlns="http://maven.apache.org/POM/4.0.0">\n  <modelVersion>4.0.0</modelVersion>\n'
            f"  <groupId>odh-hub</groupId><artifactId>{escape(name)}</artifactId><version>1</version>\n"
            f"  <packaging>pom</packaging>\n  <dependencies>\n{deps}  </dependencies>\n</project>\n")


def mvn_copy_dependencies(mvn: str, repository: str, pom: str, out_dir: str) -> list[str]:
    """The Maven command putting the runtime classpath of `pom` into `out_dir` (flat), strictly checked."""
    return [mvn, "-B", "-q", "-C", f"-Dmaven.repo.local={repository}", "-f", pom,
            f"{DEPENDENCY_PLUGIN}:copy-dependencies", f"-DoutputDirectory={out_dir}", "-DincludeScope=runtime"]


# -- I/O -----------------------------------------------------------------------------------------------------------
def default_repository() -> str:
    if os.environ.get("ODH_MAVEN_CACHE"):
        return os.environ["ODH_MAVEN_CACHE"]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return os.path.join(base, "odh-hub", "maven", "repository")


def sha1_of(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha1").hexdigest()


def published_sha1(path: str) -> str:
    """The SHA-1 Maven kept beside `path` ('' when there is none)."""
    try:
        with open(path + ".sha1", encoding="ascii") as f:
            return f.read().split()[0].strip().lower()
    except (OSError, IndexError, UnicodeDecodeError):
        return ""


def _run_mvn(cmd: list[str], what: str, timeout: float) -> None:
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise MavenError(f"Fetching {what} took more than {timeout:g} s.") from None
    if proc.returncode != 0:
        tail = "; ".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
        raise MavenError(f"Maven could not fetch {what} (exit {proc.returncode}; its last lines: {tail!r}); check "
                         f"that Maven Central is reachable and try again.")


def _mvn(mvn: str, what: str) -> str:
    mvn = mvn or shutil.which("mvn") or ""
    if not mvn:
        raise MavenError(f"Fetching {what} needs Maven (mvn) on PATH: apt-get install maven.")
    return mvn


def fetch(artifact: Artifact, repository: str, mvn: str = "", timeout: float = 1800) -> str:
    """The artifact's path in `repository`: fetched with Maven unless there, then checked against its SHA-1."""
    path = artifact.repo_path(repository)
    if not os.path.isfile(path) or not os.path.isfile(path + ".sha1"):
        _run_mvn(mvn_get(_mvn(mvn, artifact.coordinates), repository, artifact), artifact.coordinates, timeout)
    published = published_sha1(path)
    if not published:
        raise MavenError(f"No published SHA-1 beside {path}; delete the directory and fetch again.")
    actual = sha1_of(path)
    if actual != published:
        raise MavenError(f"{artifact.filename}: SHA-1 {actual} is not the published {published}; delete "
                         f"{os.path.dirname(path)} and fetch again.")
    return path


def check_against_repository(jars: list[str], repository: str) -> None:
    """Every jar in `jars` is byte for byte a file of `repository` whose published SHA-1 it has."""
    wanted = {os.path.basename(j) for j in jars}
    found: dict[str, list[str]] = {}
    for top, _, names in os.walk(repository):
        for n in names:
            if n in wanted:
                found.setdefault(n, []).append(os.path.join(top, n))
    for jar in jars:
        name, actual = os.path.basename(jar), sha1_of(jar)
        if not any(published_sha1(c) == actual for c in found.get(name, [])):
            raise MavenError(f"{name}: SHA-1 {actual} matches no published SHA-1 in {repository}; delete "
                             f"{os.path.dirname(jar)} and fetch again.")


def copy_dependencies(artifacts: list[Artifact], out_dir: str, repository: str = "", mvn: str = "",
                      timeout: float = 1800) -> list[str]:
    """`artifacts` and their runtime dependencies as jars in `out_dir` (added to what is there), each checked
    against its published SHA-1; returns the paths of the jars in `out_dir`."""
    repository = repository or default_repository()
    what = ", ".join(a.coordinates for a in artifacts)
    os.makedirs(repository, exist_ok=True)
    os.makedirs(out_dir, exist_ok=True)
    pom = os.path.join(out_dir, f".pom-{os.getpid()}.xml")
    with open(pom, "w", encoding="utf-8") as f:
        f.write(runtime_pom(artifacts))
    try:
        _run_mvn(mvn_copy_dependencies(_mvn(mvn, what), repository, pom, out_dir), what, timeout)
    finally:
        os.unlink(pom)
    jars = sorted(os.path.join(out_dir, n) for n in os.listdir(out_dir) if n.endswith(".jar"))
    check_against_repository(jars, repository)
    return jars
