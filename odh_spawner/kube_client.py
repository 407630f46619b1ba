"""How the platform service reaches the Kubernetes API (shared by its serving and Spark backends)."""

from __future__ import annotations

import os

from kubernetes_asyncio import client, config

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
