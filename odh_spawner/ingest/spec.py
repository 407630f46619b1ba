"""An ingestion's settings, validated. Pure.

Every error is an IngestError subclass with an HTTP status and a message safe to show the user."""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from odh_spawner.errors import OdhError

FORMATS = ("jsonl", "parquet")
PARTITION_BY = (None, "hour")
NAME = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,38}[a-z0-9])?")
TOPIC = re.compile(r"[A-Za-z0-9._-]{1,249}")
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
# a key prefix reaches object keys, worker configuration and, on Strimzi, a connector's configuration, where
# `${...}` would be resolved by Kafka Connect with its own credentials: only these characters
PREFIX_CHARS = re.compile(r"[A-Za-z0-9._=/-]*")
MAX_FLUSH_RECORDS = 1_000_000
MAX_FLUSH_SECONDS = 3600
DEFAULT_FLUSH_RECORDS = 10_000
DEFAULT_FLUSH_SECONDS = 60
DEFAULT_PARTITIONS, MAX_PARTITIONS = 3, 64
SETTINGS = ("format", "flush_records", "flush_seconds", "partition_by", "prefix")  # changeable later


class IngestError(OdhError):
    status_code = 400

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class IngestionNotFound(IngestError):
    status_code = 404


class IngestionExists(IngestError):
    status_code = 409


class IngestForbidden(IngestError):
    status_code = 403


class IngestUnavailable(IngestError):
    status_code = 503


@dataclass(frozen=True)
class Spec:
    topic: str
    bucket: str
    prefix: str = ""
    format: str = "jsonl"
    flush_records: int = DEFAULT_FLUSH_RECORDS
    flush_seconds: float = DEFAULT_FLUSH_SECONDS
    partition_by: str | None = None

    def to_json(self) -> dict:
        return asdict(self)


def validate_name(name) -> str:
    if not isinstance(name, str) or not NAME.fullmatch(name):
        raise IngestError("An ingestion's name is 1-40 lowercase letters, digits and '-', starting and ending "
                          f"with a letter or digit; got {str(name)[:60]!r}.")
    return name


def _int(value, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or int(value) != value:
        raise IngestError(f"{field} must be a whole number, got {str(value)[:40]!r}.")
    if not low <= value <= high:
        raise IngestError(f"{field} must be between {low} and {high}, got {value}.")
    return int(value)


def topic_creation(create_topic, partitions) -> int:
    """How many partitions a missing topic is created with at submit (0: do not create it)."""
    if not isinstance(create_topic, bool):
        raise IngestError("`create_topic` must be true or false.")
    if partitions is not None and not create_topic:
        raise IngestError("`partitions` applies only with `create_topic: true`.")
    if not create_topic:
        return 0
    return _int(DEFAULT_PARTITIONS if partitions is None else partitions, "partitions", 1, MAX_PARTITIONS)


def normalize_prefix(prefix) -> str:
    if prefix is None:
        return ""
    if not isinstance(prefix, str) or len(prefix) > 512:
        raise IngestError("Prefix must be a string of at most 512 characters.")
    parts = [p for p in prefix.split("/") if p]
    if prefix.startswith("/") or any(p in (".", "..") for p in parts) or not PREFIX_CHARS.fullmatch(prefix):
        raise IngestError(f"Prefix {prefix[:60]!r} is not a valid key prefix: use letters, digits and '.', '_', "
                          "'=', '-', '/' only, with no leading '/' and no '.' or '..' folder.")
    return "/".join(parts) + "/" if parts else ""


def build_spec(data: dict, base: Spec | None = None) -> Spec:
    """A Spec from request data (unknown fields refused); `base` supplies the fields not given (changes)."""
    if not isinstance(data, dict):
        raise IngestError("The request body must be a JSON object.")
    allowed = set(SETTINGS) if base is not None else {"topic", "bucket", *SETTINGS}
    unknown = sorted(set(data) - allowed)
    if unknown:
        raise IngestError(f"Unknown field(s) {', '.join(repr(k)[:40] for k in unknown[:5])}; allowed: "
                          f"{', '.join(sorted(allowed))}.")
    cur = base.to_json() if base is not None else {}
    merged = {**cur, **data}
    topic, bucket = merged.get("topic"), merged.get("bucket")
    if not isinstance(topic, str) or not TOPIC.fullmatch(topic) or topic in (".", ".."):
        raise IngestError(f"Topic must be a Kafka topic name (letters, digits, '.', '_', '-'), got "
                          f"{str(topic)[:60]!r}.")
    if not isinstance(bucket, str) or not BUCKET.fullmatch(bucket) or ".." in bucket:
        raise IngestError(f"Bucket must be an S3 bucket name (3-63 lowercase letters, digits, '.', '-'), got "
                          f"{str(bucket)[:70]!r}.")
    fmt = merged.get("format", "jsonl")
    if fmt not in FORMATS:
        raise IngestError(f"Format must be one of {', '.join(FORMATS)}, got {str(fmt)[:30]!r}.")
    part = merged.get("partition_by")
    if part not in PARTITION_BY:
        raise IngestError(f"`partition_by` must be 'hour' or null, got {str(part)[:30]!r}.")
    flush_records = _int(merged.get("flush_records", DEFAULT_FLUSH_RECORDS), "flush_records", 1, MAX_FLUSH_RECORDS)
    fs = merged.get("flush_seconds", DEFAULT_FLUSH_SECONDS)
    if isinstance(fs, bool) or not isinstance(fs, (int, float)) or not 0.1 <= fs <= MAX_FLUSH_SECONDS:
        raise IngestError(f"`flush_seconds` must be a number between 0.1 and {MAX_FLUSH_SECONDS}, got "
                          f"{str(fs)[:30]!r}.")
    return Spec(topic=topic, bucket=bucket, prefix=normalize_prefix(merged.get("prefix", "")), format=fmt,
                flush_records=flush_records, flush_seconds=float(fs), partition_by=part)
