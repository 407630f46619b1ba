"""Build OdhKubeSpawner pods offline: a KUBECONFIG that points nowhere, and a hub-like user object.

Kubernetes cannot run on these machines; KubeSpawner's own get_pod_manifest() runs offline and the result
is validated against the official Kubernetes schema (kubernetes-validate, strict)."""

import os
from dataclasses import dataclass, field

import kubernetes_validate
from kubernetes_asyncio.client import ApiClient

KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: offline, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: offline, user: {token: offline}}]
contexts: [{name: offline, context: {cluster: offline, user: offline, namespace: odh}}]
current-context: offline
"""

K8S_VERSION = kubernetes_validate.utils.latest_version()


@dataclass
class Group:
    name: str


@dataclass
class HubUser:
    """The attributes of jupyterhub.user.User a spawner reads while building a pod."""

    name: str
    groups: list = field(default_factory=list)
    id: int = 1
    spawners: dict = field(default_factory=dict)
    settings: dict = field(default_factory=dict)

    @property
    def escaped_name(self):
        return self.name

    @property
    def url(self):
        return f"/user/{self.name}/"


def write_kubeconfig(directory) -> str:
    path = os.path.join(str(directory), "kubeconfig")
    with open(path, "w") as f:
        f.write(KUBECONFIG)
    return path


def serialize(obj) -> dict:
    return ApiClient().sanitize_for_serialization(obj)


def validate(manifest: dict) -> None:
    kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


def unknown_fields(obj, schema, path="") -> list[str]:
    """Fields the schema does not declare (a structural CRD's API server would silently prune them)."""
    if schema.get("x-kubernetes-preserve-unknown-fields"):
        return []
    out = []
    if isinstance(obj, dict) and "properties" in schema:
        for k, v in obj.items():
            if k in schema["properties"]:
                out += unknown_fields(v, schema["properties"][k], f"{path}.{k}")
            elif not schema.get("additionalProperties"):
                out.append(f"{path}.{k}")
    elif isinstance(obj, list) and "items" in schema:
        for i, v in enumerate(obj):
            out += unknown_fields(v, schema["items"], f"{path}[{i}]")
    return out
