"""(profiles, user, groups, user_options) -> SpawnPlan, or a typed error. Pure.

user_options (what the form posts, what the REST API accepts, what the hub remembers)::

    {"profile": "datascience", "size": "small", "gpu": 0,
     "spark": {"workers": 2, "worker_cores": 1, "worker_memory": "1Gi"}}   # or false / absent

Every key is optional; unknown keys are refused. Anything naming a profile, size, GPU count or
Spark shape the user may not use is refused with ForbiddenOption, whatever the form showed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

from odh_spawner.errors import ForbiddenOption, OptionsError
from odh_spawner.profiles.features import left_out, offered_by
from odh_spawner.profiles.format import Profile, Toleration, Volume
from odh_spawner.quantities import format_bytes, format_memory, parse_memory

OPTION_KEYS = ("profile", "size", "gpu", "spark")
SPARK_KEYS = ("workers", "worker_cores", "worker_memory")


@dataclass(frozen=True)
class SparkRequest:
    workers: int
    worker_cores: int
    worker_memory: int  # bytes


@dataclass(frozen=True)
class SpawnPlan:
    """Everything a spawner needs to start one server. The same plan drives both backends."""

    profile: str
    display_name: str
    image: str
    size: str
    cpu_request: float
    cpu_limit: float
    mem_request: int
    mem_limit: int
    gpu_count: int = 0
    gpu_resource: str = ""
    gpu_type: str = ""
    gpu_type_label: str = ""
    env: Mapping[str, str] = field(default_factory=dict)
    volumes: tuple[Volume, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    spark: SparkRequest | None = None
    local_environment: str = "hub"
    local_lock: str = ""  # local_environment 'lock': the image lock the server's virtualenv is built from
    left_out: frozenset[str] = frozenset()  # features the profile leaves out (profiles.features.left_out)
    # feature -> display names of the profiles this user may use that offer it (for the server's messages)
    offered_elsewhere: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def user_options(self) -> dict:
        """The canonical user_options that reproduce this plan (remembered by the hub)."""
        opts: dict[str, Any] = {"profile": self.profile, "size": self.size, "gpu": self.gpu_count}
        if self.spark is not None:
            opts["spark"] = {
                "workers": self.spark.workers,
                "worker_cores": self.spark.worker_cores,
                "worker_memory": format_memory(self.spark.worker_memory),
            }
        return opts


def visible_profiles(profiles: Iterable[Profile], user: str, groups: Iterable[str]) -> list[Profile]:
    """The profiles this user may see and use, in file order."""
    groups = frozenset(groups)
    return [p for p in profiles if p.visible_to(user, groups)]


def default_profile(visible: list[Profile]) -> Profile:
    if not visible:
        raise ForbiddenOption("No profile is available to you. Ask your platform admin for access.")
    return next((p for p in visible if p.default), visible[0])


def _int_option(value, name: str) -> int:
    if isinstance(value, bool):
        raise OptionsError(f"{name} must be a whole number, got {value!r}.")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.strip().isascii() and value.strip().isdigit() and len(value.strip()) <= 9:
        return int(value.strip())
    raise OptionsError(f"{name} must be a whole number, got {_short(value)}.")


def _short(value) -> str:
    r = repr(value)
    return r if len(r) <= 60 else r[:57] + "..."


def _resolve_spark(profile: Profile, raw) -> SparkRequest | None:
    if raw is None or raw is False:
        return None
    shape = profile.spark
    if shape is None:
        raise ForbiddenOption(f"Profile {profile.slug!r} does not offer a Spark cluster.")
    if raw is True:
        raw = {}
    if not isinstance(raw, dict):
        raise OptionsError(f"`spark` must be true, false or an object with {', '.join(SPARK_KEYS)}; got {_short(raw)}.")
    unknown = sorted(str(k) for k in raw if k not in SPARK_KEYS)
    if unknown:
        raise OptionsError(f"Unknown spark option(s): {', '.join(_short(k) for k in unknown)}. "
                           f"Allowed: {', '.join(SPARK_KEYS)}.")
    workers = _int_option(raw.get("workers", shape.workers.default), "spark.workers")
    cores = _int_option(raw.get("worker_cores", shape.worker_cores.default), "spark.worker_cores")
    mem_raw = raw.get("worker_memory", shape.worker_memory.default)
    try:
        memory = parse_memory(mem_raw)
    except ValueError as e:
        raise OptionsError(f"`spark.worker_memory`: {e}") from None
    if workers < 1 or cores < 1:
        raise OptionsError("`spark.workers` and `spark.worker_cores` must be at least 1.")
    if workers > shape.workers.max:
        raise ForbiddenOption(f"{workers} Spark workers exceed this profile's limit of {shape.workers.max}.")
    if cores > shape.worker_cores.max:
        raise ForbiddenOption(f"{cores} cores per Spark worker exceed this profile's limit of {shape.worker_cores.max}.")
    if memory > shape.worker_memory.max:
        raise ForbiddenOption(f"{format_bytes(memory)} per Spark worker exceeds this profile's limit of "
                              f"{format_bytes(shape.worker_memory.max)}.")
    return SparkRequest(workers=workers, worker_cores=cores, worker_memory=memory)


def resolve(profiles: Iterable[Profile], user: str, groups: Iterable[str], user_options: Any) -> SpawnPlan:
    """Turn a user's choice into a SpawnPlan. Raises OptionsError (400) or ForbiddenOption (403)."""
    if user_options is None:
        user_options = {}
    if not isinstance(user_options, dict):
        raise OptionsError(f"`user_options` must be an object, got {type(user_options).__name__}.")
    unknown = sorted(str(k) for k in user_options if k not in OPTION_KEYS)
    if unknown:
        raise OptionsError(f"Unknown option(s): {', '.join(_short(k) for k in unknown)}. "
                           f"Allowed: {', '.join(OPTION_KEYS)}.")
    profiles = tuple(profiles)
    visible = visible_profiles(profiles, user, groups)

    slug = user_options.get("profile")
    if slug is None or slug == "":
        profile = default_profile(visible)
    elif not isinstance(slug, str):
        raise OptionsError(f"`profile` must be a string, got {_short(slug)}.")
    else:
        profile = next((p for p in visible if p.slug == slug), None)
        if profile is None:
            # the same answer whether the profile is hidden from this user or does not exist at all, so the
            # answer never tells anyone which hidden profiles exist
            raise ForbiddenOption(f"Profile {_short(slug)} is not available to you. "
                                  f"Available: {', '.join(p.slug for p in visible)}.")

    size_slug = user_options.get("size")
    if size_slug is None or size_slug == "":
        size = profile.default_size
    elif not isinstance(size_slug, str):
        raise OptionsError(f"`size` must be a string, got {_short(size_slug)}.")
    else:
        size = profile.size(size_slug)
        if size is None:
            raise ForbiddenOption(f"Size {_short(size_slug)} is not offered by profile {profile.slug!r}. "
                                  f"Choose one of: {', '.join(s.slug for s in profile.sizes)}.")

    gpu_raw = user_options.get("gpu")
    gpu = profile.gpu.default if (gpu_raw is None or gpu_raw == "") and profile.gpu else 0
    if gpu_raw is not None and gpu_raw != "":
        gpu = _int_option(gpu_raw, "gpu")
        if gpu < 0:
            raise OptionsError(f"`gpu` must not be negative, got {gpu}.")
        limit = profile.gpu.max if profile.gpu else 0
        if gpu > limit:
            if limit == 0:
                raise ForbiddenOption(f"Profile {profile.slug!r} does not offer GPUs.")
            raise ForbiddenOption(f"{gpu} GPUs exceed profile {profile.slug!r}'s limit of {limit}.")

    spark = _resolve_spark(profile, user_options.get("spark"))
    off = left_out(profile)

    return SpawnPlan(
        profile=profile.slug,
        display_name=profile.display_name,
        image=profile.image,
        size=size.slug,
        cpu_request=size.cpu_request,
        cpu_limit=size.cpu_limit,
        mem_request=size.mem_request,
        mem_limit=size.mem_limit,
        gpu_count=gpu,
        gpu_resource=profile.gpu.resource if profile.gpu else "",
        gpu_type=profile.gpu.type if profile.gpu else "",
        gpu_type_label=profile.gpu.type_label if profile.gpu else "",
        env=dict(profile.env),
        volumes=profile.volumes,
        node_selector=dict(profile.node_selector),
        tolerations=profile.tolerations,
        spark=spark,
        local_environment=profile.local.environment,
        local_lock=profile.local.lock,
        left_out=off,
        offered_elsewhere={f: tuple(names) for f, names in offered_by(visible, off).items()},
    )
