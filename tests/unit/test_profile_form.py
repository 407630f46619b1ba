"""The spawn form shows only the user's profiles, remembers choices, and posts canonical options."""

import re

from odh_spawner.profiles.form import options_from_form, render_form
from odh_spawner.profiles.resolve import resolve, visible_profiles
from tests.unit.test_profile_resolve import PROFILES


def _render(user, groups, previous=None, backend="local"):
    return render_form(visible_profiles(PROFILES, user, groups), user, groups, previous, backend, "limits note")


def test_only_visible_profiles_are_offered():
    html = _render("alice", ["data-science"])
    assert re.findall(r'name="profile" value="([^"]+)"', html) == ["open", "ds"]
    assert "gpu--" not in html


def test_default_profile_checked_and_sizes_listed():
    html = _render("alice", ["data-science"])
    assert re.search(r'value="ds" id="odh-profile-ds" checked', html)
    assert 'name="size--ds"' in html and "4 CPU, 8 GiB memory" in html
    assert 'name="spark--ds"' in html and 'name="spark_workers--ds"' in html


def test_previous_choice_is_preselected():
    html = _render("bob", ["ml"], {"profile": "gpu", "size": "large", "gpu": 2})
    assert re.search(r'value="gpu" id="odh-profile-gpu" checked', html)
    assert re.search(r'<option value="large" selected>', html)
    assert 'name="gpu--gpu" id="odh-gpu-gpu" min="0" max="2" value="2"' in html


def test_stale_or_forged_previous_choice_falls_back_to_defaults():
    html = _render("alice", ["data-science"], {"profile": "gpu", "bogus": 1})
    assert re.search(r'value="ds" id="odh-profile-ds" checked', html)


def test_local_backend_says_what_applies_where():
    local = _render("bob", ["ml"])
    assert "Applies on Kubernetes only" in local and "limits note" in local
    assert "local: hub environment" in local
    kube = _render("bob", ["ml"], backend="kubernetes")
    assert "Applies on Kubernetes only" not in kube


def test_a_profile_with_an_environment_note_shows_it_instead_of_its_image():
    visible = visible_profiles(PROFILES, "alice", ["data-science"])
    note = "Python 3.11.2 · jupyterlab 4.6.6 · pandas 3.1.1 <b>"
    html = render_form(visible, "alice", ["data-science"], None, "local", environments={"ds": note})
    card = html.split('data-profile="ds"')[1].split('data-profile=')[0]
    assert "Python 3.11.2 · jupyterlab 4.6.6 · pandas 3.1.1 &lt;b&gt;" in card and "sha256:" not in card
    other = html.split('data-profile="open"')[1].split('data-profile=')[0]
    assert 'class="odh-image"' in other  # no note: the image, as on Kubernetes
    assert 'class="odh-env"' not in _render("alice", ["data-science"], backend="kubernetes")


def test_form_escapes_profile_text():
    from odh_spawner.profiles.format import parse_profiles
    from tests.support.profiles import document, profile

    ps = parse_profiles(document(profile("x", display_name="<script>alert(1)</script>")))
    html = render_form(list(ps), "u", [], None, "local")
    assert "<script>alert(1)" not in html and "&lt;script&gt;" in html


def test_options_from_form_reads_only_the_chosen_profile():
    form = {"profile": ["ds"], "size--ds": ["large"], "size--open": ["small"], "spark--ds": ["on"],
            "spark_workers--ds": ["2"], "_xsrf": ["t"]}
    opts = options_from_form(form)
    assert opts == {"profile": "ds", "size": "large", "spark": {"workers": "2"}}
    plan = resolve(PROFILES, "alice", ["data-science"], opts)
    assert plan.spark.workers == 2 and plan.size == "large"


def test_options_from_form_gpu_and_empty():
    assert options_from_form({}) == {}
    assert options_from_form({"profile": ["gpu"], "gpu--gpu": [" 1 "]}) == {"profile": "gpu", "gpu": "1"}
    assert options_from_form({"profile": ["ds"], "spark--ds": ["on"]}) == {"profile": "ds", "spark": True}
