"""Buckets are owned: a user's platform buckets are made with the user's own keys, and every path that uses
a bucket for a user (deploy, ingestion) first checks that the user owns it (blocking I/O, with boto3).

Bucket names are global in the object store: anyone may create `odh-models-alice` before alice's storage
exists and let everyone write into it. Ownership, not access, is what makes a bucket safe to use: S3
ListBuckets answers exactly the buckets the caller owns, so one request tells.
"""

from __future__ import annotations

import logging

from odh_spawner.credentials.model import S3Credentials
from odh_spawner.naming import models_bucket

log = logging.getLogger("odh_spawner.credentials")

MINE, MISSING, OTHERS = "mine", "missing", "others"


def not_yours(bucket: str) -> str:
    """The refusal for a bucket another user owns (the notebook side says the same)."""
    return f"The bucket {bucket} belongs to another user; choose one of your own buckets."


def default_buckets(username: str) -> list[str]:
    """The buckets the platform uses for `username` by default, made with their keys with their credentials."""
    return [models_bucket(username)]


def s3_client(creds: S3Credentials):
    """A boto3 S3 client with the user's own keys (path-style, s3v4; what Ceph RGW needs)."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "s3", endpoint_url=creds.endpoint or None, aws_access_key_id=creds.access_key,
        aws_secret_access_key=creds.secret_key, region_name="us-east-1",
        config=Config(s3={"addressing_style": "path"}, signature_version="s3v4", retries={"max_attempts": 3},
                      request_checksum_calculation="when_required", response_checksum_validation="when_required",
                      connect_timeout=5, read_timeout=60),
    )


def owned_buckets(s3) -> set[str]:
    """The names of the buckets the client's user owns (one ListBuckets)."""
    return {b["Name"] for b in s3.list_buckets().get("Buckets", [])}


def error_code(e) -> str:
    """The S3 error code of a botocore ClientError ("" when it has none)."""
    return str(e.response.get("Error", {}).get("Code", ""))


def ownership(s3, bucket: str) -> str:
    """MINE, MISSING (no such bucket), or OTHERS (it exists and another user owns it). One ListBuckets; a
    HeadBucket only for a bucket that is not the user's. S3 errors other than 404 propagate."""
    from botocore.exceptions import ClientError

    if bucket in owned_buckets(s3):
        return MINE
    try:
        s3.head_bucket(Bucket=bucket)
    except ClientError as e:
        code = error_code(e)
        if code in ("404", "NoSuchBucket", "NotFound"):
            return MISSING
    return OTHERS  # HeadBucket answered 200 (shared with us) or 403 (private): either way, not ours


def claim(s3, bucket: str) -> bool:
    """Create `bucket` as the client's user unless they own it already. False when another user owns it
    (then nothing is written to it)."""
    from botocore.exceptions import ClientError

    if bucket in owned_buckets(s3):
        return True
    try:
        s3.create_bucket(Bucket=bucket)
    except ClientError as e:
        code = error_code(e)
        if code == "BucketAlreadyOwnedByYou":
            return True
        if code in ("BucketAlreadyExists", "AccessDenied", "403"):
            return False
        raise
    return bucket in owned_buckets(s3)  # never assume a 200 means ours
