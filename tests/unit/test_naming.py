"""Per-user names: one injective slug, and every derived name valid where it is used."""

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from odh_spawner import naming
from odh_spawner.naming import (SLUG_MAX, legacy_rgw_uid, models_bucket, rgw_uid, secret_name, state_dir_name,
                                system_user, user_slug)

DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
UNIX_USER = re.compile(r"[a-z_][a-z0-9_-]*")
BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")

# names a user might choose to collide with someone: case, punctuation, a hashed-looking suffix, unicode
crafted = st.sampled_from([
    "bob.smith", "bob-smith", "bob_smith", "Bob.Smith", "bob-smith-" + legacy_rgw_uid("bob.smith")[-8:],
    legacy_rgw_uid("bob.smith")[len("odh-"):], "a--b", "a-b", "a", "-a", "a-", "", "x", "x--" + "a" * 16,
    user_slug("bob.smith"), "bob-smith--" + user_slug("bob.smith").split("--")[1], "ALICE", "alice", "älice",
    "alice\n", "alice ", "a" * 28, "a" * 29, "a" * 100, "0", "admin", "odh-admin", "\udcff",
])
names = st.one_of(crafted, st.text(max_size=40), st.text(alphabet="abz09-._A", max_size=35))


@settings(max_examples=3000, deadline=None)
@given(names, names)
@example("bob.smith", legacy_rgw_uid("bob.smith")[len("odh-"):])  # the collision of the previous scheme
@example("a" * 28, "a" * 29)
def test_slug_is_injective(a, b):
    if a != b:
        assert user_slug(a) != user_slug(b), (a, b)
        for derive in (system_user, rgw_uid, secret_name, models_bucket, state_dir_name):
            assert derive(a) != derive(b), (derive.__name__, a, b)


@settings(max_examples=2000, deadline=None)
@given(names)
def test_derived_names_are_valid_where_they_are_used(name):
    slug = user_slug(name)
    assert 1 <= len(slug) <= SLUG_MAX and DNS_LABEL.fullmatch(slug), slug
    assert len(system_user(name)) <= 32 and UNIX_USER.fullmatch(system_user(name))
    assert DNS_LABEL.fullmatch(secret_name(name)) and len(secret_name(name)) <= 63
    assert BUCKET.fullmatch(models_bucket(name)) and ".." not in models_bucket(name)
    assert slug not in (".", "..") and "/" not in slug


@given(names)
def test_hashed_slugs_and_safe_names_are_disjoint(name):
    """A safe name is kept as is and never contains `--`; every changed name's slug contains `--`."""
    slug = user_slug(name)
    if slug == name:
        assert "--" not in slug
    else:
        assert "--" in slug and len(slug.split("--")[-1]) == naming.DIGEST_CHARS


@pytest.mark.parametrize("name,slug", [
    ("alice", "alice"), ("bob-2", "bob-2"), ("a" * 28, "a" * 28),
])
def test_safe_names_are_kept_readable(name, slug):
    assert user_slug(name) == slug and system_user(name) == f"odh-{slug}"


def test_changed_names_keep_a_readable_prefix():
    assert user_slug("Bob.Smith").startswith("bob-smith--")
    assert user_slug("...").startswith("x--")
    assert len(user_slug("é" * 50)) <= SLUG_MAX


def test_legacy_names_match_the_previous_scheme():
    """Existing users are found under the name the previous scheme gave them."""
    assert legacy_rgw_uid("alice") == "odh-alice"
    assert re.fullmatch(r"odh-bob-smith-[0-9a-f]{8}", legacy_rgw_uid("bob.smith"))
