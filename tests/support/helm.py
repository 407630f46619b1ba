"""The real helm binary (v4, installed by scripts/install-helm.sh under .tools/helm/) and the chart's values files."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "odh-hub"
HELM = Path(os.environ.get("ODH_HELM", ROOT / ".tools" / "helm" / "helm"))
KUBECTL = HELM.parent / "kubectl"
# every values file the chart is tested with: the defaults (None) and each file under ci/
VALUES_FILES = [None, *sorted(p.name for p in (CHART / "ci").glob("*-values.yaml"))]


class HelmError(RuntimeError):
    def __init__(self, args, returncode, stderr):
        super().__init__(f"helm {' '.join(map(str, args))} exited {returncode}: {stderr.strip()}")
        self.stderr = stderr


def require_helm() -> Path:
    if not os.access(HELM, os.X_OK):
        raise RuntimeError(f"helm not found at {HELM}: run `make install` (scripts/install-helm.sh)")
    return HELM


def helm(*args, env: dict | None = None, timeout: float = 300) -> str:
    require_helm()
    proc = subprocess.run([str(HELM), *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "HELM_CACHE_HOME": "/tmp/odh-helm-cache",
                               "HELM_CONFIG_HOME": "/tmp/odh-helm-config", "HELM_DATA_HOME": "/tmp/odh-helm-data",
                               **(env or {})})
    if proc.returncode != 0:
        raise HelmError(args, proc.returncode, proc.stderr)
    return proc.stdout


def values_args(values: str | None, sets: dict | None = None, extra_files=()) -> list[str]:
    out = []
    if values:
        out += ["-f", str(CHART / "ci" / values)]
    for f in extra_files:
        out += ["-f", str(f)]
    for k, v in (sets or {}).items():
        out += ["--set-json", f"{k}={json.dumps(v)}"]
    return out


def template(values: str | None = None, sets: dict | None = None, release: str = "t", namespace: str = "odh",
             extra_files=()) -> list[dict]:
    out = helm("template", release, CHART, "--namespace", namespace, *values_args(values, sets, extra_files))
    return [d for d in yaml.safe_load_all(out) if d]


def by_kind_name(docs: list[dict]) -> dict[tuple[str, str], dict]:
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}
