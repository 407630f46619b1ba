"""The profile file format: data classes and a validating parser. Pure (no I/O but `load_profiles`).

A profile file is YAML::

    profiles:
      - slug: datascience
        display_name: Standard Data Science
        description: Python 3.11 with pandas and scikit-learn
        image: quay.io/opendatahub/workbench-images@sha256:<64 hex>
        default: true
        groups: [data-science]        # users/groups allowed to see it; both empty = everyone
        users: []
        sizes:
          - {slug: small, display_name: Small, cpu: {request: 500m, limit: 1},
             memory: {request: 1Gi, limit: 2Gi}, default: true}
        gpu: {resource: nvidia.com/gpu, type: NVIDIA-A10, max: 1, default: 0}
        env: {EXAMPLE: value}
        volumes: [{name: data, mount_path: /data, pvc: "data-{username}"}]
        node_selector: {node-role/notebooks: "true"}
        tolerations: [{key: gpu, operator: Exists, effect: NoSchedule}]
        spark: {workers: {default: 1, max: 4}, worker_cores: {default: 1, max: 2},
                worker_memory: {default: 1Gi, max: 4Gi}}
        leave_out: [ingestions]       # features servers of this profile go without (profiles.features):
                                      # buckets, deployments, ingestions, spark (spark also: no spark: block)
        local: {environment: hub}     # what the local (no container) backend runs: the hub's own Python,
                                      # a name from OdhLocalSpawner.environments, or an image's lock:
        # local: {environment: {lock: images/minimal/requirements.lock}}  (relative to the odh-hub project)

Every error names the file, the profile and the field.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping

import yaml

from odh_spawner.errors import ProfileError
from odh_spawner.profiles.features import FEATURES
from odh_spawner.quantities import parse_cpu, parse_memory

SLUG_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
ENV_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
LABEL_KEY_RE = re.compile(r"^([a-z0-9]([-a-z0-9.]*[a-z0-9])?/)?[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
LABEL_VALUE_RE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9])?$")
DIGEST_RE = re.compile(r"@sha256:[a-f0-9]{64}$")
IMAGE_RE = re.compile(r"^[a-z0-9]+([._\-/:][a-zA-Z0-9]+)*(@sha256:[a-f0-9]{64})?$")
RESOURCE_NAME_RE = re.compile(r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?/[a-z0-9]([-a-z0-9_.]*[a-z0-9])?$")
TOLERATION_OPERATORS = ("Exists", "Equal")
TOLERATION_EFFECTS = ("", "NoSchedule", "PreferNoSchedule", "NoExecute")
VOLUME_SOURCES = ("pvc", "config_map", "secret", "empty_dir")


@dataclass(frozen=True)
class Size:
    slug: str
    display_name: str
    cpu_request: float
    cpu_limit: float
    mem_request: int
    mem_limit: int
    default: bool = False


@dataclass(frozen=True)
class Gpu:
    max: int
    default: int = 0
    resource: str = "nvidia.com/gpu"
    type: str = ""
    type_label: str = "nvidia.com/gpu.product"


@dataclass(frozen=True)
class Bounded:
    default: Any
    max: Any


@dataclass(frozen=True)
class SparkShape:
    """The Spark cluster a profile offers: defaults and admin maxima."""

    workers: Bounded
    worker_cores: Bounded
    worker_memory: Bounded  # bytes
    default_enabled: bool = False


@dataclass(frozen=True)
class Volume:
    name: str
    mount_path: str
    source: str  # one of VOLUME_SOURCES
    ref: str = ""  # claim / config map / secret name; may contain {username}
    read_only: bool = False


@dataclass(frozen=True)
class Toleration:
    key: str = ""
    operator: str = "Equal"
    value: str = ""
    effect: str = ""
    toleration_seconds: int | None = None


@dataclass(frozen=True)
class LocalEnvironment:
    """What the local backend runs: 'hub' (the hub's own Python), a name from OdhLocalSpawner.environments, or
    (environment 'lock') a virtualenv the hub builds from an image's lock file (odh_spawner.host.environments)."""

    environment: str = "hub"
    lock: str = ""  # with environment 'lock': the lock's path as written (relative to the odh-hub project)

    @property
    def label(self) -> str:
        return f"lock {self.lock}" if self.lock else self.environment


@dataclass(frozen=True)
class Profile:
    slug: str
    display_name: str
    description: str
    image: str
    sizes: tuple[Size, ...]
    allow_unpinned: bool = False
    default: bool = False
    users: frozenset[str] = frozenset()
    groups: frozenset[str] = frozenset()
    gpu: Gpu | None = None
    env: Mapping[str, str] = field(default_factory=dict)
    volumes: tuple[Volume, ...] = ()
    node_selector: Mapping[str, str] = field(default_factory=dict)
    tolerations: tuple[Toleration, ...] = ()
    spark: SparkShape | None = None
    local: LocalEnvironment = LocalEnvironment()
    leave_out: frozenset[str] = frozenset()  # features left out on purpose (profiles.features.FEATURES)

    @property
    def pinned(self) -> bool:
        return bool(DIGEST_RE.search(self.image))

    @property
    def default_size(self) -> Size:
        return next((s for s in self.sizes if s.default), self.sizes[0])

    def size(self, slug: str) -> Size | None:
        return next((s for s in self.sizes if s.slug == slug), None)

    def visible_to(self, user: str, groups) -> bool:
        if not self.users and not self.groups:
            return True
        return user in self.users or not self.groups.isdisjoint(groups)


class _Ctx:
    """Where we are in the file, so every error names file, profile and field."""

    def __init__(self, source: str, profile: str = ""):
        self.source = source
        self.profile = profile

    def fail(self, field_: str, message: str):
        raise ProfileError(message, source=self.source, profile=self.profile, field=field_)

    def mapping(self, value, field_: str, allowed: tuple[str, ...], required: tuple[str, ...] = ()) -> dict:
        if not isinstance(value, dict):
            self.fail(field_, f"must be a mapping, got {type(value).__name__}")
        unknown = sorted(str(k) for k in value if k not in allowed)
        if unknown:
            self.fail(field_, f"unknown key(s) {', '.join(unknown)}; allowed: {', '.join(allowed)}")
        for key in required:
            if key not in value:
                self.fail(f"{field_}.{key}" if field_ else key, "is required")
        return value

    def string(self, value, field_: str, *, pattern: re.Pattern | None = None, hint: str = "", allow_empty=False) -> str:
        if not isinstance(value, str):
            self.fail(field_, f"must be a string, got {type(value).__name__}")
        if not allow_empty and not value.strip():
            self.fail(field_, "must not be empty")
        if pattern is not None and value and not pattern.fullmatch(value):
            self.fail(field_, f"invalid value {value!r}{': ' + hint if hint else ''}")
        return value

    def boolean(self, value, field_: str) -> bool:
        if not isinstance(value, bool):
            self.fail(field_, f"must be true or false, got {value!r}")
        return value

    def integer(self, value, field_: str, minimum: int = 0) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(field_, f"must be an integer, got {value!r}")
        if value < minimum:
            self.fail(field_, f"must be >= {minimum}, got {value}")
        return value

    def names(self, value, field_: str) -> frozenset[str]:
        if not isinstance(value, list) or not all(isinstance(v, str) and v for v in value):
            self.fail(field_, "must be a list of non-empty strings")
        return frozenset(value)

    def str_map(self, value, field_: str, key_re: re.Pattern, value_re: re.Pattern | None = None) -> dict[str, str]:
        if not isinstance(value, dict):
            self.fail(field_, f"must be a mapping, got {type(value).__name__}")
        out = {}
        for k, v in value.items():
            if not isinstance(k, str) or not key_re.fullmatch(k):
                self.fail(f"{field_}.{k}", "invalid name")
            if isinstance(v, bool) or not isinstance(v, (str, int, float)):
                self.fail(f"{field_}.{k}", f"value must be a string, got {type(v).__name__}")
            v = str(v)
            if value_re is not None and not value_re.fullmatch(v):
                self.fail(f"{field_}.{k}", f"invalid value {v!r}")
            out[k] = v
        return out

    def quantity(self, value, field_: str, parse):
        try:
            return parse(value)
        except ValueError as e:
            self.fail(field_, str(e))


_PROFILE_KEYS = (
    "slug", "display_name", "description", "image", "allow_unpinned", "default", "users", "groups",
    "sizes", "gpu", "env", "volumes", "node_selector", "tolerations", "spark", "local",
    "leave_out",
)


def _parse_size(ctx: _Ctx, raw, i: int) -> Size:
    f = f"sizes[{i}]"
    raw = ctx.mapping(raw, f, ("slug", "display_name", "cpu", "memory", "default"), ("slug", "cpu", "memory"))
    slug = ctx.string(raw["slug"], f"{f}.slug", pattern=SLUG_RE, hint="lowercase letters, digits and '-'")
    cpu = ctx.mapping(raw["cpu"], f"{f}.cpu", ("request", "limit"), ("limit",))
    mem = ctx.mapping(raw["memory"], f"{f}.memory", ("request", "limit"), ("limit",))
    cpu_limit = ctx.quantity(cpu["limit"], f"{f}.cpu.limit", parse_cpu)
    cpu_request = ctx.quantity(cpu.get("request", cpu["limit"]), f"{f}.cpu.request", parse_cpu)
    mem_limit = ctx.quantity(mem["limit"], f"{f}.memory.limit", parse_memory)
    mem_request = ctx.quantity(mem.get("request", mem["limit"]), f"{f}.memory.request", parse_memory)
    if cpu_request > cpu_limit:
        ctx.fail(f"{f}.cpu", f"request {cpu['request']} is above limit {cpu['limit']}")
    if mem_request > mem_limit:
        ctx.fail(f"{f}.memory", f"request {mem['request']} is above limit {mem['limit']}")
    return Size(
        slug=slug,
        display_name=ctx.string(raw.get("display_name", slug), f"{f}.display_name"),
        cpu_request=cpu_request,
        cpu_limit=cpu_limit,
        mem_request=mem_request,
        mem_limit=mem_limit,
        default=ctx.boolean(raw.get("default", False), f"{f}.default"),
    )


def _parse_gpu(ctx: _Ctx, raw) -> Gpu:
    raw = ctx.mapping(raw, "gpu", ("max", "default", "resource", "type", "type_label"), ("max",))
    gmax = ctx.integer(raw["max"], "gpu.max", minimum=1)
    gdefault = ctx.integer(raw.get("default", 0), "gpu.default")
    if gdefault > gmax:
        ctx.fail("gpu.default", f"default {gdefault} is above max {gmax}")
    return Gpu(
        max=gmax,
        default=gdefault,
        resource=ctx.string(raw.get("resource", "nvidia.com/gpu"), "gpu.resource", pattern=RESOURCE_NAME_RE,
                            hint="an extended resource name like nvidia.com/gpu"),
        type=ctx.string(raw.get("type", ""), "gpu.type", pattern=LABEL_VALUE_RE, allow_empty=True),
        type_label=ctx.string(raw.get("type_label", "nvidia.com/gpu.product"), "gpu.type_label", pattern=LABEL_KEY_RE),
    )


def _bounded(ctx: _Ctx, raw, f: str, parse, minimum) -> Bounded:
    raw = ctx.mapping(raw, f, ("default", "max"), ("max",))
    vmax = parse(raw["max"], f"{f}.max")
    vdefault = parse(raw.get("default", minimum if minimum is not None else raw["max"]), f"{f}.default")
    if vdefault > vmax:
        ctx.fail(f"{f}.default", f"default {raw.get('default')} is above max {raw['max']}")
    return Bounded(default=vdefault, max=vmax)


def _parse_spark(ctx: _Ctx, raw) -> SparkShape:
    raw = ctx.mapping(raw, "spark", ("workers", "worker_cores", "worker_memory", "default_enabled"), ("workers",))

    def count(v, f):
        return ctx.integer(v, f, minimum=1)

    return SparkShape(
        workers=_bounded(ctx, raw["workers"], "spark.workers", count, 1),
        worker_cores=_bounded(ctx, raw.get("worker_cores", {"default": 1, "max": 1}), "spark.worker_cores", count, 1),
        worker_memory=_bounded(ctx, raw.get("worker_memory", {"default": "1Gi", "max": "1Gi"}), "spark.worker_memory",
                               lambda v, f: ctx.quantity(v, f, parse_memory), None),
        default_enabled=ctx.boolean(raw.get("default_enabled", False), "spark.default_enabled"),
    )


def _parse_volume(ctx: _Ctx, raw, i: int) -> Volume:
    f = f"volumes[{i}]"
    raw = ctx.mapping(raw, f, ("name", "mount_path", "read_only") + VOLUME_SOURCES, ("name", "mount_path"))
    sources = [s for s in VOLUME_SOURCES if s in raw]
    if len(sources) != 1:
        ctx.fail(f, f"needs exactly one source of {', '.join(VOLUME_SOURCES)}, got {len(sources)}")
    source = sources[0]
    if source == "empty_dir":
        if raw["empty_dir"] not in ({}, None):
            ctx.fail(f"{f}.empty_dir", "must be {} (no options are supported)")
        ref = ""
    else:
        ref = ctx.string(raw[source], f"{f}.{source}")
        if not SLUG_RE.fullmatch(ref.replace("{username}", "u")):
            ctx.fail(f"{f}.{source}", f"invalid name {ref!r}: DNS-safe, may contain {{username}}")
    mount = ctx.string(raw["mount_path"], f"{f}.mount_path")
    if not mount.startswith("/"):
        ctx.fail(f"{f}.mount_path", f"must be an absolute path, got {mount!r}")
    return Volume(
        name=ctx.string(raw["name"], f"{f}.name", pattern=SLUG_RE, hint="DNS-safe name"),
        mount_path=mount,
        source=source,
        ref=ref,
        read_only=ctx.boolean(raw.get("read_only", False), f"{f}.read_only"),
    )


def _parse_toleration(ctx: _Ctx, raw, i: int) -> Toleration:
    f = f"tolerations[{i}]"
    raw = ctx.mapping(raw, f, ("key", "operator", "value", "effect", "toleration_seconds"))
    operator = raw.get("operator", "Equal")
    if operator not in TOLERATION_OPERATORS:
        ctx.fail(f"{f}.operator", f"must be one of {', '.join(TOLERATION_OPERATORS)}, got {operator!r}")
    effect = raw.get("effect", "")
    if effect not in TOLERATION_EFFECTS:
        ctx.fail(f"{f}.effect", f"must be one of {', '.join(e for e in TOLERATION_EFFECTS if e)}, got {effect!r}")
    value = ctx.string(raw.get("value", ""), f"{f}.value", allow_empty=True)
    if operator == "Exists" and value:
        ctx.fail(f"{f}.value", "must be empty when operator is Exists")
    key = ctx.string(raw.get("key", ""), f"{f}.key", pattern=LABEL_KEY_RE, allow_empty=True)
    if not key and operator != "Exists":
        ctx.fail(f"{f}.key", "an empty key needs operator Exists")
    seconds = raw.get("toleration_seconds")
    if seconds is not None:
        ctx.integer(seconds, f"{f}.toleration_seconds")
        if effect != "NoExecute":
            ctx.fail(f"{f}.toleration_seconds", "only applies with effect NoExecute")
    return Toleration(key=key, operator=operator, value=value, effect=effect, toleration_seconds=seconds)


def _parse_profile(source: str, raw, index: int) -> Profile:
    name = raw.get("slug") if isinstance(raw, dict) and isinstance(raw.get("slug"), str) else f"#{index}"
    ctx = _Ctx(source, name)
    raw = ctx.mapping(raw, "", _PROFILE_KEYS, ("slug", "display_name", "image", "sizes"))
    slug = ctx.string(raw["slug"], "slug", pattern=SLUG_RE, hint="lowercase letters, digits and '-', at most 63")
    allow_unpinned = ctx.boolean(raw.get("allow_unpinned", False), "allow_unpinned")
    image = ctx.string(raw["image"], "image", pattern=IMAGE_RE, hint="expected repo@sha256:<64 hex> or repo:tag")
    if not DIGEST_RE.search(image) and not allow_unpinned:
        ctx.fail("image", f"{image!r} is not pinned by digest; use repo@sha256:<digest>, "
                          "or set allow_unpinned: true on this profile to accept a tag")
    sizes_raw = raw["sizes"]
    if not isinstance(sizes_raw, list) or not sizes_raw:
        ctx.fail("sizes", "must be a non-empty list")
    sizes = tuple(_parse_size(ctx, s, i) for i, s in enumerate(sizes_raw))
    seen = set()
    for i, s in enumerate(sizes):
        if s.slug in seen:
            ctx.fail(f"sizes[{i}].slug", f"duplicate size {s.slug!r}")
        seen.add(s.slug)
    if sum(s.default for s in sizes) > 1:
        ctx.fail("sizes", "more than one size is marked default")
    local_raw = ctx.mapping(raw.get("local", {}), "local", ("environment",))
    return Profile(
        slug=slug,
        display_name=ctx.string(raw["display_name"], "display_name"),
        description=ctx.string(raw.get("description", ""), "description", allow_empty=True),
        image=image,
        allow_unpinned=allow_unpinned,
        default=ctx.boolean(raw.get("default", False), "default"),
        users=ctx.names(raw.get("users", []), "users"),
        groups=ctx.names(raw.get("groups", []), "groups"),
        sizes=sizes,
        gpu=_parse_gpu(ctx, raw["gpu"]) if raw.get("gpu") is not None else None,
        env=ctx.str_map(raw.get("env", {}), "env", ENV_NAME_RE),
        volumes=tuple(_parse_volume(ctx, v, i) for i, v in enumerate(_list(ctx, raw.get("volumes", []), "volumes"))),
        node_selector=ctx.str_map(raw.get("node_selector", {}), "node_selector", LABEL_KEY_RE, LABEL_VALUE_RE),
        tolerations=tuple(
            _parse_toleration(ctx, t, i) for i, t in enumerate(_list(ctx, raw.get("tolerations", []), "tolerations"))
        ),
        spark=_parse_spark(ctx, raw["spark"]) if raw.get("spark") is not None else None,
        local=_parse_local(ctx, local_raw.get("environment", "hub")),
        leave_out=_parse_leave_out(ctx, raw.get("leave_out", []), raw.get("spark") is not None),
    )


def _parse_leave_out(ctx: _Ctx, value, has_spark: bool) -> frozenset[str]:
    names = _list(ctx, value, "leave_out")
    out = set()
    for i, name in enumerate(names):
        if not isinstance(name, str) or name not in FEATURES:
            ctx.fail(f"leave_out[{i}]", f"unknown feature {name!r}; features a profile may leave out: "
                                        f"{', '.join(FEATURES)}")
        if name in out:
            ctx.fail(f"leave_out[{i}]", f"{name!r} is listed twice")
        out.add(name)
    if "spark" in out and has_spark:
        ctx.fail("leave_out", "leaves out spark but the profile has a spark: block; remove one of them "
                              "(a profile without spark: leaves Spark out anyway)")
    return frozenset(out)


LOCK_HINT = "expected a name (e.g. hub) or {lock: images/<name>/requirements.lock}"


def _parse_local(ctx: _Ctx, value) -> LocalEnvironment:
    if isinstance(value, Mapping):
        spec = ctx.mapping(value, "local.environment", ("lock",), ("lock",))
        lock = ctx.string(spec["lock"], "local.environment.lock")
        if "\0" in lock or not lock.endswith((".lock", ".txt")):
            ctx.fail("local.environment.lock", f"{lock!r} is not a lock file path (*.lock or *.txt, e.g. "
                                               "images/minimal/requirements.lock)")
        return LocalEnvironment("lock", lock=lock)
    name = ctx.string(value, "local.environment", hint=LOCK_HINT)
    if name == "lock":
        ctx.fail("local.environment", f"'lock' needs the lock file: {LOCK_HINT}")
    return LocalEnvironment(name)


def _list(ctx: _Ctx, value, field_: str) -> list:
    if not isinstance(value, list):
        ctx.fail(field_, f"must be a list, got {type(value).__name__}")
    return value


def parse_profiles(data: Any, source: str = "<profiles>") -> tuple[Profile, ...]:
    """Validate a loaded document and return its profiles (raises ProfileError)."""
    ctx = _Ctx(source)
    data = ctx.mapping(data, "", ("profiles",), ("profiles",))
    raw_profiles = _list(ctx, data["profiles"], "profiles")
    if not raw_profiles:
        ctx.fail("profiles", "must list at least one profile")
    profiles = tuple(_parse_profile(source, raw, i) for i, raw in enumerate(raw_profiles))
    seen: set[str] = set()
    for p in profiles:
        if p.slug in seen:
            raise ProfileError(f"Duplicate profile slug {p.slug!r}.", source=source, profile=p.slug, field="slug")
        seen.add(p.slug)
    return profiles


def parse_profiles_yaml(text: str, source: str = "<profiles>") -> tuple[Profile, ...]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ProfileError(f"Not valid YAML: {e}", source=source) from None
    return parse_profiles(data, source)


def load_profiles(path: str) -> tuple[Profile, ...]:
    """Read and validate a profile file."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ProfileError(f"Cannot read: {e.strerror}.", source=path) from None
    return parse_profiles_yaml(text, path)
