"""Features a profile leaves out on purpose (issue 19): the profile field, the plan, the server's environment
(both spawners), the notebook's /odh/api/features answer and the messages."""

import json

import pytest
import yaml
from jupyterhub.objects import Hub
from traitlets.config import Config

from odh_spawner.errors import ProfileError
from odh_spawner.profiles import features as hub_side
from odh_spawner.profiles.features import feature_env, left_out
from odh_spawner.profiles.format import parse_profiles
from odh_spawner.profiles.resolve import resolve
from server_extension import features as notebook_side
from server_extension.features import (FEATURES, NO_KAFKA, NO_PLATFORM, NO_STORAGE, elsewhere_of, features,
                                       features_off, left_out_message, left_out_reason, refusal)
from tests.support.kube import Group, HubUser, serialize, write_kubeconfig
from tests.support.profiles import document, profile

pytestmark = pytest.mark.unit

SPARK = {"workers": {"default": 1, "max": 2}}
PROFILES = document(
    profile("minimal", display_name="Minimal Python", default=True, leave_out=["ingestions", "deployments"]),
    profile("datascience", display_name="Standard Data Science", spark=SPARK),
    profile("gpu", display_name="PyTorch with GPU", groups=["ml"], spark=SPARK),
    profile("lean", display_name="Lean {braces}", leave_out=["ingestions", "buckets"]),
)
INGEST_OFF = ("Kafka ingestion is left out of your server's profile 'Minimal Python'; start your server with "
              "'Standard Data Science' to use it.")


def refused(doc) -> ProfileError:
    with pytest.raises(ProfileError) as e:
        parse_profiles(doc, "profiles.yaml")
    return e.value


def test_hub_and_notebook_side_agree_on_names():
    """The spawner writes the environment, the server reads it; neither imports the other's module."""
    assert tuple(FEATURES) == hub_side.FEATURES
    for name in ("OFF_ENV", "ELSEWHERE_ENV", "PROFILE_NAME_ENV"):
        assert getattr(hub_side, name) == getattr(notebook_side, name)


# -- the profile field ---------------------------------------------------------------------------------------
def test_leave_out_parses_and_spark_is_left_out_without_a_spark_block():
    minimal, datascience, _, lean = parse_profiles(PROFILES)
    assert minimal.leave_out == {"ingestions", "deployments"}
    assert left_out(minimal) == {"ingestions", "deployments", "spark"}  # no spark: block
    assert left_out(datascience) == frozenset()
    assert left_out(lean) == {"ingestions", "buckets", "spark"}
    assert parse_profiles(document(profile("p", leave_out=["spark"])))[0].leave_out == {"spark"}


def test_the_demo_gpu_profile_leaves_ingestion_out_and_the_form_says_so():
    from odh_spawner.profiles.form import render_form
    from odh_spawner.profiles.format import load_profiles
    from odh_spawner.profiles.resolve import visible_profiles
    from tests.conftest import ROOT

    demo = load_profiles(f"{ROOT}/config/demo/profiles.yaml")
    assert [p.slug for p in demo if p.leave_out] == ["pytorch-gpu"] and demo[2].leave_out == {"ingestions"}
    plan = resolve(demo, "bob", ["ml-engineering"], {"profile": "pytorch-gpu"})
    assert plan.left_out == {"ingestions", "spark"}
    assert plan.offered_elsewhere["ingestions"] == ("Minimal Python", "Standard Data Science")
    form = render_form(visible_profiles(demo, "bob", ["ml-engineering"]), "bob", ["ml-engineering"], None, "local")
    assert form.count("without ingestions") == 1


def test_unknown_feature_is_refused_naming_file_profile_and_field():
    e = refused(document(profile("p", leave_out=["ingestions", "notebooks"])))
    assert "profiles.yaml" in str(e)
    assert e.profile == "p" and e.field == "leave_out[1]"
    assert "unknown feature 'notebooks'" in str(e) and "buckets, deployments, ingestions, spark" in str(e)


