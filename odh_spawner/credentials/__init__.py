"""Per-user object-storage credentials: each user gets their own Ceph RGW user and S3 keys."""

from .model import CredentialsUnavailable, S3Credentials
from .naming import rgw_uid, secret_name

__all__ = ["CredentialsUnavailable", "S3Credentials", "rgw_uid", "secret_name"]
