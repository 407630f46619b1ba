"""How the platform service reaches the Kubernetes API (shared by its serving and Spark backends)."""

from __future__ import annotations

import os

from kubernetes_asyncio import client, config
from traitlets import Float, Unicode, default
from traitlets.config import LoggingConfigurable

SA_NAMESPACE_FILE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def default_namespace() -> str:
    """The namespace of this pod's service account, else $POD_NAMESPACE, else "default"."""
    try:
        with open(SA_NAMESPACE_FILE) as f:
            return f.read().strip() or "default"
    except OSError:
        return os.environ.get("POD_NAMESPACE", "default")


async def api_client(kubeconfig: str = "") -> client.ApiClient:
    """An API client from `kubeconfig`; without one, the in-cluster service account when running in a pod,
    else $KUBECONFIG or ~/.kube/config."""
    conf = client.Configuration()
    if kubeconfig:
        await config.load_kube_config(config_file=kubeconfig, client_configuration=conf)
    else:
        try:
            config.load_incluster_config(client_configuration=conf)
        except config.ConfigException:
            await config.load_kube_config(client_configuration=conf)
    return client.ApiClient(conf)


class KubeApiSettings(LoggingConfigurable):
    """How a platform-service backend reaches the Kubernetes API (set on `KubeApiSettings` for all of them, or
    on one backend's class)."""

    namespace = Unicode(
        config=True,
        help="""Namespace of the objects this backend manages (serving: the serving resources and per-user
        storage Secrets; Spark: the users' clusters, i.e. OdhKubeSpawner.namespace). Defaults to the namespace
        of the platform service's own pod (its service account), else $POD_NAMESPACE, else "default".""",
    )
    kubeconfig = Unicode(
        "",
        config=True,
        help="""Path of a kubeconfig file to reach the Kubernetes API with. Empty: the in-cluster service account
        when running in a pod, else $KUBECONFIG or ~/.kube/config.""",
    )
    request_timeout = Float(10, config=True, help="Seconds one Kubernetes API request may take.")
    retry_timeout = Float(
        30, config=True,
        help="Seconds an API call is retried (with exponential backoff) while requests time out, before giving up.",
    )

    @default("namespace")
    def _default_ns(self):
        return default_namespace()

    _api: client.ApiClient | None = None

    async def api(self) -> client.ApiClient:
        """This object's API client, made on first use."""
        if self._api is None:
            self._api = await api_client(self.kubeconfig)
        return self._api

    async def close(self) -> None:
        if self._api is not None:
            await self._api.close()
            self._api = None
