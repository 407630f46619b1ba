"""The images' locks (images/*/requirements.lock), without building an image (no Docker engine here).

What each Dockerfile does to its Python environment: install the lock with `--no-deps` (so the lock alone must be
complete), then the odh-hub wheel the image installs (the hub: odh-hub itself; notebooks: odh-hub-notebook, the
server extension and the prebuilt labextension, built by images/notebook-ext/build-wheel.sh) with `--no-deps`,
`pip check`, and the extensions load from that venv. The notebook locks are checked in the very environment the
local platform builds from them (odh_spawner.host.environments: the same steps, with uv, cached by the lock's content
in the shared cache), so CI pays each install once per change of the lock, not every run; the hub lock in a fresh
venv from Debian's python3.11 with pip. `ODH_IMAGE_LOCKS` picks which are installed (default: minimal; "all" for
the four). Every lock not installed is still resolved with its dependencies (`--dry-run`; by uv, seconds where pip
took minutes per lock), so each one is shown complete and consistent in every run.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import ROOT

IMAGES = Path(ROOT) / "images"
ALL = ("minimal", "datascience", "spark", "hub")
_chosen = os.environ.get("ODH_IMAGE_LOCKS", "minimal")
CHOSEN = ALL if _chosen == "all" else tuple(i for i in _chosen.split(",") if i)
PYTHON = "/usr/bin/python3.11" if os.path.exists("/usr/bin/python3.11") else sys.executable


def run(*args, env: dict | None = None) -> str:
    # never the test run's PYTHONPATH: the fresh venv must see only what was installed into it
    env = {k: v for k, v in (env or os.environ).items() if k != "PYTHONPATH"}
    proc = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=1800, env=env)
    assert proc.returncode == 0, f"{' '.join(map(str, args))} -> {proc.returncode}\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
    return re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)  # without jupyter's colours


@pytest.mark.parametrize("image", ALL)
def test_lock_pins_every_package_exactly(image):
    lines = [ln for ln in (IMAGES / image / "requirements.lock").read_text().splitlines() if ln and ln[0] != "#"]
    assert lines and all(re.fullmatch(r"[a-z0-9][a-z0-9._-]*==[0-9][0-9A-Za-z.+!-]*", ln) for ln in lines), lines
    names = [ln.split("==")[0] for ln in lines]
    assert len(names) == len(set(names))
    # what each requirements.in pins is what the lock holds
    for req in (IMAGES / image / "requirements.in").read_text().splitlines():
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)==(\S+)", req.strip())
        if m:
            assert f"{m[1].lower().replace('_', '-')}=={m[2]}" in [ln.replace("_", "-") for ln in lines], req


@pytest.mark.parametrize("image", [i for i in ALL if i not in CHOSEN])
def test_lock_resolves_with_its_dependencies(image, tmp_path):
    """The resolver takes the lock with every dependency of every package: nothing missing, no conflict (what
    `pip check` would say after installing it), without spending the time of an install. uv (the installer of
    the local lock environments) when it is there, else pip (minutes per lock)."""
    from odh_spawner.host.environments import _find_uv

    venv = tmp_path / "venv"
    run(PYTHON, "-m", "venv", venv)
    lock = IMAGES / image / "requirements.lock"
    pinned = [ln for ln in lock.read_text().splitlines() if ln and ln[0] != "#"]
    uv = _find_uv()
    if uv:
        out = run(uv, "pip", "install", "--dry-run", "--python", venv / "bin" / "python", "-r", lock)
        would = re.search(r"Would install (\d+) packages", out)
        assert would, out[-2000:]
        assert int(would.group(1)) == len(pinned), out[-3000:]  # nothing pulled in beyond the lock
        return
    out = run(venv / "bin" / "python", "-m", "pip", "install", "--dry-run", "--ignore-installed", "-r", lock)
    would = re.search(r"Would install (.*)", out)
    assert would, out[-2000:]
    assert len(would.group(1).split()) == len(pinned)  # nothing pulled in beyond the lock


@pytest.fixture(scope="module")
def wheels(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheels")
    run(IMAGES / "notebook-ext" / "build-wheel.sh", ROOT, out, sys.executable)
    run(sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", out, ROOT)
    return out


@pytest.mark.parametrize("image", CHOSEN)
def test_lock_installs_and_the_extensions_load(image, request, tmp_path):
    if image == "hub":
        _hub_lock_installs_in_a_fresh_venv_and_the_hub_imports(image, request.getfixturevalue("wheels"), tmp_path)
    else:
        _notebook_lock_installs_and_the_extensions_load(image, tmp_path)


def _hub_lock_installs_in_a_fresh_venv_and_the_hub_imports(image, wheels, tmp_path):
    venv = tmp_path / "venv"
    run(PYTHON, "-m", "venv", venv)
    py = venv / "bin" / "python"
    run(py, "-m", "pip", "install", "-q", "--no-deps", "-r", IMAGES / image / "requirements.lock")
    run(py, "-m", "pip", "check")
    run(py, "-m", "pip", "install", "-q", "--no-deps", *wheels.glob("odh_hub-*.whl"))
    assert "No broken requirements found" in run(py, "-m", "pip", "check")
    out = run(py, "-c", "import odh_spawner.spawners.kube, odh_spawner.platform.app, odh_spawner.kubeplatform."
                        "hubconfig, jupyterhub_idle_culler, kubespawner; print('hub imports ok')")
    assert "hub imports ok" in out
    assert run(venv / "bin" / "jupyterhub", "--version").strip().endswith("6.1.1")


def _notebook_lock_installs_and_the_extensions_load(image, tmp_path):
    from odh_spawner.host.environments import LockEnvironments

    built = LockEnvironments().ensure(f"images/{image}/requirements.lock", log=print)  # the shared, cached build
    venv, py = Path(built.path), Path(built.bindir) / "python"
    assert "No broken requirements found" in run(py, "-m", "pip", "check")
    pinned = [ln.split("==") for ln in (IMAGES / image / "requirements.lock").read_text().splitlines()
              if ln and ln[0] != "#"]
    installed = dict(ln.split("==") for ln in run(py, "-m", "pip", "freeze", "--all").split() if "==" in ln)
    norm = {k.lower().replace("_", "-").replace(".", "-"): v for k, v in installed.items()}
    assert {n: norm.get(n.lower().replace("_", "-").replace(".", "-")) for n, _ in pinned} == dict(pinned)
    env = {**os.environ, "JUPYTER_CONFIG_DIR": str(tmp_path / "cfg"), "JUPYTER_DATA_DIR": str(tmp_path / "data")}
    servers = run(venv / "bin" / "jupyter", "server", "extension", "list", env=env)
    assert re.search(r"server_extension\s+enabled", servers), servers
    assert re.search(r"server_extension.*OK", servers), servers  # it imports and validates
    labs = run(venv / "bin" / "jupyter", "labextension", "list", env=env)
    assert re.search(r"@odh-hub/labextension v\S+ enabled\s+OK", labs), labs
    assert "jupyterhub-singleuser" in os.listdir(venv / "bin")
    # the short name users import (server_extension/odh_hub/, installed as odh_hub by the wheel's package-dir)
    out = run(py, "-c", "import odh_hub, odh_hub.spark, odh_hub.buckets; from odh_hub import deploy, ingest, "
                        "BucketClient; print('odh_hub ok', odh_hub.__file__)")
    assert "odh_hub ok" in out and "site-packages/odh_hub/__init__.py" in out, out
    if image == "spark":
        assert "pyspark ok" in run(py, "-c", "import pyspark; print('pyspark ok')")
        # s3a://: hadoop-aws of the Hadoop pyspark bundles, and what that Hadoop declares (host.hadoop_jars)
        from odh_spawner.host import hadoop_jars

        jars = set(os.listdir(os.path.join(hadoop_jars.pyspark_dir_of(str(py)), "jars")))
        hadoop = hadoop_jars.hadoop_version(jars)
        assert f"hadoop-aws-{hadoop}.jar" in jars and [j for j in jars if re.fullmatch(r"bundle-2\.[\d.]+\.jar", j)]
