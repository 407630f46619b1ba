"""Model artifacts in the owner's bucket, read and removed with the owner's own keys (blocking I/O).

Because every call uses the owner's keys, a deployment can only use models its owner can read: user B's
request naming a model in A's bucket fails with AccessDenied like any other S3 call of B's.
"""

from __future__ import annotations

import hashlib
import os

from botocore.exceptions import BotoCoreError, ClientError

from odh_spawner.credentials import buckets
from odh_spawner.credentials.model import S3Credentials
from odh_spawner.quantities import format_bytes
from odh_spawner.deploy.model import DeployError, DeployForbidden, ModelTooLarge

MODEL_FILES = {"sklearn": ("model.joblib", "model.pkl", "model.pickle"), "mlflow": ("MLmodel",)}


def s3_client(creds: S3Credentials):
    return buckets.s3_client(creds)


def check_owned(creds: S3Credentials, bucket: str) -> None:
    """DeployForbidden unless the owner owns `bucket` (one ListBuckets): readable is not enough, since a bucket
    another user owns may be written by them (or by everyone) between upload and load."""
    try:
        state = buckets.ownership(s3_client(creds), bucket)
    except (ClientError, BotoCoreError) as e:
        raise _fail(e, f"s3://{bucket}/") from None
    if state == buckets.OTHERS:
        raise DeployForbidden(buckets.not_yours(bucket))


CHANGED = "The model file changed after upload; deploy it again."


def sha256_of(path: str) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def expect_digests(objects: list[dict], prefix: str, digests: dict[str, str] | None) -> list[dict]:
    """With the digests recorded at upload ({key under the prefix: sha256}): only the recorded files, each
    carrying the digest `download` checks; DeployError(CHANGED) when one is gone. Without: `objects` as they are
    (records from before digests)."""
    if not digests:
        return objects
    by_rel = {o["Key"][len(prefix):]: o for o in objects}
    missing = sorted(rel for rel in digests if rel not in by_rel)
    if missing:
        raise DeployError(CHANGED)
    return [{**by_rel[rel], "sha256": digest} for rel, digest in sorted(digests.items())]


def _fail(e: Exception, uri: str) -> DeployError:
    code = e.response.get("Error", {}).get("Code", "") if isinstance(e, ClientError) else ""
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return DeployForbidden(f"Cannot read {uri}: it is not in one of your buckets (access denied).")
    if code in ("NoSuchBucket", "NoSuchKey", "404"):
        return DeployError(f"Nothing found at {uri}: upload the model there first.")
    return DeployError(f"Object storage could not be read for {uri} ({code or type(e).__name__}); try again.")


def list_model(creds: S3Credentials, bucket: str, prefix: str, framework: str, max_bytes: int) -> list[dict]:
    """The model's objects under the prefix, checked: the framework's model file is there, the total fits."""
    s3, uri = s3_client(creds), f"s3://{bucket}/{prefix}"
    objects: list[dict] = []
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            objects += page.get("Contents", [])
            if len(objects) > 10_000:
                raise DeployError(f"{uri} holds more than 10,000 objects; point model_uri at the model's folder.")
    except (ClientError, BotoCoreError) as e:
        raise _fail(e, uri) from None
    names = {o["Key"][len(prefix):] for o in objects}
    if not objects:
        raise DeployError(f"Nothing found at {uri}: upload the model there first.")
    if not names & set(MODEL_FILES[framework]):
        raise DeployError(f"No {framework} model at {uri}: expected one of {', '.join(MODEL_FILES[framework])} "
                          "directly in that folder.")
    total = sum(o["Size"] for o in objects)
    if total > max_bytes:
        raise ModelTooLarge(f"The model at {uri} is {format_bytes(total)}; deployments take at most "
                            f"{format_bytes(max_bytes)}.")
    return objects


def download(creds: S3Credentials, bucket: str, prefix: str, objects: list[dict], dest: str) -> None:
    """Fetch the model's objects into `dest`, keeping their layout under the prefix. An object carrying a
    `sha256` (see expect_digests) must have it once downloaded, else DeployError(CHANGED): the file is not
    loaded."""
    s3 = s3_client(creds)
    root = os.path.realpath(dest)
    for o in objects:
        rel = o["Key"][len(prefix):]
        path = os.path.realpath(os.path.join(root, rel))
        if not path.startswith(root + os.sep) or rel.endswith("/"):
            continue  # folder markers and keys escaping the folder ("../") are not model files
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            s3.download_file(bucket, o["Key"], path)
        except (ClientError, BotoCoreError) as e:
            raise _fail(e, f"s3://{bucket}/{o['Key']}") from None
        if o.get("sha256") and sha256_of(path) != o["sha256"]:  # the file the model server would load
            os.unlink(path)
            raise DeployError(CHANGED)


def delete_prefix(creds: S3Credentials, bucket: str, prefix: str) -> int:
    """Remove the artifacts under the prefix; returns how many objects were removed. Missing is fine."""
    s3, removed = s3_client(creds), 0
    try:
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
            keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
            if keys:
                s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
                removed += len(keys)
    except ClientError as e:
        if e.response.get("Error", {}).get("Code") not in ("NoSuchBucket", "404"):
            raise _fail(e, f"s3://{bucket}/{prefix}") from None
    return removed
