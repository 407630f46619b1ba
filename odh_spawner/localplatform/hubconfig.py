"""JupyterHub configuration for the local platform, from plain data (never templated Python). Pure."""

from __future__ import annotations

import hashlib
import json
import os
import sys


def configure(c, s: dict) -> None:
    """Apply runtime settings `s` (written by the launcher as JSON) to the traitlets config `c`."""
    state = s["state_dir"]
    c.JupyterHub.bind_url = s["bind_url"]
    c.JupyterHub.hub_bind_url = s["hub_bind_url"]
    c.JupyterHub.db_url = "sqlite:///" + os.path.join(state, "jupyterhub.sqlite")
    c.JupyterHub.cookie_secret_file = os.path.join(state, "jupyterhub_cookie_secret")
    c.JupyterHub.pid_file = os.path.join(state, "jupyterhub.pid")
    c.JupyterHub.cleanup_servers = True
    c.JupyterHub.cleanup_proxy = True
    c.ConfigurableHTTPProxy.api_url = s["proxy_api_url"]
    c.ConfigurableHTTPProxy.command = list(s["proxy_command"])
    c.ConfigurableHTTPProxy.pid_file = os.path.join(state, "proxy.pid")
    if s.get("proxy_auth_token"):
        c.ConfigurableHTTPProxy.auth_token = s["proxy_auth_token"]

    c.JupyterHub.authenticator_class = "odh_spawner.auth.authenticator.OdhFileAuthenticator"
    c.OdhFileAuthenticator.users_file = s["users_file"]

    c.JupyterHub.spawner_class = s.get("spawner_class", "odh-local")
    c.OdhLocalSpawner.profiles_path = s["profiles_file"]
    # shared with any LocalProcessSpawner (benchmarks compare against the plain SimpleLocalProcessSpawner)
    c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(state, "home", "{username}")
    c.OdhLocalSpawner.home_root = os.path.join(state, "home")
    c.OdhLocalSpawner.spark_state_dir = os.path.join(state, "spark-clusters")
    # Spark clusters' web UIs answer their owner (their server's proxy) and root only (nftables, when root)
    c.LocalSparkCluster.port_guard_id = platform_id(state)
    c.OdhLocalSpawner.cgroup_parent = cgroup_parent(state)
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = s.get("start_timeout", 120)
    c.Spawner.http_timeout = s.get("start_timeout", 120)
    if s.get("concurrent_spawn_limit"):  # beyond it a user gets 429 "Too many users ... try again in N seconds"
        c.JupyterHub.concurrent_spawn_limit = s["concurrent_spawn_limit"]
    if os.geteuid() == 0:
        c.SimpleLocalProcessSpawner.args = ["--allow-root"]
    if s.get("s3_endpoint"):
        # per-user RGW users and keys, created by the hub through the Admin Ops API
        c.OdhStorage.admin_endpoint = s["s3_endpoint"]
        c.OdhStorage.admin_keys_file = s["rgw_admin_keys_file"]
        quota = s.get("user_quota") or {}
        if quota.get("max_size"):
            c.OdhStorage.quota_max_size = quota["max_size"]
        if quota.get("max_objects"):
            c.OdhStorage.quota_max_objects = quota["max_objects"]

    if s.get("quotas"):  # per-group limits: the spawners apply storage and Spark ones at spawn
        c.OdhQuotas.quotas = s["quotas"]

    services, roles = [], []
    if s.get("platform_url"):
        services.append(platform_service(s))
        # every user may call the platform service, and so may their servers' tokens (the notebook
        # forwards deploy and Spark calls with its own JUPYTERHUB_API_TOKEN)
        roles.append({"name": "user", "scopes": ["self", f"access:services!service={PLATFORM}"]})
        roles.append(platform_role())
        # the service resolves users' per-group quotas from their groups
        roles.append({"name": "odh-platform-quotas", "scopes": ["read:users:groups"], "services": [PLATFORM]})
        c.Spawner.server_token_scopes = ["users:activity!user", "access:servers!server",
                                         f"access:services!service={PLATFORM}"]
        c.Spawner.environment = {"ODH_PLATFORM_URL": s["platform_url"] + f"/services/{PLATFORM}/"}
    if s.get("kafka_bootstrap"):
        # every notebook server knows the platform's Kafka (ingestions, the sample producer)
        env = dict(c.Spawner.environment) if "environment" in c.Spawner else {}
        c.Spawner.environment = {**env, "KAFKA_BOOTSTRAP_SERVERS": s["kafka_bootstrap"]}

    culler = s.get("idle_culler") or {}
    if culler.get("enabled"):
        services.append({
            "name": "idle-culler",
            "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                        f"--timeout={culler['timeout_seconds']}", f"--cull-every={culler['every_seconds']}"],
        })
        roles.append({
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        })
    if s.get("prometheus_token"):
        # the local Prometheus scrapes /hub/metrics and the platform service's metrics with this token
        services.append({"name": PROMETHEUS, "api_token": s["prometheus_token"]})
        roles.append({"name": PROMETHEUS, "scopes": ["read:metrics"], "services": [PROMETHEUS]})
    c.JupyterHub.services = services
    c.JupyterHub.load_roles = roles


