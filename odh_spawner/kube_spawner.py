"""OdhKubeSpawner: the Kubernetes backend, KubeSpawner driven by the same SpawnPlan.

The pod is produced by KubeSpawner's own manifest machinery (`get_pod_manifest`); we only set its traits
from the plan. KubeSpawner's `profile_list` is not used: profiles come from the odh profile file.
"""

from __future__ import annotations

from kubespawner import KubeSpawner

from .mixin import OdhSpawnerMixin
from .quantities import format_cpu, format_memory
from .resolve import SpawnPlan


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


class OdhKubeSpawner(OdhSpawnerMixin, KubeSpawner):
    backend_name = "kubernetes"

    async def apply_plan(self, plan: SpawnPlan) -> None:
        self.image = plan.image
        self.cpu_limit, self.cpu_guarantee = plan.cpu_limit, plan.cpu_request
        self.mem_limit, self.mem_guarantee = plan.mem_limit, plan.mem_request
        if plan.gpu_count:
            self.extra_resource_limits = {**self.extra_resource_limits, plan.gpu_resource: str(plan.gpu_count)}
            self.extra_resource_guarantees = {**self.extra_resource_guarantees, plan.gpu_resource: str(plan.gpu_count)}
        node_selector = {**self.node_selector, **plan.node_selector}
        if plan.gpu_count and plan.gpu_type:
            node_selector[plan.gpu_type_label] = plan.gpu_type
        self.node_selector = node_selector
        self.tolerations = [*self.tolerations, *toleration_manifests(plan)]
        volumes, mounts = volume_manifests(plan)
        self.volumes = [*self.volumes, *volumes]
        self.volume_mounts = [*self.volume_mounts, *mounts]
        self.environment = {**self.environment, **self.odh_env(plan)}
        self.extra_labels = {**self.extra_labels, "odh-hub/profile": plan.profile, "odh-hub/size": plan.size}
        self.extra_annotations = {
            **self.extra_annotations,
            "odh-hub/resources": f"cpu={format_cpu(plan.cpu_limit)},memory={format_memory(plan.mem_limit)}",
        }

    async def load_user_options(self):
        """KubeSpawner calls this in start(); the plan was already applied by apply_user_options."""
        if self.plan is None:
            await self._apply_odh_options(self, self.user_options)
