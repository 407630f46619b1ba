"""Features a profile may leave out on purpose, and what a server is told about them. Pure.

A profile's `leave_out: [ingestions, deployments]` turns those features off for the servers started from it
(the notebook API, server_extension.features, refuses them with 409 and a message naming a profile that has
them; the JupyterLab panels show them disabled). Spark is left out by a profile without a `spark:` block (it may also say so in
`leave_out`, but not next to a `spark:` block).

The spawner passes the server (both backends, `feature_env`)::

    ODH_FEATURES_OFF=ingestions,spark
    ODH_FEATURES_ELSEWHERE={"ingestions": ["Standard Data Science"], "spark": ["Standard Data Science"]}
    ODH_PROFILE_NAME=Minimal Python

ODH_FEATURES_ELSEWHERE names, per left-out feature, the profiles this user may use that offer it.
"""

from __future__ import annotations

import json
from typing import Iterable, Mapping

# the features a profile may leave out (server_extension.features names them for users: the notebook side reads
# this environment and writes the messages; it does not import the hub side)
FEATURES = ("buckets", "deployments", "ingestions", "spark")

OFF_ENV = "ODH_FEATURES_OFF"
ELSEWHERE_ENV = "ODH_FEATURES_ELSEWHERE"
PROFILE_NAME_ENV = "ODH_PROFILE_NAME"


def left_out(profile) -> frozenset[str]:
    """The features `profile` (a profiles.format.Profile) leaves out: its leave_out, and Spark without spark:."""
    out = set(profile.leave_out)
    if profile.spark is None:
        out.add("spark")
    return frozenset(out)


def offered_by(profiles: Iterable, features: Iterable[str]) -> dict[str, list[str]]:
    """feature -> display names of the `profiles` (those the user may use) that offer it, in file order."""
    profiles = list(profiles)
    return {f: [p.display_name for p in profiles if f not in left_out(p)] for f in sorted(features)}


def feature_env(off: Iterable[str], display_name: str, elsewhere: Mapping[str, list[str]]) -> dict[str, str]:
    """The server's environment for its left-out features (see the module's docstring)."""
    off = sorted(off)
    return {
        OFF_ENV: ",".join(off),
        ELSEWHERE_ENV: json.dumps({f: list(elsewhere.get(f, [])) for f in off}, separators=(",", ":")),
        PROFILE_NAME_ENV: display_name,
    }
