"""Kubernetes manifests for one user server's Spark cluster. Pure: dicts in, dicts out, no API calls.

A per-server **anchor** ConfigMap owns everything else through `ownerReferences`; the spawner deletes the
anchor in `post_stop_hook` and Kubernetes garbage-collects the cluster. Create the anchor first: the owned
objects need its `metadata.uid`. Two ways to run the cluster:

- standalone: a master Deployment + Service (7077 RPC, 8080 UI) and a worker Deployment (one pod per
  worker, cpu = cores, memory = worker memory + JVM overhead), started with Spark's own `spark-class`;
- the kubeflow spark-operator's `SparkConnect` (sparkoperator.k8s.io/v1alpha1), where it is installed.

The user's S3 keys reach Spark pods only by `valueFrom.secretKeyRef` to the per-user Secret, never as values.

A standalone cluster authenticates (`spark.authenticate`) with its own secret: a Secret owned by the anchor
(`auth_secret`, created before the Deployments) holds it; master and workers read it as `_SPARK_AUTH_SECRET`
by secretKeyRef (executors get it from their worker), and the notebook pod mounts the Secret's
`spark-defaults.conf` as its SPARK_CONF_DIR (`notebook_volume`, `notebook_env`): Spark's driver takes the secret
only from its configuration (see spark.auth). No literal secret is in any pod spec.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from odh_spawner.credentials.model import ACCESS_KEY_ENV, ENDPOINT_ENV, S3_CLIENT_SETTINGS, SECRET_KEY_ENV
from odh_spawner.quantities import format_cpu, format_memory, parse_memory
from odh_spawner.profiles.resolve import SparkRequest
from odh_spawner.spark import auth, s3a
from odh_spawner.spark.env import MIB, reverse_proxy_opts, spark_env, spark_memory
from odh_spawner.spark.limits import SparkUsage
from odh_spawner.spark.naming import cluster_slug, label_value

MASTER_PORT, MASTER_UI_PORT = 7077, 8080
WORKER_PORT, WORKER_UI_PORT = 7078, 8081
CONNECT_PORT = 15002  # the operator's Spark Connect gRPC port
DAEMON_MEMORY = 256 * MIB  # heap of the master and worker JVMs (SPARK_DAEMON_MEMORY)
MIN_EXECUTOR_OVERHEAD = 384 * MIB  # Spark's own minimum off-heap overhead per executor
SPARK_CONNECT_API = "sparkoperator.k8s.io/v1alpha1"
TMP_VOLUME = {"name": "tmp", "emptyDir": {}}
TMP_MOUNT = {"name": "tmp", "mountPath": "/tmp"}
AUTH_SECRET_KEY = "secret"  # the raw secret, for the daemons' _SPARK_AUTH_SECRET
AUTH_CONF_KEY = "spark-defaults.conf"  # the notebook driver's configuration holding it
AUTH_VOLUME = "spark-auth"
NOTEBOOK_CONF_DIR = "/etc/odh/spark"  # where the notebook pod mounts AUTH_CONF_KEY (its SPARK_CONF_DIR)
AUTH_OPTS = "-Dspark.authenticate=true"


@dataclass(frozen=True)
class KubeSparkSpec:
    """Everything the manifests of one user server's cluster depend on."""

    user: str
    server: str
    namespace: str
    image: str  # the profile's image (pinned by digest): it carries the same Spark as the notebook
    request: SparkRequest
    anchor_uid: str = ""  # metadata.uid of the created anchor ConfigMap (needed by the owned objects)
    s3_secret: str = ""  # the per-user Secret holding the S3 keys; "" = no S3 settings
    s3_endpoint: str = ""
    spark_class: str = "spark-class"  # on PATH in images with pip-installed pyspark; /opt/spark/bin/... in apache/spark
    spark_version: str = "4.3.0"
    image_pull_policy: str = "IfNotPresent"
    master_cpu: float = 0.5
    master_memory: int = 768 * MIB
    node_selector: dict = field(default_factory=dict)
    tolerations: tuple = ()
    cluster_type: str = "standalone"  # or "spark-connect"
    ui_proxy_url: str = ""  # the path under which the user's server proxies the master UI: Spark reverse-proxy mode
    limits: str = ""  # the limits the cluster was started under (spark.api.ClusterLimits JSON), for later scaling
    platform_pod_labels: dict = field(default_factory=dict)  # the platform service's pods (read the master's UI)

    @property
    def slug(self) -> str:
        return cluster_slug(self.user, self.server)