PLATFORM = "odh-platform"
PROMETHEUS = "odh-prometheus"  # the hub service of the local Prometheus (docs/metrics.md)
# what the platform service's own token may do at the hub: the admin view lists every user with their servers
# and stops a user's server on an admin's request (the admin is checked by the service)
PLATFORM_SCOPES = ["list:users", "read:users", "read:servers", "delete:servers"]


def platform_role() -> dict:
    return {"name": PLATFORM, "scopes": list(PLATFORM_SCOPES), "services": [PLATFORM]}


def platform_id(state_dir: str) -> str:
    """A short id of one local platform (its state directory): several platforms on a machine never share
    cgroups or firewall tables."""
    return hashlib.sha256(os.path.abspath(state_dir).encode()).hexdigest()[:8]


def cgroup_parent(state_dir: str) -> str:
    """The parent cgroup of one local platform's servers."""
    return "odh-hub-" + platform_id(state_dir)


def platform_service(s: dict) -> dict:
    """The platform service as a hub-managed service. Its secrets travel in its environment only."""
    state = s["state_dir"]
    args = [f"--PlatformService.state_dir={os.path.join(state, 'platform')}",
            f"--PlatformService.public_url={s['bind_url']}",
            f"--PlatformService.proxy_api_url={s['proxy_api_url']}",
            f"--PlatformService.spark_state_dir={os.path.join(state, 'spark-clusters')}"]
    limits = s.get("deployments") or {}
    if limits.get("max_model_size"):
        args.append(f"--PlatformService.max_model_size={limits['max_model_size']}")
    if limits.get("max_per_user"):
        args.append(f"--PlatformService.max_deployments_per_user={limits['max_per_user']}")
    if s.get("s3_endpoint"):
        args.append(f"--OdhStorage.admin_endpoint={s['s3_endpoint']}")
        quota = (s.get("user_quota") or {}).get("max_size")
        if quota:  # the metrics report each user's quota beside their stored bytes
            args.append(f"--OdhStorage.quota_max_size={quota}")
    if s.get("object_store_data_dir"):
        args.append(f"--PlatformService.object_store_data_dir={s['object_store_data_dir']}")
    # users' CPU seconds and memory, from their servers' cgroups (or /proc without cgroups)
    args.append(f"--PlatformService.usage_cgroup_parent={cgroup_parent(state)}")
    if s.get("quotas"):
        args.append(f"--OdhQuotas.quotas={json.dumps(s['quotas'])}")
    if s.get("kafka_bootstrap"):
        args.append(f"--PlatformService.kafka_bootstrap_servers={s['kafka_bootstrap']}")
    if s.get("max_ingestions_per_user"):
        args.append(f"--PlatformService.max_ingestions_per_user={s['max_ingestions_per_user']}")
    # model servers' ports answer the gateway only (nftables, when root)
    args.append(f"--LocalMLServerBackend.port_guard_id={platform_id(state)}")
    # started as root, the service runs as its own unprivileged user; root work goes through its helper
    args += [f"--PlatformService.platform_id={platform_id(state)}",
             f"--PlatformService.drop_privileges={bool(s.get('drop_privileges', True))}"]
    env = {"CONFIGPROXY_AUTH_TOKEN": s.get("proxy_auth_token", "")}
    if s.get("rgw_admin_keys_file"):
        env["ODH_RGW_ADMIN_KEYS"] = s["rgw_admin_keys_file"]
    # oauth_no_confirm: the admin page logs in through the hub without a "grant access?" page (a part of the hub)
    return {"name": PLATFORM, "url": s["platform_url"], "environment": env, "oauth_no_confirm": True,
            "command": [sys.executable, "-m", "odh_spawner.platform", *args]}
