"""Users' CPU and memory on Kubernetes, from the pod metrics: the resource metrics API's PodMetrics
(`metrics.k8s.io/v1beta1`, served by metrics-server from the kubelets) joined, by namespace and name, to the pods
odh-hub made for a user. A pod belongs to the hub user its `hub.jupyter.org/username` annotation names
(KubeSpawner's notebook pods, Spark, serving and ingestion pods all carry it); PodMetrics carry only labels, so
the join goes through the pods. A colleague cannot claim another's pod: the annotation is set by the hub and the
platform, and users' pods get no API token.

PodMetrics give a rate (cores, averaged over `window`) and a working-set size, not a counter. `CpuIntegrator`
turns the rates into CPU seconds per user: each reading adds rate x the time since that pod's previous reading
(capped at `max_gap`, so a pod missed for a while is not credited with the whole gap), and the seconds of pods
that went stay with their owner. The figure is as exact as the refresh interval allows; on the local platform
the cgroups' own counters are used instead (host.usage).

Pure, except `read`, which lists both with an API client.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from odh_spawner.errors import OdhError
from odh_spawner.naming import user_slug

GROUP, VERSION, PLURAL = "metrics.k8s.io", "v1beta1", "pods"
USERNAME_ANNOTATION = "hub.jupyter.org/username"


# a Kubernetes quantity as usage figures carry it (metrics-server writes CPU in nanocores: "1234567n")
_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(n|u|m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$")
_FACTOR = {None: 1, "n": Decimal("1e-9"), "u": Decimal("1e-6"), "m": Decimal("1e-3"), "k": 10**3, "M": 10**6,
           "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18, "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40,
           "Pi": 2**50, "Ei": 2**60}


def quantity(value) -> Decimal:
    """A non-negative Kubernetes quantity ('1234567n', '250m', '300Mi', '2', 0) as a number; ValueError else."""
    m = _QUANTITY.match(str(value).strip())
    if not m:
        raise ValueError(f"{value!r} is not a Kubernetes quantity.")
    try:
        return Decimal(m.group(1)) * _FACTOR[m.group(2)]
    except InvalidOperation:  # pragma: no cover - the pattern guards this
        raise ValueError(f"{value!r} is not a Kubernetes quantity.") from None


class PodMetricsUnavailable(OdhError):
    """The cluster serves no pod metrics (no metrics-server), or this service may not read them."""


def pod_owners(pods: list[dict]) -> dict[tuple[str, str], tuple[str, str]]:
    """(namespace, name) -> (pod uid, owner's slug) for the pods that name a hub user; others are left out."""
    out = {}
    for pod in pods:
        meta = pod.get("metadata") or {}
        user = (meta.get("annotations") or {}).get(USERNAME_ANNOTATION)
        if isinstance(user, str) and user and meta.get("name") and meta.get("uid"):
            out[(meta.get("namespace", ""), meta["name"])] = (meta["uid"], user_slug(user))
    return out


def pod_usage(item: dict) -> tuple[float, int]:
    """(cores, memory bytes) of one PodMetrics: the sum of its containers' usage. A value that does not parse
    counts as 0 rather than hiding the pod's other containers."""
    cores, memory = 0.0, 0
    for c in item.get("containers") or []:
        usage = c.get("usage") or {}
        try:
            cores += float(quantity(usage.get("cpu", "0")))
        except ValueError:
            pass
        try:
            memory += int(quantity(usage.get("memory", "0")))
        except ValueError:
            pass
    return cores, memory


def join(pods: list[dict], pod_metrics: list[dict]) -> dict[str, tuple[str, float, int]]:
    """pod uid -> (owner slug, cores, memory bytes), for every PodMetrics whose pod names a hub user."""
    owners = pod_owners(pods)
    out = {}
    for item in pod_metrics:
        meta = item.get("metadata") or {}
        found = owners.get((meta.get("namespace", ""), meta.get("name", "")))
        if found is not None:
            uid, slug = found
            cores, memory = pod_usage(item)
            out[uid] = (slug, cores, memory)
    return out


class CpuIntegrator:
    """CPU seconds per user from successive pod readings (see the module's docstring)."""

    def __init__(self, max_gap: float = 60.0):
        self.max_gap = max_gap
        self.seconds: dict[str, float] = {}  # slug -> CPU seconds so far (pods gone included)
        self._last: dict[str, float] = {}  # pod uid -> when it was last read

    def add(self, readings: dict[str, tuple[str, float, int]], now: float) -> dict[str, dict]:
        """Take one refresh's `join()` at monotonic time `now`; returns slug -> {"cpu_seconds", "memory_bytes"}
        (memory of the pods read now; every user with CPU seconds so far appears)."""
        memory: dict[str, int] = {}
        for uid, (slug, cores, mem) in readings.items():
            last = self._last.get(uid)
            if last is not None:
                self.seconds[slug] = self.seconds.get(slug, 0.0) + max(0.0, cores) * min(max(0.0, now - last),
                                                                                         self.max_gap)
            else:
                self.seconds.setdefault(slug, 0.0)
            self._last[uid] = now
            memory[slug] = memory.get(slug, 0) + max(0, mem)
        for uid in set(self._last) - set(readings):
            del self._last[uid]  # the pod went (or was not read): a later reading starts it again
        return {slug: {"cpu_seconds": s, "memory_bytes": memory.get(slug, 0)} for slug, s in self.seconds.items()}


# -- I/O -----------------------------------------------------------------------------------------------------------
async def read(api_client, namespace: str, timeout: float) -> tuple[list[dict], list[dict]]:
    """The pods and PodMetrics of `namespace`, as plain dicts. Raises PodMetricsUnavailable (with what to do)
    when the cluster does not serve metrics.k8s.io or this service may not list it."""
    from kubernetes_asyncio import client
    from kubernetes_asyncio.client.exceptions import ApiException

    core, custom = client.CoreV1Api(api_client), client.CustomObjectsApi(api_client)
    pods = await core.list_namespaced_pod(namespace, _request_timeout=timeout)
    pods = api_client.sanitize_for_serialization(pods).get("items") or []
    try:
        metrics = await custom.list_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL,
                                                             _request_timeout=timeout)
    except ApiException as e:
        if e.status == 404:
            raise PodMetricsUnavailable(
                f"The cluster serves no pod metrics ({GROUP}/{VERSION} not found): users' CPU and memory are not "
                "reported. Install metrics-server.") from None
        if e.status == 403:
            raise PodMetricsUnavailable(
                f"The platform service may not list {PLURAL}.{GROUP} in namespace {namespace!r}: users' CPU and "
                "memory are not reported. The chart's Role grants it (metrics.podUsage.enabled).") from None
        raise
    return pods, metrics.get("items") or []
