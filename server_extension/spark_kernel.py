"""In the kernels of a server with a Spark cluster: the first SparkContext waits until the cluster is up.

The hub starts a server's Spark master and workers beside the notebook server, not before it, so the
notebook is ready seconds before the JVMs are. A driver that reaches a standalone master before it listens
is not refused but retried only 20 s later (Spark's StandaloneAppClient), and gives up after three tries. So
this IPython extension (loaded into every kernel of the environment through `extra_extensions`, see
jupyter-config/ipython_kernel_config.json; it does nothing in a server without a cluster) makes
`SparkContext(...)` -- which `SparkSession.builder.getOrCreate()` and `SparkContext.getOrCreate()` go
through -- first wait, bounded and saying so in the cell's output, until the cluster's phase file
($ODH_SPARK_PHASE_FILE, written by the hub) says "ready", or raise the cluster's start error. A context for
another master (e.g. `local[*]`) does not wait. pyspark is not imported for this: the hook applies when the
notebook imports it.

It also makes the object store's refusals readable: when a cell fails with Spark's
`java.nio.file.AccessDeniedException: s3a://...` (a bucket that is not the user's, read or written through
s3a://), the cell's output says so in one sentence before the Java stack trace.
"""

from __future__ import annotations

import functools
import importlib.machinery
import json
import os
import re
import sys
import time

PHASE_ENV = "ODH_SPARK_PHASE_FILE"  # the hub's odh_spawner.spark.phase
MASTER_ENV = "SPARK_MASTER_URL"
WAIT_ENV = "ODH_SPARK_WAIT_SECONDS"
DEFAULT_WAIT = 120.0
TARGET = "pyspark.core.context"  # where pyspark 4 defines SparkContext


S3A_DENIED_RE = re.compile(r"java\.nio\.file\.AccessDeniedException: (s3a://[^\s:]+)")


def access_denied_message(error_text: str) -> str | None:
    """One sentence for Spark's s3a AccessDenied (None for anything else). Pure."""
    m = S3A_DENIED_RE.search(error_text)
    if not m:
        return None
    return (f"Access denied: the object store refused your keys for {m.group(1)}. It belongs to another user or "
            "is not shared with you; use one of your own buckets.")


def show_access_denied(shell, etype, value, tb, tb_offset=None):
    """IPython custom exception handler (Py4JJavaError): the sentence first, then the usual traceback."""
    message = access_denied_message(str(value))
    if message:
        print(message, file=sys.stderr)
    shell.showtraceback((etype, value, tb), tb_offset=tb_offset)


def explain_refusals() -> bool:
    """Register show_access_denied for py4j's Java errors in the running IPython (once pyspark is imported)."""
    try:
        from IPython import get_ipython
        from py4j.protocol import Py4JJavaError
    except ImportError:
        return False
    shell = get_ipython()
    if shell is None or Py4JJavaError in (shell.custom_exceptions or ()):
        return False
    shell.set_custom_exc((Py4JJavaError,), show_access_denied)
    return True


class SparkClusterNotReady(RuntimeError):
    """The server's Spark cluster failed to start, or did not start in time."""


def read_phase(path: str) -> dict | None:
    """{"phase": ..., "error": ...} from the phase file, or None when there is none (no cluster, or stopped)."""
    try:
        with open(path) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def uses_cluster(master: str | None, conf, cluster_master: str) -> bool:
    """Whether a SparkContext made with these arguments talks to the server's cluster (no master given means
    the environment's, which is the cluster's)."""
    if not master and conf is not None:
        try:
            master = conf.get("spark.master")
        except Exception:
            master = None
    return not master or master == cluster_master


def wait_until_ready(path: str, *, timeout: float, interval: float = 0.2, say=print, clock=time.monotonic,
                     sleep=time.sleep) -> float:
    """Block until the phase file says "ready" (returns the seconds waited); raise SparkClusterNotReady when
    it says "failed" or `timeout` passes. A missing file does not block (nothing is starting)."""
    began = clock()
    announced = False
    while True:
        state = read_phase(path)
        phase = state.get("phase") if state else None
        if phase in (None, "ready"):
            waited = clock() - began
            if announced:
                say(f"Spark cluster ready (waited {waited:.1f} s).")
            return waited
        if phase == "failed":
            raise SparkClusterNotReady(f"Your Spark cluster failed to start: {state.get('error') or 'no reason given'}. "
                                       "Restart it from the Spark item in the status bar, or restart your server.")
        if clock() - began >= timeout:
            raise SparkClusterNotReady(f"Your Spark cluster did not start within {timeout:.0f} s. Look at the Spark "
                                       "item in the status bar, or restart your server.")
        if not announced:
            say("Waiting for your Spark cluster to start (its master and workers are still booting)...")
            announced = True
        sleep(interval)


def patch_spark_context(module) -> None:
    """Wrap `module.SparkContext.__init__` so that a context for the server's cluster waits for it first."""
    cls = getattr(module, "SparkContext", None)
    if cls is None or getattr(cls.__init__, "_odh_waits_for_cluster", False):
        return
    original = cls.__init__

    @functools.wraps(original)
    def __init__(self, master=None, *args, **kwargs):
        path, cluster_master = os.environ.get(PHASE_ENV), os.environ.get(MASTER_ENV, "")
        if path and cls._active_spark_context is None and uses_cluster(master, kwargs.get("conf"), cluster_master):
            wait_until_ready(path, timeout=float(os.environ.get(WAIT_ENV) or DEFAULT_WAIT))
        original(self, master, *args, **kwargs)

    __init__._odh_waits_for_cluster = True
    cls.__init__ = __init__
    explain_refusals()


class _Loader:
    """Runs the real loader, then patches the module."""

    def __init__(self, loader):
        self._loader = loader

    def create_module(self, spec):
        return self._loader.create_module(spec)

    def exec_module(self, module):
        self._loader.exec_module(module)
        patch_spark_context(module)

    def __getattr__(self, name):
        return getattr(self._loader, name)


class PatchOnImport:
    """A one-shot meta path finder: when TARGET is imported, its SparkContext is patched."""

    def find_spec(self, name, path=None, target=None):
        if name != TARGET:
            return None
        spec = importlib.machinery.PathFinder.find_spec(name, path)
        if spec is not None and spec.loader is not None:
            spec.loader = _Loader(spec.loader)
        return spec


def install() -> bool:
    """Arrange the wait in this process when it belongs to a server with a Spark cluster; True if arranged."""
    if not os.environ.get(PHASE_ENV):
        return False
    if TARGET in sys.modules:
        patch_spark_context(sys.modules[TARGET])
    elif not any(isinstance(f, PatchOnImport) for f in sys.meta_path):
        sys.meta_path.insert(0, PatchOnImport())
    return True


def load_ipython_extension(ipython) -> None:  # IPython's hook (extra_extensions)
    install()
