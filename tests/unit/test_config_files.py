"""users.yaml, platform.yaml, password hashes and the hub configuration built from them."""

import os

import pytest
from traitlets.config import Config

from odh_spawner.cli import main
from odh_spawner.localplatform.hubconfig import configure, platform_id
from odh_spawner.localplatform.settings import SettingsError, load_settings, parse_settings
from odh_spawner.auth.passwords import hash_password, verify_password
from odh_spawner.auth.users import UserFileError, load_users, parse_users
from tests.conftest import ROOT

DEMO_DIR = os.path.join(ROOT, "config", "demo")


def test_password_hash_roundtrip():
    h = hash_password("s3cret", iterations=1000)
    assert h.startswith("pbkdf2_sha256$1000$") and "s3cret" not in h
    assert verify_password("s3cret", h)
    assert not verify_password("wrong", h)
    assert not verify_password("s3cret", "md5$1$x$y") and not verify_password("s3cret", "garbage")


def test_demo_users_in_different_groups():
    users = load_users(os.path.join(DEMO_DIR, "users.yaml"))
    assert users["alice"].groups != users["bob"].groups
    assert verify_password("alice-odh", users["alice"].password_hash)
    assert users["admin"].admin and not users["alice"].admin


@pytest.mark.parametrize("doc,field", [
    ({"users": {"Bad Name": {"password_hash": "pbkdf2_sha256$1$a$b"}}}, "name"),
    ({"users": {"u": {"password_hash": "plain"}}}, "password_hash"),
    ({"users": {"u": {"password_hash": "pbkdf2_sha256$1$a$b", "groups": "g"}}}, "groups"),
    ({"users": {"u": {"password_hash": "pbkdf2_sha256$1$a$b", "admin": "yes"}}}, "admin"),
    ({"users": {"u": {"password_hash": "pbkdf2_sha256$1$a$b", "password": "x"}}}, "password"),
])
def test_user_file_errors_name_user_and_field(doc, field):
    with pytest.raises(UserFileError) as e:
        parse_users(doc, "users.yaml")
    assert e.value.field == field and "users.yaml" in str(e.value)


def test_user_file_shape():
    with pytest.raises(UserFileError, match="'users'"):
        parse_users({"people": {}}, "users.yaml")


def test_demo_settings():
    s = load_settings(DEMO_DIR)
    assert s.hub_port == 0 and s.ceph_enabled and s.culler_enabled and s.culler_timeout == 3600
    assert s.kafka_broker == "noida-db"  # the light default; Apache Kafka on request
    assert parse_settings({"kafka": {"broker": "apache-kafka"}}, "/x").kafka_broker == "apache-kafka"


@pytest.mark.parametrize("doc,field", [
    ({"hub": {"port": "80"}}, "hub.port"),
    ({"hub": {"port": 70000}}, "hub.port"),
    ({"idle_culler": {"timeout_seconds": 0}}, "idle_culler.timeout_seconds"),
    ({"idle_culler": {"enabled": 1}}, "idle_culler.enabled"),
    ({"ceph": {"size": 3}}, "ceph.size"),
    ({"zookeeper": {}}, "zookeeper"),  # an unknown section (kafka is a known one now)
    ({"kafka": {"port": "9092"}}, "kafka.port"),
    ({"kafka": {"broker": "zookeeper"}}, "kafka.broker"),
])
def test_settings_errors(doc, field):
    with pytest.raises(SettingsError) as e:
        parse_settings(doc, "/x", "platform.yaml")
    assert e.value.field == field


def test_missing_config_dir(tmp_path):
    with pytest.raises(SettingsError, match="does not exist"):
        load_settings(str(tmp_path / "nope"))


def test_check_config_command(capsys, tmp_path):
    assert main(["check-config", DEMO_DIR]) == 0
    assert "3 profiles" in capsys.readouterr().out
    (tmp_path / "platform.yaml").write_text("hub: {port: nope}\n")
    assert main(["check-config", str(tmp_path)]) == 2
    assert "hub.port" in capsys.readouterr().err


def test_hub_config_from_data():
    c = Config()
    configure(c, {
        "state_dir": "/state", "bind_url": "http://127.0.0.1:1234", "hub_bind_url": "http://127.0.0.1:2345",
        "proxy_api_url": "http://127.0.0.1:3456", "proxy_command": ["/bin/chp"], "profiles_file": "/c/profiles.yaml",
        "users_file": "/c/users.yaml", "s3_endpoint": "http://127.0.0.1:9000", "start_timeout": 60,
        "rgw_admin_keys_file": "/state/ceph/admin-keys.json", "user_quota": {"max_size": "10Gi", "max_objects": 0},
        "idle_culler": {"enabled": True, "timeout_seconds": 600, "every_seconds": 60},
        "proxy_auth_token": "proxy-secret-123", "platform_url": "http://127.0.0.1:4567",
    })
    assert c.JupyterHub.spawner_class == "odh-local"
    assert c.OdhLocalSpawner.profiles_path == "/c/profiles.yaml"
    # Spark UIs and model servers share the platform's nftables table (one per state directory)
    assert c.LocalSparkCluster.port_guard_id == platform_id("/state")
    assert f"--LocalMLServerBackend.port_guard_id={platform_id('/state')}" in c.JupyterHub.services[0]["command"]
    assert c.OdhStorage.admin_endpoint == "http://127.0.0.1:9000"
    assert c.OdhStorage.admin_keys_file == "/state/ceph/admin-keys.json"
    assert c.OdhStorage.quota_max_size == "10Gi" and "quota_max_objects" not in c.OdhStorage
    assert c.JupyterHub.db_url == "sqlite:////state/jupyterhub.sqlite"
    platform, culler = c.JupyterHub.services
    assert culler["name"] == "idle-culler" and "--timeout=600" in culler["command"]
    roles = {r["name"]: r for r in c.JupyterHub.load_roles}
    assert set(roles["idle-culler"]["scopes"]) >= {"delete:servers", "read:users:activity"}
    # the platform service: reachable by every user and by their servers' tokens; its secrets only in env
    assert platform["name"] == "odh-platform" and platform["url"] == "http://127.0.0.1:4567"
    assert "access:services!service=odh-platform" in roles["user"]["scopes"]
    # the admin view: the service's own token lists users and their servers and stops one; no consent page
    assert roles["odh-platform"]["services"] == ["odh-platform"]
    assert set(roles["odh-platform"]["scopes"]) == {"list:users", "read:users", "read:servers", "delete:servers"}
    assert platform["oauth_no_confirm"] is True
    assert "access:services!service=odh-platform" in c.Spawner.server_token_scopes
    assert c.Spawner.environment["ODH_PLATFORM_URL"] == "http://127.0.0.1:4567/services/odh-platform/"
    assert platform["environment"]["CONFIGPROXY_AUTH_TOKEN"] == "proxy-secret-123"
    assert not any("proxy-secret-123" in arg for arg in platform["command"])
    assert c.ConfigurableHTTPProxy.auth_token == "proxy-secret-123"


def test_entry_points_registered():
    from importlib.metadata import entry_points

    eps = {ep.name: ep.value for ep in entry_points(group="jupyterhub.spawners")}
    assert eps["odh-local"] == "odh_spawner.spawners.local:OdhLocalSpawner"
    assert eps["odh-kube"] == "odh_spawner.spawners.kube:OdhKubeSpawner"
