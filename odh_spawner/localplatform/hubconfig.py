"""JupyterHub configuration for the local platform, from plain data (never templated Python). Pure."""

from __future__ import annotations

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

    c.JupyterHub.authenticator_class = "odh_spawner.auth.OdhFileAuthenticator"
    c.OdhFileAuthenticator.users_file = s["users_file"]

    c.JupyterHub.spawner_class = s.get("spawner_class", "odh-local")
    c.OdhLocalSpawner.profiles_path = s["profiles_file"]
    # shared with any LocalProcessSpawner (benchmarks compare against the plain SimpleLocalProcessSpawner)
    c.SimpleLocalProcessSpawner.home_dir_template = os.path.join(state, "home", "{username}")
    c.OdhLocalSpawner.spark_state_dir = os.path.join(state, "spark-clusters")
    c.Spawner.default_url = "/lab"
    c.Spawner.start_timeout = s.get("start_timeout", 120)
    c.Spawner.http_timeout = s.get("start_timeout", 120)
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

    culler = s.get("idle_culler") or {}
    if culler.get("enabled"):
        c.JupyterHub.services = [{
            "name": "idle-culler",
            "command": [sys.executable, "-m", "jupyterhub_idle_culler",
                        f"--timeout={culler['timeout_seconds']}", f"--cull-every={culler['every_seconds']}"],
        }]
        c.JupyterHub.load_roles = [{
            "name": "idle-culler",
            "scopes": ["list:users", "read:users:activity", "read:servers", "delete:servers"],
            "services": ["idle-culler"],
        }]
