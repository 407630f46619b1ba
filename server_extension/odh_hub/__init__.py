"""odh-hub in a notebook: the short import for the platform's Python API.

    from odh_hub import deploy, ingest, produce_sample, BucketClient, spark_status

Everything here is imported lazily, on first use: importing `odh_hub` costs nothing, and boto3, pandas or
pyspark are loaded only by the calls that need them. The code lives in the notebook side's modules
(`server_extension.*`); this package only gives it a name that says what it is.

- models: `deploy(model, name, sample=...)`, `DeployClient`, `Deployment`, `DeployError`, and the widgets
  `DeployButton`, `DeploymentsList`
- Kafka ingestion: `ingest(topic, bucket, ...)`, `ingestion(name)`, `ingestions()`, `produce_sample(topic, n)`,
  `IngestClient`, `Ingestion`, the widget `IngestForm`
- buckets: `BucketClient`, the widget `BucketBrowser` (also as `odh_hub.buckets`)
- your Spark cluster: `spark_status()`, `scale_spark(workers)`, `restart_spark()`, `spark_ui_url()`,
  `SparkClient`, the widget `SparkClusterWidget` (also as `odh_hub.spark`: `status`, `scale`, `restart`,
  `ui_url`; a notebook's SparkSession is often named `spark`, so the top-level names do not clash with it)
- your usage and limits: `usage()` (CPU hours, memory, stored bytes and quota, deployments, ingestions and
  Spark workers with their limits), `UsageClient`
- errors: `OdhApiError` (every API error), `DeployError`
"""

from __future__ import annotations

import importlib

# public name -> (module, attribute); modules are the notebook side's own
_EXPORTS = {
    "deploy": ("server_extension.deploy", "deploy"),
    "Deployment": ("server_extension.deploy", "Deployment"),
    "DeployClient": ("server_extension.deploy", "DeployClient"),
    "DeployError": ("server_extension.deploy", "DeployError"),
    "DeployButton": ("server_extension.deploy_widget", "DeployButton"),
    "DeploymentsList": ("server_extension.deploy_widget", "DeploymentsList"),
    "ingest": ("server_extension.ingest", "ingest"),
    "ingestion": ("server_extension.ingest", "ingestion"),
    "ingestions": ("server_extension.ingest", "ingestions"),
    "produce_sample": ("server_extension.ingest", "produce_sample"),
    "IngestClient": ("server_extension.ingest", "IngestClient"),
    "Ingestion": ("server_extension.ingest", "Ingestion"),
    "IngestForm": ("server_extension.ingest_widget", "IngestForm"),
    "BucketClient": ("server_extension.client", "BucketClient"),
    "BucketBrowser": ("server_extension.widgets", "BucketBrowser"),
    "OdhApiError": ("server_extension.client", "OdhApiError"),
    "SparkClient": ("server_extension.spark_client", "SparkClient"),
    "SparkClusterWidget": ("server_extension.spark_widget", "SparkClusterWidget"),
    "spark_status": ("server_extension.spark_client", "spark_status"),
    "scale_spark": ("server_extension.spark_client", "scale"),
    "restart_spark": ("server_extension.spark_client", "restart"),
    "spark_ui_url": ("server_extension.spark_client", "spark_ui_url"),
    "usage": ("server_extension.usage_client", "usage"),
    "UsageClient": ("server_extension.usage_client", "UsageClient"),
}
_SUBMODULES = ("buckets", "spark")

__all__ = sorted([*_EXPORTS, *_SUBMODULES])


def lazy_exports(namespace: dict, exports: dict[str, tuple[str, str]], submodules: tuple[str, ...] = ()):
    """A module `__getattr__` (PEP 562) giving `exports` (name -> (module, attribute)) and `submodules` of the
    module whose globals are `namespace`, each imported on first use and then kept."""
    def __getattr__(name: str):
        if name in exports:
            module, attribute = exports[name]
            value = getattr(importlib.import_module(module), attribute)
        elif name in submodules:
            value = importlib.import_module(f"{namespace['__name__']}.{name}")
        else:
            raise AttributeError(f"Module {namespace['__name__']!r} has no attribute {name!r}.")
        namespace[name] = value
        return value

    return __getattr__


__getattr__ = lazy_exports(globals(), _EXPORTS, _SUBMODULES)


def __dir__() -> list[str]:
    return __all__
