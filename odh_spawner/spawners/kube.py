"""OdhKubeSpawner: the Kubernetes backend, KubeSpawner driven by the same SpawnPlan.

The pod is produced by KubeSpawner's own manifest machinery (`get_pod_manifest`); we only set its traits
from the plan. KubeSpawner's `profile_list` is not used: profiles come from the odh profile file.
"""

from __future__ import annotations

import asyncio
import copy

from jupyterhub.utils import maybe_future
from kubernetes_asyncio.client.rest import ApiException
from kubespawner import KubeSpawner
from traitlets import Bool, Unicode

from odh_spawner.spawners import pod_progress
from odh_spawner.tasks import gather_all
from odh_spawner.credentials.kube import hub_token_env, hub_token_secret, s3_env, s3_secret
from odh_spawner.credentials.naming import secret_name
from odh_spawner.errors import OptionsError
from odh_spawner.naming import home_claim_name
from odh_spawner.spawners.mixin import OdhSpawnerMixin, user_error
from odh_spawner.profiles.features import ELSEWHERE_ENV, PROFILE_NAME_ENV
from odh_spawner.quantities import format_cpu, format_memory
from odh_spawner.kube.pods import toleration_manifests, volume_manifests
from odh_spawner.profiles.resolve import SpawnPlan
from odh_spawner.spark import SparkError
from odh_spawner.spawners import kube_spark


HOME_VOLUME = "odh-home"


