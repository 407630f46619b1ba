"""Which odh features this server has: GET /odh/api/features, and the refusal of a left-out feature's endpoints.

    GET /odh/api/features -> {"profile": "Minimal Python",
                              "features": {"ingestions": {"enabled": false, "reason": "Kafka ingestion is left out
                                           of your server's profile 'Minimal Python'; start your server with
                                           'Standard Data Science' to use it.", "left_out": true}, ...}}

A feature is off when the server's profile leaves it out (the spawner says so in the server's environment:
odh_spawner.profiles.features writes it) or when the platform lacks what it needs (no platform service, no Kafka, no
object storage): the reasons are the messages the endpoints answer. Every endpoint of a left-out feature answers
409 with the left-out message (`refusal`), which the Python clients raise as OdhApiError.
"""

from __future__ import annotations

import json
import os
from typing import Mapping

LEFT_OUT_STATUS = 409

# the environment the spawner gives the server (odh_spawner.profiles.features writes it; the notebook side does
# not import the hub side, tests/unit/test_features.py checks that both say the same names)
OFF_ENV = "ODH_FEATURES_OFF"
ELSEWHERE_ENV = "ODH_FEATURES_ELSEWHERE"
PROFILE_NAME_ENV = "ODH_PROFILE_NAME"

# feature -> what users call it (the start of every message about it)
FEATURES: dict[str, str] = {
    "buckets": "Object storage (buckets)",
    "deployments": "Model deployment",
    "ingestions": "Kafka ingestion",
    "spark": "Spark",
}


def features_off(env: Mapping[str, str]) -> frozenset[str]:
    """The left-out features a server was started with (unknown names ignored: an older or newer hub)."""
    return frozenset(f for f in env.get(OFF_ENV, "").split(",") if f in FEATURES)


def elsewhere_of(env: Mapping[str, str]) -> dict[str, list[str]]:
    """feature -> the display names of the user's profiles that offer it ({} when the environment does not say)."""
    try:
        data = json.loads(env.get(ELSEWHERE_ENV) or "{}")
    except ValueError:
        return {}
    if not isinstance(data, dict):
        return {}
    return {str(k): [str(n) for n in v] for k, v in data.items() if isinstance(v, list)}


def _quoted(names: list[str]) -> str:
    names = [f"'{n}'" for n in names]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " or " + names[-1]


def left_out_message(feature: str, profile_name: str, elsewhere: list[str]) -> str:
    """Why `feature` is off: "Kafka ingestion is left out of your server's profile 'Minimal Python'; start your
    server with 'Standard Data Science' to use it." (or: ask your platform admin, when no profile has it)."""
    label = FEATURES.get(feature, feature)
    where = f"your server's profile '{profile_name}'" if profile_name else "your server's profile"
    if elsewhere:
        return f"{label} is left out of {where}; start your server with {_quoted(list(elsewhere))} to use it."
    return (f"{label} is left out of {where}, and none of the profiles available to you offers it; "
            "ask your platform admin.")


def left_out_reason(feature: str, env: Mapping[str, str]) -> str | None:
    """The message for `feature` when the server's profile left it out (from the server's environment), else None."""
    if feature not in features_off(env):
        return None
    return left_out_message(feature, env.get(PROFILE_NAME_ENV, ""), elsewhere_of(env).get(feature, []))

# what the endpoints answer (503) when the platform lacks what a feature needs
NO_PLATFORM = {
    "deployments": "Model deployment is not available on this platform (no platform service); "
                   "tell your platform admin.",
    "ingestions": "Kafka ingestion is not available on this platform (no platform service); "
                  "tell your platform admin.",
    "spark": "Spark clusters are not available on this platform (no platform service); tell your platform admin.",
}
NO_KAFKA = "No Kafka is configured for this server (KAFKA_BOOTSTRAP_SERVERS); tell your platform admin."
NO_STORAGE = ("This server has no object-storage credentials (AWS_ACCESS_KEY_ID is not set); tell your "
              "platform admin.")


def missing_configuration(feature: str, env: Mapping[str, str], platform_url: str) -> str | None:
    """Why the platform cannot offer `feature` to this server, or None."""
    if feature == "buckets":
        if not env.get("AWS_ACCESS_KEY_ID"):
            return NO_STORAGE
        return None
    if not platform_url:
        return NO_PLATFORM[feature]
    if feature == "ingestions" and not env.get("KAFKA_BOOTSTRAP_SERVERS"):
        return NO_KAFKA
    return None


def refusal(feature: str, env: Mapping[str, str] | None = None) -> str | None:
    """The left-out message when this server's profile leaves `feature` out, else None."""
    return left_out_reason(feature, os.environ if env is None else env)


def features(env: Mapping[str, str], platform_url: str) -> dict:
    """The answer of GET /odh/api/features. Pure."""
    out = {}
    for name in FEATURES:
        left = left_out_reason(name, env)
        reason = left or missing_configuration(name, env, platform_url)
        out[name] = {"enabled": reason is None, "reason": reason, "left_out": left is not None}
    return {"profile": env.get(PROFILE_NAME_ENV, ""), "features": out}
