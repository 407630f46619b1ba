"""IngestionManager: the platform service's owner of ingestions, over one backend (local worker processes).

Every call names the owner: an ingestion is found only under its owner's name, so another user gets 404.
A new ingestion is checked before anything runs — the broker answers, the topic exists, the owner's own keys
may write into the bucket — so bad input is a 4xx with a message, not a silent stall. Records survive
restarts; `adopt_all` runs again what should run, `watch` restarts dead workers (with backoff). A change of
settings stops the worker (it writes and commits what it holds), then starts it with the new settings: it
goes on from the committed offsets, nothing lost or written twice."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

from odh_spawner.credentials import buckets
from odh_spawner.host.supervise import restart_delay
from odh_spawner.tasks import every
from odh_spawner.ingest.keys import parse_key
from odh_spawner.ingest.model import DESIRED, PAUSED, RUNNING, STOPPED, Ingestion, hint
from odh_spawner.ingest.spec import (IngestError, IngestForbidden, IngestionExists, IngestionNotFound, IngestUnavailable, Spec,
                   build_spec, topic_creation, validate_name)
from odh_spawner.ingest.store import IngestionStore
from odh_spawner.profiles.quotas import Limit, count_refusal, over
from odh_spawner.ingest.verify import verify

CredentialsFor = Callable[[str], Awaitable["object"]]
PROBE = ".odh-ingest-probe"


def _s3(creds):
    from odh_spawner.ingest.worker import s3_client

    return s3_client({"endpoint": creds.endpoint, "access_key": creds.access_key, "secret_key": creds.secret_key})


class KafkaCheck:
    """The broker's answers the manager needs (blocking; run in a thread)."""

    def __init__(self, bootstrap: str, timeout: float = 5):
        self.bootstrap = bootstrap
        self.timeout = timeout

    def topics(self) -> dict[str, int]:
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient

        if not self.bootstrap:
            raise IngestUnavailable("No Kafka is configured on this platform; ask your platform admin.")
        admin = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": int(self.timeout * 1000)})
        try:
            md = admin.list_topics(timeout=self.timeout)
        except KafkaException:
            raise IngestUnavailable(f"The Kafka broker {self.bootstrap} does not answer; try again later.") from None
        return {t: len(m.partitions) for t, m in md.topics.items() if not t.startswith("__")}

    def create_topic(self, topic: str, partitions: int) -> None:
        """Create `topic` with `partitions` (replication 1 where the cluster has one broker, else the broker's
        default); a topic that appeared meanwhile is fine."""
        from confluent_kafka import KafkaException
        from confluent_kafka.admin import AdminClient, NewTopic

        admin = AdminClient({"bootstrap.servers": self.bootstrap, "socket.timeout.ms": int(self.timeout * 1000)})
        try:
            brokers = len(admin.list_topics(timeout=self.timeout).brokers)
            new = NewTopic(topic, partitions, 1 if brokers <= 1 else -1)
            for f in admin.create_topics([new], request_timeout=self.timeout).values():
                f.result(self.timeout * 2)
        except KafkaException as e:
            err = e.args[0] if e.args else None
            if getattr(err, "name", lambda: "")() == "TOPIC_ALREADY_EXISTS":
                return
            reason = err.str() if hasattr(err, "str") else type(e).__name__
            raise IngestError(f"Kafka did not create topic {topic!r}: {reason[:200]}.") from None

    def committed(self, group: str, topic: str) -> dict[int, int]:
        from confluent_kafka import Consumer, TopicPartition

        c = Consumer({"bootstrap.servers": self.bootstrap, "group.id": group, "enable.auto.commit": False})
        try:
            parts = c.list_topics(topic, timeout=self.timeout).topics[topic].partitions
            got = c.committed([TopicPartition(topic, p) for p in parts], timeout=self.timeout)
            return {tp.partition: tp.offset for tp in got if tp.offset >= 0}
        finally:
            c.close()

    def delete_group(self, group: str) -> None:
        from confluent_kafka.admin import AdminClient

        admin = AdminClient({"bootstrap.servers": self.bootstrap})
        for f in admin.delete_consumer_groups([group], request_timeout=self.timeout).values():
            try:
                f.result(self.timeout)
            except Exception:
                pass


