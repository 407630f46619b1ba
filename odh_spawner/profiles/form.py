"""The spawn form: render the profiles a user may use, and turn the posted form into user_options. Pure."""

from __future__ import annotations

from typing import Mapping, Sequence

import jinja2

from odh_spawner.errors import OdhError
from odh_spawner.profiles.format import Profile
from odh_spawner.quantities import format_bytes, format_cpu
from odh_spawner.profiles.resolve import resolve

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("odh_spawner.profiles", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
)
_env.globals.update(fmt_cpu=format_cpu, fmt_mem=format_bytes)


def _chosen(visible: list[Profile], user: str, groups, previous) -> dict:
    """The previous choice if it is still valid for this user, else the defaults."""
    for options in (previous or {}, {}):
        try:
            return resolve(visible, user, groups, options).user_options()
        except OdhError:
            continue
    return {"profile": None, "size": None, "gpu": 0}


def render_form(visible: list[Profile], user: str, groups, previous: Mapping | None, backend: str,
                limits_note: str = "", spark_available: bool = False,
                environments: Mapping[str, str] | None = None) -> str:
    """The spawn form. `environments`: what each profile (by slug) runs in where that is not its container image
    (the local backend: its Python and key packages); a profile with an entry shows it instead of the image."""
    chosen = _chosen(visible, user, groups, previous)
    chosen.setdefault("spark", None)
    return _env.get_template("options_form.html").render(
        profiles=visible, chosen=chosen, user=user, backend=backend, limits_note=limits_note,
        spark_available=spark_available, environments=dict(environments or {}),
    )


def _first(form: Mapping[str, Sequence[str]], key: str) -> str | None:
    values = form.get(key)
    if not values:
        return None
    return values[0] if isinstance(values, (list, tuple)) else values


def options_from_form(form: Mapping[str, Sequence[str]]) -> dict:
    """Posted form fields -> canonical user_options. Validation happens in resolve(), for every path."""
    profile = _first(form, "profile")
    options: dict = {}
    if not profile:
        return options
    options["profile"] = profile
    size = _first(form, f"size--{profile}")
    if size:
        options["size"] = size
    gpu = _first(form, f"gpu--{profile}")
    if gpu not in (None, ""):
        options["gpu"] = gpu.strip()
    if _first(form, f"spark--{profile}") == "on":
        workers = _first(form, f"spark_workers--{profile}")
        options["spark"] = {"workers": workers.strip()} if workers else True
    return options
