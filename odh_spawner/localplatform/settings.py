"""platform.yaml of a configuration directory (hub address, idle culler, Ceph): parsed and validated. Pure."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field as dc_field

import yaml

from odh_spawner.errors import ProfileError
from odh_spawner.quantities import parse_memory
from odh_spawner.profiles.quotas import QuotaError, parse_quotas
from odh_spawner.localplatform.ceph import MIN_BLUESTORE_SIZE, MIN_OSD_MEMORY_TARGET, OBJECTSTORES, ObjectStore

SECTIONS = {
    "hub": {"ip": str, "port": int},
    "idle_culler": {"enabled": bool, "timeout_seconds": int, "every_seconds": int},
    "ceph": {"enabled": bool, "objectstore": str, "bluestore_size": str, "osd_memory_target": str, "rgw_port": int,
             "user_quota_max_size": str, "user_quota_max_objects": int},
    "deployments": {"max_model_size": str, "max_per_user": int},
    "spawner": {"start_timeout_seconds": int, "concurrent_spawn_limit": int},
    "kafka": {"enabled": bool, "broker": str, "port": int, "bootstrap_servers": str, "max_ingestions_per_user": int},
    "platform_service": {"drop_privileges": bool},
    "quotas": {"default": dict, "groups": dict},  # per-group limits, validated by profiles.quotas
    "prometheus": {"enabled": bool, "port": int, "rules_file": str, "retention": str},
}


KAFKA_BROKERS = ("noida-db", "apache-kafka")  # what `kafka.broker` may name (localplatform.kafka, .apache_kafka)


class SettingsError(ProfileError):
    """platform.yaml is invalid (names the file and the field)."""


@dataclass(frozen=True)
class PlatformSettings:
    config_dir: str
    hub_ip: str = "127.0.0.1"
    hub_port: int = 0
    culler_enabled: bool = True
    culler_timeout: int = 3600
    culler_every: int = 300
    ceph_enabled: bool = True
    ceph_objectstore: str = "bluestore"
    ceph_bluestore_size: str = "4Gi"
    ceph_osd_memory_target: str = "896Mi"
    rgw_port: int = 0
    quota_max_size: str = ""
    quota_max_objects: int = 0
    deploy_max_model_size: str = "2Gi"
    deploy_max_per_user: int = 20
    start_timeout: int = 120
    concurrent_spawn_limit: int = 20  # JupyterHub's: more pending spawns than this get 429 and "try again in N s"
    kafka_enabled: bool = True
    kafka_broker: str = "noida-db"  # or "apache-kafka": Apache Kafka itself (a JVM, jars from Maven Central)
    kafka_port: int = 0
    kafka_bootstrap: str = ""  # an external broker instead of the local one
    max_ingestions_per_user: int = 10
    drop_privileges: bool = True  # the platform service runs as its own user; root work through its helper
    quotas: dict = dc_field(default_factory=dict)  # per-group limits (profiles.quotas), as written
    prometheus_enabled: bool = True  # a local Prometheus scraping the hub and the platform service
    prometheus_port: int = 0
    prometheus_rules_file: str = ""  # "" = the chart's rules (helm/odh-hub/files/prometheus/alerts.yaml)
    prometheus_retention: str = "7d"

    @property
    def ceph_store(self) -> ObjectStore:
        """The Ceph OSD's object store (already validated by parse_settings)."""
        return ObjectStore(self.ceph_objectstore, parse_memory(self.ceph_bluestore_size),
                           parse_memory(self.ceph_osd_memory_target))

    @property
    def profiles_file(self) -> str:
        return os.path.join(self.config_dir, "profiles.yaml")

    @property
    def users_file(self) -> str:
        return os.path.join(self.config_dir, "users.yaml")