def names(user: str, server: str = "") -> dict[str, str]:
    """Object names: anchor, master (Deployment and Service), worker, connect (SparkConnect)."""
    slug = cluster_slug(user, server)
    return {"anchor": f"spark-anchor-{slug}", "master": f"spark-{slug}-master", "worker": f"spark-{slug}-worker",
            "connect": f"spark-{slug}", "instance": f"spark-{slug}", "auth": f"spark-{slug}-auth"}


def endpoints(user: str, server: str, namespace: str) -> dict[str, str]:
    """In-cluster addresses of one server's cluster: master (spark://), ui (the master's web UI), remote
    (Spark Connect, sc://)."""
    n = names(user, server)
    return {"master": f"spark://{n['master']}.{namespace}.svc:{MASTER_PORT}",
            "ui": f"http://{n['master']}.{namespace}.svc:{MASTER_UI_PORT}",
            "remote": f"sc://{n['connect']}-server.{namespace}.svc.cluster.local:{CONNECT_PORT}"}


def master_url(spec: KubeSparkSpec) -> str:
    return endpoints(spec.user, spec.server, spec.namespace)["master"]


def ui_url(spec: KubeSparkSpec) -> str:
    return endpoints(spec.user, spec.server, spec.namespace)["ui"]


def selector(spec: KubeSparkSpec, component: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": "spark", "app.kubernetes.io/instance": names(spec.user, spec.server)["instance"],
            "app.kubernetes.io/component": component}


def labels(spec: KubeSparkSpec, component: str) -> dict[str, str]:
    return {**selector(spec, component), "app.kubernetes.io/managed-by": "odh-hub",
            "odh-hub/user": label_value(spec.user), "odh-hub/server": label_value(spec.server)}


def annotations(spec: KubeSparkSpec) -> dict[str, str]:
    """Who the objects and pods are for (the pods' own copy lets the platform count their CPU and memory as the
    user's: kube.podmetrics)."""
    return {"hub.jupyter.org/username": spec.user, "hub.jupyter.org/servername": spec.server}


def _metadata(spec: KubeSparkSpec, name: str, component: str, owned: bool = True) -> dict:
    meta = {"name": name, "namespace": spec.namespace, "labels": labels(spec, component),
            "annotations": annotations(spec)}
    if owned:
        meta["ownerReferences"] = [owner_reference(spec)]
    return meta


def owner_reference(spec: KubeSparkSpec) -> dict:
    """The anchor as owner. No blockOwnerDeletion: it would need finalizer rights on the anchor (OpenShift)."""
    if not spec.anchor_uid:
        raise ValueError("`anchor_uid` is required: create the anchor ConfigMap first and pass its metadata.uid.")
    return {"apiVersion": "v1", "kind": "ConfigMap", "name": names(spec.user, spec.server)["anchor"],
            "uid": spec.anchor_uid}


def anchor_configmap(spec: KubeSparkSpec) -> dict:
    """The per-server anchor: deleting it (post_stop_hook) garbage-collects the whole cluster."""
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _metadata(spec, names(spec.user, spec.server)["anchor"], "spark-anchor", owned=False),
        "data": {"purpose": "Owner of this server's Spark cluster; deleted when the server stops.",
                 "cluster_type": spec.cluster_type, "workers": str(spec.request.workers),
                 "worker_cores": str(spec.request.worker_cores),
                 "worker_memory": format_memory(spec.request.worker_memory),
                 **({"limits": spec.limits} if spec.limits else {}),
                 **({"ui_proxy_url": spec.ui_proxy_url} if spec.ui_proxy_url else {})},
    }


def anchor_data_patch(workers: int) -> list[dict]:
    """JSON Patch recording a scaled cluster's worker count in its anchor (what the limits count)."""
    return [{"op": "add", "path": "/data/workers", "value": str(workers)}]


def scale_patch(cluster_type: str, workers: int) -> list[dict]:
    """JSON Patch setting the number of workers (standalone worker Deployment) or executors (SparkConnect)."""
    path = "/spec/executor/instances" if cluster_type == "spark-connect" else "/spec/replicas"
    return [{"op": "add", "path": path, "value": workers}]


RESTARTED_AT = "kubectl.kubernetes.io/restartedAt"


def restart_patch(deployment: dict, when: str) -> list[dict]:
    """JSON Patch that makes a Deployment replace its pods: the pod template annotation `kubectl rollout restart`
    sets, added beside the template's other annotations (if it has any)."""
    template_meta = ((deployment.get("spec") or {}).get("template") or {}).get("metadata") or {}
    if template_meta.get("annotations"):
        return [{"op": "add", "path": "/spec/template/metadata/annotations/" + RESTARTED_AT.replace("/", "~1"),
                 "value": when}]
    return [{"op": "add", "path": "/spec/template/metadata/annotations", "value": {RESTARTED_AT: when}}]


