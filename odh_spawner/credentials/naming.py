"""Per-user storage names: see odh_spawner.naming (one injective slug for every per-user name)."""

from odh_spawner.naming import legacy_rgw_uid, models_bucket, rgw_uid, secret_name

__all__ = ["legacy_rgw_uid", "models_bucket", "rgw_uid", "secret_name"]
