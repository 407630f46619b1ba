"""Resolution and enforcement: a user gets only what their profiles allow, whatever the form showed."""

import pytest

from odh_spawner.errors import ForbiddenOption, OptionsError
from odh_spawner.profiles.format import parse_profiles
from odh_spawner.profiles.resolve import default_profile, resolve, visible_profiles
from tests.support.profiles import document, profile

PROFILES = parse_profiles(document(
    profile("open"),
    profile("ds", groups=["data-science"], default=True,
            spark={"workers": {"default": 1, "max": 3}, "worker_cores": {"default": 1, "max": 2},
                   "worker_memory": {"default": "1Gi", "max": "2Gi"}}),
    profile("gpu", groups=["ml"], users=["carol"], gpu={"max": 2, "default": 1, "type": "A10"},
            node_selector={"pool": "gpu"}, env={"X": "1"}),
))


def test_visibility_by_group_and_user():
    assert [p.slug for p in visible_profiles(PROFILES, "alice", ["data-science"])] == ["open", "ds"]
    assert [p.slug for p in visible_profiles(PROFILES, "bob", ["ml"])] == ["open", "gpu"]
    assert [p.slug for p in visible_profiles(PROFILES, "carol", [])] == ["open", "gpu"]
    assert [p.slug for p in visible_profiles(PROFILES, "dave", [])] == ["open"]


def test_default_profile_is_the_marked_visible_one():
    assert resolve(PROFILES, "alice", ["data-science"], {}).profile == "ds"
    # ds is default but not visible to bob: first visible
    assert resolve(PROFILES, "bob", ["ml"], None).profile == "open"


def test_no_visible_profiles_is_forbidden():
    only_ml = parse_profiles(document(profile("gpu", groups=["ml"])))
    with pytest.raises(ForbiddenOption, match="No profile is available"):
        resolve(only_ml, "alice", [], {})
    with pytest.raises(ForbiddenOption):
        default_profile([])


def test_plan_fields_from_profile_and_size():
    plan = resolve(PROFILES, "bob", ["ml"], {"profile": "gpu", "size": "large", "gpu": 2})
    assert (plan.profile, plan.size, plan.gpu_count) == ("gpu", "large", 2)
    assert plan.cpu_limit == 4.0 and plan.cpu_request == 2.0
    assert plan.mem_limit == 8 * 2**30 and plan.mem_request == 4 * 2**30
    assert plan.gpu_type == "A10" and plan.gpu_resource == "nvidia.com/gpu"
    assert plan.node_selector == {"pool": "gpu"} and plan.env == {"X": "1"}
    assert plan.spark is None
    assert plan.user_options() == {"profile": "gpu", "size": "large", "gpu": 2}


def test_gpu_default_and_string_numbers_from_forms():
    assert resolve(PROFILES, "bob", ["ml"], {"profile": "gpu"}).gpu_count == 1
    assert resolve(PROFILES, "bob", ["ml"], {"profile": "gpu", "gpu": "0"}).gpu_count == 0


def test_spark_request_within_limits():
    plan = resolve(PROFILES, "alice", ["data-science"], {"profile": "ds", "spark": {"workers": "3", "worker_memory": "2Gi"}})
    assert (plan.spark.workers, plan.spark.worker_cores, plan.spark.worker_memory) == (3, 1, 2 * 2**30)
    assert plan.user_options()["spark"] == {"workers": 3, "worker_cores": 1, "worker_memory": "2Gi"}
    assert resolve(PROFILES, "alice", ["data-science"], {"profile": "ds", "spark": True}).spark.workers == 1
    assert resolve(PROFILES, "alice", ["data-science"], {"profile": "ds", "spark": False}).spark is None


FORBIDDEN = [
    ("alice", ["data-science"], {"profile": "gpu"}, "not available to you"),
    ("alice", ["data-science"], {"profile": "open", "size": "huge"}, "not offered"),
    ("alice", ["data-science"], {"profile": "open", "gpu": 1}, "does not offer GPUs"),
    ("bob", ["ml"], {"profile": "gpu", "gpu": 3}, "limit of 2"),
    ("alice", ["data-science"], {"profile": "open", "spark": True}, "does not offer a Spark"),
    ("alice", ["data-science"], {"profile": "ds", "spark": {"workers": 4}}, "limit of 3"),
    ("alice", ["data-science"], {"profile": "ds", "spark": {"worker_cores": 3}}, "limit of 2"),
    ("alice", ["data-science"], {"profile": "ds", "spark": {"worker_memory": "3Gi"}}, "limit of 2 GiB"),
]


@pytest.mark.parametrize("user,groups,options,fragment", FORBIDDEN)
def test_forbidden_options_are_403(user, groups, options, fragment):
    with pytest.raises(ForbiddenOption) as e:
        resolve(PROFILES, user, groups, options)
    assert e.value.status_code == 403 and fragment in str(e.value)


BAD = [
    ({"image": "evil/image"}, "Unknown option(s): 'image'"),
    ({"profile": "open", "cmd": ["sh"]}, "Unknown option(s): 'cmd'"),
    ({"profile": 5}, "`profile` must be a string"),
    ({"profile": "open", "size": ["small"]}, "`size` must be a string"),
    ({"profile": "open", "gpu": "two"}, "whole number"),
    ({"profile": "open", "gpu": True}, "whole number"),
    ({"profile": "open", "gpu": -1}, "must not be negative"),
    ({"profile": "ds", "spark": "yes"}, "`spark` must be"),
    ({"profile": "ds", "spark": {"executors": 2}}, "Unknown spark option"),
    ({"profile": "ds", "spark": {"workers": 0}}, "at least 1"),
    ({"profile": "ds", "spark": {"worker_memory": "lots"}}, "worker_memory"),
]


@pytest.mark.parametrize("options,fragment", BAD)
def test_malformed_options_are_400(options, fragment):
    with pytest.raises(OptionsError) as e:
        resolve(PROFILES, "alice", ["data-science"], options)
    assert e.value.status_code == 400 and fragment in str(e.value)


def test_non_dict_options():
    with pytest.raises(OptionsError, match="must be an object"):
        resolve(PROFILES, "alice", [], ["profile", "open"])


def test_hidden_and_unknown_profiles_get_the_same_answer():
    """Whether a profile exists but is hidden, or does not exist, the user cannot tell from the answer."""
    answers = []
    for slug in ("gpu", "no-such-profile"):
        with pytest.raises(ForbiddenOption) as e:
            resolve(PROFILES, "alice", ["data-science"], {"profile": slug})
        answers.append((e.value.status_code, str(e.value).replace(repr(slug), "<slug>")))
    assert answers[0] == answers[1] and answers[0][0] == 403, answers
