"""Your server's Spark cluster: `status()`, `scale(workers)`, `restart()`, `ui_url()`, `SparkClient` and the
`SparkClusterWidget`. Imported lazily; pyspark itself is never imported here."""

from __future__ import annotations

from odh_hub import lazy_exports

_EXPORTS = {"status": ("server_extension.spark_client", "spark_status"),
            "scale": ("server_extension.spark_client", "scale"),
            "restart": ("server_extension.spark_client", "restart"),
            "ui_url": ("server_extension.spark_client", "spark_ui_url"),
            "SparkClient": ("server_extension.spark_client", "SparkClient"),
            "SparkClusterWidget": ("server_extension.spark_widget", "SparkClusterWidget"),
            "OdhApiError": ("server_extension.client", "OdhApiError")}
__all__ = sorted(_EXPORTS)

__getattr__ = lazy_exports(globals(), _EXPORTS)