@pytest.mark.parametrize("value, field, words", [
    ("ingestions", "leave_out", "must be a list"),
    (["buckets", "buckets"], "leave_out[1]", "listed twice"),
    ([3], "leave_out[0]", "unknown feature 3"),
])
def test_malformed_leave_out_is_refused(value, field, words):
    e = refused(document(profile("p", leave_out=value)))
    assert (e.profile, e.field) == ("p", field) and words in str(e)


def test_leaving_out_spark_beside_a_spark_block_is_refused():
    e = refused(document(profile("p", leave_out=["spark"], spark=SPARK)))
    assert e.field == "leave_out" and "has a spark: block; remove one of them" in str(e)


# -- the plan ------------------------------------------------------------------------------------------------
def test_plan_carries_left_out_features_and_the_users_profiles_that_offer_them():
    profiles = parse_profiles(PROFILES)
    plan = resolve(profiles, "alice", [], {"profile": "minimal"})
    assert plan.left_out == {"ingestions", "deployments", "spark"}
    # gpu is hidden from alice (group ml): never named to her
    assert plan.offered_elsewhere == {"deployments": ("Standard Data Science", "Lean {braces}"),
                                      "ingestions": ("Standard Data Science",),
                                      "spark": ("Standard Data Science",)}
    plan = resolve(profiles, "bob", ["ml"], {"profile": "minimal"})
    assert plan.offered_elsewhere["spark"] == ("Standard Data Science", "PyTorch with GPU")
    assert resolve(profiles, "alice", [], {"profile": "datascience"}).left_out == frozenset()


# -- the server's environment, from a real spawner -----------------------------------------------------------
@pytest.fixture
def profiles_file(tmp_path):
    path = tmp_path / "profiles.yaml"
    path.write_text(yaml.safe_dump(PROFILES))
    return str(path)


async def test_kube_spawner_passes_left_out_features_to_the_server(profiles_file, tmp_path, monkeypatch):
    from kubernetes_asyncio.config import kube_config

    from odh_spawner.spawners.kube import OdhKubeSpawner

    monkeypatch.setattr(kube_config, "KUBE_CONFIG_DEFAULT_LOCATION", write_kubeconfig(tmp_path))
    c = Config()
    c.OdhKubeSpawner.profiles_path = profiles_file
    sp = OdhKubeSpawner(config=c, user=HubUser("alice", []), hub=Hub(), orm_spawner=None)
    await sp._apply_odh_options(sp, {"profile": "minimal"})
    pod = serialize(await sp.get_pod_manifest())
    env = {e["name"]: e.get("value") for e in pod["spec"]["containers"][0]["env"]}
    assert env["ODH_FEATURES_OFF"] == "deployments,ingestions,spark"
    assert json.loads(env["ODH_FEATURES_ELSEWHERE"]) == {"deployments": ["Standard Data Science", "Lean {braces}"],
                                                        "ingestions": ["Standard Data Science"],
                                                        "spark": ["Standard Data Science"]}
    assert env["ODH_PROFILE_NAME"] == "Minimal Python"
    assert left_out_reason("ingestions", env) == INGEST_OFF


def test_local_spawner_env_says_the_same(profiles_file):
    from odh_spawner.spawners.local import OdhLocalSpawner

    c = Config()
    c.OdhLocalSpawner.profiles_path = profiles_file
    sp = OdhLocalSpawner(config=c, user=HubUser("alice", []), hub=Hub(), orm_spawner=None)
    plan = resolve(sp.profile_store.get(), "alice", [], {"profile": "lean"})
    sp.plan = plan
    env = sp.odh_env(plan)
    assert env["ODH_FEATURES_OFF"] == "buckets,ingestions,spark"
    assert left_out_reason("buckets", env) == (
        "Object storage (buckets) is left out of your server's profile 'Lean {braces}'; start your server with "
        "'Minimal Python' or 'Standard Data Science' to use it.")
    assert features_off(sp.odh_env(resolve(sp.profile_store.get(), "alice", [], {"profile": "datascience"}))) \
        == frozenset()


