"""What both odh spawners share: profiles -> form -> enforced SpawnPlan, and progress messages.

Built on JupyterHub's own hooks: `options_form`, `options_from_form`, `apply_user_options` (5.3+)
and `progress()`. Each backend class defines `async apply_plan(plan: SpawnPlan)`, which the
apply_user_options hook calls once the plan is resolved.
"""

from __future__ import annotations

import asyncio
import os

from jupyterhub.utils import url_path_join
from tornado import web
from traitlets import Any, Unicode, default
from traitlets.config import Configurable

from odh_spawner.credentials import CredentialsUnavailable, S3Credentials
from odh_spawner.credentials.naming import models_bucket
from odh_spawner.credentials.config import OdhStorage
from odh_spawner.errors import OptionsError, ProfileError
from odh_spawner.profiles.features import feature_env
from odh_spawner.profiles.form import options_from_form, render_form
from odh_spawner.profiles.quotas import OdhQuotas, UserQuotas
from odh_spawner.profiles.resolve import SpawnPlan, resolve, visible_profiles
from odh_spawner.quantities import parse_memory
from odh_spawner.spark.api import ClusterLimits
from odh_spawner.spark.limits import SparkLimits, check_request
from odh_spawner.metrics import hub as hub_metrics
from odh_spawner.spawners.stages import SpawnStages, with_duration
from odh_spawner.profiles.store import ProfileStore, shared_store


def user_error(status: int, message: str) -> web.HTTPError:
    """An HTTPError whose message JupyterHub shows to the user as is (form page and REST API)."""
    err = web.HTTPError(status, "%s", message)
    err.jupyterhub_message = message
    err.reason = message[:200].replace("\r", " ").replace("\n", " ")
    return err


