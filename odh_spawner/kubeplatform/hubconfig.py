"""JupyterHub configuration for the Helm chart (helm/odh-hub), from plain data. Pure but `write_initial_users`.

The chart renders a JSON document of settings from its values (the `hub-config` ConfigMap, key
`settings.json`) and ships a fixed `jupyterhub_config.py` that loads it and calls `configure`: values reach Python
as data, never as templated Python. Secrets never travel in the settings: they reach the hub pod as environment
variables from Secrets (`ODH_PROXY_TOKEN`, `ODH_PLATFORM_API_TOKEN`, `JPY_COOKIE_SECRET`, `ODH_INITIAL_ADMIN_PASSWORD`)
or as mounted Secret files (the RGW admin keys).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping

PLATFORM = "odh-platform"  # the platform service's name (the same as the local platform's)


class HubSettingsError(ValueError):
    """The chart's settings document lacks something or holds something unexpected."""


def _need(s: Mapping, *path: str):
    cur = s
    for key in path:
        if not isinstance(cur, Mapping) or key not in cur:
            raise HubSettingsError(f"Hub settings: missing {'.'.join(path)}.")
        cur = cur[key]
    return cur


def configure(c, s: Mapping, env: Mapping[str, str]) -> None:
    """Apply the chart's settings `s` (and secrets from `env`) to the traitlets config `c`."""
    ns = _need(s, "namespace")
    hub = _need(s, "hub")
    c.JupyterHub.base_url = hub.get("baseUrl", "/")
    c.JupyterHub.hub_bind_url = f"http://:{hub.get('port', 8081)}"
    c.JupyterHub.hub_connect_url = _need(s, "hub", "connectUrl")
    c.JupyterHub.db_url = hub.get("dbUrl") or "sqlite:////srv/jupyterhub/jupyterhub.sqlite"
    c.JupyterHub.log_level = hub.get("logLevel", "INFO")
    # servers are pods that outlive a hub restart: the next hub finds them again (its database is on a PVC)
    c.JupyterHub.cleanup_servers = False
    c.JupyterHub.cleanup_proxy = False
    c.JupyterHub.allow_named_servers = bool(hub.get("allowNamedServers", False))
    c.JupyterHub.pid_file = ""
    c.ConfigurableHTTPProxy.should_start = False  # its own Deployment
    c.ConfigurableHTTPProxy.api_url = _need(s, "proxy", "apiUrl")
    if env.get("ODH_PROXY_TOKEN"):
        c.ConfigurableHTTPProxy.auth_token = env["ODH_PROXY_TOKEN"]

    _authenticator(c, _need(s, "authenticator"), env)
    _spawner(c, s, ns)
    _storage(c, s.get("storage") or {})
    if s.get("quotas"):  # per-group limits (profiles.quotas), checked now: a bad one stops the hub with its field
        from odh_spawner.profiles.quotas import QuotaError, parse_quotas

        quotas = {k: v for k, v in dict(s["quotas"]).items() if v}
        try:
            parse_quotas(quotas, source="values quotas")
        except QuotaError as e:
            raise HubSettingsError(str(e)) from None
        c.OdhQuotas.quotas = quotas

    services, roles = [], []
    platform = s.get("platform") or {}
    server_scopes = ["users:activity!user", "access:servers!server"]
    if platform.get("enabled"):
        # an external service (its own Deployment): the hub routes /services/odh-platform/ to it and checks
        # its token; users and their servers' tokens may call it
        # oauth_no_confirm: its admin page logs in through the hub without a "grant access?" page
        service = {"name": PLATFORM, "url": _need(s, "platform", "url"), "display": False, "oauth_no_confirm": True}
        if env.get("ODH_PLATFORM_API_TOKEN"):
            service["api_token"] = env["ODH_PLATFORM_API_TOKEN"]
        services.append(service)
        roles.append({"name": "user", "scopes": ["self", f"access:services!service={PLATFORM}"]})
        # the admin view: the service lists every user with their servers and stops one on an admin's request
        roles.append({"name": PLATFORM, "scopes": ["list:users", "read:users", "read:servers", "delete:servers"],
                      "services": [PLATFORM]})
        # the service resolves users' per-group quotas from their groups
        roles.append({"name": "odh-platform-quotas", "scopes": ["read:users:groups"], "services": [PLATFORM]})
        server_scopes.append(f"access:services!service={PLATFORM}")
    c.Spawner.server_token_scopes = server_scopes

    culler = s.get("culler") or {}
    if culler.get("enabled"):
        args = [sys.executable, "-m", "jupyterhub_idle_culler", f"--timeout={int(culler['timeout'])}",
                f"--cull-every={int(culler['every'])}", f"--concurrency={int(culler.get('concurrency', 10))}"]
        if culler.get("maxAge"):
            args.append(f"--max-age={int(culler['maxAge'])}")
        if culler.get("users"):
            args.append("--cull-users")
        services.append({"name": "idle-culler", "command": args})
        scopes = ["list:users", "read:users:activity", "read:servers", "delete:servers"]
        if culler.get("users"):
            scopes.append("admin:users")
        roles.append({"name": "idle-culler", "scopes": scopes, "services": ["idle-culler"]})
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles


