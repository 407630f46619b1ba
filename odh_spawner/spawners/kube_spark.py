"""A KubeSpawner server's Spark cluster: the spawner's side of `spark.kube_io` (names, timeouts and clients
from the spawner; the limits checked, the driver configuration mounted into the notebook pod; the anchor
deleted at stop)."""

from __future__ import annotations

import json
from collections.abc import Callable

from odh_spawner.kube.pods import toleration_manifests
from odh_spawner.quantities import format_bytes
from odh_spawner.spark import auth, kube
from odh_spawner.spark.errors import SparkError
from odh_spawner.spark.kube_io import (
    Apis, KubeSpark, Timeouts, current_usage, delete_anchor, notebook_env, start_cluster,
)
from odh_spawner.spark.limits import check_request
from odh_spawner.spark.naming import legacy_cluster_slug


def spawner_apis(spawner) -> Apis:
    from kubespawner.clients import shared_client

    return Apis(core=spawner.api, apps=shared_client("AppsV1Api"), custom=shared_client("CustomObjectsApi"),
                net=shared_client("NetworkingV1Api"))


def spawner_timeouts(spawner) -> Timeouts:
    return Timeouts(request=spawner.k8s_api_request_timeout, retry=spawner.k8s_api_request_retry_timeout)


def spec_for(spawner, plan, s3_secret: str, settings: KubeSpark, limits=None) -> kube.KubeSparkSpec:
    """The cluster of a KubeSpawner's server: its namespace, the profile's image and scheduling, and the limits
    (spark.api.ClusterLimits) it is started under."""
    return kube.KubeSparkSpec(
        user=spawner.user.name, server=spawner.name or "", namespace=spawner.namespace, image=plan.image,
        request=plan.spark, s3_secret=s3_secret, s3_endpoint=spawner.storage.s3_endpoint if s3_secret else "",
        spark_class=settings.spark_class, spark_version=settings.spark_version,
        image_pull_policy=spawner.image_pull_policy or "IfNotPresent", master_cpu=settings.master_cpu,
        master_memory=settings.master_memory, node_selector=dict(plan.node_selector),
        tolerations=tuple(toleration_manifests(plan)), cluster_type=settings.cluster_type,
        ui_proxy_url=spawner.spark_ui_path() if settings.cluster_type == "standalone" else "",
        limits=json.dumps(limits.to_json()) if limits is not None else "",
        platform_pod_labels=dict(settings.platform_pod_labels) if settings.network_policy else {},
    )


async def prepare_for_spawner(spawner, plan, s3_secret: str, limits) -> tuple[dict[str, str], Callable]:
    """Check the limits against the cluster's Spark objects and give the notebook pod what it needs of the
    cluster (its environment, the driver configuration's volume: names only). Returns (environment, create):
    `create()` then creates the cluster, beside the notebook pod. SparkError / SparkLimitError carry messages
    for the user."""
    settings, apis, t = KubeSpark(parent=spawner), spawner_apis(spawner), spawner_timeouts(spawner)
    spec = spec_for(spawner, plan, s3_secret, settings, spawner.spark_cluster_limits(limits, plan))
    anchor_name = kube.names(spec.user, spec.server)["anchor"]
    check_request(limits, plan.spark, await current_usage(apis, spec.namespace, spec.user, anchor_name, t,
                                                          spawner.log))
    standalone = settings.cluster_type == "standalone"
    mount_notebook_conf(spawner, spec if standalone else None)
    # the notebook pod is the one pod outside the cluster that its NetworkPolicy admits
    spawner.extra_labels = {**spawner.extra_labels, **kube.notebook_labels(spec)}

    async def create() -> None:
        r = plan.spark
        spawner.odh_progress(50, f"Creating your Spark cluster: {r.workers} worker(s), {r.worker_cores} core(s) "
                                 f"and {format_bytes(r.worker_memory)} each")
        await start_cluster(apis, spec, settings.cluster_type, t, spawner.log,
                            progress=lambda message: spawner.odh_progress(50, message),
                            secret=auth.new_secret() if standalone else "", network_policy=settings.network_policy)
        spawner.odh_progress(55, "Spark cluster created; Kubernetes is starting its pods")

    return notebook_env(spec, settings.cluster_type), create


def mount_notebook_conf(spawner, spec: kube.KubeSparkSpec | None) -> None:
    """Mount the cluster's driver configuration (its secret) into the notebook pod, replacing the one a previous
    start of this server mounted; `spec` None: none (no standalone cluster)."""
    volumes = [v for v in spawner.volumes if v.get("name") != kube.AUTH_VOLUME]
    mounts = [m for m in spawner.volume_mounts if m.get("name") != kube.AUTH_VOLUME]
    if spec is not None:
        volume, mount = kube.notebook_volume(spec)
        volumes, mounts = [*volumes, volume], [*mounts, mount]
    spawner.volumes, spawner.volume_mounts = volumes, mounts


async def stop_for_spawner(spawner) -> bool:
    """Delete this server's anchor (whether or not the last start made one: a hub restarted since then holds
    no record of it). Errors are logged, not raised: the server is stopped either way."""
    settings = KubeSpark(parent=spawner)
    name = kube.names(spawner.user.name, spawner.name or "")["anchor"]
    legacy = f"spark-anchor-{legacy_cluster_slug(spawner.user.name, spawner.name or '')}"
    try:
        deleted = await delete_anchor(spawner_apis(spawner), spawner.namespace, name, settings.delete_propagation,
                                      spawner_timeouts(spawner), spawner.log)
        if legacy != name:  # a cluster a hub of the previous version started, under the previous naming scheme
            deleted = await delete_anchor(spawner_apis(spawner), spawner.namespace, legacy,
                                          settings.delete_propagation, spawner_timeouts(spawner),
                                          spawner.log) or deleted
    except SparkError as e:
        spawner.log.error("Spark cluster of %s not deleted (anchor %s/%s): %s", spawner._log_name,
                          spawner.namespace, name, e)
        return False
    if deleted:
        spawner.log.info("Deleted Spark anchor %s/%s of %s (%s); Kubernetes removes the cluster",
                         spawner.namespace, name, spawner._log_name, settings.delete_propagation)
    return deleted
