"""Stream a Kafka topic into your own bucket, from a notebook, and watch it.

    from odh_hub import ingest, ingestion, ingestions, produce_sample
    produce_sample("clicks", 10_000)                       # try it out: sample records into a topic
    ing = ingest(topic="clicks", bucket="raw", prefix="clicks/", format="parquet",
                 flush_records=10_000, flush_seconds=60, partition_by="hour")   # shows the plan first
    ing.status()          # state, records/bytes written and rates, lag per partition, last object, hint
    ing.pause(); ing.resume(); ing.update(flush_records=1000); ing.stop(); ing.delete()
    ing.objects(); ing.read()     # what landed (a pandas DataFrame); ing.verify(): gaps/overlaps vs offsets
    ingestion("clicks-raw")       # re-attach by name from any kernel

The ingestion belongs to you, not to this notebook server: it keeps running when the server stops and after
a platform restart. It runs on the platform service (with your hub token), reads with its own consumer
group, and writes with your own object-storage keys; it resumes after the last offset its objects in your
bucket hold, so every record lands exactly once.
"""

from __future__ import annotations

import json
import os
import time

import requests

from .client import OdhApiError, raise_for_answer
from .features import left_out_reason

__all__ = ["Ingestion", "IngestClient", "ingest", "ingestion", "ingestions", "plan", "produce_sample"]


class IngestClient:
    """The platform service's ingestion API, with the notebook server's hub token."""

    def __init__(self, platform_url: str | None = None, token: str | None = None, timeout: float = 120,
                 user: str | None = None):
        left_out = left_out_reason("ingestions", os.environ)  # the profile of this server leaves it out
        if left_out:
            raise OdhApiError(409, left_out)
        platform_url = platform_url or os.environ.get("ODH_PLATFORM_URL", "")
        if not platform_url:
            raise OdhApiError(0, "No platform service: run inside an odh-hub notebook server (ODH_PLATFORM_URL).")
        self.api = platform_url.rstrip("/") + "/api/ingestions"
        self.token = token if token is not None else os.environ.get("JUPYTERHUB_API_TOKEN", "")
        self.timeout = timeout
        self.params = {"user": user} if user else {}
        self.http = requests.Session()
        if self.token:
            self.http.headers["Authorization"] = f"token {self.token}"

    def call(self, method: str, path: str = "", params: dict | None = None, **kw):
        r = self.http.request(method, self.api + path, timeout=self.timeout, params={**self.params, **(params or {})},
                              **kw)
        raise_for_answer(r)
        return r.json() if r.content else None


def plan(topic: str, bucket: str, prefix: str = "", format: str = "jsonl", flush_records: int = 10_000,
         flush_seconds: float = 60, partition_by: str | None = None, name: str | None = None) -> dict:
    """What an ingestion will do, before it runs: an example object key, which rule closes files, where the
    offsets are kept. Pure (validation happens on the platform)."""
    from odh_spawner.ingest.keys import hour_of, object_key
    from odh_spawner.ingest.spec import normalize_prefix

    p = normalize_prefix(prefix)
    hour = hour_of(int(time.time() * 1000)) if partition_by == "hour" else None
    return {
        "name": name or default_name(topic, bucket),
        "reads": f"Kafka topic {topic!r}, every partition, from the earliest record not yet ingested",
        "writes": f"s3://{bucket}/{p}topic={topic}/partition=<p>/" + ("dt=<day>/hour=<hh>/" if hour else ""),
        "example_key": f"s3://{bucket}/" + object_key(p, topic, 0, 0, flush_records - 1, format, hour),
        "format": format,
        "flush": (f"an object closes at {flush_records:,} records, or {flush_seconds:g} s after its first record "
                  "(even when no new record arrives)" + (", or when the hour changes" if hour else "")),
        "offsets": "taken from the objects already in your bucket (only you can write there), so every record "
                   "lands exactly once, across restarts, whatever anyone commits on the broker",
    }


def default_name(topic: str, bucket: str) -> str:
    import re

    raw = re.sub(r"[^a-z0-9-]+", "-", f"{topic}-{bucket}".lower()).strip("-")[:40].strip("-")
    return raw or "ingestion"


class Ingestion:
    """One of your ingestions (its name); every call asks the platform."""

    def __init__(self, name: str, client: IngestClient | None = None):
        self.name = name
        self.client = client or IngestClient()

    def __repr__(self) -> str:
        try:
            s = self.status()
            return (f"<Ingestion {self.name}: {s['state']}, {s['records']:,} records in {s['objects']} objects, "
                    f"lag {s['lag']}>")
        except OdhApiError as e:
            return f"<Ingestion {self.name}: {e}>"

    def status(self) -> dict:
        return self.client.call("GET", f"/{self.name}")

    def pause(self) -> dict:
        return self.client.call("POST", f"/{self.name}/pause")

    def resume(self) -> dict:
        return self.client.call("POST", f"/{self.name}/resume")

    def stop(self) -> dict:
        return self.client.call("POST", f"/{self.name}/stop")

    def update(self, **settings) -> dict:
        """Change format, flush_records, flush_seconds, partition_by or prefix; nothing is lost or doubled."""
        return self.client.call("PATCH", f"/{self.name}", json=settings)

    def delete(self) -> dict:
        return self.client.call("DELETE", f"/{self.name}")

    def objects(self, limit: int = 1000) -> list[dict]:
        return self.client.call("GET", f"/{self.name}/objects", params={"limit": limit})["objects"]

    def verify(self) -> dict:
        """Object offset ranges against the committed offsets: gaps, overlaps, missing; ok=True when clean."""
        return self.client.call("GET", f"/{self.name}/verify")

    def wait(self, records: int, timeout: float = 300, interval: float = 1.0) -> dict:
        """Until at least `records` records have landed (or TimeoutError)."""
        deadline = time.monotonic() + timeout
        while True:
            s = self.status()
            if s["records"] >= records:
                return s
            if time.monotonic() > deadline:
                raise TimeoutError(f"{s['records']} of {records} records after {timeout:.0f}s: {s.get('hint')}.")
            time.sleep(interval)

    def read(self, limit: int = 100_000, s3=None):
        """What landed, as a pandas DataFrame (partition, offset, timestamp, key, value), read with your keys.
        Needs pandas (and pyarrow for Parquet): a profile without them gets an OdhApiError saying so."""
        try:
            import pandas as pd
        except ImportError:
            raise OdhApiError(0, missing_stack_message("Ingestion.read()")) from None

        from odh_spawner.ingest.encode import decode

        s = self.status()
        s3 = s3 or _s3_from_env()
        rows = []
        for o in self.objects(limit=limit):
            rows += decode(s3.get_object(Bucket=s["bucket"], Key=o["key"])["Body"].read(), s["format"])
        df = pd.DataFrame(rows, columns=["partition", "offset", "timestamp", "key", "value"])
        return df.sort_values(["partition", "offset"]).reset_index(drop=True)


