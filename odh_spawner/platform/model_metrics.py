"""Users' local model servers' own metrics, read at scrape time for <prefix>/metrics/models.

Each live deployment's MLServer serves Prometheus metrics on its `metrics_port` (loopback). A scrape reads
every one of them at once, each within `timeout` seconds and `max_bytes`, and only from the deployment's
recorded process: the connection is made only when that process is alive and holds the socket listening on
the metrics port, and is used only when the socket that accepted it is the owner's system user's (the model
gateway's check, `gateway.ConnectionCheck`). Whoever else holds the port gets no request and the deployment is
reported down. What the server says is screened (`odh_spawner.metrics.modelservers.screen`): MLServer's own
families only, the owner's slug and the deployment's name set on every sample, a cap on series.

A model server that is down, slow, refuses the check or says nonsense costs at most `timeout` and shows as
`odh_model_server_scrape_up{owner,deployment} 0`; the reason is logged when its state changes, never exposed.
Local serving backend only: on Kubernetes the platform reaches model servers only through the serving
operator's inference URL, which does not carry MLServer's metrics port (scrape the pods with a PodMonitor).
"""

from __future__ import annotations

import asyncio
import logging
import time

from prometheus_client import CollectorRegistry, generate_latest

from odh_spawner.metrics.modelservers import FamiliesCollector, Scrape, families, screen
from odh_spawner.naming import user_slug
from odh_spawner.platform.gateway import ConnectionCheck, OwnerCheck
from odh_spawner.platform.upstream import AnswerTooLarge, UpstreamError, UpstreamPool, UpstreamRefused

log = logging.getLogger("odh_spawner.platform.model_metrics")
METRICS_PATH = "/metrics"  # MLServer's settings.metrics_endpoint (the default; the platform writes no other)


class ModelServerScraper:
    def __init__(self, deployments, owner_check: OwnerCheck, *, timeout: float = 2.0, max_bytes: int = 1 << 20,
                 max_series: int = 1000, concurrency: int = 32):
        self.deployments = deployments
        self.owner_check = owner_check
        self.timeout = timeout
        self.max_bytes = max_bytes
        self.max_series = max_series
        self.pool = UpstreamPool(max_idle=1, timeout=timeout, connect_timeout=timeout)
        self._limit = asyncio.Semaphore(concurrency)
        self._was_up: dict[tuple[str, str], bool] = {}

    def targets(self) -> list:
        """Deployments with a recorded serving process that has a metrics port."""
        out = []
        for d in self.deployments.list():
            rt = d.runtime.get("serving") or {}
            if rt.get("pid") and rt.get("metrics_port"):
                out.append(d)
        return sorted(out, key=lambda d: (d.owner, d.name))

    async def fetch(self, d) -> Scrape:
        """Read and screen one deployment's model server's metrics; never raises (a failure is a Scrape with
        up False and the reason)."""
        rt = d.runtime["serving"]
        owner = user_slug(d.owner)
        check = ConnectionCheck(self.owner_check, d.owner, int(rt["pid"]), rt.get("started"),
                                int(rt["metrics_port"]))
        began = time.perf_counter()
        reason, screened = "", None
        try:
            async with self._limit:
                r = await asyncio.wait_for(
                    self.pool.request(f"http://127.0.0.1:{int(rt['metrics_port'])}", "GET", METRICS_PATH,
                                      [("Accept", "text/plain")], max_answer=self.max_bytes, verify=check),
                    self.timeout + 0.5)
            if r.status != 200:
                reason = f"it answered with status {r.status}"
            else:
                text = r.body.decode("utf-8", errors="replace")
                screened = await asyncio.to_thread(screen, text, owner, d.name, d.model_name, self.max_series)
        except UpstreamRefused as e:  # nothing was sent: the recorded process is gone or is not who answers
            reason = str(e)
        except AnswerTooLarge as e:
            reason = f"answered too much: {e}"
        except (UpstreamError, asyncio.TimeoutError) as e:
            reason = str(e) or f"no answer within {self.timeout:g} s"
        except ValueError as e:  # the exposition does not parse
            reason = f"its metrics do not parse ({str(e)[:200]})"
        except Exception as e:  # never a 500 for one model server
            reason = f"{type(e).__name__}"
        took = time.perf_counter() - began
        up = screened is not None
        key = (d.owner, d.name)
        if self._was_up.get(key, True) != up:
            if up:
                log.info("Metrics of the model server of %s/%s are read again", d.owner, d.name)
            else:
                log.warning("Metrics of the model server of %s/%s not read: %s", d.owner, d.name, reason)
        self._was_up[key] = up
        return Scrape(owner, d.name, up, took, screened, reason)

    async def scrape(self) -> list[Scrape]:
        targets = self.targets()
        live = {(d.owner, d.name) for d in targets}
        for key in [k for k in self._was_up if k not in live]:
            del self._was_up[key]
        return list(await asyncio.gather(*(self.fetch(d) for d in targets)))

    async def exposition(self) -> bytes:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(FamiliesCollector(families(await self.scrape())))
        return generate_latest(registry)

    def close(self) -> None:
        self.pool.close()
