"""Users' homes on Kubernetes: with the chart's default `singleuser.storage.type: dynamic`, each user's server
mounts a PersistentVolumeClaim of their own (`home-<user slug>`), created at the first start and kept when the
server stops, so the next start finds the same home. Against the real API server (tests/support/k8s_control_plane),
with the hub's identity bound to the chart's own rendered hub Role, and the chart's rendered hub settings.

No kubelet runs containers here, so no file is written into a home: what is proven is that the claim is made
once, bound, mounted where the image's user lives, kept and reused, and never another user's."""

import asyncio

import pytest

from odh_spawner.kubeplatform.hubconfig import configure
from odh_spawner.naming import home_claim_name, user_slug
from tests.support.chart_rbac import hub_rules
from tests.support.helm import template
from tests.support.kube_real import core, get, kube_spawner, kubelet, make_identity, provide_volume  # noqa: F401
from tests.support.kube_real import names, wait_until

pytestmark = pytest.mark.integration


def chart_home_settings() -> dict:
    """The KubeSpawner storage settings the chart's default values give the hub (rendered, then loaded)."""
    docs = template(None, {})
    (cm,) = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-hub-config")]
    import json

    from traitlets.config import Config

    c = Config()
    configure(c, json.loads(cm["data"]["settings.json"]), env={})
    return {"KubeSpawner": {k: c.KubeSpawner[k] for k in ("storage_pvc_ensure", "storage_capacity",
                                                          "storage_access_modes") if k in c.KubeSpawner},
            "OdhKubeSpawner": {"home_mount_path": c.OdhKubeSpawner.home_mount_path}}


def claim_of(pod: dict, mount_path: str) -> str:
    (mount,) = [m for m in pod["spec"]["containers"][0]["volumeMounts"] if m["mountPath"] == mount_path]
    (vol,) = [v for v in pod["spec"]["volumes"] if v["name"] == mount["name"]]
    return vol["persistentVolumeClaim"]["claimName"]


async def test_each_user_gets_a_home_claim_of_their_own_kept_across_servers(
        k8s_control_plane, k8s_namespace, kube_spawner, kubelet, tmp_path):  # noqa: F811
    cp, ns = k8s_control_plane, k8s_namespace
    settings = chart_home_settings()
    assert settings == {"KubeSpawner": {"storage_pvc_ensure": True, "storage_capacity": "10Gi",
                                        "storage_access_modes": ["ReadWriteOnce"]},
                        "OdhKubeSpawner": {"home_mount_path": "/home/jovyan"}}
    _, kubeconfig = make_identity(cp, ns, "odh-hub-home", hub_rules(), tmp_path)
    users = ("alice", "Alice.Smith@example.org", "bob")
    pvs = [provide_volume(cp, ns, home_claim_name(u)) for u in users]
    try:
        first = {}
        for u in users:
            sp = kube_spawner(u, kubeconfig=kubeconfig, **settings)
            await sp._apply_odh_options(sp, {"profile": "minimal"})
            await asyncio.wait_for(sp.start(), 60)
            pod = get(cp, core(ns, "pods", sp.pod_name))
            claim = claim_of(pod, "/home/jovyan")
            assert claim == home_claim_name(u) == f"home-{user_slug(u)}"
            pvc = get(cp, core(ns, "persistentvolumeclaims", claim))
            assert pvc["spec"]["resources"]["requests"]["storage"] == "10Gi"
            assert pvc["metadata"]["annotations"]["hub.jupyter.org/username"] == u
            await wait_until(lambda: (get(cp, core(ns, "persistentvolumeclaims", claim)) or {}).get(
                "status", {}).get("phase") == "Bound", 60, f"{claim} bound")
            first[u] = pvc["metadata"]["uid"]
            await sp.stop()
            await sp.run_post_stop_hook()
            await wait_until(lambda: get(cp, core(ns, "pods", sp.pod_name)) is None, 60, f"{u}'s pod gone")
        # three users, three claims (the look-alike name gets its own), all kept after their servers stopped
        assert len(set(home_claim_name(u) for u in users)) == 3
        assert sorted(names(cp, core(ns, "persistentvolumeclaims"))) == sorted(home_claim_name(u) for u in users)

        # alice's next server (a new spawner object, as after a hub restart) mounts the same claim, not a new one
        sp = kube_spawner("alice", kubeconfig=kubeconfig, **settings)
        await sp._apply_odh_options(sp, {"profile": "minimal"})
        await asyncio.wait_for(sp.start(), 60)
        assert claim_of(get(cp, core(ns, "pods", sp.pod_name)), "/home/jovyan") == "home-alice"
        assert get(cp, core(ns, "persistentvolumeclaims", "home-alice"))["metadata"]["uid"] == first["alice"]
        await sp.stop()
        await sp.run_post_stop_hook()
    finally:
        for claim in (home_claim_name(u) for u in users):
            cp.api("DELETE", core(ns, "persistentvolumeclaims", claim))
        for pv in pvs:
            cp.api("DELETE", f"/api/v1/persistentvolumes/{pv}")
