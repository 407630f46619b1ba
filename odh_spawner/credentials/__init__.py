"""Per-user object-storage credentials: each user gets their own Ceph RGW user and S3 keys."""

from odh_spawner.credentials.model import CredentialsUnavailable, S3Credentials
from odh_spawner.credentials.naming import rgw_uid, secret_name

__all__ = ["CredentialsUnavailable", "S3Credentials", "rgw_uid", "secret_name"]
