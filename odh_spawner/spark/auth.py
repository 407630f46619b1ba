"""Each Spark cluster's own shared secret (`spark.authenticate`), and where each Spark process finds it.

What Spark 4.3 accepts (measured in tests/integration/test_spark_auth.py, and read from its SecurityManager):

- master and workers: the environment variable `_SPARK_AUTH_SECRET` (looked up before `spark.authenticate.secret`);
  they never call `initializeAuth`, so nothing else is needed. `spark.authenticate=true` comes from their
  spark-defaults.conf. Neither reaches a command line.
- executors: their worker hands them its secret as `_SPARK_AUTH_SECRET` in their environment, and Spark
  filters `-Dspark.authenticate.secret` out of their command line.
- the driver (the notebook) of a `spark://` application: `SecurityManager.initializeAuth` *requires*
  `spark.authenticate.secret` in its SparkConf (`spark.authenticate.secret.file` is honoured only for local,
  YARN and Kubernetes masters), so it reads it from `spark-defaults.conf` in its SPARK_CONF_DIR: a directory
  of the user's own (0700) holding that file (0600). spark-submit loads the file inside the JVM; nothing of it
  reaches the driver's command line (a builder's `.config("spark.authenticate.secret", ...)` would: pyspark
  passes those as `--conf` arguments).

The secret itself is kept by the platform in a file only it can read (`SECRET_FILE`, mode 0600, in the
cluster's platform-owned directory), so that whoever restarts or scales the cluster later (the platform
service, after a hub restart) starts new daemons with the same secret the notebook holds.
"""

from __future__ import annotations

import os
import secrets
import shutil

SECRET_ENV = "_SPARK_AUTH_SECRET"  # what Spark's SecurityManager reads first (daemons, executors)
SECRET_FILE = "auth-secret"
NOTEBOOK_CONF = "notebook-conf"
SECRET_BYTES = 32


def new_secret() -> str:
    """256 random bits, URL-safe base64 (no whitespace: it is a spark-defaults.conf value)."""
    return secrets.token_urlsafe(SECRET_BYTES)


def daemon_conf() -> dict[str, str]:
    """Settings master and workers need (beside the secret in their environment)."""
    return {"spark.authenticate": "true"}


def driver_conf(secret: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    """The notebook's spark-defaults.conf: authenticate with this cluster's secret (`extra`: further settings,
    e.g. the guarded UI port of spark.uiguard)."""
    return {**(extra or {}), "spark.authenticate": "true", "spark.authenticate.secret": secret}


def render_conf(conf: dict[str, str]) -> str:
    for k, v in conf.items():
        if not k or any(c.isspace() for c in k) or "\n" in v or "\r" in v:
            raise ValueError(f"Invalid spark-defaults.conf entry {k!r}.")
    return "".join(f"{k} {v}\n" for k, v in conf.items())


def _write_new(path: str, text: str, mode: int) -> None:
    """Create `path` (it must not exist: O_EXCL, so never through a link) with `mode`, and write `text`."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, mode)
    with os.fdopen(fd, "w") as f:
        os.fchmod(f.fileno(), mode)  # whatever the umask
        f.write(text)


def write_secret(directory: str, secret: str) -> None:
    """Keep the cluster's secret in the platform's own directory (mode 0600, owned by whoever runs this)."""
    path = os.path.join(directory, SECRET_FILE)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    _write_new(tmp, secret + "\n", 0o600)
    os.replace(tmp, path)


def read_secret(directory: str) -> str | None:
    """The kept secret, or None when there is none."""
    try:
        fd = os.open(os.path.join(directory, SECRET_FILE), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    with os.fdopen(fd) as f:
        return f.read().strip() or None


def remove_secret(directory: str) -> None:
    try:
        os.unlink(os.path.join(directory, SECRET_FILE))
    except FileNotFoundError:
        pass


def write_notebook_conf(directory: str, secret: str, owner=None, extra: dict[str, str] | None = None) -> str:
    """(Re)create `<directory>/notebook-conf/spark-defaults.conf` for the notebook's driver; return the
    directory (the notebook's SPARK_CONF_DIR).

    It is built afresh, as the platform's own directory (0700), and only then handed to `owner` (a
    localusers.SystemUser, or None to keep it the platform's): the platform never writes into a directory the
    user already controls, so no link the user might plant is ever followed.
    """
    conf_dir = os.path.join(directory, NOTEBOOK_CONF)
    remove_notebook_conf(directory)
    os.mkdir(conf_dir, 0o700)
    os.chmod(conf_dir, 0o700)
    path = os.path.join(conf_dir, "spark-defaults.conf")
    _write_new(path, render_conf(driver_conf(secret, extra)), 0o600)
    if owner is not None:
        owner.chown(path, 0o600)
        owner.chown(conf_dir, 0o700)
    return conf_dir


def remove_notebook_conf(directory: str) -> None:
    path = os.path.join(directory, NOTEBOOK_CONF)
    if os.path.islink(path):
        os.unlink(path)
    shutil.rmtree(path, ignore_errors=True)  # never follows links inside it
