"""DeploymentManager: the platform service's owner of deployments, over one serving backend.

It validates requests, keeps records (saved after every change), runs each bring-up as a background task
through the stages creating -> starting -> ready, watches served processes and restarts them, re-adopts what
is live after its own restart, and removes everything a deployment made when it is deleted. One lock per
deployment serialises changes to it.

Every deployment has an API key (made at creation, rotated on request) and a `public` flag (off unless its
owner turns it on); with `routes`, its URL leads through the hub's proxy to the platform's model gateway, which
enforces both (odh_spawner.platform.gateway). `find_model` is the gateway's lookup by model name.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from typing import Awaitable, Callable

from tornado.httpclient import AsyncHTTPClient, HTTPRequest

from odh_spawner.host.supervise import restart_delay
from odh_spawner.tasks import every
from odh_spawner.deploy import artifacts
from odh_spawner.deploy.model import (AVAILABLE, DELETING, FAILED, RETIRED, DeployError, DeployForbidden, Deployment,
                    DeploymentExists, DeploymentNotFound, new_api_key, parse_model_uri, v2_request,
                    validate_digests, validate_framework, validate_name, validate_rows)
from odh_spawner.deploy.routing import ModelRoutes
from odh_spawner.profiles.quotas import Limit, count_refusal, over
from odh_spawner.deploy.store import DeploymentStore

# artifacts the platform uploaded live under this folder of a bucket; delete removes only those
MANAGED_PREFIX = "odh-deployments/"

CredentialsFor = Callable[[str], Awaitable["object"]]


class DeploymentManager:
    def __init__(self, backend, store: DeploymentStore, credentials_for: CredentialsFor, *,
                 max_model_bytes: int = 2 * 2**30, max_per_user: int = 20, restart_backoff_max: float = 60,
                 routes: ModelRoutes | None = None, log: logging.Logger | None = None,
                 limit_for: Callable[[str], Awaitable[Limit]] | None = None):
        self.backend = backend
        self.routes = routes
        self.store = store
        self.credentials_for = credentials_for
        self.max_model_bytes = max_model_bytes
        self.max_per_user = max_per_user
        self.limit_for = limit_for  # owner -> their Limit (per-group quotas); None: max_per_user for everyone
        self.restart_backoff_max = restart_backoff_max
        self.log = log or logging.getLogger("odh_spawner.deploy")
        self.deployments: dict[tuple[str, str], Deployment] = {}
        self._locks: dict[tuple[str, str], asyncio.Lock] = {}
        self._tasks: dict[tuple[str, str], asyncio.Task] = {}
        self._next_restart: dict[tuple[str, str], float] = {}
        self._models: dict[str, Deployment] = {}  # model name -> deployment, for the gateway

    # -- limits ------------------------------------------------------------------------------
    async def limit(self, owner: str) -> Limit:
        """How many deployments `owner` may have: their groups' quota (limit_for), else max_per_user."""
        if self.limit_for is not None:
            return await self.limit_for(owner)
        return Limit(self.max_per_user)

    def _check_count(self, owner: str, limit: Limit) -> None:
        if over(limit, len(self.list(owner))):
            raise DeployForbidden(count_refusal(limit, "deployment"))

    # -- queries -----------------------------------------------------------------------------
    def list(self, owner: str | None = None) -> list[Deployment]:
        return [d for d in self.deployments.values() if owner is None or d.owner == owner]

    def get(self, owner: str, name: str) -> Deployment:
        d = self.deployments.get((owner, name))
        if d is None:
            raise DeploymentNotFound(f"You have no deployment named {str(name)[:60]!r}.")
        return d

    def find_model(self, model_name: str) -> Deployment | None:
        return self._models.get(model_name)

    # -- changes -----------------------------------------------------------------------------
    async def create(self, owner: str, name, model_uri, framework="sklearn", example_input=None,
                     model_sha256=None) -> Deployment:
        name = validate_name(name)
        framework = self._framework(framework)
        bucket, _ = parse_model_uri(model_uri)
        example_input = validate_rows(example_input) if example_input is not None else None
        digests = validate_digests(model_sha256)
        limit = await self.limit(owner)
        self._check_count(owner, limit)  # before anything slow: a refusal costs nothing
        await self._check_bucket(owner, bucket)
        async with self._lock((owner, name)):
            if (owner, name) in self.deployments:
                raise DeploymentExists(f"You already have a deployment named {name!r}: deploy a new version "
                                       "of it, or choose another name.")
            self._check_count(owner, limit)
            d = Deployment(owner=owner, name=name, backend=self.backend.name,
                           model_name=self.backend.model_name_for(owner, name), api_key=new_api_key())
            if d.model_name in self._models:  # two owners' names that the backend's naming maps together
                raise DeploymentExists(f"The model name {d.model_name!r} is taken; choose another name.")
            v = d.add_version(model_uri, framework, example_input, digests)
            self._add(d)
            self.store.save(d)
        self._start(d, v.version)
        return d

    async def add_version(self, owner: str, name, model_uri, framework="sklearn", example_input=None,
                          model_sha256=None) -> Deployment:
        d = self.get(owner, name)
        framework = self._framework(framework)
        bucket, _ = parse_model_uri(model_uri)
        example_input = validate_rows(example_input) if example_input is not None else None
        digests = validate_digests(model_sha256)
        await self._check_bucket(owner, bucket)
        async with self._lock(d.key):
            self._refuse_if_busy(d)
            v = d.add_version(model_uri, framework, example_input or self._last_example(d), digests)
            self.store.save(d)
        self._start(d, v.version)
        return d

    async def rollback(self, owner: str, name) -> Deployment:
        d = self.get(owner, name)
        async with self._lock(d.key):
            self._refuse_if_busy(d)
            target = d.rollback_target()
            d.target = target.version
            d.touch(stage="creating")
            self.store.save(d)
        self._start(d, target.version)
        return d

    async def rotate_key(self, owner: str, name) -> Deployment:
        """A new API key; the old one stops working at once (the gateway reads the record in memory)."""
        d = self.get(owner, name)
        async with self._lock(d.key):
            d.api_key = new_api_key()
            d.touch()
            self.store.save(d)
        self.log.info("Deployment %s/%s: API key rotated", owner, name)
        return d

    async def set_public(self, owner: str, name, public) -> Deployment:
        """Make the endpoint answer anyone (True) or only its owner's token and its key (False)."""
        if not isinstance(public, bool):
            raise DeployError("`public` must be true or false.")
        d = self.get(owner, name)
        async with self._lock(d.key):
            if d.public != public:
                d.public = public
                d.touch()
                self.store.save(d)
                self.log.info("Deployment %s/%s is now %s", owner, name, "public" if public else "private")
        return d

    async def delete(self, owner: str, name) -> None:
        d = self.get(owner, name)
        task = self._tasks.pop(d.key, None)
        if task and not task.done():
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
        async with self._lock(d.key):
            d.touch(DELETING, "deleting")
            self._models.pop(d.model_name, None)
            if self.routes:
                await self.routes.remove(d)
            await self.backend.teardown(d)
            await self._delete_artifacts(d)
            self.store.remove(d)
            self.deployments.pop(d.key, None)
            self.log.info("Deleted deployment %s/%s", owner, name)

    async def predict(self, owner: str, name, rows=None) -> dict:
        d = self.get(owner, name)
        if d.state != AVAILABLE or not d.infer_url:
            raise DeployError(f"Deployment {d.name!r} is not serving right now (state {d.state}).")
        rows = validate_rows(rows) if rows is not None else d.version_of(d.serving).example_input
        if not rows:
            raise DeployError("Give inputs: this deployment has no stored example input.")
        return await self._infer(d, rows)

    # -- background work ---------------------------------------------------------------------
    def _start(self, d: Deployment, version: int) -> None:
        self._tasks[d.key] = asyncio.ensure_future(self._bring_up(d, version))

    async def _bring_up(self, d: Deployment, version: int) -> None:
        v = d.version_of(version)

        def report(stage: str) -> None:
            d.touch(stage=stage)
            self.store.save(d)

        async with self._lock(d.key):
            try:
                creds = await self.credentials_for(d.owner)
                bucket, prefix = parse_model_uri(v.model_uri)
                await asyncio.to_thread(artifacts.check_owned, creds, bucket)  # still the owner's at load time
                objects = await asyncio.to_thread(artifacts.list_model, creds, bucket, prefix, v.framework,
                                                  self.max_model_bytes)
                # the loader checks each file against the digest recorded at upload (older records: none)
                objects = artifacts.expect_digests(objects, prefix, v.sha256)
                await self.backend.bring_up(d, v, creds, objects, self.store.version_dir(d, v.version), report)
                await self._publish(d)
            except asyncio.CancelledError:
                raise
            except DeployError as e:
                self._failed(d, v, e.message, e.log_tail)
                return
            except Exception as e:  # a bug or an unexpected backend error: the user gets a short message
                self.log.exception("Bring-up of %s/%s v%d failed", d.owner, d.name, v.version)
                self._failed(d, v, f"Deploying failed unexpectedly ({type(e).__name__}); see the service log.", [])
                return
            for other in d.versions:
                if other.state == AVAILABLE and other.version != v.version:
                    other.state = RETIRED
            v.state, v.error = AVAILABLE, None
            d.serving = d.target = v.version
            # restarts count the serving version's model server: a new version or a rollback starts from 0 (so
            # a crash loop that a rollback ended stops alerting), and its first crash is retried at once
            d.restarts = 0
            self._next_restart.pop(d.key, None)
            d.last_error, d.log_tail = None, []
            d.test_prediction = None
            if v.example_input:  # through the public URL with the key, as users call it; before "ready"
                try:
                    d.test_prediction = await self._infer(d, v.example_input)
                except DeployError as e:
                    d.test_prediction = {"inputs": v.example_input, "error": e.message}
                except Exception as e:  # the public URL is unreachable from here: the model serves anyway
                    d.test_prediction = {"inputs": v.example_input,
                                         "error": f"The test call failed ({type(e).__name__})."}
            d.touch(AVAILABLE, "ready")
            self.store.save(d)
            self.log.info("Deployment %s/%s serves v%d at %s", d.owner, d.name, v.version, d.infer_url)

    def _failed(self, d: Deployment, v, message: str, log_tail: list[str]) -> None:
        v.state, v.error = FAILED, message
        d.last_error, d.log_tail = message, list(log_tail)
        d.target = d.serving
        # a failed new version leaves the old one serving; a failed first version leaves nothing running
        d.touch(AVAILABLE if d.serving else FAILED, "failed")
        self.store.save(d)
        self.log.warning("Deployment %s/%s v%d failed: %s", d.owner, d.name, v.version, message)

    async def watch_once(self) -> None:
        """Check every served deployment; restart dead servers (with backoff)."""
        for d in list(self.deployments.values()):
            lock = self._lock(d.key)
            if lock.locked() or not d.serving or d.state == DELETING:
                continue
            async with lock:
                problem = await self.backend.check(d)
                if self.routes and d.url:
                    d.url = self.routes.base_url  # a backend may report its own URL: users call the gateway
                if problem is None:
                    if d.state == FAILED:
                        d.touch(AVAILABLE)
                        self.store.save(d)
                    continue
                if d.state != FAILED:
                    self.log.warning("Deployment %s/%s: %s", d.owner, d.name, problem)
                    d.last_error = problem
                    d.touch(FAILED)
                    self.store.save(d)
                if time.monotonic() < self._next_restart.get(d.key, 0):
                    continue
                d.restarts += 1
                self._next_restart[d.key] = time.monotonic() + restart_delay(d.restarts, self.restart_backoff_max)
                try:
                    await self.backend.recover(d, d.version_of(d.serving))
                    await self._publish(d)
                except DeployError as e:
                    d.last_error, d.log_tail = f"{problem} Restarting failed: {e.message}", e.log_tail
                    self.store.save(d)
                    continue
                d.last_error = f"{problem} Restarted automatically."
                d.touch(AVAILABLE)
                self.store.save(d)
                self.log.info("Deployment %s/%s restarted", d.owner, d.name)

    async def watch(self, interval: float = 2.0) -> None:
        await every(interval, self.watch_once, self.log, "Deployment watch")

    async def adopt_all(self) -> None:
        """At start-up: take back every recorded deployment; restart what is no longer running."""
        for d in self.store.load_all():
            if not d.api_key:  # a record from before keys existed
                d.api_key = new_api_key()
            self._add(d)
            try:
                live = await self.backend.adopt(d)
                if live or d.serving:
                    await self._publish(d)  # the gateway route, again (the proxy may have restarted too)
            except Exception:
                self.log.exception("Could not adopt %s/%s", d.owner, d.name)
                live = False
            if d.target != d.serving:  # a bring-up was interrupted by our restart
                self._failed(d, d.version_of(d.target), "Interrupted by a restart of the platform service; "
                             "deploy the version again.", [])
            self.log.info("Adopted deployment %s/%s (%s)", d.owner, d.name, "live" if live else "not running")
            self.store.save(d)

    async def close(self) -> None:
        for task in self._tasks.values():
            task.cancel()
        await asyncio.gather(*self._tasks.values(), return_exceptions=True)

    # -- helpers -----------------------------------------------------------------------------
    def _add(self, d: Deployment) -> None:
        self.deployments[d.key] = d
        self._models[d.model_name] = d

    async def _publish(self, d: Deployment) -> None:
        """Route the deployment's URL through the gateway (when routes are configured)."""
        if self.routes:
            try:
                await self.routes.add(d)
            except Exception as e:  # the proxy's API: the model serves, but cannot be reached yet
                self.log.error("Could not route %s/%s: %s", d.owner, d.name, type(e).__name__)
                raise DeployError("The model serves, but its route on the hub's proxy could not be set; "
                                  "try again, or tell your platform admin.") from None

    async def _check_bucket(self, owner: str, bucket: str) -> None:
        """DeployForbidden (403) when another user owns the bucket the model is in."""
        creds = await self.credentials_for(owner)
        await asyncio.to_thread(artifacts.check_owned, creds, bucket)

    def _lock(self, key) -> asyncio.Lock:
        return self._locks.setdefault(key, asyncio.Lock())

    def _framework(self, framework) -> str:
        framework = validate_framework(framework)
        if not self.backend.supports(framework):
            raise DeployError(f"This platform's serving backend cannot serve {framework} models.")
        return framework

    @staticmethod
    def _refuse_if_busy(d: Deployment) -> None:
        if d.target != d.serving:
            raise DeploymentExists(f"Deployment {d.name!r} is already bringing up version {d.target}; wait for it.")
        if d.state == DELETING:
            raise DeploymentNotFound(f"Deployment {d.name!r} is being deleted.")

    @staticmethod
    def _last_example(d: Deployment):
        return next((v.example_input for v in reversed(d.versions) if v.example_input), None)

    async def _infer(self, d: Deployment, rows: list) -> dict:
        body = v2_request(rows)
        t0 = time.perf_counter()
        r = await AsyncHTTPClient().fetch(HTTPRequest(d.infer_url, method="POST", body=json.dumps(body),
                                                      headers={"Content-Type": "application/json",
                                                               **d.auth_headers()},
                                                      request_timeout=30), raise_error=False)
        elapsed = (time.perf_counter() - t0) * 1000
        try:
            answer = json.loads(r.body or b"{}")
        except ValueError:
            answer = {}
        if r.code != 200:
            detail = answer.get("error") or answer.get("detail") or r.reason
            raise DeployError(f"The model answered {r.code}: {str(detail)[:300]}.")
        outputs = [{"name": o.get("name"), "data": o.get("data"), "shape": o.get("shape")}
                   for o in answer.get("outputs", [])]
        return {"inputs": rows, "outputs": outputs, "elapsed_ms": round(elapsed, 2)}

    async def _delete_artifacts(self, d: Deployment) -> None:
        """Remove what the platform uploaded for this deployment (only under MANAGED_PREFIX/<name>/)."""
        prefixes = set()
        for v in d.versions:
            bucket, prefix = parse_model_uri(v.model_uri)
            if prefix.startswith(f"{MANAGED_PREFIX}{d.name}/"):
                prefixes.add((bucket, prefix))
        if not prefixes:
            return
        try:
            creds = await self.credentials_for(d.owner)
            for bucket, prefix in prefixes:
                await asyncio.to_thread(artifacts.delete_prefix, creds, bucket, prefix)
        except DeployError as e:
            self.log.warning("Artifacts of %s/%s not removed: %s", d.owner, d.name, e.message)
        except Exception as e:
            self.log.warning("Artifacts of %s/%s not removed: %s", d.owner, d.name, type(e).__name__)

