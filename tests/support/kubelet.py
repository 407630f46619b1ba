"""A TEST kubelet. There is no real kubelet and no container runtime on these machines: no container ever runs.

`TestKubelet` plays the two parts of a node that the tests need, through the real API server only:
- it registers a Node (capacity, labels, taints as the test asks; Ready), so the real kube-scheduler binds pods to
  it, or leaves them Pending when they do not fit (resources, node selector, taints vs. tolerations);
- it watches the pods of one namespace (kubernetes_asyncio, a real watch with real resourceVersions) and, for each
  pod the scheduler bound, patches `pods/status` as a kubelet would once its containers started (phase Running,
  Ready/ContainersReady conditions, a podIP from a fake pod network, running container statuses), or, on demand,
  reports it Failed (phase Failed, a reason and message, terminated containers); and it completes the graceful
  deletion of its pods (the final delete with grace period 0, which a kubelet sends once containers stopped).

Because a ReplicaSet's pods are reported Ready too, the real Deployment controller computes real
readyReplicas/availableReplicas. Nothing listens at a reported podIP.
"""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import itertools
import logging
from dataclasses import dataclass

from kubernetes_asyncio import client, watch
from kubernetes_asyncio.client.rest import ApiException
from kubernetes_asyncio.config import new_client_from_config

log = logging.getLogger("tests.kubelet")


def now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Failure:
    reason: str
    message: str
    exit_code: int = 1