def missing_stack_message(feature: str) -> str:
    """Why `feature` cannot run here: this profile's environment leaves the data-science stack out. Pure."""
    profile = os.environ.get("ODH_PROFILE", "")
    where = f"your server's profile ({profile!r})" if profile else "this environment"
    return (f"{feature} needs pandas and pyarrow, which {where} leaves out. Start your server with a profile that "
            "has the data-science stack (the demo's 'Standard Data Science'), or list what landed with "
            "ing.objects() and read it with boto3.")


def _s3_from_env():
    import boto3
    from botocore.config import Config

    return boto3.client("s3", endpoint_url=os.environ.get("S3_ENDPOINT_URL") or None, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


def ingest(topic: str, bucket: str, prefix: str = "", format: str = "jsonl", flush_records: int = 10_000,
           flush_seconds: float = 60, partition_by: str | None = None, name: str | None = None,
           show_plan: bool = True, client: IngestClient | None = None, create_topic: bool = False,
           partitions: int | None = None) -> Ingestion:
    """Start streaming `topic` into s3://bucket/prefix. Shows the plan first; bad input raises OdhApiError
    (4xx) with the reason (unknown topic, bucket not writable, invalid settings). With `create_topic=True` a
    missing topic is created first (`partitions`, default 3)."""
    client = client or IngestClient()  # first: a server whose profile leaves ingestion out says so, and no plan
    p = plan(topic, bucket, prefix, format, flush_records, flush_seconds, partition_by, name)
    if create_topic:
        p["reads"] += f" (created with {partitions or 3} partitions if missing)"
    if show_plan:
        _show(p)
    body = {"name": p["name"], "topic": topic, "bucket": bucket, "prefix": prefix, "format": format,
            "flush_records": flush_records, "flush_seconds": flush_seconds, "partition_by": partition_by}
    if create_topic:
        body["create_topic"] = True
        if partitions is not None:
            body["partitions"] = partitions
    client.call("POST", json=body)
    return Ingestion(p["name"], client)


def _show(p: dict) -> None:
    lines = [f"Ingestion plan: {p['name']}", f"  reads:   {p['reads']}", f"  writes:  {p['writes']} ({p['format']})",
             f"  example: {p['example_key']}", f"  flush:   {p['flush']}", f"  offsets: {p['offsets']}"]
    print("\n".join(lines))


def ingestion(name: str, client: IngestClient | None = None) -> Ingestion:
    """Re-attach to one of your ingestions by name (404 OdhApiError if you have none by that name)."""
    ing = Ingestion(name, client)
    ing.status()
    return ing


def ingestions(client: IngestClient | None = None) -> list[dict]:
    return (client or IngestClient()).call("GET")["ingestions"]


def produce_sample(topic: str, records=1000, bootstrap: str | None = None, partitions: int = 3) -> int:
    """Produce sample records into `topic` (created with `partitions` if missing): an int n gives n JSON
    records {"i", "user", "page", "ts"}; a pandas DataFrame gives one JSON record per row; a list of dicts one
    per item. Returns how many were produced."""
    from confluent_kafka import Producer
    from confluent_kafka.admin import AdminClient, NewTopic

    bootstrap = bootstrap or os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "")
    if not bootstrap:
        raise OdhApiError(0, "No Kafka: set KAFKA_BOOTSTRAP_SERVERS or pass bootstrap=.")
    admin = AdminClient({"bootstrap.servers": bootstrap})
    if topic not in admin.list_topics(timeout=10).topics:
        for f in admin.create_topics([NewTopic(topic, partitions, 1)]).values():
            f.result(30)
    if isinstance(records, int):
        now = int(time.time() * 1000)
        rows = ({"i": i, "user": f"u{i % 50}", "page": f"/p/{i % 7}", "ts": now + i} for i in range(records))
    elif hasattr(records, "to_dict"):
        rows = iter(records.to_dict(orient="records"))
    else:
        rows = iter(records)
    # idempotent: a batch retried (e.g. Kafka not yet leader of a topic it has just created) keeps its place
    producer = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5, "enable.idempotence": True})
    n = 0
    for row in rows:
        value = json.dumps(row, default=str).encode()
        key = str(row.get("user", n) if isinstance(row, dict) else n).encode()
        while True:
            try:
                producer.produce(topic, key=key, value=value)
                break
            except BufferError:
                producer.poll(0.1)
        n += 1
        if n % 5000 == 0:
            producer.poll(0)
    if producer.flush(60):
        raise OdhApiError(0, "Kafka did not take every record within 60 s.")
    return n

