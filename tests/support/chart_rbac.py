"""The chart's own Roles (helm/odh-hub/templates/rbac.yaml, rendered by the real `helm template`) as rule lists,
for the tests that run odh-hub's Kubernetes code with a ServiceAccount bound to exactly what the chart grants
(never a hand copy: a verb the chart drops, or one it grants without need, shows up in those tests)."""

from __future__ import annotations

import functools
import json

from tests.support.helm import template


@functools.cache
def _roles(values: str | None, sets: tuple[tuple[str, str], ...]) -> dict[str, list[dict]]:
    return {d["metadata"]["name"]: d["rules"] for d in template(values, dict(sets)) if d["kind"] == "Role"}


def role_rules(suffix: str, values: str | None = None, **sets: str) -> list[dict]:
    """The rules of the one Role whose name ends with `suffix`, rendered with the chart's CI values file `values`
    (None: the defaults) and `--set key=value` for `sets` (keys with dots given as `__`: spark__clusterType)."""
    roles = _roles(values, tuple(sorted((k.replace("__", "."), v) for k, v in sets.items())))
    (name,) = [n for n in roles if n.endswith(suffix)]
    return roles[name]


def union(*rule_lists: list[dict]) -> list[dict]:
    """One Role's worth of rules granting what each list grants (for tests covering several configurations)."""
    seen, out = set(), []
    for rules in rule_lists:
        for rule in rules:
            key = json.dumps(rule, sort_keys=True)
            if key not in seen:
                seen.add(key)
                out.append(rule)
    return out


def hub_rules() -> list[dict]:
    """The hub's Role, for both Spark cluster types (the tests start both)."""
    return union(role_rules("-hub", spark__clusterType="standalone"),
                 role_rules("-hub", spark__clusterType="spark-connect"))


def platform_rules() -> list[dict]:
    """The platform service's Spark Role (both cluster types) and serving Role (every serving backend)."""
    return union(*(role_rules("-platform-spark", spark__clusterType=t) for t in ("standalone", "spark-connect")),
                 *(role_rules("-platform-serving", serving__backend=b) for b in ("seldon-v1", "kserve", "seldon-v2", "mlserver")))


def serving_rules(backend: str) -> list[dict]:
    """The platform service's serving Role for one `serving.backend`."""
    return role_rules("-platform-serving", serving__backend=backend)


def ingest_rules(mode: str) -> list[dict]:
    """The platform service's ingestion Role for `mode` ("deployment" or "strimzi")."""
    if mode == "strimzi":
        return role_rules("-platform-ingest", "strimzi-ingest-values.yaml")
    return role_rules("-platform-ingest", kafka__bootstrap="kafka:9092", kafka__ingest__backend=mode)
