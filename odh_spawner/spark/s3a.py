"""s3a:// settings of a user's Spark driver: the object store's endpoint, path-style access and the user's own keys,
so that `spark.read.parquet("s3a://bucket/path")` and `df.write.parquet(...)` just work in a notebook. Pure.

They go into the notebook driver's `spark-defaults.conf` (host.hadoop_jars puts the jars beside pyspark):

- locally, that file is the user's own (0600, in a 0700 directory of theirs; spark.auth), so it holds the keys
  (`fs.s3a.access.key` / `fs.s3a.secret.key`, read by Hadoop's SimpleAWSCredentialsProvider). The executors get
  them from the driver with the application's configuration, over the cluster's authenticated RPC: never on a
  command line, never in a file another user can read, not in the workers' environment. Spark's UI redacts both
  (`spark.redaction.regex` matches `secret` and `access.key`);
- on Kubernetes, the keys are in every Spark pod's environment already (secretKeyRef to the user's Secret), so
  the file holds no key and the SDK's EnvironmentVariableCredentialsProvider reads them.

The provider chain tries the configured keys first, then the environment.

Signing: over http the AWS SDK v2 signs each PUT's body in signed chunks (`STREAMING-AWS4-HMAC-SHA256-PAYLOAD`),
and Ceph RGW 16 refuses that for an empty body (`XAmzContentSHA256Mismatch`), which every directory marker and
job commit of Hadoop's committers is: writing failed. Hadoop's `AWS4UnsignedPayloadSignerType` signs the request
(method, path, headers, date: who sends it and what it asks) but not the body (`UNSIGNED-PAYLOAD`, as the SDK
does over https anyway). The body is then protected by TCP's checksums and, where S3 requires one, the
Content-MD5 s3a adds (`fs.s3a.request.md5.header`): locally it never leaves the machine, on Kubernetes the cluster.
"""

from __future__ import annotations

from urllib.parse import urlsplit

PROVIDERS = ",".join([
    "org.apache.hadoop.fs.s3a.SimpleAWSCredentialsProvider",  # fs.s3a.access.key / secret.key (local)
    "software.amazon.awssdk.auth.credentials.EnvironmentVariableCredentialsProvider",  # AWS_* (Kubernetes pods)
])
SIGNER = "AWS4UnsignedPayloadSignerType"  # see the module: RGW 16 and chunk-signed empty bodies
REGION = "us-east-1"  # RGW's default zonegroup answers to it; s3a needs one to sign


class S3aConfigError(ValueError):
    """The endpoint or keys cannot be put into a spark-defaults.conf."""


def _check(name: str, value: str) -> str:
    if not value or any(c.isspace() for c in value):
        raise S3aConfigError(f"The S3 {name} for Spark is empty or contains whitespace.")
    return value


def hadoop_conf(endpoint: str) -> dict[str, str]:
    """s3a settings for an endpoint URL (http or https), as spark-defaults.conf entries, without keys."""
    parts = urlsplit(_check("endpoint", endpoint))
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise S3aConfigError(f"The S3 endpoint {endpoint!r} for Spark is not an http(s) URL.")
    return {
        "spark.hadoop.fs.s3a.endpoint": endpoint,
        "spark.hadoop.fs.s3a.endpoint.region": REGION,
        "spark.hadoop.fs.s3a.path.style.access": "true",
        "spark.hadoop.fs.s3a.connection.ssl.enabled": "true" if parts.scheme == "https" else "false",
        "spark.hadoop.fs.s3a.aws.credentials.provider": PROVIDERS,
        "spark.hadoop.fs.s3a.signing-algorithm": SIGNER,
    }


def driver_conf(endpoint: str, access_key: str = "", secret_key: str = "") -> dict[str, str]:
    """The driver's s3a entries; with keys when given (a file only their owner reads: see the module)."""
    conf = hadoop_conf(endpoint)
    if access_key or secret_key:
        conf["spark.hadoop.fs.s3a.access.key"] = _check("access key", access_key)
        conf["spark.hadoop.fs.s3a.secret.key"] = _check("secret key", secret_key)
    return conf
