"""Users' homes on Kubernetes (singleuser.storage): what the chart renders and what the hub makes of it."""

import json

import pytest
from traitlets.config import Config

from odh_spawner.kubeplatform.hubconfig import configure
from odh_spawner.naming import home_claim_name, user_slug
from tests.support.helm import HelmError, template

pytestmark = pytest.mark.unit


def hub_config(sets: dict) -> Config:
    (cm,) = [d for d in template(None, sets) if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith(
        "-hub-config")]
    c = Config()
    configure(c, json.loads(cm["data"]["settings.json"]), env={})
    return c


def hub_pvc_rules(sets: dict) -> list[dict]:
    (role,) = [d for d in template(None, sets) if d["kind"] == "Role" and d["metadata"]["name"] == "t-odh-hub-hub"]
    return [r for r in role["rules"] if "persistentvolumeclaims" in r["resources"]]


def test_by_default_every_user_gets_a_home_claim_and_the_hub_may_make_and_delete_them():
    c = hub_config({})
    assert c.KubeSpawner.storage_pvc_ensure is True and c.KubeSpawner.storage_capacity == "10Gi"
    assert "storage_class" not in c.KubeSpawner  # "" = the cluster's default StorageClass
    assert c.OdhKubeSpawner.home_mount_path == "/home/jovyan"
    assert hub_pvc_rules({}) == [{"apiGroups": [""], "resources": ["persistentvolumeclaims"],
                                  "verbs": ["get", "create", "delete"]}]


def test_a_storage_class_size_and_path_reach_the_spawner():
    c = hub_config({"singleuser.storage": {"type": "dynamic", "capacity": "50Gi", "storageClass": "ceph-rbd",
                                           "homeMountPath": "/home/user"}})
    assert (c.KubeSpawner.storage_capacity, c.KubeSpawner.storage_class) == ("50Gi", "ceph-rbd")
    assert c.OdhKubeSpawner.home_mount_path == "/home/user"


def test_none_means_no_claims_and_no_claim_permissions():
    c = hub_config({"singleuser.storage.type": "none"})
    assert "storage_pvc_ensure" not in c.KubeSpawner
    assert hub_pvc_rules({"singleuser.storage.type": "none"}) == []


@pytest.mark.parametrize("sets, message", [
    ({"singleuser.storage.type": "ephemeral"}, "at '/singleuser/storage/type': value must be one of 'dynamic', 'none'"),
    ({"singleuser.storage.capacity": "lots"}, "at '/singleuser/storage/capacity'"),
    ({"singleuser.storage.homeMountPath": "home"}, "at '/singleuser/storage/homeMountPath'"),
])
def test_bad_storage_values_are_refused_with_the_key(sets, message):
    with pytest.raises(HelmError, match=message):
        template(None, sets)


def test_claim_names_are_injective_dns_names():
    names = {u: home_claim_name(u) for u in ("alice", "Alice", "alice.smith", "alice-smith", "élise", "a" * 80)}
    assert len(set(names.values())) == len(names)
    assert all(n == f"home-{user_slug(u)}" and len(n) <= 253 for u, n in names.items())
