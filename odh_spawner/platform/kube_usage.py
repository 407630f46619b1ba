"""Users' CPU seconds and memory on Kubernetes, for the metrics and the usage API: the pod metrics of the
namespaces users' pods run in (kube.podmetrics), read at each metrics refresh.

Set `PlatformService.pod_usage_class` to this class (the chart does, with metrics.podUsage.enabled) and list the
namespaces in `KubePodUsage.namespaces` (the chart: the users' namespace, the serving namespace and the ingestion
namespace). The service account needs `list` on pods and on pods.metrics.k8s.io there: the chart's
`-platform-usage` Roles grant exactly that. Without metrics-server the figures are absent and the reason is
logged once (and again each time it changes).
"""

from __future__ import annotations

import logging
import time

from traitlets import Float, List, Unicode

from odh_spawner.kube import podmetrics
from odh_spawner.kube.client import KubeApiSettings

log = logging.getLogger("odh_spawner.platform")


class KubePodUsage(KubeApiSettings):
    """Per-user CPU seconds and memory from PodMetrics joined to odh-hub's pods."""

    namespaces = List(
        Unicode(),
        config=True,
        help="""Namespaces whose pods count towards their users' usage (users' servers and Spark clusters,
        model servers, ingestion workers). Empty: `namespace` alone.""",
    )
    max_gap = Float(
        60.0,
        config=True,
        help="""Seconds of CPU at most credited to a pod between two readings (its rate times the time between
        them): a pod that was not read for longer is not credited with the whole gap.""",
    )

    @classmethod
    def for_platform(cls, platform) -> KubePodUsage:
        return cls(parent=platform, log=platform.log)

    def __init__(self, **kw):
        super().__init__(**kw)
        self.integrator = podmetrics.CpuIntegrator(self.max_gap)
        self.problem: str | None = None  # why the last reading failed, for the log (once per change)

    def _note(self, problem: str | None) -> None:
        if problem != self.problem:
            if problem:
                log.warning("Users' CPU and memory not read: %s", problem)
            elif self.problem:
                log.info("Users' CPU and memory are read from the pod metrics again")
            self.problem = problem

    async def usage(self) -> dict:
        """slug -> {"cpu_seconds", "memory_bytes"} now; {} when no namespace could be read. Raises
        PodMetricsUnavailable when the cluster serves no pod metrics (the caller reports it)."""
        api = await self.api()
        pods, items = [], []
        try:
            for ns in self.namespaces or [self.namespace]:
                p, m = await podmetrics.read(api, ns, self.request_timeout)
                pods += p
                items += m
        except podmetrics.PodMetricsUnavailable as e:
            self._note(str(e))
            raise
        self._note(None)
        return self.integrator.add(podmetrics.join(pods, items), time.monotonic())
