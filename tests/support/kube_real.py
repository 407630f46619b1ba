"""Fixtures and helpers for driving odh-hub's Kubernetes code against the real control plane of
tests/support/k8s_control_plane.py (a real kube-apiserver 1.20, controller-manager and scheduler; no kubelet:
`kubelet` below is the test kubelet of tests/support/kubelet.py).

Test modules import the fixtures they use: `from tests.support.kube_real import kube_spawner, kubelet  # noqa`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from jupyterhub.objects import Hub
from kubernetes_asyncio import client as k8s_client
from kubernetes_asyncio.config import kube_config
from traitlets.config import Config

from tests.conftest import ROOT
from tests.support.kube import Group, HubUser
from tests.support.kubelet import TestKubelet

DEMO_PROFILES = str(Path(ROOT) / "config" / "demo" / "profiles.yaml")


async def wait_until(predicate, timeout: float, what: str, interval: float = 0.1):
    """The first truthy predicate() within `timeout` seconds, polled without blocking the event loop (the test
    kubelet and the spawner's reflectors run on it)."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
        await asyncio.sleep(interval)


def get(cp, path: str) -> dict | None:
    """An object from the real API server, or None on 404 (anything else fails the test)."""
    r = cp.api("GET", path)
    if r.status == 404:
        return None
    assert r.ok, (path, r.status, r.body)
    return r.body


def names(cp, path: str, **labels) -> list[str]:
    """Names of the objects a list path returns (optionally by label selector)."""
    selector = ",".join(f"{k}={v}" for k, v in labels.items())
    r = cp.api("GET", path + (f"?labelSelector={selector}" if selector else ""))
    assert r.ok, (path, r.status, r.body)
    return sorted(item["metadata"]["name"] for item in r.body["items"])


def core(ns: str, plural: str, name: str = "") -> str:
    return f"/api/v1/namespaces/{ns}/{plural}" + (f"/{name}" if name else "")


def apps(ns: str, plural: str, name: str = "") -> str:
    return f"/apis/apps/v1/namespaces/{ns}/{plural}" + (f"/{name}" if name else "")


def group(api_version: str, ns: str, plural: str, name: str = "") -> str:
    return f"/apis/{api_version}/namespaces/{ns}/{plural}" + (f"/{name}" if name else "")


def provide_volume(cp, ns: str, claim: str, size: str = "10Gi") -> str:
    """A PersistentVolume (hostPath; nothing mounts it: no kubelet) reserved for the claim `ns/claim` that
    something else (KubeSpawner) will create: the controller-manager's PV binder binds them when it appears, as a
    dynamic provisioner would. Returns the PV's name (cluster-scoped: delete it after the test)."""
    pv = f"{ns}-{claim}"
    r = cp.api("POST", "/api/v1/persistentvolumes", {
        "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": pv},
        "spec": {"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"], "storageClassName": "",
                 "persistentVolumeReclaimPolicy": "Retain", "hostPath": {"path": f"/nonexistent/{pv}"},
                 "claimRef": {"namespace": ns, "name": claim}}})
    assert r.ok, r.body
    return pv


def create_bound_pvc(cp, ns: str, name: str, size: str = "1Gi") -> str:
    """A PersistentVolumeClaim bound to a PersistentVolume of its own (hostPath; nothing mounts it: no kubelet),
    as an admin would pre-create a user's data volume. The controller-manager's PV binder binds them for real
    (waited for: the scheduler keeps a pod with an unbound claim Pending). Returns the PV's name (cluster-scoped:
    delete it after the test)."""
    pv = provide_volume(cp, ns, name, size)
    r = cp.api("POST", core(ns, "persistentvolumeclaims"), {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": name},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": pv,
                 "resources": {"requests": {"storage": size}}}})
    assert r.ok, r.body
    deadline = time.monotonic() + 60
    while (get(cp, core(ns, "persistentvolumeclaims", name)) or {}).get("status", {}).get("phase") != "Bound":
        assert time.monotonic() < deadline, f"PVC {ns}/{name} not bound by the PV controller"
        time.sleep(0.1)
    return pv


@pytest.fixture
async def kubelet(k8s_control_plane, k8s_namespace):
    """The test kubelet (not a real one) for the test's namespace: a Ready Node, pods reported Running/Ready."""
    async with TestKubelet(k8s_control_plane.kubeconfig, k8s_namespace) as k:
        yield k


@pytest.fixture
async def kube_spawner(k8s_control_plane, k8s_namespace, monkeypatch):
    """OdhKubeSpawner objects (driven in-process, as JupyterHub's User would) whose Kubernetes client uses the
    admin kubeconfig of the real control plane, in the test's namespace."""
    import kubespawner.clients

    from odh_spawner.spawners.kube import OdhKubeSpawner

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", k8s_control_plane.kubeconfig)
    monkeypatch.setattr(kubespawner.clients, "_client_cache", {})  # clients of earlier tests point elsewhere
    kubespawner.clients.load_config.cache_clear()
    default = k8s_client.Configuration.get_default_copy()

    def make(user="alice", groups=("data-science",), kubeconfig: str | None = None, **config):
        if kubeconfig:  # another identity (e.g. the chart's ServiceAccount)
            monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", kubeconfig)
            monkeypatch.setattr(kubespawner.clients, "_client_cache", {})
            kubespawner.clients.load_config.cache_clear()
        c = Config()
        c.OdhKubeSpawner.profiles_path = DEMO_PROFILES
        c.OdhKubeSpawner.namespace = k8s_namespace
        c.OdhKubeSpawner.start_timeout = 20
        for section, values in config.items():
            for k, val in values.items():
                setattr(getattr(c, section), k, val)
        return OdhKubeSpawner(config=c, user=HubUser(user, [Group(g) for g in groups]), hub=Hub(),
                              orm_spawner=None)

    yield make
    await OdhKubeSpawner._stop_all_reflectors()
    kubespawner.clients.load_config.cache_clear()
    k8s_client.Configuration.set_default(default)


# -- RBAC: the least-privilege Roles the Helm chart gives the hub and the platform service ------------------------
# (namespaced; only the kinds each creates or reads; tests/integration/test_kube_real_rbac.py shows they suffice)


def make_identity(cp, ns: str, name: str, rules: list[dict], directory) -> tuple[str, str]:
    """A ServiceAccount bound to a Role with `rules` in `ns`; returns (its token, a kubeconfig for it)."""
    rbac = f"/apis/rbac.authorization.k8s.io/v1/namespaces/{ns}"
    for path, body in (
            (core(ns, "serviceaccounts"), {"metadata": {"name": name}}),
            (f"{rbac}/roles", {"metadata": {"name": name}, "rules": rules}),
            (f"{rbac}/rolebindings", {"metadata": {"name": name},
                                      "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role",
                                                  "name": name},
                                      "subjects": [{"kind": "ServiceAccount", "name": name, "namespace": ns}]})):
        r = cp.api("POST", path, body)
        assert r.ok, (path, r.status, r.body)
    token = cp.service_account_token(ns, name)
    return token, cp.write_kubeconfig(Path(directory) / f"kubeconfig-{name}", token, namespace=ns, user=name)
