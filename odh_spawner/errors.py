"""Typed errors. Messages are safe to show to users; details go to logs."""

from __future__ import annotations


class OdhError(Exception):
    """Base class for odh-hub errors."""


class ProfileError(OdhError):
    """A profile file is invalid. Names the file, the profile and the field."""

    def __init__(self, message: str, *, source: str = "", profile: str = "", field: str = ""):
        self.source = source
        self.profile = profile
        self.field = field
        self.reason = message
        where = [p for p in (source, f"profile {profile!r}" if profile else "", f"field {field!r}" if field else "") if p]
        super().__init__(f"{': '.join(where)}: {message}" if where else message)


class OptionsError(OdhError):
    """user_options are malformed (HTTP 400)."""

    status_code = 400


class ForbiddenOption(OptionsError):
    """user_options name something this user may not use (HTTP 403)."""

    status_code = 403