class OdhKubeSpawner(OdhSpawnerMixin, KubeSpawner):
    backend_name = "kubernetes"

    home_mount_path = Unicode(
        "/home/jovyan",
        config=True,
        help="""Where the user's home claim is mounted in their pod, with KubeSpawner.storage_pvc_ensure (the
        claim is named by odh_spawner.naming.home_claim_name, `home-<user slug>`, one per user, created at the
        first start and kept when servers stop; KubeSpawner.storage_capacity and storage_class size it).""",
    )
    spark_available = True  # the plan's Spark cluster: spark.kube_io, owned by a per-server anchor ConfigMap

    _s3_secret = ""  # the per-user S3 Secret of the current plan; "" when storage is off
    _spark_env_keys: tuple = ()  # environment keys the last Spark cluster added

    # traits apply_plan extends: it starts from the admin's values each time, as JupyterHub reuses a spawner
    # object for the next start of the same server (else volumes, env and tolerations pile up)
    _PLAN_TRAITS = ("extra_resource_limits", "extra_resource_guarantees", "node_selector", "tolerations",
                    "volumes", "volume_mounts", "environment", "extra_labels", "extra_annotations")
    _admin_values: dict | None = None

    def _admin(self, trait: str):
        if self._admin_values is None:
            self._admin_values = {t: copy.deepcopy(getattr(self, t)) for t in self._PLAN_TRAITS}
        return copy.deepcopy(self._admin_values[trait])

    async def apply_plan(self, plan: SpawnPlan) -> None:
        self.image = plan.image
        self.cpu_limit, self.cpu_guarantee = plan.cpu_limit, plan.cpu_request
        self.mem_limit, self.mem_guarantee = plan.mem_limit, plan.mem_request
        self.extra_resource_limits = self._admin("extra_resource_limits")
        self.extra_resource_guarantees = self._admin("extra_resource_guarantees")
        if plan.gpu_count:
            self.extra_resource_limits = {**self.extra_resource_limits, plan.gpu_resource: str(plan.gpu_count)}
            self.extra_resource_guarantees = {**self.extra_resource_guarantees, plan.gpu_resource: str(plan.gpu_count)}
        node_selector = {**self._admin("node_selector"), **plan.node_selector}
        if plan.gpu_count and plan.gpu_type:
            node_selector[plan.gpu_type_label] = plan.gpu_type
        self.node_selector = node_selector
        self.tolerations = [*self._admin("tolerations"), *toleration_manifests(plan)]
        volumes, mounts = volume_manifests(plan)
        if self.storage_pvc_ensure:  # the user's home: their own claim, kept when the server stops
            self.pvc_name = home_claim_name(self.user.name)
            volumes = [{"name": HOME_VOLUME, "persistentVolumeClaim": {"claimName": self.pvc_name}}, *volumes]
            mounts = [{"name": HOME_VOLUME, "mountPath": self.home_mount_path}, *mounts]
        self.volumes = [*self._admin("volumes"), *volumes]
        self.volume_mounts = [*self._admin("volume_mounts"), *mounts]
        env = self.odh_env(plan)
        for key in (ELSEWHERE_ENV, PROFILE_NAME_ENV):  # KubeSpawner expands {...} in values: JSON and names are data
            env[key] = env[key].replace("{", "{{").replace("}", "}}")
        self.environment = {**self._admin("environment"), **env}
        creds = await self.odh_s3_credentials()
        self._s3_secret = secret_name(self.user.name) if creds is not None else ""
        if creds is not None:
            await self._apply_s3_secret(s3_secret(self.user.name, creds, self.namespace))
            # the keys reach the pod only through secretKeyRef, never as literal values in the pod spec
            self.environment = {**self.environment, **s3_env(self.user.name, self.storage.s3_endpoint)}
        self.extra_labels = {**self._admin("extra_labels"), "odh-hub/profile": plan.profile, "odh-hub/size": plan.size}
        self.extra_annotations = {
            **self._admin("extra_annotations"),
            "odh-hub/resources": f"cpu={format_cpu(plan.cpu_limit)},memory={format_memory(plan.mem_limit)}",
        }

    async def _apply_s3_secret(self, manifest: dict) -> None:
        await self._apply_secret(manifest, "Your storage credentials could not be stored in the cluster; "
                                           "tell your platform admin.")

    async def _apply_secret(self, manifest: dict, failure: str) -> None:
        """Create a Secret, or replace it when it exists (409). Errors never log its data."""
        name, timeout = manifest["metadata"]["name"], self.k8s_api_request_timeout
        try:
            try:
                await asyncio.wait_for(self.api.create_namespaced_secret(self.namespace, manifest), timeout)
            except ApiException as e:
                if e.status != 409:
                    raise
                await asyncio.wait_for(self.api.replace_namespaced_secret(name, self.namespace, manifest), timeout)
        except asyncio.CancelledError:
            raise
        except (ApiException, asyncio.TimeoutError, OSError) as e:
            self.log.error("Could not store Secret %s/%s: %s", self.namespace, name,
                           getattr(e, "status", None) or type(e).__name__)
            raise user_error(503, failure) from None

    api_token_secret = Bool(
        True,
        config=True,
        help="""Hand the server its JupyterHub API token through a per-server Secret (`<pod name>-hub-token`,
        read by secretKeyRef) instead of a literal value in the pod's env, where anyone who may read pods
        would see it. The Secret is replaced at every start and deleted when the server stops.""",
    )

    @property
    def token_secret_name(self) -> str:
        return f"{self.pod_name}-hub-token"

    def get_env(self):
        """KubeSpawner's environment, with the hub token as a reference to the server's token Secret."""
        env = super().get_env()
        return hub_token_env(env, self.token_secret_name) if self.api_token_secret and self.api_token else env

    async def start(self):
        """The Spark limits checked and the server's token Secret stored, then KubeSpawner's start with the
        plan's Spark cluster (its anchor, then the objects the anchor owns) created beside the pod: the pod needs
        only the cluster's names. A start fails when either fails. The cluster and the Secret are deleted in
        run_post_stop_hook, which JupyterHub also runs after a failed start."""
        ok = False
        try:
            if self.plan is None:  # started without JupyterHub's apply_user_options hook
                await self._apply_odh_options(self, self.user_options)
            env = {k: v for k, v in self.environment.items() if k not in self._spark_env_keys}
            steps = [self._store_token(), self._prepare_spark()]  # at once: neither needs the other
            _, (spark_env, create_spark) = await gather_all(steps)
            self.environment, self._spark_env_keys = {**env, **spark_env}, tuple(spark_env)
            spark = asyncio.ensure_future(self._spark_errors(create_spark())) if create_spark else None
            self.odh_stage(50, "pod", "Creating your server's pod", "Your server's pod is running")
            try:
                started = await self._until_ready(super().start(), spark)
            except Exception:
                if spark is not None and spark.done() and not spark.cancelled() and spark.exception():
                    await self._remove_pod_quietly()  # the pod started beside a cluster that failed
                raise
            ok = True
            return started
        finally:
            self.odh_progress_done(ok)

    _odh_pod_created = False  # KubeSpawner's create request for this start succeeded
    _odh_stale_pod = ""  # uid of a pod of the same name in the reflector before that request (not this start's)

    async def _make_create_pod_request(self, pod, request_timeout):
        # what the reflector holds *before* the request cannot be the pod it creates (after it, the new pod's
        # watch event may already have arrived)
        old = self.pod_reflector.pods.get(self._odh_pod_key) if self.pod_reflector else None
        created = await super()._make_create_pod_request(pod, request_timeout)
        if created:
            self._odh_stale_pod = (old or {}).get("metadata", {}).get("uid", "")
            self._odh_pod_created = True
        return created

    @property
    def _odh_pod_key(self) -> str:
        return f"{self.namespace}/{self.pod_name}"

    def _odh_our_pod(self) -> dict | None:
        """This start's pod as the reflector last saw it (None before KubeSpawner created it)."""
        if not self._odh_pod_created or self.pod_reflector is None:
            return None
        pod = self.pod_reflector.pods.get(self._odh_pod_key)
        if pod is None or pod["metadata"].get("uid") == self._odh_stale_pod:
            return None
        return pod

    async def _until_ready(self, start, beside: asyncio.Future | None = None, interval: float = 0.5):
        """Await KubeSpawner's start, relaying the pod's Kubernetes Events as progress in user words
        (pod_progress), and end it at once with a clear message when the pod ends before it is ready (KubeSpawner
        alone would wait for start_timeout). `beside` (the Spark cluster's creation) must succeed too: its error
        ends the start at once; the start returns once both are done."""
        self._odh_pod_created, seen, percent = False, set(), 55
        start = asyncio.ensure_future(start)
        try:
            while True:
                waiting = {start} if beside is None or beside.done() else {start, beside}
                await asyncio.wait(waiting, timeout=interval, return_when=asyncio.FIRST_COMPLETED)
                if beside is not None and beside.done():
                    beside.result()  # its error (a user_error) ends the start
                if start.done() and beside is not None and not beside.done():
                    await beside
                for event in self.events:
                    uid = event["metadata"]["uid"]
                    message = None if uid in seen else pod_progress.event_message(event)
                    seen.add(uid)
                    if message:
                        percent = min(percent + 5, 95)
                        self.odh_progress(percent, message)
                if start.done():
                    return start.result()
                failure = pod_progress.pod_failure(self._odh_our_pod())
                if failure:
                    self.log.warning("Pod %s of %s ended before it was ready: %s", self._odh_pod_key,
                                     self._log_name, failure)
                    raise user_error(500, failure)
        finally:
            for task in (start, beside):
                if task is not None and not task.done():
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

    async def _store_token(self) -> None:
        if self.api_token_secret and self.api_token:
            await self._apply_secret(
                hub_token_secret(self.token_secret_name, self.namespace, self.user.name, self.name or "",
                                 self.api_token),
                "Your server's access token could not be stored in the cluster; tell your platform admin.")

    async def _prepare_spark(self) -> tuple[dict, object]:
        """(the notebook's Spark environment, the coroutine function creating the cluster), after the limits
        check; ({}, None) without Spark."""
        if not (self.plan and self.plan.spark):
            return {}, None
        return await self._spark_errors(
            kube_spark.prepare_for_spawner(self, self.plan, self._s3_secret, self.odh_spark_limits()))

    async def _remove_pod_quietly(self) -> None:
        try:
            await self.stop(now=True)
        except Exception as e:  # JupyterHub stops the server after a failed start too
            self.log.warning("Pod of %s not removed after a failed Spark start: %s", self._log_name,
                             type(e).__name__)

    async def _spark_errors(self, step):
        """Await a step of the Spark cluster's start; its errors become messages for the user."""
        try:
            return await step
        except OptionsError as e:  # SparkLimitError is one (403)
            raise user_error(e.status_code, str(e)) from None
        except SparkError as e:
            raise user_error(503, f"Your Spark cluster could not be created: {e}") from None

    async def run_post_stop_hook(self):
        """Delete the server's Spark anchor (Kubernetes garbage-collects the cluster), then the admin's hook."""
        try:
            await kube_spark.stop_for_spawner(self)
        except asyncio.CancelledError:
            raise
        except Exception:  # a bug must not keep the admin's hook from running
            self.log.exception("Deleting the Spark cluster of %s failed", self._log_name)
        if self.api_token_secret:
            await self._delete_token_secret()
        return await maybe_future(super().run_post_stop_hook())

    async def _delete_token_secret(self) -> None:
        name = self.token_secret_name
        try:
            await asyncio.wait_for(self.api.delete_namespaced_secret(name, self.namespace),
                                   self.k8s_api_request_timeout)
        except asyncio.CancelledError:
            raise
        except ApiException as e:
            if e.status != 404:
                self.log.error("Could not delete Secret %s/%s: %s", self.namespace, name, e.status)
        except (asyncio.TimeoutError, OSError) as e:
            self.log.error("Could not delete Secret %s/%s: %s", self.namespace, name, type(e).__name__)

    async def load_user_options(self):
        """KubeSpawner calls this in start(); the plan was already applied by apply_user_options."""
        if self.plan is None:
            await self._apply_odh_options(self, self.user_options)