# -- messages ------------------------------------------------------------------------------------------------
def test_messages_name_the_profile_and_where_the_feature_is():
    assert left_out_message("ingestions", "Minimal Python", ["Standard Data Science"]) == INGEST_OFF
    assert left_out_message("deployments", "Minimal Python", ["A", "B", "C"]) == (
        "Model deployment is left out of your server's profile 'Minimal Python'; start your server with 'A', 'B' "
        "or 'C' to use it.")
    assert left_out_message("spark", "Minimal Python", []) == (
        "Spark is left out of your server's profile 'Minimal Python', and none of the profiles available to you "
        "offers it; ask your platform admin.")


def test_environment_of_another_hub_version_is_read_safely():
    assert features_off({"ODH_FEATURES_OFF": "ingestions,teleport,"}) == {"ingestions"}
    assert elsewhere_of({"ODH_FEATURES_ELSEWHERE": "not json"}) == {}
    assert elsewhere_of({"ODH_FEATURES_ELSEWHERE": "[1]"}) == {}
    assert left_out_reason("ingestions", {}) is None


# -- GET /odh/api/features and the refusals ------------------------------------------------------------------
FULL = {"AWS_ACCESS_KEY_ID": "k", "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:9092"}


def test_features_answer_left_out_and_missing_configuration_reasons():
    env = {**FULL, **feature_env({"ingestions", "spark"}, "Minimal Python",
                                 {"ingestions": ["Standard Data Science"], "spark": []})}
    got = features(env, "http://platform/")
    assert got["profile"] == "Minimal Python" and set(got["features"]) == set(FEATURES)
    assert got["features"]["ingestions"] == {"enabled": False, "reason": INGEST_OFF, "left_out": True}
    assert got["features"]["spark"]["reason"].startswith("Spark is left out of your server's profile")
    assert got["features"]["buckets"] == {"enabled": True, "reason": None, "left_out": False}
    assert got["features"]["deployments"] == {"enabled": True, "reason": None, "left_out": False}
    assert refusal("ingestions", env) == INGEST_OFF and refusal("deployments", env) is None

    bare = features({}, "")["features"]  # nothing configured: the reasons the endpoints answer with 503
    assert bare["buckets"] == {"enabled": False, "reason": NO_STORAGE, "left_out": False}
    assert bare["deployments"]["reason"] == NO_PLATFORM["deployments"]
    assert bare["ingestions"]["reason"] == NO_PLATFORM["ingestions"]
    assert bare["spark"]["reason"] == NO_PLATFORM["spark"]
    assert features({"AWS_ACCESS_KEY_ID": "k"}, "http://p/")["features"]["ingestions"]["reason"] == NO_KAFKA
    # a left-out feature's reason is the profile's, even where configuration is missing too
    assert features(feature_env({"deployments"}, "M", {}), "")["features"]["deployments"]["left_out"] is True


def test_ingest_client_raises_the_left_out_message(monkeypatch):
    from server_extension.client import OdhApiError
    from server_extension.ingest import IngestClient

    for k, v in feature_env({"ingestions"}, "Minimal Python", {"ingestions": ["Standard Data Science"]}).items():
        monkeypatch.setenv(k, v)
    monkeypatch.setenv("ODH_PLATFORM_URL", "http://127.0.0.1:9/")
    with pytest.raises(OdhApiError) as e:
        IngestClient()
    assert e.value.status == 409 and e.value.message == INGEST_OFF


# -- the Helm chart's profiles ---------------------------------------------------------------------------------
def test_the_chart_passes_leave_out_to_the_hub_and_its_schema_refuses_unknown_features():
    from tests.support.helm import HelmError, by_kind_name, template

    lean = profile("lean", leave_out=["ingestions"])
    docs = by_kind_name(template(sets={"profiles": [lean]}))
    cm = next(d for (kind, _), d in docs.items() if kind == "ConfigMap" and "profiles.yaml" in d.get("data", {}))
    (parsed,) = parse_profiles(yaml.safe_load(cm["data"]["profiles.yaml"]))
    assert parsed.leave_out == {"ingestions"}
    with pytest.raises(HelmError) as e:
        template(sets={"profiles": [profile("lean", leave_out=["notebooks"])]})
    assert "values don't meet the specifications of the schema" in e.value.stderr and "leave_out" in e.value.stderr
