"""Kubernetes objects for per-user credentials: the Secret, and env that reaches the pod only by reference. Pure."""

from __future__ import annotations

from odh_spawner.credentials.model import ACCESS_KEY_ENV, ENDPOINT_ENV, S3_CLIENT_SETTINGS, SECRET_KEY_ENV, S3Credentials
from odh_spawner.credentials.naming import secret_name

SECRET_KEYS = (ACCESS_KEY_ENV, SECRET_KEY_ENV)
HUB_TOKEN_ENV = ("JUPYTERHUB_API_TOKEN", "JPY_API_TOKEN")  # what JupyterHub hands a server (JPY_: the old name)
HUB_TOKEN_KEY = "token"


def s3_secret(username: str, creds: S3Credentials, namespace: str, labels: dict | None = None) -> dict:
    """The per-user Secret (stringData: the API server stores it base64-encoded)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": secret_name(username),
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "odh-hub", "odh-hub/component": "s3-credentials",
                       **(labels or {})},
            "annotations": {"hub.jupyter.org/username": username},
        },
        "stringData": {ACCESS_KEY_ENV: creds.access_key, SECRET_KEY_ENV: creds.secret_key},
    }


def s3_env(username: str, endpoint: str) -> dict:
    """KubeSpawner `environment` entries: keys by secretKeyRef only, plain settings as values."""
    name = secret_name(username)
    env: dict = {key: {"valueFrom": {"secretKeyRef": {"name": name, "key": key}}} for key in SECRET_KEYS}
    env.update(S3_CLIENT_SETTINGS)
    if endpoint:
        env[ENDPOINT_ENV] = endpoint
    return env


def hub_token_secret(name: str, namespace: str, username: str, servername: str, token: str) -> dict:
    """The Secret holding one server's JupyterHub API token (the pod reads it by secretKeyRef)."""
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "labels": {"app.kubernetes.io/managed-by": "odh-hub", "odh-hub/component": "hub-token"},
            "annotations": {"hub.jupyter.org/username": username, "hub.jupyter.org/servername": servername},
        },
        "stringData": {HUB_TOKEN_KEY: token},
    }


def hub_token_env(env: dict, secret: str) -> dict:
    """`env` with the hub token variables it holds turned into references to the server's token Secret."""
    ref = {"valueFrom": {"secretKeyRef": {"name": secret, "key": HUB_TOKEN_KEY}}}
    return {k: (ref if k in HUB_TOKEN_ENV else v) for k, v in env.items()}
