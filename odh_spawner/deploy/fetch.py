"""The init container of a plain-MLServer deployment on Kubernetes (`python -m odh_spawner.deploy.fetch`, see
manifests.mlserver_deployment): copy the model from the owner's S3 bucket into the pod's model folder with the
owner's keys (from the per-user Secret, as environment variables), refuse a file whose SHA-256 is not the one
recorded at upload (as the local loader does: artifacts.download), and write MLServer's settings.json and the
model's model-settings.json. Needs only boto3 and the standard library.

Environment: MODEL_URI (s3://bucket/prefix/), MODEL_NAME, MODEL_FRAMEWORK (sklearn|mlflow), MODEL_VERSION,
MODEL_SHA256 (JSON {file under the prefix: hex SHA-256}; "{}" for records from before digests), MODEL_DIR,
MLSERVER_HTTP_PORT / _GRPC_PORT / _METRICS_PORT (and MLSERVER_HOST, default 0.0.0.0), S3_ENDPOINT_URL,
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY.

A refusal is written to the container's termination message (/dev/termination-log), which the serving backend
reports as the deployment's failure; the keys never are.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

IMPLEMENTATIONS = {"sklearn": "mlserver_sklearn.SKLearnModel", "mlflow": "mlserver_mlflow.MLflowRuntime"}
MODEL_URIS = {"sklearn": ("model.joblib", "model.pkl", "model.pickle"), "mlflow": (".",)}
CHANGED = "The model file changed after upload; deploy it again."
TERMINATION_LOG = "/dev/termination-log"
MAX_OBJECTS = 10_000


class FetchError(Exception):
    """Why the model is not served (a sentence for its owner)."""


def _sha256(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def split_uri(uri: str) -> tuple[str, str]:
    bucket, _, prefix = uri[5:].partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise FetchError(f"MODEL_URI must be an s3:// URI, got {uri!r}.")
    if prefix and not prefix.endswith("/"):
        prefix += "/"
    return bucket, prefix


def _client_error(e: Exception, uri: str) -> FetchError:
    code = getattr(e, "response", {}).get("Error", {}).get("Code", "") if hasattr(e, "response") else ""
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return FetchError(f"Cannot read {uri}: access denied with the owner's keys.")
    if code in ("NoSuchBucket", "NoSuchKey", "404"):
        return FetchError(f"Nothing found at {uri}: was the model deleted?")
    return FetchError(f"Object storage could not be read for {uri} ({code or type(e).__name__}).")


def fetch(s3, bucket: str, prefix: str, digests: dict[str, str], dest: str) -> list[str]:
    """Download the model's files under `prefix` into `dest` (their layout kept); with `digests`, exactly the
    recorded files, each checked. Returns the files written (relative paths)."""
    from botocore.exceptions import BotoCoreError, ClientError

    uri = f"s3://{bucket}/{prefix}"
    if digests:
        keys = sorted(digests)
    else:
        keys = []
        try:
            for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
                keys += [o["Key"][len(prefix):] for o in page.get("Contents", [])]
                if len(keys) > MAX_OBJECTS:
                    raise FetchError(f"{uri} holds more than {MAX_OBJECTS:,} objects.")
        except (ClientError, BotoCoreError) as e:
            raise _client_error(e, uri) from None
        if not keys:
            raise FetchError(f"Nothing found at {uri}: was the model deleted?")
    root = os.path.realpath(dest)
    written = []
    for rel in keys:
        path = os.path.realpath(os.path.join(root, rel))
        if not path.startswith(root + os.sep) or rel.endswith("/"):
            continue  # folder markers and keys escaping the folder are not model files
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            s3.download_file(bucket, prefix + rel, path)
        except (ClientError, BotoCoreError) as e:
            code = e.response.get("Error", {}).get("Code", "") if isinstance(e, ClientError) else ""
            if digests and code in ("NoSuchKey", "404"):
                raise FetchError(CHANGED) from None  # a recorded file is gone
            raise _client_error(e, f"s3://{bucket}/{prefix}{rel}") from None
        if digests and _sha256(path) != digests[rel]:
            os.unlink(path)
            raise FetchError(CHANGED)
        written.append(rel)
    return written


def model_settings(name: str, framework: str, version: str, model_dir: str) -> dict:
    """MLServer's model-settings.json (as the local backend writes it: local.model_settings)."""
    uri = next((f for f in MODEL_URIS[framework] if os.path.exists(os.path.join(model_dir, f))),
               MODEL_URIS[framework][0])
    return {"name": name, "implementation": IMPLEMENTATIONS[framework],
            "parameters": {"uri": f"./{uri}", "version": f"v{version}"}}


def server_settings(http_port: int, grpc_port: int, metrics_port: int, host: str = "0.0.0.0") -> dict:
    """MLServer's settings.json in the pod: on every address of the pod (the Service forwards there), one
    process."""
    return {"host": host, "http_port": http_port, "grpc_port": grpc_port, "metrics_port": metrics_port,
            "parallel_workers": 0, "load_models_at_startup": True, "debug": False}


def run(env: dict, s3=None) -> str:
    """Fetch the model named by `env` and write the settings; returns the model folder."""
    framework = env.get("MODEL_FRAMEWORK", "")
    if framework not in IMPLEMENTATIONS:
        raise FetchError(f"Unsupported model framework {framework!r}.")
    bucket, prefix = split_uri(env.get("MODEL_URI", ""))
    try:
        digests = json.loads(env.get("MODEL_SHA256") or "{}")
    except ValueError:
        raise FetchError("MODEL_SHA256 is not JSON.") from None
    if not isinstance(digests, dict):
        raise FetchError("MODEL_SHA256 must map files to SHA-256 digests.")
    root, name = env.get("MODEL_DIR", "/mnt/models"), env["MODEL_NAME"]
    model_dir = os.path.join(root, name)
    if s3 is None:
        import boto3

        s3 = boto3.client("s3", endpoint_url=env.get("S3_ENDPOINT_URL") or None,
                          aws_access_key_id=env.get("AWS_ACCESS_KEY_ID"),
                          aws_secret_access_key=env.get("AWS_SECRET_ACCESS_KEY"), region_name="us-east-1")
    fetch(s3, bucket, prefix, digests, model_dir)
    with open(os.path.join(model_dir, "model-settings.json"), "w") as f:
        json.dump(model_settings(name, framework, env.get("MODEL_VERSION", "1"), model_dir), f)
    with open(os.path.join(root, "settings.json"), "w") as f:
        ports = [int(env.get(f"MLSERVER_{p}_PORT", d)) for p, d in (("HTTP", 8080), ("GRPC", 8081), ("METRICS", 8082))]
        json.dump(server_settings(*ports, host=env.get("MLSERVER_HOST", "0.0.0.0")), f)
    return model_dir


def main() -> int:
    try:
        model_dir = run(dict(os.environ))
    except FetchError as e:
        message = str(e)
        print(message, file=sys.stderr)
        try:
            with open(TERMINATION_LOG, "w") as f:
                f.write(message)
        except OSError:
            pass  # not in a container: stderr has it
        return 1
    print(f"Model ready in {model_dir}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