def _authenticator(c, a: Mapping, env: Mapping[str, str]) -> None:
    kind = _need(a, "type")
    admins = set(a.get("admins") or [])
    if kind == "file":
        c.JupyterHub.authenticator_class = "odh_spawner.auth.authenticator.OdhFileAuthenticator"
        c.OdhFileAuthenticator.users_file = _need(a, "usersFile")
    elif kind == "custom":
        c.JupyterHub.authenticator_class = _need(a, "className")
        # the admin's settings for their authenticator class, by class name (e.g. GenericOAuthenticator)
        short = a["className"].rsplit(".", 1)[-1]
        for trait, value in (a.get("config") or {}).items():
            setattr(c[short], trait, value)
        c.Authenticator.manage_groups = bool(a.get("manageGroups", True))
    else:
        raise HubSettingsError(f"Hub settings: authenticator.type {kind!r} is not 'file' or 'custom'.")
    if admins:
        c.Authenticator.admin_users = admins


def _spawner(c, s: Mapping, ns: str) -> None:
    su = s.get("singleuser") or {}
    c.JupyterHub.spawner_class = "odh-kube"
    c.OdhKubeSpawner.profiles_path = _need(s, "profilesPath")
    c.KubeSpawner.namespace = ns
    c.KubeSpawner.start_timeout = int(su.get("startTimeout", 300))
    c.KubeSpawner.http_timeout = int(su.get("httpTimeout", 120))
    c.KubeSpawner.default_url = su.get("defaultUrl", "/lab")
    c.KubeSpawner.port = 8888
    c.KubeSpawner.cmd = su.get("cmd") or ["jupyterhub-singleuser"]
    # user pods get no service-account token: they talk to the hub and the platform with their hub token only
    c.KubeSpawner.automount_service_account_token = False
    c.KubeSpawner.service_account = None
    c.KubeSpawner.uid = int(su.get("uid", 1000))
    c.KubeSpawner.gid = int(su.get("gid", 100))
    c.KubeSpawner.fs_gid = int(su.get("fsGid", 100))
    c.KubeSpawner.allow_privilege_escalation = False
    c.KubeSpawner.container_security_context = {
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }
    home = su.get("storage") or {}
    if home.get("type", "none") == "dynamic":  # each user's home: a PVC of their own, kept across servers
        c.KubeSpawner.storage_pvc_ensure = True
        c.KubeSpawner.storage_capacity = str(home.get("capacity", "10Gi"))
        if home.get("storageClass"):
            c.KubeSpawner.storage_class = str(home["storageClass"])
        c.KubeSpawner.storage_access_modes = ["ReadWriteOnce"]
        c.OdhKubeSpawner.home_mount_path = str(home.get("homeMountPath", "/home/jovyan"))
    c.KubeSpawner.image_pull_policy = su.get("imagePullPolicy", "IfNotPresent")
    if su.get("imagePullSecrets"):
        c.KubeSpawner.image_pull_secrets = list(su["imagePullSecrets"])
    # the labels the chart's NetworkPolicies select user pods by
    c.KubeSpawner.extra_labels = dict(su.get("podLabels") or {})
    if su.get("nodeSelector"):
        c.KubeSpawner.node_selector = dict(su["nodeSelector"])
    if su.get("tolerations"):
        c.KubeSpawner.tolerations = list(su["tolerations"])
    env = {}
    platform = s.get("platform") or {}
    if platform.get("enabled"):
        env["ODH_PLATFORM_URL"] = platform["url"].rstrip("/") + f"/services/{PLATFORM}/"
    kafka = s.get("kafka") or {}
    if kafka.get("bootstrap"):
        env["KAFKA_BOOTSTRAP_SERVERS"] = kafka["bootstrap"]
    if env:
        c.KubeSpawner.environment = env
    spark = s.get("spark") or {}
    if spark.get("enabled"):
        c.KubeSpark.cluster_type = spark.get("clusterType", "standalone")
        c.KubeSpark.spark_class = spark.get("sparkClass", "spark-class")
        c.KubeSpark.spark_version = spark.get("sparkVersion", "4.3.0")
        # a NetworkPolicy per cluster: only its own pods, its owner's notebook pod and the platform reach it
        c.KubeSpark.network_policy = bool((s.get("networkPolicy") or {}).get("enabled", False))
        limits = spark.get("limits") or {}
        if "maxWorkers" in limits:
            c.SparkLimits.max_workers = int(limits["maxWorkers"])
        if "maxWorkerCores" in limits:
            c.SparkLimits.max_worker_cores = int(limits["maxWorkerCores"])
        if "maxWorkerMemory" in limits:
            c.SparkLimits.max_worker_memory = str(limits["maxWorkerMemory"])
        if limits.get("maxTotalWorkers"):
            c.SparkLimits.max_total_workers = int(limits["maxTotalWorkers"])


