"""Python client for the notebook's Spark cluster (/odh/api/spark...), for notebook cells and scripts.

Inside a notebook it needs no arguments: it talks to its own server with the server's token.

    from odh_hub import spark_status, scale_spark, restart_spark
    spark_status()["workers_alive"]
    scale_spark(3)          # waits until the new workers are ALIVE; OdhApiError(403) above your limit
    restart_spark()

The status is a dict: enabled, state ('running', 'starting', 'stopped'), master_url, ui_url (the Spark UI
through your server), workers_alive, workers_requested, max_workers, cores, cores_used, memory_mb,
memory_used_mb, applications [{id, name, state, cores}].
"""

from __future__ import annotations

from urllib.parse import urljoin

from .client import ApiClient, OdhApiError

__all__ = ["OdhApiError", "SparkClient", "restart", "scale", "spark_status", "spark_ui_url"]


class SparkClient(ApiClient):
    def __init__(self, base_url: str | None = None, token: str | None = None, timeout: float = 300, **kw):
        super().__init__(base_url, token, timeout=timeout, **kw)  # a scale-up waits for its workers

    def status(self) -> dict:
        return self._json("GET", f"{self.api}/spark")

    def scale(self, workers: int) -> dict:
        return self._json("POST", f"{self.api}/spark/scale", json={"workers": workers})

    def restart(self) -> dict:
        return self._json("POST", f"{self.api}/spark/restart", json={})

    def ui_url(self, status: dict | None = None) -> str:
        """The Spark UI's address as this client reaches it ('' without a cluster)."""
        status = status if status is not None else self.status()
        return urljoin(self.api, status["ui_url"]) if status.get("ui_url") else ""


def spark_status(client: SparkClient | None = None) -> dict:
    return (client or SparkClient()).status()


def scale(workers: int, client: SparkClient | None = None) -> dict:
    return (client or SparkClient()).scale(workers)


def restart(client: SparkClient | None = None) -> dict:
    return (client or SparkClient()).restart()


def spark_ui_url(client: SparkClient | None = None) -> str:
    return (client or SparkClient()).ui_url()
