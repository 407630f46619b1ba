"""Per-user storage names: see odh_spawner.naming (one injective slug for every per-user name)."""

from ..naming import _legacy_slug as _slug  # the previous scheme, for code that still names old directories
from ..naming import legacy_rgw_uid, models_bucket, rgw_uid, secret_name

__all__ = ["_slug", "legacy_rgw_uid", "models_bucket", "rgw_uid", "secret_name"]