def anchor_request(anchor: dict) -> SparkRequest | None:
    """The cluster shape an anchor's data records, or None when it is not readable."""
    data = anchor.get("data") or {}
    try:
        return SparkRequest(int(data["workers"]), int(data["worker_cores"]), parse_memory(data["worker_memory"]))
    except (KeyError, TypeError, ValueError):
        return None


def usage_from_anchors(anchors: list[dict], user: str, exclude: str = "") -> SparkUsage:
    """Workers of the clusters `anchors` record: this user's (by the exact user-name annotation) and everyone's.
    Anchors being deleted and the anchor named `exclude` (the server being started) do not count."""
    mine = total = 0
    for a in anchors:
        meta = a.get("metadata") or {}
        labels = meta.get("labels") or {}
        if (labels.get("app.kubernetes.io/component") != "spark-anchor" or meta.get("deletionTimestamp")
                or meta.get("name") == exclude):
            continue
        request = anchor_request(a)
        workers = request.workers if request else 0
        total += workers
        if (meta.get("annotations") or {}).get("hub.jupyter.org/username") == user:
            mine += workers
    return SparkUsage(user_workers=mine, total_workers=total)


def worker_pod_memory(worker_memory: int) -> int:
    """Pod memory of a worker: what its executors may use, plus the worker JVM and the executor's overhead."""
    overhead = max(MIN_EXECUTOR_OVERHEAD, worker_memory // 10)
    return -(-(worker_memory + DAEMON_MEMORY + overhead) // MIB) * MIB


def s3_env(spec: KubeSparkSpec) -> list[dict]:
    """The user's S3 settings for Spark pods: keys by secretKeyRef only, plain client settings as values."""
    if not spec.s3_secret:
        return []
    env: list[dict[str, Any]] = [
        {"name": key, "valueFrom": {"secretKeyRef": {"name": spec.s3_secret, "key": key}}}
        for key in (ACCESS_KEY_ENV, SECRET_KEY_ENV)
    ]
    env += [{"name": k, "value": v} for k, v in S3_CLIENT_SETTINGS.items()]
    if spec.s3_endpoint:
        env += [{"name": ENDPOINT_ENV, "value": spec.s3_endpoint},
                {"name": "AWS_ENDPOINT_URL_S3", "value": spec.s3_endpoint}]
    return env


def _container_security() -> dict:
    return {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]}}


def _pod_spec(spec: KubeSparkSpec, container: dict) -> dict:
    pod = {
        "automountServiceAccountToken": False,  # standalone Spark never calls the Kubernetes API
        "enableServiceLinks": False,
        "securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
        "containers": [container],
        "volumes": [TMP_VOLUME],
    }
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod["tolerations"] = list(spec.tolerations)
    return pod


def _deployment(spec: KubeSparkSpec, name: str, component: str, replicas: int, container: dict) -> dict:
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _metadata(spec, name, component),
        "spec": {
            "replicas": replicas,
            "strategy": {"type": "Recreate"},
            "selector": {"matchLabels": selector(spec, component)},
            "template": {"metadata": {"labels": labels(spec, component), "annotations": annotations(spec)},
                         "spec": _pod_spec(spec, container)},
        },
    }


def _reverse_proxy_opts(spec: KubeSparkSpec) -> str:
    """Spark's reverse-proxy mode when the user's server proxies the master UI: the master serves the workers'
    and applications' pages under `ui_proxy_url`, so every link in the UI stays behind the hub's proxy."""
    return " " + reverse_proxy_opts(spec.ui_proxy_url) if spec.ui_proxy_url else ""


def _daemon_env(spec: KubeSparkSpec) -> list[dict]:
    return [
        {"name": "SPARK_LOCAL_IP", "valueFrom": {"fieldRef": {"fieldPath": "status.podIP"}}},
        {"name": "SPARK_DAEMON_MEMORY", "value": spark_memory(DAEMON_MEMORY)},
        {"name": "SPARK_NO_DAEMONIZE", "value": "true"},
        {"name": auth.SECRET_ENV, "valueFrom": {"secretKeyRef": {"name": names(spec.user, spec.server)["auth"],
                                                                 "key": AUTH_SECRET_KEY}}},
    ]