def parse_settings(data, config_dir: str, source: str = "platform.yaml") -> PlatformSettings:
    data = data or {}
    if not isinstance(data, dict):
        raise SettingsError("Must be a mapping.", source=source)
    values: dict = {}
    for section, raw in data.items():
        if section not in SECTIONS:
            raise SettingsError(f"Unknown section; allowed: {', '.join(SECTIONS)}.", source=source, field=str(section))
        if not isinstance(raw, dict):
            raise SettingsError("Must be a mapping.", source=source, field=section)
        if section == "quotas":
            try:  # a bad size or count: a clear error naming the field
                parse_quotas(raw, source=source)
            except QuotaError as e:
                raise SettingsError(e.reason, source=source, field=e.field) from None
            values["quotas"] = raw
            continue
        for key, value in raw.items():
            kind = SECTIONS[section].get(key)
            field = f"{section}.{key}"
            if kind is None:
                raise SettingsError(f"Unknown key; allowed: {', '.join(SECTIONS[section])}.", source=source,
                                    field=field)
            if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
                raise SettingsError(f"Must be {kind.__name__}, got {value!r}.", source=source, field=field)
            low = 0 if key.endswith("port") or key.endswith("max_objects") else 1
            if kind is int and not (low <= value <= (65535 if key.endswith("port") else 2**62)):
                raise SettingsError(f"Out of range: {value}.", source=source, field=field)
            if field in ("ceph.user_quota_max_size", "deployments.max_model_size", "ceph.bluestore_size",
                         "ceph.osd_memory_target"):
                try:
                    size = parse_memory(value)
                except ValueError as e:
                    raise SettingsError(str(e), source=source, field=field) from None
                least = {"ceph.bluestore_size": (MIN_BLUESTORE_SIZE, "2Gi"),
                         "ceph.osd_memory_target": (MIN_OSD_MEMORY_TARGET, "896Mi")}.get(field)
                if least and size < least[0]:
                    raise SettingsError(f"Must be at least {least[1]}, got {value}.", source=source, field=field)
            if field == "kafka.broker" and value not in KAFKA_BROKERS:
                raise SettingsError(f"Must be one of {', '.join(KAFKA_BROKERS)} (noida-db: one small process; "
                                    f"apache-kafka: Apache Kafka itself, a JVM), got {value!r}.",
                                    source=source, field=field)
            if field == "prometheus.retention" and not re.fullmatch(r"[1-9][0-9]*(ms|s|m|h|d|w|y)", value):
                raise SettingsError(f"Must be a Prometheus duration such as 7d or 12h, got {value!r}.",
                                    source=source, field=field)
            if field == "prometheus.rules_file" and not value:
                raise SettingsError("Must name a file (leave the key out for the chart's rules).",
                                    source=source, field=field)
            if field == "ceph.objectstore" and value not in OBJECTSTORES:
                raise SettingsError(f"Must be one of {', '.join(OBJECTSTORES)} (bluestore keeps objects on disk "
                                    f"across restarts; memstore keeps them in memory only), got {value!r}.",
                                    source=source, field=field)
            values[field] = value
    g = values.get
    return PlatformSettings(
        config_dir=os.path.abspath(config_dir),
        hub_ip=g("hub.ip", "127.0.0.1"),
        hub_port=g("hub.port", 0),
        culler_enabled=g("idle_culler.enabled", True),
        culler_timeout=g("idle_culler.timeout_seconds", 3600),
        culler_every=g("idle_culler.every_seconds", 300),
        ceph_enabled=g("ceph.enabled", True),
        ceph_objectstore=g("ceph.objectstore", "bluestore"),
        ceph_bluestore_size=g("ceph.bluestore_size", "4Gi"),
        ceph_osd_memory_target=g("ceph.osd_memory_target", "896Mi"),
        rgw_port=g("ceph.rgw_port", 0),
        quota_max_size=g("ceph.user_quota_max_size", ""),
        quota_max_objects=g("ceph.user_quota_max_objects", 0),
        deploy_max_model_size=g("deployments.max_model_size", "2Gi"),
        deploy_max_per_user=g("deployments.max_per_user", 20),
        start_timeout=g("spawner.start_timeout_seconds", 120),
        concurrent_spawn_limit=g("spawner.concurrent_spawn_limit", 20),
        kafka_enabled=g("kafka.enabled", True),
        kafka_broker=g("kafka.broker", "noida-db"),
        kafka_port=g("kafka.port", 0),
        kafka_bootstrap=g("kafka.bootstrap_servers", ""),
        max_ingestions_per_user=g("kafka.max_ingestions_per_user", 10),
        drop_privileges=g("platform_service.drop_privileges", True),
        quotas=g("quotas", {}),
        prometheus_enabled=g("prometheus.enabled", True),
        prometheus_port=g("prometheus.port", 0),
        prometheus_rules_file=os.path.join(os.path.abspath(config_dir), g("prometheus.rules_file"))
        if g("prometheus.rules_file") else "",
        prometheus_retention=g("prometheus.retention", "7d"),
    )


def load_settings(config_dir: str) -> PlatformSettings:
    path = os.path.join(config_dir, "platform.yaml")
    if not os.path.isdir(config_dir):
        raise SettingsError("Configuration directory does not exist.", source=config_dir)
    data = {}
    if os.path.exists(path):
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise SettingsError(f"Not valid YAML: {e}", source=path) from None
    return parse_settings(data, config_dir, path)
