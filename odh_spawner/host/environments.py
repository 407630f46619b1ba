"""Virtualenvs built from an image's lock: "one lock, two runtimes".

A profile's `local.environment` may name an image's lock (`{lock: images/minimal/requirements.lock}`). On the
local platform the hub then runs that profile's servers and kernels from a virtualenv holding exactly the
lock's versions, plus odh-hub's notebook side (the server extension and the prebuilt labextension, without
their dependencies: the lock pins those), as the image installs them on Kubernetes.

Each environment is built once and cached in `cache_dir`, keyed by the sha256 of the lock's content, the
Python version, odh-hub's version and a digest of the notebook-side files installed into it: a change of any
of them is a new environment, an unchanged lock is reused. A build happens in a fresh directory
(`<key>.d-<random>`) and is published by atomically pointing the symlink `<key>` at it once it is complete and
verified (`pip check`, the extensions and jupyterhub-singleuser present): a half-built environment is never
used. Builders of the same key wait on a file lock (`<key>.lock`); the second finds the first's result.
Environments are readable by everyone and writable only by their builder (root or the hub's user).

The pure parts (lock parsing, key derivation, the install commands) are apart from the I/O (`LockEnvironments`).
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import platform
import re
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable

from traitlets import Enum, Float, Unicode, default
from traitlets.config import LoggingConfigurable

from odh_spawner.errors import OdhError
from odh_spawner.host import hadoop_jars

PROJECT_ROOT = Path(__file__).resolve().parents[2]
FORMAT = 2  # bump when the layout of a built environment changes: every key changes with it
MARKER = "odh-env.json"  # written last into a complete environment
PIN_RE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([0-9][0-9A-Za-z.+!-]*)((?:\s+--hash=sha256:[a-f0-9]{64})*)$")
LAB_EXT = "share/jupyter/labextensions/@odh-hub/labextension"
S3A_JARS = "s3a-jars-1"  # part of the key of environments with pyspark: bump when what hadoop_jars installs changes


class LockError(OdhError):
    """A lock file is missing or not a list of exact pins."""


class EnvBuildError(OdhError):
    """Building an environment from a lock failed (the message says which step; the output is in the log)."""


# -- pure ----------------------------------------------------------------------------------------------------------
def resolve_lock_path(lock: str, root: str | os.PathLike = PROJECT_ROOT) -> str:
    """A profile's lock path, absolute: relative paths are relative to the odh-hub project (`root`)."""
    return os.path.normpath(lock if os.path.isabs(lock) else os.path.join(root, lock))


@dataclass(frozen=True)
class Lock:
    pins: tuple[tuple[str, str], ...]  # (name, version)
    hashed: bool  # every pin carries --hash=sha256:... (then installed with --require-hashes)

    def version(self, name: str) -> str | None:
        norm = _norm(name)
        return next((v for n, v in self.pins if _norm(n) == norm), None)


KEY_PACKAGES = ("jupyterlab", "pandas", "scikit-learn", "pyarrow", "pyspark", "mlflow-skinny", "confluent-kafka",
                "torch")  # what the spawn form names of a lock environment, in this order, when the lock pins it


def environment_summary(python_version: str, lock: Lock) -> str:
    """What a server in this lock's environment gets, in one line for the spawn form: the Python and the key
    packages' pinned versions (e.g. "Python 3.11.2 · jupyterlab 4.6.6 · pandas 3.1.1"). Pure."""
    return " · ".join([f"Python {python_version}"]
                      + [f"{name} {v}" for name in KEY_PACKAGES if (v := lock.version(name))])


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_lock(text: str, source: str = "<lock>") -> Lock:
    """A lock file: one `name==version` per line (optionally followed by `--hash=sha256:<hex>` options, lines
    joined by a trailing backslash), comments and blank lines. Anything else (ranges, -r, -e, URLs, index
    options) is refused: a lock must pin everything exactly and nothing else."""
    pins, hashes = [], []
    for lineno, line in _logical_lines(text):
        line = line.split(" #", 1)[0].strip()
        if not line or line.startswith("#"):
            continue
        m = PIN_RE.match(line)
        if not m:
            raise LockError(f"{source}:{lineno}: {line[:80]!r} is not an exact pin (name==version, optionally "
                            "with --hash=sha256:...)")
        if _norm(m[1]) in {_norm(n) for n, _ in pins}:
            raise LockError(f"{source}:{lineno}: {m[1]} is pinned twice.")
        pins.append((m[1], m[2]))
        hashes.append(bool(m[3]))
    if not pins:
        raise LockError(f"{source}: no package is pinned.")
    if any(hashes) and not all(hashes):
        raise LockError(f"{source}: some pins carry --hash and others do not (pip requires hashes on all or none).")
    return Lock(tuple(pins), all(hashes))


