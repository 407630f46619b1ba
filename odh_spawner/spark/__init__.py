"""On-demand Spark for user servers: limits, a local standalone cluster, Kubernetes manifests.

- `limits`: SparkLimits (configurable), check_request / check_scale -> SparkLimitError (HTTP 403).
- `local`: LocalSparkCluster, a real standalone master + workers as local processes (as the user's system
  user with `run_as`); `reap_orphans`.
- `auth`: each cluster's own `spark.authenticate` secret, and how each Spark process gets it.
- `kube`: pure manifest builders (anchor ConfigMap, master/worker Deployments, Service, SparkConnect).
"""

from odh_spawner.spark.env import spark_env, spark_memory
from odh_spawner.spark.errors import SparkError, SparkLimitError, SparkStartError
from odh_spawner.spark.kube import (
    KubeSparkSpec,
    anchor_configmap,
    master_deployment,
    master_service,
    notebook_env,
    spark_connect,
    spark_connect_env,
    standalone_manifests,
    worker_deployment,
)
from odh_spawner.spark.limits import SparkLimits, SparkUsage, check_request, check_scale
from odh_spawner.spark.local import LocalSparkCluster
from odh_spawner.spark.naming import cluster_slug
from odh_spawner.spark.state import current_usage, reap_orphans, stop_cluster, stop_server_cluster
from odh_spawner.spark.status import AppStatus, SparkStatus, WorkerStatus, parse_master_json

__all__ = [
    "AppStatus", "KubeSparkSpec", "LocalSparkCluster", "SparkError", "SparkLimitError", "SparkLimits",
    "SparkStartError", "SparkStatus", "SparkUsage", "WorkerStatus", "anchor_configmap", "check_request",
    "check_scale", "cluster_slug", "current_usage", "master_deployment", "master_service", "notebook_env",
    "parse_master_json", "reap_orphans", "spark_connect", "spark_connect_env", "spark_env", "spark_memory",
    "standalone_manifests", "stop_cluster", "stop_server_cluster", "worker_deployment",
]
