"""Every route of the platform service's REST API, assembled in one place from the handler modules (which
import only the base, `platform.api`, never each other)."""

from __future__ import annotations

from odh_spawner.platform.admin_handlers import admin_routes
from odh_spawner.platform.api import HealthHandler
from odh_spawner.platform.deploy_handlers import deploy_routes
from odh_spawner.platform.ingest_handlers import ingest_routes
from odh_spawner.platform.metrics import MetricsHandler, ModelMetricsHandler
from odh_spawner.platform.spark_handlers import spark_routes
from odh_spawner.platform.usage_handlers import usage_routes


def routes(prefix: str, platform) -> list:
    api = prefix.rstrip("/") + "/api"
    kw = {"platform": platform}
    metrics = prefix.rstrip("/") + "/metrics"
    return [(api + r"/health", HealthHandler), (metrics, MetricsHandler, kw),
            (metrics + "/models", ModelMetricsHandler, kw), *deploy_routes(api, kw), *spark_routes(api, kw),
            *ingest_routes(api, kw), *admin_routes(prefix, kw), *usage_routes(api, kw)]