def _logical_lines(text: str) -> Iterable[tuple[int, str]]:
    buf, start = "", 0
    for i, raw in enumerate(text.splitlines(), 1):
        if not buf:
            start = i
        if raw.rstrip().endswith("\\"):
            buf += raw.rstrip()[:-1] + " "
            continue
        yield start, buf + raw
        buf = ""
    if buf:
        yield start, buf


def env_key(lock_content: bytes, python_version: str, package_version: str, extension_digest: str) -> str:
    """The cache key of an environment: everything its content depends on."""
    h = hashlib.sha256()
    for part in (f"odh-env-format-{FORMAT}", python_version, package_version, extension_digest):
        h.update(part.encode() + b"\0")
    h.update(hashlib.sha256(lock_content).digest())
    return h.hexdigest()[:32]


def files_digest(files: Iterable[tuple[str, bytes]]) -> str:
    """A digest of (relative path, content) pairs, independent of their order."""
    h = hashlib.sha256()
    for rel, content in sorted(files):
        h.update(rel.encode() + b"\0" + hashlib.sha256(content).digest())
    return h.hexdigest()[:16]


def install_commands(installer: str, uv: str, python: str, env: str, lock_path: str, lock: Lock,
                     extension_src: str) -> list[list[str]]:
    """The commands that fill the (already created) environment `env`: the lock without dependency resolution
    (hash-checked when the lock has hashes), then the notebook side of odh-hub without its dependencies, then
    `pip check`."""
    env_py = os.path.join(env, "bin", "python")
    hashes = ["--require-hashes"] if lock.hashed else []
    if installer == "uv":
        # bytecode compiled at install (as pip does): servers run as users who cannot write the environment
        pip = [uv, "pip", "install", "--python", env_py, "--no-deps", "--link-mode", "copy", "--compile-bytecode",
               "--no-progress"]
        return [pip + hashes + ["-r", lock_path],
                pip + [extension_src],
                [uv, "pip", "check", "--python", env_py]]
    pip = [env_py, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check", "-q"]
    return [pip + hashes + ["-r", lock_path],
            pip + [extension_src],
            [env_py, "-m", "pip", "check"]]


def server_env(base: dict, env_dir: str) -> dict:
    """A server's process environment running from the lock environment `env_dir`: its bin first on PATH (so
    terminals' python/jupyter are the environment's), VIRTUAL_ENV set, nothing of the hub's Python path."""
    env = {k: v for k, v in base.items() if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP")}
    bindir = os.path.join(env_dir, "bin")
    path = [p for p in env.get("PATH", os.defpath).split(os.pathsep) if p and p != bindir]
    env["PATH"] = os.pathsep.join([bindir, *path])
    env["VIRTUAL_ENV"] = env_dir
    return env


# -- I/O -----------------------------------------------------------------------------------------------------------
def _default_cache_dir() -> str:
    if os.environ.get("ODH_ENV_CACHE"):
        return os.environ["ODH_ENV_CACHE"]
    if os.geteuid() == 0:  # servers run as other system users: never below /root (mode 0700)
        return "/var/cache/odh-hub/envs"
    return os.path.join(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "odh-hub", "envs")


def notebook_files(root: str | os.PathLike = PROJECT_ROOT) -> dict[str, str]:
    """The notebook side of odh-hub as the image installs it (images/notebook-ext): relative path in the
    staged project -> source file. The labextension must be built (labextension/build.sh)."""
    root = Path(root)
    files = {"pyproject.toml": root / "images" / "notebook-ext" / "pyproject.toml",
             "jupyter-config/jupyter_server_config.d/odh-hub.json":
                 root / "jupyter-config" / "jupyter_server_config.d" / "odh-hub.json"}
    packages, shared, package_dir = _wheel_packages(files["pyproject.toml"])
    for module in shared:  # the pure hub-side modules the notebook side uses, and no other of their packages
        files[module] = root / module
    for package in packages:  # the packages the notebook wheel ships whole
        pkg_dir = root / package_dir.get(package, package.replace(".", "/"))
        if any(m.startswith(package.replace(".", "/") + "/") for m in shared):
            continue
        for src in sorted(pkg_dir.glob("*")):  # each package's own files (subpackages are listed on their own)
            if src.is_file() and src.suffix != ".pyc":
                files[str(src.relative_to(root))] = src
    lab = root / "labextension" / "odh_labextension"
    if not (lab / "package.json").is_file():
        raise EnvBuildError(f"The labextension is not built in {root} (run labextension/build.sh).")
    for src in sorted(lab.rglob("*")):
        if src.is_file():
            files["odh_labextension/" + str(src.relative_to(lab))] = src
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise EnvBuildError(f"The notebook side of odh-hub is incomplete: missing {', '.join(missing)}.")
    return {k: str(v) for k, v in files.items()}


def _wheel_packages(pyproject: Path) -> tuple[list[str], list[str], dict[str, str]]:
    """What the notebook wheel ships (images/notebook-ext/pyproject.toml): `[tool.setuptools] packages` (with
    their `package-dir`, where a package's folder is not its name: odh_hub), and of the hub side's packages only
    the files `[tool.odh-hub] shared-modules` lists."""
    import tomllib

    try:
        with open(pyproject, "rb") as f:
            tool = tomllib.load(f)["tool"]
        packages, shared = tool["setuptools"]["packages"], tool.get("odh-hub", {}).get("shared-modules", [])
        package_dir = tool["setuptools"].get("package-dir", {})
    except (OSError, KeyError, tomllib.TOMLDecodeError) as e:
        raise EnvBuildError(f"Cannot read the notebook wheel's packages from {pyproject}: {e}") from None
    return [str(p) for p in packages], [str(m) for m in shared], {str(k): str(v) for k, v in package_dir.items()}


@dataclass(frozen=True)
class BuiltEnv:
    path: str  # the environment's directory (real path; bin/python, bin/jupyterhub-singleuser)
    key: str
    built: bool  # False: found in the cache
    seconds: float

    @property
    def bindir(self) -> str:
        return os.path.join(self.path, "bin")


class LockEnvironments(LoggingConfigurable):
    """Builds (once) and finds the virtualenvs of image locks."""

    cache_dir = Unicode(
        config=True,
        help="""Where environments built from locks are kept, one per key (sha256 of the lock, Python version,
        odh-hub version and its notebook files). Default: $ODH_ENV_CACHE, else /var/cache/odh-hub/envs for root
        (servers run as other users and must reach it), else ~/.cache/odh-hub/envs. Remove entries to reclaim
        space; they are rebuilt on next use.""",
    )

    @default("cache_dir")
    def _default_cache(self):
        return _default_cache_dir()

    installer = Enum(
        ["auto", "uv", "pip"],
        "auto",
        config=True,
        help="""What installs the lock: 'uv' (about ten times faster than pip, from the pinned `uv` package),
        'pip' (the environment's own pip), or 'auto' (uv when it is installed, else pip).""",
    )
    python = Unicode(
        config=True,
        help="The Python the environments are created from (default: the hub's own interpreter).",
    )

    @default("python")
    def _default_python(self):
        return sys.executable

    project_dir = Unicode(
        str(PROJECT_ROOT),
        config=True,
        help="The odh-hub project: relative lock paths and odh-hub's notebook files are found below it.",
    )
    step_timeout = Float(
        1800,
        config=True,
        help="Seconds any one build step (creating the venv, an install, pip check) may take before it fails.",
    )

    _python_version: str = ""

    # -- keys --------------------------------------------------------------------------------------------------
    def python_version(self) -> str:
        if not self._python_version:
            if os.path.realpath(self.python) == os.path.realpath(sys.executable):
                self._python_version = platform.python_version()
            else:
                out = subprocess.run([self.python, "-c", "import platform; print(platform.python_version())"],
                                     capture_output=True, text=True, timeout=60, check=True)
                self._python_version = out.stdout.strip()
        return self._python_version

    def lock_path(self, lock: str) -> str:
        return resolve_lock_path(lock, self.project_dir)

    def read_lock(self, lock: str) -> tuple[str, bytes, Lock]:
        path = self.lock_path(lock)
        try:
            content = Path(path).read_bytes()
        except OSError as e:
            raise LockError(f"Cannot read the lock {path}: {e.strerror}.") from None
        return path, content, parse_lock(content.decode("utf-8", "replace"), path)

    def key(self, lock: str) -> str:
        from odh_spawner import __version__ as ours

        _, content, parsed = self.read_lock(lock)
        files = notebook_files(self.project_dir)
        digest = files_digest((rel, Path(src).read_bytes()) for rel, src in files.items())
        if parsed.version("pyspark"):  # environments with Spark carry the s3a jars (host.hadoop_jars)
            digest = hashlib.sha256(f"{digest}+{S3A_JARS}".encode()).hexdigest()
        return env_key(content, self.python_version(), ours, digest)

    def cached(self, lock: str) -> BuiltEnv | None:
        """The complete environment of this lock, if it is built (cheap: no build, no lock taken)."""
        began = time.monotonic()
        key = self.key(lock)
        path = self._complete(key)
        return BuiltEnv(path, key, False, time.monotonic() - began) if path else None

    def _complete(self, key: str) -> str | None:
        link = os.path.join(self.cache_dir, key)
        real = os.path.realpath(link)
        if os.path.islink(link) and os.path.isfile(os.path.join(real, MARKER)):
            return real
        return None

    # -- building ----------------------------------------------------------------------------------------------
    def installer_for(self) -> tuple[str, str]:
        """('uv', path of uv) or ('pip', '')."""
        if self.installer in ("auto", "uv"):
            uv = _find_uv()
            if uv:
                return "uv", uv
            if self.installer == "uv":
                raise EnvBuildError("Installer 'uv' is configured but uv is not installed (pip install uv).")
        return "pip", ""

    def ensure(self, lock: str, log: Callable[[str], None] | None = None) -> BuiltEnv:
        """The environment of this lock: from the cache, or built now (blocking; waits while another process
        builds the same key, then uses its result)."""
        log = log or self.log.info
        began = time.monotonic()
        key = self.key(lock)
        found = self._complete(key)
        if found:
            return BuiltEnv(found, key, False, time.monotonic() - began)
        os.makedirs(self.cache_dir, mode=0o755, exist_ok=True)
        with open(os.path.join(self.cache_dir, f"{key}.lock"), "a") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)  # released when the file closes (also if this process dies)
            try:
                found = self._complete(key)  # another builder finished while we waited
                if found:
                    return BuiltEnv(found, key, False, time.monotonic() - began)
                path = self._build(lock, key, log)
            finally:
                fcntl.flock(fh, fcntl.LOCK_UN)
        return BuiltEnv(path, key, True, time.monotonic() - began)

    def _build(self, lock: str, key: str, log: Callable[[str], None]) -> str:
        lock_path, content, parsed = self.read_lock(lock)
        for stale in glob.glob(os.path.join(self.cache_dir, f"{key}.d-*")):  # left by a builder that died
            shutil.rmtree(stale, ignore_errors=True)
        installer, uv = self.installer_for()
        target = os.path.join(self.cache_dir, f"{key}.d-{secrets.token_hex(4)}")
        began = time.monotonic()
        log(f"Building the environment of {lock_path} with {installer} in {target}")
        try:
            with tempfile.TemporaryDirectory(prefix="odh-env-src-") as stage:
                ext_src = os.path.join(stage, "odh-hub-notebook")
                for rel, src in notebook_files(self.project_dir).items():
                    os.makedirs(os.path.dirname(os.path.join(ext_src, rel)), exist_ok=True)
                    shutil.copyfile(src, os.path.join(ext_src, rel))
                if installer == "uv":
                    self._run([uv, "venv", "--quiet", "--python", self.python, "--seed", target], "create the venv")
                else:
                    self._run([self.python, "-m", "venv", target], "create the venv")
                for cmd, what in zip(install_commands(installer, uv, self.python, target, lock_path, parsed, ext_src),
                                     ("install the lock", "install odh-hub's notebook side", "pip check")):
                    self._run(cmd, what)
            self._install_kernel_config(target)
            if parsed.version("pyspark"):
                self._install_s3a_jars(target, log)
            self._verify(target)
            with open(os.path.join(target, MARKER), "w", encoding="utf-8") as f:
                json.dump({"key": key, "lock": lock_path, "lock_sha256": hashlib.sha256(content).hexdigest(),
                           "python": self.python_version(), "installer": installer,
                           "seconds": round(time.monotonic() - began, 1)}, f, indent=1)
            _publish_permissions(target)
            link = os.path.join(self.cache_dir, key)
            tmp_link = f"{link}.new-{secrets.token_hex(4)}"
            os.symlink(os.path.basename(target), tmp_link)
            os.replace(tmp_link, link)  # atomic: readers see the old (absent) or the complete environment
        except BaseException:
            shutil.rmtree(target, ignore_errors=True)
            raise
        log(f"Built the environment of {lock_path} in {time.monotonic() - began:.1f} s")
        return os.path.realpath(link)

    def _run(self, cmd: list[str], what: str) -> None:
        env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV")}
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=self.step_timeout, env=env)
        except subprocess.TimeoutExpired:
            raise EnvBuildError(f"{what}: took more than {self.step_timeout:g} s.") from None
        except OSError as e:
            raise EnvBuildError(f"{what}: cannot run {cmd[0]}: {e.strerror}.") from None
        if proc.returncode != 0:
            self.log.error("Environment build step %r failed: %s\n%s%s", what, " ".join(cmd), proc.stdout[-4000:],
                           proc.stderr[-4000:])
            tail = (proc.stderr.strip() or proc.stdout.strip()).splitlines()[-1:] or [""]
            raise EnvBuildError(f"{what} failed (exit {proc.returncode}): {tail[0][:300]}.")

    def _install_kernel_config(self, env: str) -> None:
        """Every kernel of the environment loads server_extension.spark_kernel, as in the hub's environment."""
        src = Path(self.project_dir) / "jupyter-config" / "ipython_kernel_config.json"
        if src.is_file():
            os.makedirs(os.path.join(env, "etc", "ipython"), exist_ok=True)
            shutil.copyfile(src, os.path.join(env, "etc", "ipython", "ipython_kernel_config.json"))

    def _install_s3a_jars(self, env: str, log: Callable[[str], None]) -> None:
        """s3a:// for the environment's Spark: the jars the Spark image adds (host.hadoop_jars)."""
        pyspark = hadoop_jars.pyspark_dir_of(os.path.join(env, "bin", "python"))
        if not pyspark:
            raise EnvBuildError("The lock pins pyspark, but the built environment cannot import it.")
        try:
            hadoop_jars.install(pyspark, log=log)
        except hadoop_jars.HadoopJarsError as e:
            raise EnvBuildError(f"Installing the s3a jars failed: {e}") from None

    def _verify(self, env: str) -> None:
        for rel in ("bin/jupyterhub-singleuser", f"{LAB_EXT}/package.json",
                    "etc/jupyter/jupyter_server_config.d/odh-hub.json"):
            if not os.path.exists(os.path.join(env, rel)):
                raise EnvBuildError(f"The built environment lacks {rel}.")
        self._run([os.path.join(env, "bin", "python"), "-c", "import server_extension, ipykernel, jupyterhub"],
                  "import the server extension")


def _find_uv() -> str:
    try:
        from uv import find_uv_bin

        return find_uv_bin()
    except (ImportError, FileNotFoundError):
        return shutil.which("uv") or ""


def _publish_permissions(root: str) -> None:
    """Readable (and executable where it was) by everyone, writable by the builder only."""
    for dirpath, dirnames, filenames in os.walk(root):
        os.chmod(dirpath, 0o755)
        for name in filenames:
            p = os.path.join(dirpath, name)
            if os.path.islink(p):
                continue
            mode = os.stat(p).st_mode
            os.chmod(p, 0o755 if mode & 0o111 else 0o644)


def lock_envs_of(profiles) -> dict[str, str]:
    """The distinct locks local environments of these profiles name: lock -> first profile slug."""
    out: dict[str, str] = {}
    for p in profiles:
        if p.local.lock and p.local.lock not in out:
            out[p.local.lock] = p.slug
    return out
