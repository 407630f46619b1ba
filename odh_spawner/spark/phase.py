"""The phase file of a local Spark cluster: where its notebook learns whether the cluster is up yet.

The hub launches the cluster's JVMs beside the notebook server rather than before it, so a notebook may ask
for a SparkSession before the master leads. The file `<cluster>/phase.json` says {"phase": "starting" |
"ready" | "failed", "error": "..."}; its path reaches the notebook as $ODH_SPARK_PHASE_FILE and the kernel
side (server_extension.spark_kernel) waits on it. It lives in the platform's directory of the cluster
(written atomically, never into a directory the user controls), readable by the owner's group only, and
holds no secret.
"""

from __future__ import annotations

import json
import os

from odh_spawner.host.safefiles import fresh_tmp

STARTING, READY, FAILED = "starting", "ready", "failed"
PHASES = (STARTING, READY, FAILED)
PHASE_FILE = "phase.json"
PHASE_ENV = "ODH_SPARK_PHASE_FILE"


def phase_json(phase: str, error: str = "") -> str:
    if phase not in PHASES:
        raise ValueError(f"Unknown Spark cluster phase {phase!r}.")
    return json.dumps({"phase": phase, "error": error})


def write_phase(path: str, phase: str, error: str = "", gid: int | None = None) -> None:
    """Atomically replace the phase file; mode 0640 with group `gid` (the owner's), or 0644 without one."""
    text = phase_json(phase, error)
    tmp, fd = fresh_tmp(path)  # never through a link: the directory may be the platform service's
    with os.fdopen(fd, "w") as f:
        if gid is not None and os.fstat(f.fileno()).st_gid != gid:  # else inherited from a setgid directory
            os.fchown(f.fileno(), -1, gid)
        os.fchmod(f.fileno(), 0o640 if gid is not None else 0o644)
        f.write(text)
    os.replace(tmp, path)
