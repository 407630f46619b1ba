"""The Spark image's s3a jars, the way images/notebook/Dockerfile gets them (no image is built on these machines):
its build stage runs `python -m odh_spawner.host.hadoop_jars --export DIR` with the spark lock's pyspark — here in
the spark lock's own environment, with real Maven against Maven Central (cached in ~/.cache/odh-hub/maven) — and
its runtime stage runs `images/notebook/spark-extras.sh jars DIR`, which must put exactly those jars beside the
lock's pyspark and refuse jars made for another Hadoop."""

import filecmp
import os
import re
import subprocess
from pathlib import Path

import pytest

from odh_spawner.host import hadoop_jars
from odh_spawner.host.environments import LockEnvironments

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
EXTRAS = ROOT / "images" / "notebook" / "spark-extras.sh"
DOCKERFILE = ROOT / "images" / "notebook" / "Dockerfile"


def test_the_build_stage_fetches_with_maven_and_the_runtime_stage_installs_exactly_those(tmp_path):
    stage = DOCKERFILE.read_text()
    assert "python -m odh_spawner.host.hadoop_jars --export /s3a" in stage
    assert "spark-extras.sh jars /tmp/s3a" in stage
    assert not re.search(r"\b(curl|wget)\b", stage + EXTRAS.read_text())  # Maven is the only client

    built = LockEnvironments().ensure("images/spark/requirements.lock", log=print)
    py = str(Path(built.bindir) / "python")
    out = tmp_path / "s3a"
    proc = subprocess.run([py, "-m", "odh_spawner.host.hadoop_jars", "--export", str(out)], capture_output=True,
                          text=True, timeout=1800, cwd=tmp_path, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    pyspark_jars = Path(hadoop_jars.pyspark_dir_of(py)) / "jars"
    hadoop = hadoop_jars.hadoop_version(os.listdir(pyspark_jars))
    exported = sorted(p.name for p in out.iterdir())
    assert f"hadoop-aws-{hadoop}.jar" in exported and any(re.fullmatch(r"bundle-2\.[\d.]+\.jar", n) for n in exported)

    # the runtime stage: the jars land beside pyspark's own, byte for byte what Maven verified
    runtime = tmp_path / "runtime-jars"
    runtime.mkdir()
    api = f"hadoop-client-api-{hadoop}.jar"
    os.link(pyspark_jars / api, runtime / api)
    proc = subprocess.run(["sh", str(EXTRAS), "jars", str(out)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYSPARK_JARS": str(runtime)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in runtime.iterdir()) == sorted([api, *exported])
    assert all(filecmp.cmp(out / n, runtime / n, shallow=False) for n in exported)
    assert all((runtime / n).stat().st_mode & 0o777 == 0o644 for n in exported)

    # a pyspark of another Hadoop gets none of them, and the build says why
    other = tmp_path / "other-jars"
    other.mkdir()
    (other / "hadoop-client-api-9.9.9.jar").write_bytes(b"")
    proc = subprocess.run(["sh", str(EXTRAS), "jars", str(out)], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PYSPARK_JARS": str(other)})
    assert proc.returncode == 1 and f"has no hadoop-aws-9.9.9.jar (pyspark bundles Hadoop 9.9.9" in proc.stderr
    assert [p.name for p in other.iterdir()] == ["hadoop-client-api-9.9.9.jar"]
