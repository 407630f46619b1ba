"""OdhKubeSpawner: the pod for each demo profile, built by KubeSpawner offline, valid against the K8s schema."""

import os

import pytest
from jupyterhub.objects import Hub
from tornado import web
from traitlets.config import Config

from odh_spawner.spawners.kube import OdhKubeSpawner
from odh_spawner.profiles.format import load_profiles
from tests.conftest import ROOT
from tests.support.kube import Group, HubUser, serialize, validate, write_kubeconfig

DEMO = os.path.join(ROOT, "config", "demo", "profiles.yaml")


@pytest.fixture
def make_spawner(tmp_path, monkeypatch):
    from kubernetes_asyncio.config import kube_config

    # the default location is read at import time; point it at an offline config (never a real cluster)
    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", write_kubeconfig(tmp_path))

    def make(user="bob", groups=("ml-engineering",), **config):
        c = Config()
        c.OdhKubeSpawner.profiles_path = DEMO
        for k, v in config.items():
            setattr(c.OdhKubeSpawner, k, v)
        sp = OdhKubeSpawner(config=c, user=HubUser(user, [Group(g) for g in groups]), hub=Hub(), orm_spawner=None)
        return sp

    return make


async def pod_for(sp, options):
    await sp._apply_odh_options(sp, options)
    pod = serialize(await sp.get_pod_manifest())
    validate(pod)
    return pod


@pytest.mark.parametrize("slug", [p.slug for p in load_profiles(DEMO)])
async def test_every_demo_profile_builds_a_valid_pod(make_spawner, slug):
    pod = await pod_for(make_spawner(), {"profile": slug})
    container = pod["spec"]["containers"][0]
    profile = next(p for p in load_profiles(DEMO) if p.slug == slug)
    assert container["image"] == profile.image
    assert pod["metadata"]["labels"]["odh-hub/profile"] == slug
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["ODH_PROFILE"] == slug and env["ODH_BACKEND"] == "kubernetes"


async def test_size_and_gpu_reach_pod_resources_and_scheduling(make_spawner):
    pod = await pod_for(make_spawner(), {"profile": "pytorch-gpu", "size": "large", "gpu": 2})
    res = pod["spec"]["containers"][0]["resources"]
    assert res["limits"]["cpu"] == 4.0 and res["requests"]["cpu"] == 2.0
    assert res["limits"]["memory"] == 16 * 2**30 and res["requests"]["memory"] == 8 * 2**30
    assert res["limits"]["nvidia.com/gpu"] == "2" and res["requests"]["nvidia.com/gpu"] == "2"
    assert pod["spec"]["nodeSelector"] == {"node-role.kubernetes.io/gpu": "true", "nvidia.com/gpu.product": "NVIDIA-A10"}
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["spec"]["tolerations"]


async def test_no_gpu_means_no_gpu_resource_or_product_selector(make_spawner):
    pod = await pod_for(make_spawner(), {"profile": "pytorch-gpu", "gpu": 0})
    assert "nvidia.com/gpu" not in pod["spec"]["containers"][0]["resources"].get("limits", {})
    assert "nvidia.com/gpu.product" not in pod["spec"]["nodeSelector"]


async def test_profile_volumes_expand_username(make_spawner):
    pod = await pod_for(make_spawner("alice", ["data-science"]), {"profile": "datascience"})
    vols = {v["name"]: v for v in pod["spec"]["volumes"]}
    assert vols["data"]["persistentVolumeClaim"]["claimName"] == "data-alice"
    mounts = {m["name"]: m["mountPath"] for m in pod["spec"]["containers"][0]["volumeMounts"]}
    assert mounts["data"] == "/opt/app-root/src/data"


async def test_admin_config_is_kept_alongside_profile(make_spawner):
    sp = make_spawner(node_selector={"zone": "a"}, tolerations=[{"key": "t", "operator": "Exists"}])
    pod = await pod_for(sp, {"profile": "pytorch-gpu"})
    assert pod["spec"]["nodeSelector"]["zone"] == "a"
    assert {"key": "t", "operator": "Exists"} in pod["spec"]["tolerations"]


async def test_forbidden_profile_refused_before_any_pod(make_spawner):
    sp = make_spawner("alice", ["data-science"])
    with pytest.raises(web.HTTPError) as e:
        await sp._apply_odh_options(sp, {"profile": "pytorch-gpu"})
    assert e.value.status_code == 403 and "not available" in e.value.jupyterhub_message
    assert sp.plan is None


async def test_kubespawner_profile_list_form_is_replaced(make_spawner):
    sp = make_spawner("alice", ["data-science"])
    assert callable(sp.options_form)
    assert sp.options_from_form({"profile": ["minimal"]}) == {"profile": "minimal"}

