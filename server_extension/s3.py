"""The user's S3 client (keys from the server's environment) and S3 errors mapped to HTTP answers."""

from __future__ import annotations

import os

from .validate import BadRequest

# boto3 and botocore are imported when first used, not when Jupyter Server loads the extension (about 0.4 s of
# every server start otherwise); by the time an S3 error is caught, the call that raised it has imported them.


def client_error() -> type:
    from botocore.exceptions import ClientError

    return ClientError


def s3_errors() -> tuple[type, ...]:
    """The errors an S3 call raises (for `except s3_errors() as e`)."""
    from botocore.exceptions import BotoCoreError, ClientError

    return ClientError, BotoCoreError

# S3 error code -> (HTTP status, message for the user)
_CODES = {
    "NoSuchBucket": (404, "No such bucket."),
    "NoSuchKey": (404, "No such object."),
    "404": (404, "No such object."),
    "NotFound": (404, "Not found."),
    "NoSuchUpload": (404, "No such upload (it was completed or aborted)."),
    "AccessDenied": (403, "Access denied: this bucket or object is not yours."),
    "403": (403, "Access denied."),
    "InvalidAccessKeyId": (403, "This server's storage keys are not valid (they may have been rotated); restart your "
                                "server."),
    "SignatureDoesNotMatch": (403, "This server's storage keys are not valid; restart your server."),
    "QuotaExceeded": (403, "Your storage quota is exhausted; delete objects you no longer need."),
    "TooManyBuckets": (403, "You have too many buckets; delete one you no longer need."),
    "BucketAlreadyExists": (409, "That bucket name is taken; choose another."),
    "BucketAlreadyOwnedByYou": (409, "You already have a bucket with that name."),
    "BucketNotEmpty": (409, "The bucket is not empty; delete its objects first."),
    "InvalidBucketName": (400, "Invalid bucket name."),
    "InvalidPart": (400, "A part is missing or its ETag does not match."),
    "InvalidPartOrder": (400, "Parts must be listed in ascending order."),
    "EntityTooSmall": (400, "Every part but the last must be at least 5 MiB."),
    "BadDigest": (400, "Content-MD5 does not match the bytes received (corrupted in transit?); try again."),
    "InvalidDigest": (400, "Invalid Content-MD5."),
    "InvalidArgument": (400, "Invalid argument."),
    "InvalidRequest": (400, "Invalid request."),
    "InvalidRange": (416, "Invalid range."),
    "KeyTooLongError": (400, "Key too long."),
}


def client_from_env(env=os.environ):
    """boto3 S3 client for the user's own keys (AWS_ACCESS_KEY_ID/SECRET and S3_ENDPOINT_URL)."""
    import boto3
    from botocore.config import Config

    config = Config(
        s3={"addressing_style": "path"},
        signature_version="s3v4",
        retries={"max_attempts": 3, "mode": "standard"},
        max_pool_connections=32,
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
        connect_timeout=5,
        read_timeout=60,
    )
    return boto3.session.Session().client(
        "s3",
        endpoint_url=env.get("S3_ENDPOINT_URL") or None,
        region_name=env.get("AWS_DEFAULT_REGION", "us-east-1"),
        config=config,
    )


def s3_code(e: Exception) -> str:
    """The S3 error code of a botocore ClientError ('' for anything else)."""
    response = getattr(e, "response", None)
    return str(response.get("Error", {}).get("Code", "")) if isinstance(response, dict) else ""


def http_error(e: Exception) -> BadRequest:
    """Map a botocore error to a BadRequest(status, message) safe for the user."""
    from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError, NoCredentialsError

    if isinstance(e, ClientError):
        err = e.response.get("Error", {})
        code = str(err.get("Code", ""))
        status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
        if code in _CODES:
            s, msg = _CODES[code]
            return BadRequest(msg, s)
        if 400 <= status < 500:
            return BadRequest(f"Object storage refused the request ({code or status}).", status)
        return BadRequest(f"Object storage failed ({code or status}); try again.", 502)
    if isinstance(e, NoCredentialsError):
        from .features import NO_STORAGE

        return BadRequest(NO_STORAGE, 503)
    if isinstance(e, EndpointConnectionError):
        return BadRequest("Object storage is not reachable right now; try again in a minute.", 503)
    if isinstance(e, BotoCoreError):
        return BadRequest(f"The object-storage request failed ({type(e).__name__}); try again.", 502)
    raise e


def not_yours(bucket: str) -> str:
    """The refusal for a bucket someone else owns (the same words on the notebook and the platform side)."""
    return f"The bucket {bucket} belongs to another user; choose one of your own buckets."


def models_bucket_not_yours(bucket: str) -> str:
    return (f"Your models bucket {bucket} belongs to another user (the name was taken before your storage was "
            "set up), so your model is not uploaded there. Tell your platform admin; nothing was deployed.")


def owned_buckets(s3) -> set[str]:
    """The names of the buckets the caller owns: S3 ListBuckets answers only those (one request, blocking)."""
    return {b["Name"] for b in s3.list_buckets().get("Buckets", [])}


def check_owned(s3, bucket: str) -> None:
    """Refuse (BadRequest 403) a bucket that exists and belongs to another user; a missing bucket passes
    (S3 answers NoSuchBucket when it is used). One ListBuckets, plus a HeadBucket for a bucket not listed."""
    if bucket in owned_buckets(s3):
        return
    try:
        s3.head_bucket(Bucket=bucket)
    except client_error() as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code in ("404", "NoSuchBucket", "NotFound"):
            return
    raise BadRequest(not_yours(bucket), 403)


def ensure_bucket(s3, bucket: str, message=not_yours) -> None:
    """Make sure `bucket` is one of the caller's own: create it when it does not exist; refuse it (BadRequest
    403 with `message(bucket)`) when someone else owns it, even when they let everyone write into it."""
    if bucket in owned_buckets(s3):
        return
    try:
        s3.create_bucket(Bucket=bucket)
    except client_error() as e:
        code = str(e.response.get("Error", {}).get("Code", ""))
        if code == "BucketAlreadyOwnedByYou":  # created meanwhile by another request of ours
            return
        if code in ("BucketAlreadyExists", "AccessDenied", "403"):
            raise BadRequest(message(bucket), 403) from None
        raise
    if bucket not in owned_buckets(s3):  # some stores answer 200 to creating a taken name: check, never assume
        raise BadRequest(message(bucket), 403)


def delete_prefix(s3, bucket: str, prefix: str) -> None:
    """Remove every object under the prefix, a page at a time (blocking)."""
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys = [{"Key": o["Key"]} for o in page.get("Contents", [])]
        if keys:
            s3.delete_objects(Bucket=bucket, Delete={"Objects": keys, "Quiet": True})
