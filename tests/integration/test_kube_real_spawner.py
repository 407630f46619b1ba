"""OdhKubeSpawner against the real API server (tests/support/k8s_control_plane.py), driven in-process as
JupyterHub's User drives it (start; stop then the post-stop hook), with a real Ceph RGW for the per-user
credentials. The real kube-scheduler binds the pods to the Node of the test kubelet (tests/support/kubelet.py:
not a real kubelet, no container runs), which reports them Running/Ready, or Failed when a test asks."""

import asyncio
import base64
import json

import boto3
import pytest
from botocore.config import Config as BotoConfig
from tornado import web

from odh_spawner.naming import secret_name
from tests.support.kube_real import core, get, kube_spawner, kubelet, names, wait_until  # noqa: F401
from tests.support.kubelet import TestKubelet

TOKEN, NEXT_TOKEN = "a1b2c3d4e5f60718293a4b5c6d7e8f90", "f0e1d2c3b4a5968778695a4b3c2d1e0f"


def storage(ceph) -> dict:
    return {"OdhStorage": {"admin_endpoint": ceph.endpoint, "admin_keys_file": ceph.admin_keys_file}}


def env_of(pod: dict) -> dict:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in pod["spec"]["containers"][0]["env"]}


def left_of(cp, ns: str) -> dict:
    """What is left in the namespace besides its own default ServiceAccount token and CA ConfigMap."""
    out = {}
    for kind in ("pods", "secrets", "configmaps", "services"):
        found = [n for n in names(cp, core(ns, kind)) if n != "kube-root-ca.crt" and not n.startswith("default-token")]
        if found:
            out[kind] = found
    for kind in ("deployments", "replicasets"):
        found = names(cp, f"/apis/apps/v1/namespaces/{ns}/{kind}")
        if found:
            out[kind] = found
    return out


async def test_spawn_with_per_user_credentials_and_the_hub_token_by_secret(
        k8s_control_plane, k8s_namespace, kube_spawner, kubelet, ceph):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    sp = kube_spawner(**storage(ceph))
    sp.api_token = TOKEN
    await sp._apply_odh_options(sp, {"profile": "minimal"})  # the storage branch of apply_plan runs here
    url = await asyncio.wait_for(sp.start(), 60)
    pod = get(cp, core(ns, "pods", "jupyter-alice"))
    assert url == f"http://{pod['status']['podIP']}:8888" and pod["spec"]["nodeName"] == kubelet.node_name

    # the per-user Secret holds alice's own RGW keys: they work against the real RGW
    s3 = get(cp, core(ns, "secrets", secret_name("alice")))
    keys = {k: base64.b64decode(v).decode() for k, v in s3["data"].items()}
    client = boto3.client("s3", endpoint_url=ceph.endpoint, aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
                          aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                          config=BotoConfig(s3={"addressing_style": "path"}))
    assert client.list_buckets()["Owner"]["ID"]  # alice's keys authenticate
    assert s3["metadata"]["annotations"]["hub.jupyter.org/username"] == "alice"
    # the pod reads the keys and the hub token by reference only: no secret value is in the pod
    env = env_of(pod)
    assert env["AWS_SECRET_ACCESS_KEY"] == {"secretKeyRef": {"name": secret_name("alice"),
                                                             "key": "AWS_SECRET_ACCESS_KEY"}}
    assert env["S3_ENDPOINT_URL"] == ceph.endpoint
    assert env["JUPYTERHUB_API_TOKEN"] == {"secretKeyRef": {"name": "jupyter-alice-hub-token", "key": "token"}}
    text = json.dumps(pod)
    assert TOKEN not in text and keys["AWS_SECRET_ACCESS_KEY"] not in text
    token_secret = get(cp, core(ns, "secrets", "jupyter-alice-hub-token"))
    assert base64.b64decode(token_secret["data"]["token"]).decode() == TOKEN
    messages = [e["message"] for e in sp._odh_events]
    steps = ["Profile Minimal Python, size small", "Getting your object-storage credentials",
             "Creating your server's pod"]
    assert [m for m in messages if m in steps] == steps, messages

    # the hub restarts: a new spawner object with the saved state re-attaches to the running pod
    state = sp.get_state()
    sp2 = kube_spawner(**storage(ceph))
    sp2.load_state(state)
    assert await sp2.poll() is None

    # stop, as JupyterHub does: the pod goes (the test kubelet completes its graceful deletion), the token
    # Secret goes; alice's credentials Secret stays for her next server (her RGW user and keys are reused)
    await sp2.stop()
    await sp2.run_post_stop_hook()
    assert left_of(cp, ns) == {"secrets": [secret_name("alice")]}

    # the next start reuses the same keys (the Secret is replaced by the same data)
    sp3 = kube_spawner(**storage(ceph))
    sp3.api_token = TOKEN
    await sp3._apply_odh_options(sp3, {"profile": "minimal"})
    await asyncio.wait_for(sp3.start(), 60)
    assert get(cp, core(ns, "secrets", secret_name("alice")))["data"] == s3["data"]
    await sp3.stop()
    await sp3.run_post_stop_hook()


