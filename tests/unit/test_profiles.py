"""The profile file format: the demo parses; every error names file, profile and field."""

import os

import pytest
import yaml

from odh_spawner.errors import ProfileError
from odh_spawner.profiles.format import load_profiles, parse_profiles, parse_profiles_yaml
from tests.conftest import ROOT
from tests.support.profiles import DIGEST, document, profile

DEMO = os.path.join(ROOT, "config", "demo", "profiles.yaml")


def test_demo_profiles_parse():
    profiles = load_profiles(DEMO)
    assert [p.slug for p in profiles] == ["minimal", "datascience", "pytorch-gpu"]
    assert all(p.pinned for p in profiles)
    gpu = profiles[2]
    assert gpu.groups == frozenset({"ml-engineering"})
    assert gpu.gpu.max == 2 and gpu.gpu.type == "NVIDIA-A10"
    assert profiles[1].spark.workers.max == 3
    assert profiles[1].spark.worker_memory.default == 2**30
    assert profiles[0].default and profiles[0].default_size.slug == "small"


def test_full_profile_fields():
    p = parse_profiles(document(profile(
        "full", description="d", default=True, users=["u1"], groups=["g1"],
        gpu={"max": 2, "default": 1, "type": "T4"}, env={"A": "1", "B": 2},
        volumes=[{"name": "data", "mount_path": "/data", "pvc": "data-{username}", "read_only": True},
                 {"name": "scratch", "mount_path": "/scratch", "empty_dir": {}}],
        node_selector={"disk": "ssd"},
        tolerations=[{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"},
                     {"key": "k", "value": "v", "effect": "NoExecute", "toleration_seconds": 30}],
        spark={"workers": {"default": 1, "max": 4}, "worker_cores": {"max": 2}, "worker_memory": {"max": "4Gi"}},
        local={"environment": "hub"},
    )))[0]
    assert p.env == {"A": "1", "B": "2"}
    assert p.volumes[0].ref == "data-{username}" and p.volumes[0].read_only
    assert p.volumes[1].source == "empty_dir"
    assert p.tolerations[1].toleration_seconds == 30
    assert p.spark.worker_cores.default == 1 and p.spark.worker_memory.max == 4 * 2**30
    assert p.sizes[0].cpu_request == 0.5 and p.sizes[0].mem_limit == 2 * 2**30


def test_unpinned_image_refused_with_hint():
    with pytest.raises(ProfileError) as e:
        parse_profiles(document(profile("tagged", image="quay.io/x/y:latest")), "f.yaml")
    msg = str(e.value)
    assert "f.yaml" in msg and "'tagged'" in msg and "'image'" in msg
    assert "allow_unpinned: true" in msg and "sha256" in msg


def test_unpinned_image_allowed_when_profile_says_so():
    p = parse_profiles(document(profile("tagged", image="quay.io/x/y:latest", allow_unpinned=True)))[0]
    assert not p.pinned


def _sizes(**change):
    s = profile()["sizes"]
    s[0] = {**s[0], **change}
    return s


ERRORS = [
    # (profile overrides, field named in the error, fragment of the message)
    ({"slug": "Bad_Slug"}, "slug", "invalid value"),
    ({"slug": 5}, "slug", "must be a string"),
    ({"display_name": ""}, "display_name", "must not be empty"),
    ({"image": "not an image"}, "image", "invalid value"),
    ({"image": f"UPPER/x@{DIGEST}"}, "image", "invalid value"),
    ({"allow_unpinned": "yes"}, "allow_unpinned", "true or false"),
    ({"default": 1}, "default", "true or false"),
    ({"users": "alice"}, "users", "list of non-empty strings"),
    ({"groups": [""]}, "groups", "list of non-empty strings"),
    ({"sizes": []}, "sizes", "non-empty list"),
    ({"sizes": "small"}, "sizes", "non-empty list"),
    ({"sizes": _sizes(cpu={"request": 2, "limit": 1})}, "sizes[0].cpu", "above limit"),
    ({"sizes": _sizes(memory={"request": "4Gi", "limit": "1Gi"})}, "sizes[0].memory", "above limit"),
    ({"sizes": _sizes(memory={"limit": "lots"})}, "sizes[0].memory.limit", "Invalid memory"),
    ({"sizes": _sizes(cpu={"limit": "1Gi"})}, "sizes[0].cpu.limit", "Invalid CPU"),
    ({"sizes": _sizes(cpu={"request": 1})}, "sizes[0].cpu.limit", "is required"),
    ({"sizes": _sizes(colour="red")}, "sizes[0]", "unknown key(s) colour"),
    ({"sizes": _sizes(slug="large")}, "sizes[1].slug", "duplicate size"),
    ({"sizes": _sizes(default=True) + [{**_sizes()[0], "slug": "x", "default": True}]}, "sizes", "more than one"),
    ({"gpu": {"max": 0}}, "gpu.max", ">= 1"),
    ({"gpu": {"max": 1, "default": 2}}, "gpu.default", "above max"),
    ({"gpu": {"max": 1, "resource": "gpu"}}, "gpu.resource", "extended resource"),
    ({"gpu": {"max": "1"}}, "gpu.max", "integer"),
    ({"gpu": {"default": 1}}, "gpu.max", "is required"),
    ({"env": {"1BAD": "x"}}, "env.1BAD", "invalid name"),
    ({"env": {"A": {"nested": 1}}}, "env.A", "must be a string"),
    ({"env": ["A=1"]}, "env", "must be a mapping"),
    ({"volumes": [{"name": "v", "mount_path": "/v"}]}, "volumes[0]", "exactly one source"),
    ({"volumes": [{"name": "v", "mount_path": "/v", "pvc": "a", "secret": "b"}]}, "volumes[0]", "exactly one source"),
    ({"volumes": [{"name": "v", "mount_path": "rel", "pvc": "a"}]}, "volumes[0].mount_path", "absolute"),
    ({"volumes": [{"name": "v", "mount_path": "/v", "pvc": "Bad Name"}]}, "volumes[0].pvc", "DNS-safe"),
    ({"volumes": [{"name": "v", "mount_path": "/v", "empty_dir": {"medium": "Memory"}}]}, "volumes[0].empty_dir", "must be {}"),
    ({"volumes": {"name": "v"}}, "volumes", "must be a list"),
    ({"node_selector": {"ok": "bad value!"}}, "node_selector.ok", "invalid value"),
    ({"tolerations": [{"key": "k", "operator": "Maybe"}]}, "tolerations[0].operator", "Exists, Equal"),
    ({"tolerations": [{"key": "k", "effect": "Sometimes"}]}, "tolerations[0].effect", "NoSchedule"),
    ({"tolerations": [{"key": "k", "operator": "Exists", "value": "v"}]}, "tolerations[0].value", "must be empty"),
    ({"tolerations": [{"operator": "Equal", "value": "v"}]}, "tolerations[0].key", "needs operator Exists"),
    ({"tolerations": [{"key": "k", "toleration_seconds": 5, "effect": "NoSchedule"}]},
     "tolerations[0].toleration_seconds", "NoExecute"),
    ({"spark": {"workers": {"max": 0}}}, "spark.workers.max", ">= 1"),
    ({"spark": {"workers": {"default": 5, "max": 2}}}, "spark.workers.default", "above max"),
    ({"spark": {"worker_cores": {"max": 2}}}, "spark.workers", "is required"),
    ({"spark": {"workers": {"max": 2}, "worker_memory": {"max": "big"}}}, "spark.worker_memory.max", "Invalid memory"),
    ({"spark": {"workers": {"max": 2}, "gpus": 1}}, "spark", "unknown key(s) gpus"),
    ({"local": {"environment": ""}}, "local.environment", "must not be empty"),
    ({"local": {"venv": "/x"}}, "local", "unknown key(s) venv"),
    ({"colour": "red"}, "", "unknown key(s) colour"),
]


@pytest.mark.parametrize("overrides,field,fragment", ERRORS, ids=[f"{e[1] or 'profile'}-{i}" for i, e in enumerate(ERRORS)])
def test_every_error_names_file_profile_and_field(overrides, field, fragment):
    raw = profile("broken")
    raw.update(overrides)
    with pytest.raises(ProfileError) as e:
        parse_profiles(document(raw), "profiles.yaml")
    err = e.value
    assert err.source == "profiles.yaml"
    slug = raw["slug"]
    assert err.profile == (slug if isinstance(slug, str) else "#0")
    assert err.field == field
    assert fragment in str(err)
    assert "profiles.yaml" in str(err) and (not field or repr(field) in str(err))


@pytest.mark.parametrize("doc,fragment", [
    ({}, "'profiles'"),
    ([], "must be a mapping"),
    ({"profiles": []}, "at least one profile"),
    ({"profiles": {"a": 1}}, "must be a list"),
    ({"profiles": [profile("a")], "extra": 1}, "unknown key(s) extra"),
    ({"profiles": [profile("a"), profile("a")]}, "Duplicate profile slug"),
    ({"profiles": ["just a string"]}, "must be a mapping"),
    ({"profiles": [{"display_name": "x"}]}, "is required"),
])
def test_document_errors(doc, fragment):
    with pytest.raises(ProfileError) as e:
        parse_profiles(doc, "doc.yaml")
    assert fragment in str(e.value) and "doc.yaml" in str(e.value)


def test_yaml_syntax_error_names_file():
    with pytest.raises(ProfileError) as e:
        parse_profiles_yaml("profiles: [unclosed", "bad.yaml")
    assert "bad.yaml" in str(e.value) and "Not valid YAML" in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(ProfileError) as e:
        load_profiles(str(tmp_path / "nope.yaml"))
    assert "nope.yaml" in str(e.value) and "Cannot read" in str(e.value)


def test_roundtrip_through_yaml(tmp_path):
    path = tmp_path / "p.yaml"
    path.write_text(yaml.safe_dump(document(profile("a"), profile("b", groups=["g"]))))
    assert [p.slug for p in load_profiles(str(path))] == ["a", "b"]
