"""Per-group quotas: how much storage, how many Spark workers, deployments and ingestions a user may have. Pure.

The admin writes them in the platform configuration (`quotas:` in platform.yaml, or `OdhQuotas.quotas`):

    quotas:
      default: {storage: 10Gi, spark_workers: 4, deployments: 20, ingestions: 10}
      groups:
        students: {storage: 1Gi, deployments: 3}
        power-users: {storage: 50Gi, spark_workers: 16}

The rule, limit by limit: among the user's groups that set the limit, the largest wins (a user in `students`
and `power-users` gets 50Gi); when none of their groups sets it, `default` applies; when `default` does not
set it either, the platform's older single setting does (OdhStorage.quota_max_size, SparkLimits.max_workers,
PlatformService.max_deployments_per_user, max_ingestions_per_user), so a configuration without `quotas:`
behaves as before. A group's limit replaces the default even when it is smaller: that is how a group gets
less. Every refusal names the limit and where it came from ("group students", or "the platform default").
"""

from __future__ import annotations

from dataclasses import dataclass

from traitlets import Dict, validate
from traitlets.config import Configurable

from odh_spawner.errors import ProfileError
from odh_spawner.quantities import format_bytes, parse_memory

KINDS = ("storage", "spark_workers", "deployments", "ingestions")
COUNT_MAX = 10_000


class QuotaError(ProfileError):
    """The `quotas` configuration is invalid (names the field)."""


@dataclass(frozen=True)
class Limit:
    """One limit of one user: `value` (bytes for storage, a count otherwise; None: unlimited) and where it
    came from (`group`: the group's name; "" for the platform default)."""

    value: int | None
    group: str = ""

    @property
    def source(self) -> str:
        return f"group {self.group}" if self.group else "the platform default"


@dataclass(frozen=True)
class QuotaConfig:
    default: dict  # kind -> int
    groups: dict  # group -> {kind -> int}

    def to_json(self) -> dict:
        return {"default": dict(self.default), "groups": {g: dict(v) for g, v in self.groups.items()}}


@dataclass(frozen=True)
class UserQuotas:
    storage: Limit
    spark_workers: Limit
    deployments: Limit
    ingestions: Limit

    def to_json(self) -> dict:
        return {k: {"limit": getattr(self, k).value, "source": getattr(self, k).source} for k in KINDS}


def _value(kind: str, raw, field: str, source: str) -> int:
    if kind == "storage":
        if isinstance(raw, bool) or not isinstance(raw, (str, int)):
            raise QuotaError(f"Must be a size like '10Gi', got {raw!r}.", source=source, field=field)
        try:
            return parse_memory(raw)
        except ValueError as e:
            raise QuotaError(str(e), source=source, field=field) from None
    if isinstance(raw, bool) or not isinstance(raw, int) or not 0 <= raw <= COUNT_MAX:
        raise QuotaError(f"Must be a whole number from 0 to {COUNT_MAX}, got {raw!r}.", source=source, field=field)
    return raw


def _limits(raw, field: str, source: str) -> dict:
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise QuotaError(f"Must be a mapping of limits ({', '.join(KINDS)}).", source=source, field=field)
    out = {}
    for kind, value in raw.items():
        if kind not in KINDS:
            raise QuotaError(f"Unknown limit {str(kind)[:40]!r}; allowed: {', '.join(KINDS)}.", source=source,
                             field=field)
        out[kind] = _value(kind, value, f"{field}.{kind}", source)
    return out


def parse_quotas(data, source: str = "quotas") -> QuotaConfig:
    """The `quotas` mapping, validated: sizes parsed to bytes, counts checked; a clear QuotaError otherwise."""
    if data is None:
        return QuotaConfig({}, {})
    if not isinstance(data, dict):
        raise QuotaError("Must be a mapping with 'default' and/or 'groups'.", source=source, field="quotas")
    unknown = sorted(str(k) for k in data if k not in ("default", "groups"))
    if unknown:
        raise QuotaError(f"Unknown key {unknown[0][:40]!r}; allowed: default, groups.", source=source,
                         field="quotas")
    default = _limits(data.get("default"), "quotas.default", source)
    groups_raw = data.get("groups") or {}
    if not isinstance(groups_raw, dict):
        raise QuotaError("Must be a mapping of group names to limits.", source=source, field="quotas.groups")
    groups = {}
    for group, limits in groups_raw.items():
        if not isinstance(group, str) or not group:
            raise QuotaError(f"A group name must be a non-empty string, got {group!r}.", source=source,
                             field="quotas.groups")
        groups[group] = _limits(limits, f"quotas.groups.{group}", source)
    return QuotaConfig(default, groups)


def resolve_limit(config: QuotaConfig, groups, kind: str, fallback: int | None) -> Limit:
    """One limit of a user in `groups`: the largest their groups set, else the default, else `fallback`."""
    best: Limit | None = None
    for group in sorted(set(groups or ())):
        value = config.groups.get(group, {}).get(kind)
        if value is not None and (best is None or value > best.value):
            best = Limit(value, group)
    if best is not None:
        return best
    return Limit(config.default.get(kind, fallback))


def resolve_quotas(config: QuotaConfig, groups, fallbacks: dict | None = None) -> UserQuotas:
    """Every limit of a user in `groups`; `fallbacks` (kind -> value or None) when no quota sets one."""
    fallbacks = fallbacks or {}
    return UserQuotas(*(resolve_limit(config, groups, kind, fallbacks.get(kind)) for kind in KINDS))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def count_refusal(limit: Limit, what: str) -> str:
    """The message for one more `what` (deployment, ingestion) over `limit`."""
    if not limit.value:
        return f"You may have no {what}s ({limit.source}); ask your platform admin for a quota."
    return f"You may have at most {_plural(limit.value, what)} ({limit.source}); delete one first."


def over(limit: Limit, count: int) -> bool:
    """Whether one more thing beside `count` of them would pass `limit` (None: no limit)."""
    return limit.value is not None and count >= limit.value


def storage_refusal(limit: Limit) -> str:
    """The message for an upload the object store refused for the user's quota."""
    size = format_bytes(limit.value) if limit.value else "your quota"
    return f"Your storage quota of {size} ({limit.source}) is full; delete objects first."


class OdhQuotas(Configurable):
    """The per-group quotas, as the hub (spawners) and the platform service read them."""

    quotas = Dict(
        {},
        config=True,
        help="""Per-group limits: {"default": {...}, "groups": {"<group>": {...}}} where each {...} may set
        storage (a size like '10Gi'), spark_workers, deployments and ingestions (counts). A user gets, limit by
        limit, the largest their groups set, else the default, else the older single setting
        (OdhStorage.quota_max_size, SparkLimits.max_workers, PlatformService.max_deployments_per_user,
        max_ingestions_per_user). Validated at start: a bad size or count stops the hub with a clear error.""",
    )

    @validate("quotas")
    def _valid(self, proposal):
        parse_quotas(proposal["value"], source="OdhQuotas.quotas")
        return proposal["value"]

    @property
    def config_parsed(self) -> QuotaConfig:
        return parse_quotas(self.quotas, source="OdhQuotas.quotas")

    def for_groups(self, groups, fallbacks: dict | None = None) -> UserQuotas:
        return resolve_quotas(self.config_parsed, groups, fallbacks)