def _storage(c, st: Mapping) -> None:
    if not st.get("enabled"):
        return
    c.OdhStorage.admin_endpoint = _need(st, "adminEndpoint")
    if st.get("s3Endpoint"):
        c.OdhStorage.s3_endpoint = st["s3Endpoint"]
    c.OdhStorage.admin_keys_file = _need(st, "adminKeysFile")
    quota = st.get("quota") or {}
    if quota.get("maxSize"):
        c.OdhStorage.quota_max_size = str(quota["maxSize"])
    if quota.get("maxObjects"):
        c.OdhStorage.quota_max_objects = int(quota["maxObjects"])


def initial_users(admin: str, password_hash: str, groups: list[str]) -> dict:
    """The users document (odh_spawner.auth.users format) with only the chart's initial admin."""
    return {"users": {admin: {"password_hash": password_hash, "groups": list(groups), "admin": True}}}


def write_initial_users(path: str, admin: str, password: str, groups: list[str]) -> None:
    """Write the initial admin's users file (0600) from the password the chart generated (a Secret)."""
    import yaml

    from odh_spawner.auth.passwords import hash_password

    os.makedirs(os.path.dirname(path), exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(initial_users(admin, hash_password(password), groups), f)


def load(c, path: str, env: Mapping[str, str]) -> None:
    """What the chart's jupyterhub_config.py does: read the settings file, write the initial admin's users file
    when the chart generated one, and configure `c`."""
    import json

    with open(path, encoding="utf-8") as f:
        s = json.load(f)
    auth = s.get("authenticator") or {}
    initial = auth.get("initialAdmin")
    if auth.get("type") == "file" and initial:
        password = env.get("ODH_INITIAL_ADMIN_PASSWORD", "")
        if not password:
            raise HubSettingsError("ODH_INITIAL_ADMIN_PASSWORD is not set (the chart's hub Secret).")
        write_initial_users(_need(auth, "usersFile"), _need(initial, "name"), password,
                            list(initial.get("groups") or []))
    configure(c, s, env)