def auth_secret(spec: KubeSparkSpec, secret: str) -> dict:
    """The cluster's own secret, owned by the anchor: the raw value for master and workers, and the notebook
    driver's spark-defaults.conf holding it. `data` (base64), so that a JSON Patch can replace it whole."""
    def b64(text: str) -> str:
        return base64.b64encode(text.encode()).decode("ascii")

    # s3a:// without keys in the file: every Spark pod has the user's keys in its environment (s3_env)
    extra = s3a.driver_conf(spec.s3_endpoint) if spec.s3_endpoint and spec.s3_secret else {}

    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": _metadata(spec, names(spec.user, spec.server)["auth"], "spark-auth"),
        "data": {AUTH_SECRET_KEY: b64(secret), AUTH_CONF_KEY: b64(auth.render_conf(auth.driver_conf(secret, extra)))},
    }


def notebook_volume(spec: KubeSparkSpec) -> tuple[dict, dict]:
    """The notebook pod's (volume, volumeMount) for the cluster's driver configuration (only that key of the
    Secret, read-only, 0440: the pod's fsGroup owns it)."""
    volume = {"name": AUTH_VOLUME, "secret": {"secretName": names(spec.user, spec.server)["auth"],
                                              "items": [{"key": AUTH_CONF_KEY, "path": AUTH_CONF_KEY}],
                                              "defaultMode": 0o440}}
    return volume, {"name": AUTH_VOLUME, "mountPath": NOTEBOOK_CONF_DIR, "readOnly": True}


def master_deployment(spec: KubeSparkSpec) -> dict:
    memory = format_memory(spec.master_memory)
    container = {
        "name": "spark-master",
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": [spec.spark_class, "org.apache.spark.deploy.master.Master"],
        "args": ["--host", "$(SPARK_LOCAL_IP)", "--port", str(MASTER_PORT), "--webui-port", str(MASTER_UI_PORT)],
        "env": _daemon_env(spec) + [{"name": "SPARK_MASTER_OPTS",
                                     "value": "-Dspark.master.rest.enabled=false -Dspark.ui.killEnabled=false "
                                              + AUTH_OPTS + _reverse_proxy_opts(spec)}],
        "ports": [{"name": "spark", "containerPort": MASTER_PORT, "protocol": "TCP"},
                  {"name": "http", "containerPort": MASTER_UI_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/json/", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "spark"}, "initialDelaySeconds": 30, "periodSeconds": 20},
        "resources": {"requests": {"cpu": format_cpu(spec.master_cpu), "memory": memory},
                      "limits": {"cpu": format_cpu(max(1.0, spec.master_cpu)), "memory": memory}},
        "securityContext": _container_security(),
        "volumeMounts": [TMP_MOUNT],
    }
    return _deployment(spec, names(spec.user, spec.server)["master"], "spark-master", 1, container)


def master_service(spec: KubeSparkSpec) -> dict:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _metadata(spec, names(spec.user, spec.server)["master"], "spark-master"),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(spec, "spark-master"),
            "ports": [{"name": "spark", "port": MASTER_PORT, "targetPort": "spark", "protocol": "TCP"},
                      {"name": "http", "port": MASTER_UI_PORT, "targetPort": "http", "protocol": "TCP"}],
        },
    }


def worker_deployment(spec: KubeSparkSpec) -> dict:
    r = spec.request
    resources = {"cpu": str(r.worker_cores), "memory": format_memory(worker_pod_memory(r.worker_memory))}
    container = {
        "name": "spark-worker",
        "image": spec.image,
        "imagePullPolicy": spec.image_pull_policy,
        "command": [spec.spark_class, "org.apache.spark.deploy.worker.Worker"],
        "args": ["--host", "$(SPARK_LOCAL_IP)", "--port", str(WORKER_PORT), "--webui-port", str(WORKER_UI_PORT),
                 "--cores", str(r.worker_cores), "--memory", spark_memory(r.worker_memory),
                 "--work-dir", "/tmp/spark-work", master_url(spec)],
        "env": _daemon_env(spec) + [{"name": "SPARK_WORKER_OPTS", "value": AUTH_OPTS + _reverse_proxy_opts(spec)}]
        + s3_env(spec),
        "ports": [{"name": "spark", "containerPort": WORKER_PORT, "protocol": "TCP"},
                  {"name": "http", "containerPort": WORKER_UI_PORT, "protocol": "TCP"}],
        "readinessProbe": {"httpGet": {"path": "/json/", "port": "http"}, "periodSeconds": 5},
        "livenessProbe": {"tcpSocket": {"port": "spark"}, "initialDelaySeconds": 30, "periodSeconds": 20},
        "resources": {"requests": dict(resources), "limits": dict(resources)},
        "securityContext": _container_security(),
        "volumeMounts": [TMP_MOUNT],
    }
    return _deployment(spec, names(spec.user, spec.server)["worker"], "spark-worker", r.workers, container)


