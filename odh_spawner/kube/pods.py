"""Pod pieces built from a SpawnPlan, shared by the notebook pod and the Spark cluster's pods. Pure."""

from __future__ import annotations

from odh_spawner.profiles.resolve import SpawnPlan


def volume_manifests(plan: SpawnPlan) -> tuple[list[dict], list[dict]]:
    """Profile volumes -> (pod volumes, container volumeMounts). `{username}` is expanded by KubeSpawner."""
    volumes, mounts = [], []
    for v in plan.volumes:
        if v.source == "pvc":
            source = {"persistentVolumeClaim": {"claimName": v.ref}}
        elif v.source == "config_map":
            source = {"configMap": {"name": v.ref}}
        elif v.source == "secret":
            source = {"secret": {"secretName": v.ref}}
        else:
            source = {"emptyDir": {}}
        volumes.append({"name": v.name, **source})
        mount = {"name": v.name, "mountPath": v.mount_path}
        if v.read_only:
            mount["readOnly"] = True
        mounts.append(mount)
    return volumes, mounts


def toleration_manifests(plan: SpawnPlan) -> list[dict]:
    out = []
    for t in plan.tolerations:
        item = {"operator": t.operator}
        if t.key:
            item["key"] = t.key
        if t.value:
            item["value"] = t.value
        if t.effect:
            item["effect"] = t.effect
        if t.toleration_seconds is not None:
            item["tolerationSeconds"] = t.toleration_seconds
        out.append(item)
    return out