class TestKubelet:
    """A test kubelet for one namespace (see the module docstring). Use as `async with TestKubelet(...) as k:`."""

    __test__ = False  # not a pytest test class

    def __init__(self, kubeconfig: str, namespace: str, node_name: str | None = None, labels: dict | None = None,
                 taints: list | None = None, capacity: dict | None = None, pod_cidr: str = "10.244.0.0/16",
                 require_scheduled: bool = True):
        self.kubeconfig = kubeconfig
        self.namespace = namespace
        self.node_name = node_name or f"test-kubelet-{namespace}"
        self.labels = labels or {}
        self.taints = taints or []
        self.capacity = {"cpu": "16", "memory": "64Gi", "pods": "110", "ephemeral-storage": "100Gi",
                         **(capacity or {})}
        self.require_scheduled = require_scheduled
        self._ips = (str(ip) for ip in itertools.islice(ipaddress.ip_network(pod_cidr).hosts(), 1, None))
        self._failures: dict[str, Failure] = {}
        self._label_failures: list[tuple[dict, Failure]] = []  # (labels a pod must have, its failure)
        self._done: set[str] = set()  # pod uids reported
        self.running: dict[str, str] = {}  # pod name -> podIP reported
        self.failed: list[str] = []
        self.finalized: list[str] = []
        self._task: asyncio.Task | None = None
        self._api_client = None
        self.core: client.CoreV1Api | None = None

    # -- lifecycle -----------------------------------------------------------------------------------------------
    async def __aenter__(self) -> "TestKubelet":
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def start(self) -> None:
        self._api_client = await new_client_from_config(config_file=self.kubeconfig)
        self.core = client.CoreV1Api(self._api_client)
        await self._register_node()
        self._task = asyncio.ensure_future(self._run())

    async def stop(self) -> None:
        if self._task:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        try:
            await self.core.delete_node(self.node_name)
        except ApiException as e:
            if e.status != 404:
                raise
        await self._api_client.close()

    def fail(self, pod_name: str, reason: str = "Error", message: str = "the test kubelet fails this pod",
             exit_code: int = 1) -> None:
        """Report the named pod Failed (when it appears, or now if it is already known) instead of Running."""
        self._failures[pod_name] = Failure(reason, message, exit_code)
        for uid in list(self._done):  # a pod already reported Running is reported again
            if uid.startswith(f"{pod_name}/"):
                self._done.discard(uid)
        if self._task and self.core:
            asyncio.ensure_future(self._fail_now(pod_name))

    def fail_labelled(self, labels: dict, reason: str = "Error", message: str = "the test kubelet fails this pod",
                      exit_code: int = 1) -> None:
        """Report every pod that appears from now on with all of `labels` Failed instead of Running (e.g. a new
        ReplicaSet's pods, whose names are not known in advance: none of them is ever reported Ready)."""
        self._label_failures.append((dict(labels), Failure(reason, message, exit_code)))

    async def _fail_now(self, pod_name: str) -> None:
        try:
            pod = await (await self.core.read_namespaced_pod(pod_name, self.namespace, _preload_content=False)).json()
            if pod.get("kind") == "Pod":  # not yet created: the watch reports it Failed when it comes
                await self._handle(pod)
        except ApiException as e:
            if e.status != 404:
                log.warning("test kubelet: failing %s: %s", pod_name, e.status)

    # -- the node ------------------------------------------------------------------------------------------------
    async def _register_node(self) -> None:
        node = {"apiVersion": "v1", "kind": "Node", "metadata": {"name": self.node_name, "labels": {
            "kubernetes.io/hostname": self.node_name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64",
            "odh-hub/test-kubelet": "true", **self.labels}}, "spec": {"taints": self.taints}}
        await self.core.create_node(node)
        status = {"status": {
            "capacity": self.capacity, "allocatable": self.capacity,
            "conditions": [{"type": "Ready", "status": "True", "reason": "KubeletReady",
                            "message": "test kubelet (no container runtime)", "lastHeartbeatTime": now(),
                            "lastTransitionTime": now()}],
            "addresses": [{"type": "InternalIP", "address": "127.0.0.1"},
                          {"type": "Hostname", "address": self.node_name}],
            "nodeInfo": {"kubeletVersion": "v1.20.2-test", "containerRuntimeVersion": "none://test",
                         "operatingSystem": "linux", "architecture": "amd64", "osImage": "test kubelet",
                         "kernelVersion": "", "kubeProxyVersion": "", "machineID": "", "systemUUID": "",
                         "bootID": ""}}}
        await self.core.patch_node_status(self.node_name, status, _content_type="application/merge-patch+json")
        # the TaintNodesByCondition admission plugin gave the new Node the not-ready taint; with no node lifecycle
        # controller running (it would evict: no heartbeats here) the test kubelet puts the Node's taints back
        await self.core.patch_node(self.node_name, {"spec": {"taints": self.taints or None}},
                                   _content_type="application/merge-patch+json")

    # -- pods ----------------------------------------------------------------------------------------------------
    async def _run(self) -> None:
        while True:
            try:
                listed = await self.core.list_namespaced_pod(self.namespace, _preload_content=False)
                body = await listed.json()
                for pod in body["items"]:
                    await self._handle(pod)
                rv = body["metadata"]["resourceVersion"]
                w = watch.Watch()
                async with w:
                    async for event in w.stream(self.core.list_namespaced_pod, self.namespace,
                                                resource_version=rv, timeout_seconds=300,
                                                allow_watch_bookmarks=True):
                        if event["type"] in ("ADDED", "MODIFIED"):
                            await self._handle(event["raw_object"])
            except asyncio.CancelledError:
                raise
            except Exception as e:  # a dropped watch or a 410: list again, as every reflector does
                log.info("test kubelet %s: re-listing after %s", self.namespace, e)
                await asyncio.sleep(0.2)

    async def _handle(self, pod: dict) -> None:
        meta, spec, status = pod["metadata"], pod["spec"], pod.get("status", {})
        name, key = meta["name"], f"{meta['name']}/{meta['uid']}"
        if meta.get("deletionTimestamp"):
            if spec.get("nodeName") and key not in self.finalized:  # bound pods wait for their kubelet
                self.finalized.append(key)
                try:
                    await self.core.delete_namespaced_pod(
                        name, self.namespace, grace_period_seconds=0,
                        body={"preconditions": {"uid": meta["uid"]}, "gracePeriodSeconds": 0})
                except ApiException as e:
                    if e.status not in (404, 409):
                        raise
            return
        if key in self._done or status.get("phase") not in (None, "Pending", "Running"):
            return
        if self.require_scheduled and not spec.get("nodeName"):
            return  # the scheduler has not bound it (yet): a real kubelet never sees it
        failure = self._failures.get(name) or next(
            (f for labels, f in self._label_failures if labels.items() <= (meta.get("labels") or {}).items()), None)
        if failure is None and status.get("phase") == "Running":
            return
        self._done.add(key)
        containers = [c["name"] for c in spec["containers"]]
        images = {c["name"]: c["image"] for c in spec["containers"]}
        t = now()
        if failure is not None:
            new = {"phase": "Failed", "reason": failure.reason, "message": failure.message,
                   "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": t},
                                  {"type": "Ready", "status": "False", "reason": "PodFailed",
                                   "lastTransitionTime": t}],
                   "containerStatuses": [{"name": c, "ready": False, "restartCount": 0, "image": images[c],
                                          "imageID": "", "started": False,
                                          "state": {"terminated": {"exitCode": failure.exit_code,
                                                                   "reason": failure.reason,
                                                                   "message": failure.message,
                                                                   "startedAt": t, "finishedAt": t}}}
                                         for c in containers]}
            self.failed.append(name)
        else:
            ip = next(self._ips)
            new = {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": "127.0.0.1", "startTime": t,
                   "conditions": [{"type": typ, "status": "True", "lastTransitionTime": t} for typ in
                                  ("Initialized", "Ready", "ContainersReady", "PodScheduled")],
                   "containerStatuses": [{"name": c, "ready": True, "started": True, "restartCount": 0,
                                          "image": images[c], "imageID": f"docker-pullable://{images[c]}",
                                          "containerID": f"test://{meta['uid']}/{c}",
                                          "state": {"running": {"startedAt": t}}} for c in containers]}
            self.running[name] = ip
        try:
            await self.core.patch_namespaced_pod_status(name, self.namespace, {"status": new},
                                                        _content_type="application/merge-patch+json")
        except ApiException as e:
            self._done.discard(key)
            if e.status != 404:
                log.warning("test kubelet: status of %s: %s", name, e.status)
