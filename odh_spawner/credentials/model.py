"""S3 credentials of one user. The secret never appears in repr, str or logs."""

from __future__ import annotations

from dataclasses import dataclass, field

from odh_spawner.errors import OdhError

# what S3 clients need to talk to Ceph RGW (pyarrow/boto3 multipart fail with 411 without these)
S3_CLIENT_SETTINGS = {
    "AWS_REQUEST_CHECKSUM_CALCULATION": "WHEN_REQUIRED",
    "AWS_RESPONSE_CHECKSUM_VALIDATION": "WHEN_REQUIRED",
    "AWS_DEFAULT_REGION": "us-east-1",
}
ACCESS_KEY_ENV = "AWS_ACCESS_KEY_ID"
SECRET_KEY_ENV = "AWS_SECRET_ACCESS_KEY"
ENDPOINT_ENV = "S3_ENDPOINT_URL"


class CredentialsUnavailable(OdhError):
    """Object storage could not provide credentials. The message is safe to show the user."""

    status_code = 503


@dataclass(frozen=True)
class S3Credentials:
    access_key: str
    secret_key: str = field(repr=False)
    endpoint: str = ""

    def __str__(self) -> str:
        return f"S3Credentials(access_key={self.access_key!r}, endpoint={self.endpoint!r})"

    __repr__ = __str__

    def env(self) -> dict[str, str]:
        """Process environment for the local backend."""
        env = {ACCESS_KEY_ENV: self.access_key, SECRET_KEY_ENV: self.secret_key, **S3_CLIENT_SETTINGS}
        if self.endpoint:
            env[ENDPOINT_ENV] = self.endpoint
        return env