class IngestionManager:
    def __init__(self, backend, store: IngestionStore, credentials_for: CredentialsFor, bootstrap: str, *,
                 max_per_user: int = 10, restart_backoff_max: float = 60, log: logging.Logger | None = None,
                 limit_for: Callable[[str], Awaitable[Limit]] | None = None):
        self.backend = backend
        self.store = store
        self.credentials_for = credentials_for
        self.bootstrap = bootstrap
        self.kafka = KafkaCheck(bootstrap)
        self.max_per_user = max_per_user
        self.limit_for = limit_for  # owner -> their Limit (per-group quotas); None: max_per_user for everyone
        self.restart_backoff_max = restart_backoff_max
        self.log = log or logging.getLogger("odh_spawner.ingest")
        self.ingestions: dict[tuple[str, str], Ingestion] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._next_restart: dict[tuple[str, str], float] = {}

    # -- queries ---------------------------------------------------------------------------------
    def list(self, owner: str | None = None) -> list[Ingestion]:
        return [i for i in self.ingestions.values() if owner is None or i.owner == owner]

    def get(self, owner: str, name) -> Ingestion:
        ing = self.ingestions.get((owner, name))
        if ing is None:
            raise IngestionNotFound(f"You have no ingestion named {str(name)[:60]!r}.")
        return ing

    def state(self, ing: Ingestion) -> tuple[str, dict]:
        run_dir = self.store.run_dir(ing)
        status = self.backend.status(ing.runtime, run_dir)
        if ing.desired != RUNNING:
            return ing.desired, status
        if not self.backend.alive(ing.runtime):
            return "restarting", status
        return status.get("state") or "starting", status

    def describe(self, ing: Ingestion) -> dict:
        state, st = self.state(ing)
        parts = st.get("partitions") or {}
        last_error = st.get("last_error") if state not in (PAUSED, STOPPED) else None
        last_error = last_error or ing.last_error
        return {
            "name": ing.name, "owner": ing.owner, **ing.spec.to_json(), "state": state, "desired": ing.desired,
            "records": st.get("records", 0), "bytes": st.get("bytes", 0), "objects": st.get("objects", 0),
            "records_per_second": st.get("records_per_second", 0.0) if state == RUNNING else 0.0,
            "bytes_per_second": st.get("bytes_per_second", 0.0) if state == RUNNING else 0.0,
            "partitions": parts, "lag": sum((p.get("lag") or 0) for p in parts.values()),
            "last_object": st.get("last_object"), "last_object_at": st.get("last_object_at"),
            "last_error": last_error, "hint": hint(state, st, last_error, ing.runtime.get("last_exit")),
            "buffered_records": st.get("buffered_records", 0), "group": ing.group,
            "foreign_commits": st.get("foreign_commits", 0),
            "created": ing.created, "updated": ing.updated, "restarts": ing.restarts, "changes": ing.changes,
            "offsets_kept_in": f"the objects in bucket {ing.spec.bucket!r} (the position of record); Kafka consumer "
                               f"group {ing.group!r} shows the lag",
        }

    # -- checks ----------------------------------------------------------------------------------
    async def _check(self, owner: str, spec: Spec, create_partitions: int = 0):
        """The topic exists (or may be created) and the bucket is the owner's; a topic is created only once
        the bucket passed, so a refused request leaves nothing behind on Kafka."""
        topics = await asyncio.to_thread(self.kafka.topics)
        if spec.topic not in topics and not create_partitions:
            known = ", ".join(sorted(topics)[:10]) or "none"
            raise IngestionNotFound(f"Topic {spec.topic!r} does not exist on Kafka {self.bootstrap} "
                                    f"(topics: {known}); create it first, or submit with create_topic: true.")
        creds = await self.credentials_for(owner)
        await asyncio.to_thread(self._probe_bucket, creds, spec)
        if spec.topic not in topics:
            await asyncio.to_thread(self.kafka.create_topic, spec.topic, create_partitions)
            self.log.info("Ingestion of %s created topic %s with %d partitions", owner, spec.topic,
                          create_partitions)
        return creds

    @staticmethod
    def _probe_bucket(creds, spec: Spec) -> None:
        """The bucket is the owner's own (not merely writable: another user's bucket open to everyone is
        refused), then a tiny object written and removed with the owner's own keys."""
        from botocore.exceptions import BotoCoreError, ClientError

        s3 = _s3(creds)
        key = f"{spec.prefix}{PROBE}"
        try:
            owner = buckets.ownership(s3, spec.bucket)  # one ListBuckets: writable is not enough, it must be theirs
            if owner == buckets.MISSING:
                raise IngestError(f"Bucket {spec.bucket!r} does not exist; create it first.")
            if owner == buckets.OTHERS:
                raise IngestForbidden(buckets.not_yours(spec.bucket))
            s3.put_object(Bucket=spec.bucket, Key=key, Body=b"")
            s3.delete_object(Bucket=spec.bucket, Key=key)
        except ClientError as e:
            code = e.response.get("Error", {}).get("Code", "")
            if code == "NoSuchBucket":
                raise IngestError(f"Bucket {spec.bucket!r} does not exist; create it first.") from None
            if code in ("AccessDenied", "403"):
                raise IngestForbidden(f"You may not write into bucket {spec.bucket!r}.") from None
            raise IngestError(f"Bucket {spec.bucket!r} is not writable ({code}).") from None
        except BotoCoreError as e:
            raise IngestUnavailable(f"Object storage does not answer ({type(e).__name__}).") from None

    def _one_writer(self, owner: str, name: str, spec: Spec) -> None:
        """One ingestion per (bucket, prefix, topic) of an owner: the objects there are its position of record,
        so two ingestions writing there would each take the other's objects for their own."""
        for other in self.list(owner):
            if other.name != name and (other.spec.bucket, other.spec.topic) == (spec.bucket, spec.topic) \
                    and spec.prefix in other.prefixes():
                raise IngestionExists(f"Your ingestion {other.name!r} writes topic {spec.topic!r} under "
                                      f"s3://{spec.bucket}/{spec.prefix}; choose another prefix.")

    # -- limits ----------------------------------------------------------------------------------
    async def limit(self, owner: str) -> Limit:
        """How many ingestions `owner` may have: their groups' quota (limit_for), else max_per_user."""
        if self.limit_for is not None:
            return await self.limit_for(owner)
        return Limit(self.max_per_user)

    def _check_count(self, owner: str, limit: Limit) -> None:
        if over(limit, len(self.list(owner))):
            raise IngestForbidden(count_refusal(limit, "ingestion"))

    # -- changes ---------------------------------------------------------------------------------
    async def create(self, owner: str, data: dict) -> Ingestion:
        if not isinstance(data, dict):
            raise IngestError("The request body must be a JSON object.")
        data = dict(data)
        name = validate_name(data.pop("name", None))
        partitions = topic_creation(data.pop("create_topic", False), data.pop("partitions", None))
        spec = build_spec(data)
        limit = await self.limit(owner)
        self._check_count(owner, limit)  # before Kafka or the object store are asked: a refusal costs nothing
        async with self._lock((owner, name)):
            if (owner, name) in self.ingestions:
                raise IngestionExists(f"You already have an ingestion named {name!r}; change it, or choose "
                                      "another name.")
            self._check_count(owner, limit)
            self._one_writer(owner, name, spec)
            creds = await self._check(owner, spec, partitions)
            ing = Ingestion(owner=owner, name=name, spec=spec)
            self.backend.identity(owner)  # a clear error before anything is recorded
            self.ingestions[ing.key] = ing
            self.store.save(ing)
            await self._start(ing, creds)
        self.log.info("Ingestion %s/%s created: %s -> s3://%s/%s", owner, name, spec.topic, spec.bucket, spec.prefix)
        return ing

    async def set_desired(self, owner: str, name, desired: str) -> Ingestion:
        if desired not in DESIRED:
            raise IngestError(f"State must be one of {', '.join(DESIRED)}.")
        ing = self.get(owner, name)
        async with self._lock(ing.key):
            if desired == ing.desired and (desired != RUNNING or self.backend.alive(ing.runtime)):
                return ing
            # restarts count the current run's worker: pausing, stopping or resuming starts from 0 (so a worker
            # that kept crashing stops alerting once an admin paused it), and a resumed worker's first crash is
            # retried at once
            ing.restarts = 0
            self._next_restart.pop(ing.key, None)
            if desired == RUNNING:
                creds = await self._check(owner, ing.spec)
                ing.desired, ing.last_error = RUNNING, None
                await self._start(ing, creds)
            else:
                await self._call("stop", ing.runtime, desired=desired)
                ing.desired = desired
            ing.touch()
            self.store.save(ing)
        self.log.info("Ingestion %s/%s is now %s", owner, name, desired)
        return ing

    async def update(self, owner: str, name, data: dict) -> Ingestion:
        """Change settings: the worker writes and commits what it holds, then goes on with the new ones."""
        if not isinstance(data, dict) or not data:
            raise IngestError("Give the settings to change, e.g. {\"flush_records\": 5000}.")
        ing = self.get(owner, name)
        desired = data.pop("state", None) if "state" in data else None
        new = build_spec(data, base=ing.spec) if data else ing.spec
        async with self._lock(ing.key):
            if new != ing.spec:
                self._one_writer(owner, name, new)
                creds = await self._check(owner, new)
                was_running = ing.desired == RUNNING
                await self._call("stop", ing.runtime, desired=ing.desired if not was_running else STOPPED)
                ing.changes.append({"at": time.time(), "from": ing.spec.to_json(), "to": new.to_json()})
                ing.changes = ing.changes[-20:]
                ing.spec = new
                ing.touch()
                self.store.save(ing)
                if was_running:
                    await self._start(ing, creds)
        if desired is not None:
            await self.set_desired(owner, name, desired)
        return ing

    async def delete(self, owner: str, name) -> None:
        ing = self.get(owner, name)
        async with self._lock(ing.key):
            await self._call("stop", ing.runtime)
            if hasattr(self.backend, "remove"):  # Kubernetes: its objects go with it
                await self._call("remove", ing.runtime)
            try:
                await asyncio.to_thread(self.kafka.delete_group, ing.group)
            except Exception as e:
                self.log.warning("Consumer group of %s/%s not deleted: %s", owner, name, type(e).__name__)
            self.store.remove(ing)
            self.ingestions.pop(ing.key, None)
        self.log.info("Deleted ingestion %s/%s (its objects stay in the bucket)", owner, name)

    # -- objects and verification --------------------------------------------------------------
    async def objects(self, owner: str, name, limit: int = 1000) -> list[dict]:
        ing = self.get(owner, name)
        creds = await self.credentials_for(owner)
        return await asyncio.to_thread(self._list_objects, creds, ing.spec, limit)

    @staticmethod
    def _list_objects(creds, spec: Spec, limit: int) -> list[dict]:
        s3 = _s3(creds)
        out = []
        prefix = f"{spec.prefix}topic={spec.topic}/"
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=spec.bucket, Prefix=prefix):
            for o in page.get("Contents", []):
                parsed = parse_key(o["Key"])
                if parsed is None:
                    continue
                out.append({"key": o["Key"], "size": o["Size"], "partition": parsed[1], "first": parsed[2],
                            "last": parsed[3], "records": parsed[3] - parsed[2] + 1})
                if len(out) >= limit:
                    return out
        return out

    async def verify(self, owner: str, name) -> dict:
        ing = self.get(owner, name)
        objs = await self.objects(owner, name, limit=1_000_000)
        ranges: dict[int, list] = {}
        for o in objs:
            ranges.setdefault(o["partition"], []).append((o["first"], o["last"], o["key"]))
        try:
            committed = await asyncio.to_thread(self.kafka.committed, ing.group, ing.spec.topic)
        except Exception:
            raise IngestUnavailable(f"The Kafka broker {self.bootstrap} does not answer; try again later.") from None
        report = verify(ranges, committed)
        report["partitions"] = {str(k): v for k, v in report["partitions"].items()}
        return report

    # -- background --------------------------------------------------------------------------
    async def _start(self, ing: Ingestion, creds=None) -> None:
        creds = creds or await self.credentials_for(ing.owner)
        rt = await self._call("start", ing, creds, self.bootstrap, self.store.run_dir(ing))
        if ing.runtime.get("last_exit"):
            rt["last_exit"] = ing.runtime["last_exit"]
        ing.runtime = rt
        ing.touch()
        self.store.save(ing)

    async def _call(self, method: str, *args, **kw):
        """A backend method: awaited when it is a coroutine function (Kubernetes), else run in a thread (local)."""
        fn = getattr(self.backend, method)
        if asyncio.iscoroutinefunction(fn):
            return await fn(*args, **kw)
        return await asyncio.to_thread(fn, *args, **kw)

    async def refresh(self) -> None:
        """Backends that report state from elsewhere (Kubernetes; the local one's lag from Kafka) read it here, for
        the synchronous queries."""
        if hasattr(self.backend, "refresh"):
            await self.backend.refresh(list(self.ingestions.values()), self.bootstrap)

    async def watch_once(self) -> None:
        await self.refresh()
        for ing in list(self.ingestions.values()):
            lock = self._lock(ing.key)
            if lock.locked() or ing.desired != RUNNING or self.backend.alive(ing.runtime):
                continue
            if time.monotonic() < self._next_restart.get(ing.key, 0):
                continue
            async with lock:
                if ing.desired != RUNNING or self.backend.alive(ing.runtime):
                    continue
                tail = self.backend.log_tail(ing.runtime, self.store.run_dir(ing), 3)
                how = self.backend.exit_status(ing.runtime) if ing.runtime else "it was not running"
                ing.restarts += 1
                self._next_restart[ing.key] = time.monotonic() + restart_delay(ing.restarts,
                                                                                   self.restart_backoff_max)
                self.log.warning("Ingestion worker %s/%s stopped (%s); restarting. %s", ing.owner, ing.name, how,
                                 " | ".join(tail)[-300:])
                try:
                    ing.runtime["last_exit"] = f"{how}: {tail[-1][-200:]}" if tail else how
                    await self._start(ing)
                    ing.last_error = None
                except IngestError as e:
                    ing.last_error = e.message
                except Exception as e:
                    ing.last_error = f"Restarting the worker failed ({type(e).__name__})."
                self.store.save(ing)

    async def watch(self, interval: float = 2.0) -> None:
        await every(interval, self.watch_once, self.log, "Ingestion watch")

    async def adopt_all(self) -> None:
        """At start-up: take back every recorded ingestion; the watch starts what should run and does not."""
        loaded = self.store.load_all()
        for ing in loaded:
            self.ingestions[ing.key] = ing
            if ing.migrated:  # a record from before the Kafka tokens: keep the ones made at load
                self.store.save(ing)
                ing.migrated = False
                self.log.info("Ingestion %s/%s: new consumer group %s (its worker resumes from its objects)",
                              ing.owner, ing.name, ing.group)
        await self.refresh()
        for ing in loaded:
            live = self.backend.alive(ing.runtime)
            self.log.info("Adopted ingestion %s/%s (%s, %s)", ing.owner, ing.name, ing.desired,
                          "worker running" if live else "no worker")

    def _lock(self, key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())
