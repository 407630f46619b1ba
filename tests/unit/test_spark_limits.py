"""Spark limits: per-user, per-worker and hub-wide maxima at spawn and at scale; typed 403 errors."""

import pytest
from traitlets import TraitError
from traitlets.config import Config

from odh_spawner.errors import ForbiddenOption, OptionsError
from odh_spawner.profiles.resolve import SparkRequest
from odh_spawner.spark import SparkLimitError, SparkLimits, SparkUsage, check_request, check_scale

GI = 2**30


def limits(**kw) -> SparkLimits:
    return SparkLimits(**{"max_workers": 2, "max_worker_cores": 2, "max_worker_memory": "2Gi", **kw})


def test_within_limits_passes():
    check_request(limits(), SparkRequest(2, 2, 2 * GI))
    check_request(limits(max_total_workers=4), SparkRequest(1, 1, GI), SparkUsage(user_workers=1, total_workers=3))


def test_too_many_workers_names_the_numbers():
    with pytest.raises(SparkLimitError, match=r"^3 Spark workers exceed your limit of 2\.$") as e:
        check_request(limits(), SparkRequest(3, 1, GI))
    assert isinstance(e.value, ForbiddenOption) and e.value.status_code == 403


def test_workers_on_other_servers_count_against_the_user():
    with pytest.raises(SparkLimitError, match="You already run 1 Spark worker on other servers; 2 more would "
                                              "exceed your limit of 2"):
        check_request(limits(), SparkRequest(2, 1, GI), SparkUsage(user_workers=1, total_workers=1))


def test_cores_and_memory_per_worker():
    with pytest.raises(SparkLimitError, match=r"^3 cores per Spark worker exceed the limit of 2\.$"):
        check_request(limits(), SparkRequest(1, 3, GI))
    with pytest.raises(SparkLimitError, match=r"^4 GiB per Spark worker exceeds the limit of 2 GiB\.$"):
        check_request(limits(), SparkRequest(1, 1, 4 * GI))


def test_hub_wide_cap():
    with pytest.raises(SparkLimitError, match=r"The hub runs 3 of at most 4 Spark workers; 2 more do not fit "
                                              r"\(1 free\)"):
        check_request(limits(max_total_workers=4), SparkRequest(2, 1, GI), SparkUsage(0, 3))
    check_request(limits(max_total_workers=None), SparkRequest(2, 1, GI), SparkUsage(0, 10_000))


def test_malformed_request_is_a_400():
    with pytest.raises(OptionsError) as e:
        check_request(limits(), SparkRequest(0, 1, GI))
    assert not isinstance(e.value, ForbiddenOption) and e.value.status_code == 400


def test_scale_up_within_and_beyond_limits():
    current = SparkRequest(1, 1, GI)
    assert check_scale(limits(), current, 2, SparkUsage(1, 1)) == SparkRequest(2, 1, GI)
    with pytest.raises(SparkLimitError, match=r"^3 Spark workers exceed your limit of 2\.$"):
        check_scale(limits(), current, 3, SparkUsage(1, 1))
    with pytest.raises(SparkLimitError, match="You already run 1 Spark worker on other servers"):
        check_scale(limits(), current, 2, SparkUsage(user_workers=2, total_workers=2))
    with pytest.raises(SparkLimitError, match=r"The hub runs 4 of at most 4 Spark workers; 1 more does not fit"):
        check_scale(limits(max_total_workers=4), current, 2, SparkUsage(user_workers=1, total_workers=4))


def test_scale_down_is_always_allowed_but_not_to_zero():
    over = SparkRequest(4, 1, GI)  # started before the admin lowered the limit
    assert check_scale(limits(), over, 3, SparkUsage(4, 100)).workers == 3
    assert check_scale(None, over, 9, SparkUsage()).workers == 9  # no limits: only validation
    with pytest.raises(OptionsError, match="at least 1 worker"):
        check_scale(limits(), over, 0, SparkUsage(4, 4))
    with pytest.raises(OptionsError, match="whole number"):
        check_scale(limits(), over, "2", SparkUsage(4, 4))


def test_limits_are_configurable_traits_with_help():
    c = Config()
    c.SparkLimits.max_workers = 8
    c.SparkLimits.max_worker_memory = "512Mi"
    c.SparkLimits.max_total_workers = 20
    configured = SparkLimits(config=c)
    assert (configured.max_workers, configured.max_worker_memory, configured.max_total_workers) == (8, 2**29, 20)
    assert SparkLimits().max_worker_memory == 8 * GI and SparkLimits().max_total_workers is None
    for name in ("max_workers", "max_worker_cores", "max_worker_memory", "max_total_workers"):
        trait = SparkLimits.class_traits()[name]
        assert trait.metadata.get("config") and len(trait.help) > 40, name
    with pytest.raises((TraitError, ValueError), match="max_worker_memory"):
        SparkLimits(max_worker_memory="lots")
    with pytest.raises(TraitError):
        SparkLimits(max_workers=0)