async def test_gpu_pods_are_scheduled_only_where_gpus_and_tolerations_fit(
        k8s_control_plane, k8s_namespace, kube_spawner):  # noqa: F811
    """The real scheduler places the GPU profile's pod on a tainted GPU node: only because the pod requests the
    GPU resource, selects the node's labels and tolerates its taint (all from the profile)."""
    cp, ns = k8s_control_plane, k8s_namespace
    gpu_node = TestKubelet(cp.kubeconfig, ns, node_name=f"gpu-{ns}", capacity={"nvidia.com/gpu": "1"},
                           labels={"node-role.kubernetes.io/gpu": "true", "nvidia.com/gpu.product": "NVIDIA-A10"},
                           taints=[{"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"}])
    async with gpu_node:
        sp = kube_spawner(user="carol", groups=("ml-engineering",))
        await sp._apply_odh_options(sp, {"profile": "pytorch-gpu"})
        await asyncio.wait_for(sp.start(), 60)
        pod = get(cp, core(ns, "pods", "jupyter-carol"))
        assert pod["spec"]["nodeName"] == gpu_node.node_name
        c = pod["spec"]["containers"][0]
        assert c["resources"]["limits"]["nvidia.com/gpu"] == "1" and c["resources"]["requests"]["nvidia.com/gpu"] == "1"
        assert pod["spec"]["nodeSelector"] == {"node-role.kubernetes.io/gpu": "true",
                                               "nvidia.com/gpu.product": "NVIDIA-A10"}
        assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["spec"]["tolerations"]

        # the node's only GPU is taken: a second GPU server stays Pending, the scheduler says why
        sp_b = kube_spawner(user="dave", groups=("ml-engineering",))
        sp_b.start_timeout = 3
        await sp_b._apply_odh_options(sp_b, {"profile": "pytorch-gpu"})
        with pytest.raises(TimeoutError):
            await sp_b.start()
        # the scheduler's Event reached dave's progress messages, in user words
        waiting = [e["message"] for e in sp_b._odh_events if e["message"].startswith("Waiting for room")]
        assert waiting and "Insufficient nvidia.com/gpu" in waiting[0], sp_b._odh_events
        pending = get(cp, core(ns, "pods", "jupyter-dave"))
        assert pending["status"]["phase"] == "Pending" and not pending["spec"].get("nodeName")
        (cond,) = [c for c in pending["status"]["conditions"] if c["type"] == "PodScheduled"]
        assert cond["reason"] == "Unschedulable" and "Insufficient nvidia.com/gpu" in cond["message"]
        await sp_b.stop()
        await sp_b.run_post_stop_hook()
        await sp.stop()
        await sp.run_post_stop_hook()
        assert names(cp, core(ns, "pods")) == []


async def test_a_failed_pod_fails_the_start_and_leaves_nothing_behind(
        k8s_control_plane, k8s_namespace, kube_spawner, kubelet, ceph):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    pv = None
    from tests.support.kube_real import create_bound_pvc

    pv = create_bound_pvc(cp, ns, "data-alice")
    try:
        kubelet.fail("jupyter-alice", reason="Evicted", message="The node was low on resource: memory.")
        sp = kube_spawner(**storage(ceph))
        sp.api_token = TOKEN
        await sp._apply_odh_options(sp, {"profile": "datascience", "spark": {"workers": 1}})
        t0 = asyncio.get_running_loop().time()
        with pytest.raises(web.HTTPError) as failed:
            await sp.start()
        # at once, not after start_timeout (20 s here), and saying why
        assert asyncio.get_running_loop().time() - t0 < 15
        assert failed.value.status_code == 500 and failed.value.jupyterhub_message == (
            "Your server's pod stopped before it was ready (Failed: Evicted: The node was low on resource: memory.). "
            "Try again, or tell your platform admin.")
        pod = get(cp, core(ns, "pods", "jupyter-alice"))
        assert pod["status"]["phase"] == "Failed" and pod["status"]["reason"] == "Evicted"
        assert "jupyter-alice" in kubelet.failed
        # JupyterHub's clean-up after a failed start: stop(), then the post-stop hook
        await sp.stop()
        await sp.run_post_stop_hook()
        # the pod, its token Secret, the Spark anchor and (garbage-collected) cluster are gone; only alice's
        # credentials Secret stays, as after every stop
        await wait_until(lambda: left_of(cp, ns) == {"secrets": [secret_name("alice")]}, 60,
                         "nothing of the failed start left")
    finally:
        cp.api("DELETE", f"/api/v1/persistentvolumes/{pv}")


async def test_a_pod_name_taken_by_a_left_over_pod_is_replaced(k8s_control_plane, k8s_namespace,
                                                               kube_spawner, kubelet):  # noqa: F811
    """The API answers 409 for the pod (a crashed hub's pod of the same server): KubeSpawner deletes and creates."""
    cp, ns = k8s_control_plane, k8s_namespace
    sp = kube_spawner()
    sp.api_token = TOKEN
    await sp._apply_odh_options(sp, {"profile": "minimal"})
    await asyncio.wait_for(sp.start(), 60)
    first_uid = get(cp, core(ns, "pods", "jupyter-alice"))["metadata"]["uid"]
    sp2 = kube_spawner()  # no state: the hub forgot the server (its pod and token Secret are left)
    sp2.api_token = NEXT_TOKEN
    await sp2._apply_odh_options(sp2, {"profile": "minimal", "size": "medium"})
    await asyncio.wait_for(sp2.start(), 60)
    pod = get(cp, core(ns, "pods", "jupyter-alice"))
    assert pod["metadata"]["uid"] != first_uid and pod["metadata"]["labels"]["odh-hub/size"] == "medium"
    # the left-over token Secret (409 on create) was replaced with the new server's token
    token = get(cp, core(ns, "secrets", "jupyter-alice-hub-token"))["data"]["token"]
    assert base64.b64decode(token).decode() == NEXT_TOKEN
    await sp2.stop()
    await sp2.run_post_stop_hook()
    assert names(cp, core(ns, "pods")) == [] and get(cp, core(ns, "secrets", "jupyter-alice-hub-token")) is None
