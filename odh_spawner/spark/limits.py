"""Spark limits: per-user and hub-wide maxima, checked at spawn and at scale. Pure (no I/O).

Profiles already bound each shape (`SparkShape`); these limits are the admin's ceiling over all profiles and
all of a user's servers, plus a hub-wide cap on workers so one busy hub cannot start more JVMs than it can host.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from traitlets import Integer, Union, Unicode, validate
from traitlets.config import Configurable

from odh_spawner.errors import OptionsError
from odh_spawner.quantities import format_bytes, parse_memory
from odh_spawner.profiles.resolve import SparkRequest
from odh_spawner.spark.errors import SparkLimitError


@dataclass(frozen=True)
class SparkUsage:
    """Spark workers running now: this user's (over all their servers) and everyone's."""

    user_workers: int = 0
    total_workers: int = 0


class SparkLimits(Configurable):
    max_workers = Integer(
        4,
        min=1,
        config=True,
        help="""Most Spark workers one user may run at once, added up over all of their servers.
        A profile's own `spark.workers.max` still applies; the smaller limit wins.""",
    )
    max_worker_cores = Integer(
        4,
        min=1,
        config=True,
        help="Most CPU cores one Spark worker may have (the worker's `--cores`, its pod's cpu on Kubernetes).",
    )
    max_worker_memory = Union(
        [Integer(), Unicode()],
        default_value=8 * 2**30,
        config=True,
        help="""Most memory one Spark worker may give its executors: bytes, or a quantity like '4Gi' (default 8Gi).
        On Kubernetes the worker pod gets this plus a fixed overhead for the JVMs.""",
    )
    max_total_workers = Integer(
        None,
        allow_none=True,
        min=1,
        config=True,
        help="""Most Spark workers all users together may run on this hub at once, or None for no hub-wide
        limit. A spawn or scale-up that would pass it is refused with a message saying so.""",
    )

    limit_source = ""  # where max_workers came from, for messages ("group students"); "" says nothing

    @validate("max_worker_memory")
    def _valid_memory(self, proposal):
        try:
            return parse_memory(proposal["value"])
        except ValueError as e:
            raise ValueError(f"SparkLimits.max_worker_memory: {e}") from None


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def check_request(limits: SparkLimits, request: SparkRequest, usage: SparkUsage = SparkUsage()) -> None:
    """Refuse a new cluster of `request`'s shape, given the workers already running (`usage`).

    Raises OptionsError (400) for a malformed shape and SparkLimitError (403) for one over a limit.
    """
    if request.workers < 1 or request.worker_cores < 1 or request.worker_memory < 1:
        raise OptionsError("A Spark cluster needs at least 1 worker with at least 1 core and some memory.")
    if request.worker_cores > limits.max_worker_cores:
        raise SparkLimitError(f"{request.worker_cores} cores per Spark worker exceed the limit of "
                              f"{limits.max_worker_cores}.")
    if request.worker_memory > limits.max_worker_memory:
        raise SparkLimitError(f"{format_bytes(request.worker_memory)} per Spark worker exceeds the limit of "
                              f"{format_bytes(limits.max_worker_memory)}.")
    _check_workers(limits, request.workers, usage, adding=request.workers)


def _check_workers(limits: SparkLimits, workers: int, others: SparkUsage, adding: int) -> None:
    """`workers`: this cluster's size after the change; `others`: workers running outside this cluster."""
    source = f" ({limits.limit_source})" if getattr(limits, "limit_source", "") else ""
    if others.user_workers + workers > limits.max_workers:
        if others.user_workers:
            raise SparkLimitError(
                f"You already run {_plural(others.user_workers, 'Spark worker')} on other servers; {workers} more "
                f"would exceed your limit of {limits.max_workers}{source}.")
        verb = "exceeds" if workers == 1 else "exceed"
        raise SparkLimitError(f"{_plural(workers, 'Spark worker')} {verb} your limit of {limits.max_workers}"
                              f"{source}.")
    cap = limits.max_total_workers
    if cap is not None and others.total_workers + workers > cap:
        in_use = others.total_workers + workers - adding
        verb = "does" if adding == 1 else "do"
        raise SparkLimitError(
            f"The hub runs {in_use} of at most {cap} Spark workers; {adding} more {verb} not fit "
            f"({max(0, cap - in_use)} free). Ask for fewer workers or try again later.")


def check_scale(limits: SparkLimits | None, current: SparkRequest, workers: int, usage: SparkUsage) -> SparkRequest:
    """The request after scaling a running cluster from `current.workers` to `workers`, or a typed error.

    `usage` counts what runs now, this cluster included. Scaling down is always allowed (even above a limit
    that was lowered since); scaling up must fit the per-user and hub-wide limits (none when `limits` is None).
    """
    if isinstance(workers, bool) or not isinstance(workers, int):
        raise OptionsError(f"Workers must be a whole number, got {workers!r}.")
    if workers < 1:
        raise OptionsError("A Spark cluster needs at least 1 worker; stop the server to remove it.")
    if limits is not None and workers > current.workers:
        others = SparkUsage(user_workers=max(0, usage.user_workers - current.workers),
                            total_workers=max(0, usage.total_workers - current.workers))
        _check_workers(limits, workers, others, adding=workers - current.workers)
    return replace(current, workers=workers)