class OdhSpawnerMixin(Configurable):
    backend_name = "local"

    profiles_path = Unicode(
        os.environ.get("ODH_PROFILES", ""),
        config=True,
        help="""Path of the profile file (YAML). Re-read on change before each form and spawn, so editing
        it (or the ConfigMap it is mounted from) takes effect without restarting the hub. A broken edit
        keeps the last good profiles and logs why. Defaults to $ODH_PROFILES.""",
    )

    plan = Any(None, allow_none=True, help="The SpawnPlan of the current or last start (set by apply_user_options).")

    # -- profiles ------------------------------------------------------------------------------
    @property
    def profile_store(self) -> ProfileStore:
        if not self.profiles_path:
            raise ProfileError("No profile file configured: set OdhSpawner profiles_path or $ODH_PROFILES.")
        return shared_store(self.profiles_path, self.log)

    def user_groups(self) -> list[str]:
        return sorted(g.name for g in getattr(self.user, "groups", []) or [])

    def visible(self):
        return visible_profiles(self.profile_store.get(), self.user.name, self.user_groups())

    # -- per-group quotas (profiles.quotas) --------------------------------------------------------
    def odh_quotas(self) -> UserQuotas:
        """This user's limits from their groups, over the older single settings."""
        size = self.storage.quota_max_size
        fallbacks = {"storage": parse_memory(size) if size else None,
                     "spark_workers": SparkLimits(parent=self).max_workers}
        return OdhQuotas(parent=self).for_groups(self.user_groups(), fallbacks)

    def odh_spark_limits(self) -> SparkLimits:
        """The admin's Spark limits with this user's Spark-worker quota (and where it came from)."""
        limits = SparkLimits(parent=self)
        quota = self.odh_quotas().spark_workers
        if quota.value is not None:
            if quota.value < 1:
                raise user_error(403, f"You may have no Spark workers ({quota.source}); choose a profile without "
                                      "Spark, or ask your platform admin for a quota.")
            limits.max_workers = quota.value
            limits.limit_source = quota.source
        return limits

    # -- Spark (both backends) -------------------------------------------------------------------
    def spark_ui_path(self) -> str:
        """Where the user's own server proxies the Spark master UI (server extension: /odh/spark-ui/)."""
        base = self.server.base_url if self.server is not None else url_path_join(self.user.url, self.name, "/")
        return url_path_join(base, "odh/spark-ui")

    def spark_cluster_limits(self, limits, plan: SpawnPlan):
        """The limits a new Spark cluster is started under, recorded with it so that scaling it later applies
        the same ones: the admin's (`limits`, SparkLimits) and the profile's worker maximum."""
        profile = next((p for p in self.profile_store.get() if p.slug == plan.profile), None)
        profile_max = profile.spark.workers.max if profile is not None and profile.spark else plan.spark.workers
        return ClusterLimits.of(limits, profile_max)

    def limits_note(self) -> str:
        return ""

    spark_available = False  # backends that start the profile's Spark cluster with the server say True

    def environment_notes(self, visible) -> dict[str, str]:
        """What each visible profile runs in on this backend, by slug, for the spawn form (where the backend's
        answer is not the profile's container image). Default: nothing, and the form shows the image."""
        return {}

    # -- JupyterHub hooks ----------------------------------------------------------------------
    @default("options_form")
    def _odh_options_form(self):
        return OdhSpawnerMixin._render_options_form

    @staticmethod
    def _render_options_form(spawner) -> str:
        previous = spawner.orm_spawner.user_options if spawner.orm_spawner is not None else {}
        visible = spawner.visible()
        return render_form(visible, spawner.user.name, spawner.user_groups(), previous,
                           spawner.backend_name, spawner.limits_note(), spawner.spark_available,
                           environments=spawner.environment_notes(visible))

    @default("options_from_form")
    def _odh_options_from_form(self):
        return options_from_form

    @default("apply_user_options")
    def _odh_apply_user_options(self):
        return OdhSpawnerMixin._apply_odh_options

    @staticmethod
    async def _apply_odh_options(spawner, user_options) -> None:
        spawner._odh_reset_progress()
        try:
            plan = resolve(spawner.profile_store.get(), spawner.user.name, spawner.user_groups(), user_options)
        except OptionsError as e:
            spawner.log.warning("Refused user_options for %s: %s", spawner._log_name, e)
            raise user_error(e.status_code, str(e)) from None
        if plan.spark is not None:  # over the user's Spark limits (their groups'): refused now, not a failed start
            try:
                check_request(spawner.odh_spark_limits(), plan.spark)
            except OptionsError as e:  # SparkLimitError (403) among them
                spawner.log.warning("Refused the Spark cluster of %s: %s", spawner._log_name, e)
                raise user_error(e.status_code, str(e)) from None
        spawner.plan = plan
        spawner.user_options = plan.user_options()
        spawner.log.info("Spawning %s with profile %s, size %s", spawner._log_name, plan.profile, plan.size)
        spawner.odh_stage(10, "profile", f"Profile {plan.display_name}, size {plan.size}", "Profile applied")
        await spawner.apply_plan(plan)

    def odh_env(self, plan: SpawnPlan) -> dict[str, str]:
        env = dict(plan.env)
        env.update(ODH_PROFILE=plan.profile, ODH_SIZE=plan.size, ODH_BACKEND=self.backend_name,
                   ODH_MODELS_BUCKET=models_bucket(self.user.name))
        # the features the profile leaves out, and which of this user's profiles offer them (profiles.features)
        env.update(feature_env(plan.left_out, plan.display_name, plan.offered_elsewhere))
        return env

    # -- per-user object storage -------------------------------------------------------------
    _odh_storage = None

    @property
    def storage(self) -> OdhStorage:
        if self._odh_storage is None:
            self._odh_storage = OdhStorage(parent=self)
        return self._odh_storage

    async def odh_s3_credentials(self) -> S3Credentials | None:
        """The user's own S3 keys (created on first spawn), or None when storage is not configured."""
        if not self.storage.enabled:
            return None
        self.odh_stage(20, "credentials", "Getting your object-storage credentials", "Object-storage credentials ready")
        try:
            # the user's storage quota (their groups') is set at every spawn: a changed one applies at the next
            creds = await self.storage.store().ensure(self.user.name, quota_bytes=self.odh_quotas().storage.value)
        except CredentialsUnavailable as e:
            hub_metrics.record_credentials(False)
            raise user_error(503, str(e)) from None
        hub_metrics.record_credentials(True)
        return creds

    # -- progress ------------------------------------------------------------------------------
    def _odh_reset_progress(self):
        self._odh_events = []
        self._odh_done = False
        self._odh_stages = SpawnStages()
        self._odh_stage_done: tuple[int, str] | None = None

    def odh_progress(self, percent: int, message: str) -> None:
        if not hasattr(self, "_odh_events"):
            self._odh_reset_progress()
        self._odh_events.append({"progress": percent, "message": message})

    def odh_stage(self, percent: int, name: str, doing: str, done: str) -> None:
        """Begin the spawn stage `name` (progress message `doing`); the stage open until now ends and says so
        with its duration. `done` is what this stage says when it ends."""
        if not hasattr(self, "_odh_events"):
            self._odh_reset_progress()
        self._odh_close_stage(self._odh_stages.begin(name))
        self._odh_stage_done = (percent, done)
        self.odh_progress(percent, doing)

    def _odh_close_stage(self, took: float | None) -> None:
        if took is not None and self._odh_stage_done is not None:
            percent, done = self._odh_stage_done
            self.odh_progress(percent, with_duration(done, took))
        self._odh_stage_done = None

    @property
    def spawn_stages(self) -> dict[str, float]:
        """Seconds per stage of the current or last start (e.g. {"profile": 0.01, "credentials": 0.12, ...})."""
        stages = getattr(self, "_odh_stages", None)
        return dict(stages.durations) if stages is not None else {}

    def odh_progress_done(self, ok: bool | None = None) -> None:
        """The start ended (`ok`: whether it succeeded; None: not a start, nothing is counted)."""
        if not hasattr(self, "_odh_events"):
            self._odh_reset_progress()
        self._odh_close_stage(self._odh_stages.finish())
        if ok is not None:
            plan = getattr(self, "plan", None)
            hub_metrics.record_spawn(plan.profile if plan is not None else "", ok, self._odh_stages.durations)
        if self._odh_stages.durations:
            self.log.info("Spawn stages of %s: %s", self._log_name, self._odh_stages.summary())
            self.log.info(self._odh_stages.log_line(self.user.name))
        self._odh_done = True

    async def progress(self):
        sent = 0
        if not hasattr(self, "_odh_events"):
            self._odh_reset_progress()
        while True:
            events = self._odh_events
            while sent < len(events):
                yield events[sent]
                sent += 1
            if self._odh_done:
                return
            await asyncio.sleep(0.2)
