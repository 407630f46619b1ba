"""Property tests: arbitrary user_options never raise anything but our typed errors."""

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from odh_spawner.errors import OptionsError
from odh_spawner.profiles.form import options_from_form
from odh_spawner.profiles.resolve import SpawnPlan, resolve
from tests.unit.test_profile_resolve import PROFILES

scalars = st.one_of(st.none(), st.booleans(), st.integers(-10**12, 10**12), st.floats(allow_nan=True),
                    st.text(max_size=20), st.sampled_from(["open", "ds", "gpu", "small", "large", "1", "2Gi"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=3),
                                                       st.dictionaries(st.text(max_size=10), inner, max_size=3)),
                      max_leaves=8)
keys = st.one_of(st.sampled_from(["profile", "size", "gpu", "spark"]), st.text(max_size=10))
spark = st.one_of(values, st.dictionaries(st.sampled_from(["workers", "worker_cores", "worker_memory"]), scalars))
options = st.one_of(
    values,
    st.dictionaries(keys, values, max_size=5),
    st.fixed_dictionaries({}, optional={"profile": scalars, "size": scalars, "gpu": scalars, "spark": spark}),
)
users = st.sampled_from([("alice", ["data-science"]), ("bob", ["ml"]), ("carol", []), ("eve", ["x", "ml"])])


@settings(max_examples=1500, deadline=None)
@given(options, users)
def test_resolve_never_raises_unhandled(opts, who):
    try:
        plan = resolve(PROFILES, who[0], who[1], opts)
    except OptionsError as e:
        assert e.status_code in (400, 403) and str(e)
        return
    assert isinstance(plan, SpawnPlan)
    # the canonical options reproduce the same plan
    assert resolve(PROFILES, who[0], who[1], plan.user_options()) == plan


@settings(max_examples=500, deadline=None)
@given(st.dictionaries(st.text(max_size=30), st.lists(st.text(max_size=10), max_size=2), max_size=6), users)
def test_any_posted_form_is_handled(form, who):
    try:
        resolve(PROFILES, who[0], who[1], options_from_form(form))
    except OptionsError:
        pass


def test_unicode_digits_are_refused_with_a_message_not_a_traceback():
    """'²' and '١' are str.isdigit() but not int()-able: found by hypothesis in test_resolve_never_raises_unhandled."""
    from odh_spawner.profiles.resolve import _int_option

    for odd in ("²", "١٢", "３"):
        with pytest.raises(OptionsError, match="whole number"):
            _int_option(odd, "GPUs")