NOTEBOOK_LABEL = "odh-hub/spark-instance"  # on the owner's notebook pod: the cluster's instance name


def notebook_labels(spec: KubeSparkSpec) -> dict[str, str]:
    """The label the owner's notebook pod carries: the only pod outside the cluster its NetworkPolicy admits."""
    return {NOTEBOOK_LABEL: names(spec.user, spec.server)["instance"]}


def network_policy(spec: KubeSparkSpec) -> dict:
    """Who may reach the cluster's pods (master, workers, a SparkConnect server): its own pods, its owner's
    notebook pod (`notebook_labels`), and the platform service's pods on the master's UI port only (they read
    its status); no other pod, so a colleague's pod can neither submit to it nor reach Spark Connect or the UIs."""
    instance = {"app.kubernetes.io/name": "spark", "app.kubernetes.io/instance": names(spec.user, spec.server)[
        "instance"]}
    ingress = [{"from": [{"podSelector": {"matchLabels": dict(instance)}},
                         {"podSelector": {"matchLabels": notebook_labels(spec)}}]}]
    if spec.platform_pod_labels:
        ingress.append({"from": [{"podSelector": {"matchLabels": dict(spec.platform_pod_labels)}}],
                        "ports": [{"port": MASTER_UI_PORT, "protocol": "TCP"}]})
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": _metadata(spec, names(spec.user, spec.server)["instance"], "spark-network-policy"),
        "spec": {"podSelector": {"matchLabels": instance}, "policyTypes": ["Ingress"], "ingress": ingress},
    }


def standalone_manifests(spec: KubeSparkSpec, secret: str) -> list[dict]:
    """The owned objects of a standalone cluster, in creation order (the anchor comes first, separately; the
    Secret before the pods that read it)."""
    return [auth_secret(spec, secret), master_deployment(spec), master_service(spec), worker_deployment(spec)]


def _connect_template(spec: KubeSparkSpec, container_name: str, component: str) -> dict:
    container = {"name": container_name, "image": spec.image, "imagePullPolicy": spec.image_pull_policy,
                 "securityContext": _container_security()}
    env = s3_env(spec)
    if env:
        container["env"] = env
    pod = {"securityContext": {"runAsNonRoot": True, "seccompProfile": {"type": "RuntimeDefault"}},
           "containers": [container]}
    if spec.node_selector:
        pod["nodeSelector"] = dict(spec.node_selector)
    if spec.tolerations:
        pod["tolerations"] = list(spec.tolerations)
    return {"metadata": {"labels": labels(spec, component), "annotations": annotations(spec)}, "spec": pod}


def spark_connect(spec: KubeSparkSpec, server_cores: int = 1, server_memory: int = 1024 * MIB) -> dict:
    """A kubeflow spark-operator SparkConnect: a Spark Connect server with `workers` executors."""
    r = spec.request
    body: dict[str, Any] = {
        "sparkVersion": spec.spark_version,
        "image": spec.image,
        "server": {"cores": server_cores, "memory": spark_memory(server_memory),
                   "template": _connect_template(spec, "spark-kubernetes-driver", "spark-connect-server")},
        "executor": {"instances": r.workers, "cores": r.worker_cores, "memory": spark_memory(r.worker_memory),
                     "template": _connect_template(spec, "spark-kubernetes-executor", "spark-executor")},
    }
    if spec.s3_endpoint:
        body["hadoopConf"] = {"fs.s3a.endpoint": spec.s3_endpoint, "fs.s3a.path.style.access": "true"}
    return {"apiVersion": SPARK_CONNECT_API, "kind": "SparkConnect",
            "metadata": _metadata(spec, names(spec.user, spec.server)["connect"], "spark-connect"), "spec": body}


def notebook_env(spec: KubeSparkSpec) -> dict[str, str]:
    """Environment for the notebook pod of a standalone cluster (SparkSession.builder.getOrCreate() uses it). The
    pod must mount `notebook_volume(spec)`: SPARK_CONF_DIR names it."""
    return {**spark_env(master_url(spec), ui_url(spec), spec.request, spec.ui_proxy_url),
            "SPARK_CONF_DIR": NOTEBOOK_CONF_DIR}


def spark_connect_env(spec: KubeSparkSpec) -> dict[str, str]:
    """Environment for the notebook pod of a SparkConnect cluster (pyspark's Connect client reads SPARK_REMOTE)."""
    return {"SPARK_REMOTE": endpoints(spec.user, spec.server, spec.namespace)["remote"]}
