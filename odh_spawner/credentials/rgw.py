"""Per-user RGW users and keys through the RGW Admin Ops API (the `rgwadmin` client), with the platform's
admin keys. Idempotent and safe under concurrent spawns of the same user; bounded in time; leaves nothing
half-made when it fails."""

from __future__ import annotations

import asyncio
import logging
from urllib.parse import urlparse

from rgwadmin import RGWAdmin
from rgwadmin import exceptions as rgw_errors

from odh_spawner.credentials import buckets
from odh_spawner.credentials.model import CredentialsUnavailable, S3Credentials
from odh_spawner.credentials.naming import legacy_rgw_uid, rgw_uid

log = logging.getLogger("odh_spawner.credentials")

UNREACHABLE = ("Object storage is not reachable right now, so your server cannot get its storage "
               "credentials. Try again in a minute; if it persists, tell your platform admin.")


class RgwCredentialStore:
    def __init__(self, admin_endpoint: str, admin_access_key: str, admin_secret_key: str, *,
                 s3_endpoint: str = "", timeout: float = 10.0, quota_max_size_kb: int | None = None,
                 quota_max_objects: int | None = None, logger: logging.Logger | None = None):
        url = urlparse(admin_endpoint)
        if url.scheme not in ("http", "https") or not url.netloc:
            raise ValueError(f"The RGW admin endpoint {admin_endpoint!r} is not an http(s) URL; give one like 'http://rgw:8080'.")
        self.s3_endpoint = s3_endpoint or admin_endpoint
        self.admin_endpoint = admin_endpoint  # the hub's own S3 calls (the user's buckets) go here
        self.timeout = timeout
        self.quota_max_size_kb = quota_max_size_kb
        self.quota_max_objects = quota_max_objects
        self.log = logger or log
        self._admin = RGWAdmin(admin_access_key, admin_secret_key, url.netloc, secure=url.scheme == "https",
                               timeout=timeout)
        self._locks: dict[str, asyncio.Lock] = {}
        self._buckets_done: set[tuple[str, str]] = set()  # (hub user, access key) whose buckets were made
        self.squatted: dict[str, list[str]] = {}  # hub user -> their default buckets another user owns

    # -- public ------------------------------------------------------------------------------
    async def ensure(self, username: str, quota_bytes: int | None = None) -> S3Credentials:
        """The user's keys: created on first use, the same ones afterwards. `quota_bytes`: the user's storage
        quota (their groups', profiles.quotas), set on their RGW user now (at every spawn, so a changed quota
        takes effect at the next one); None leaves the quota as it is."""
        uid = rgw_uid(username)
        async with self._lock(uid):
            return await self._call(self._ensure_sync, uid, username, quota_bytes)

    async def quota(self, username: str) -> dict:
        """The user's RGW user quota as the Admin Ops API reports it ({"enabled", "max_size", ...})."""
        return await self._call(self._quota_sync, username)

    def _quota_sync(self, username: str) -> dict:
        found = self._existing_sync(username)
        if found is None:
            raise CredentialsUnavailable(f"{username!r} has no object-storage user yet.")
        return self._admin.get_user_quota(uid=found[0])

    async def rotate(self, username: str) -> S3Credentials:
        """New keys for the user; the old ones stop working."""
        uid = rgw_uid(username)
        async with self._lock(uid):
            return await self._call(self._rotate_sync, username)

    async def remove(self, username: str, purge_data: bool = True) -> bool:
        """Remove the RGW user (and by default its buckets and objects). False if there was none."""
        uid = rgw_uid(username)
        async with self._lock(uid):
            return await self._call(self._remove_sync, username, purge_data)

    async def usage(self) -> dict[str, dict]:
        """What each RGW user stores, by uid: {"bytes", "objects", "buckets"}, from one Admin Ops call (the
        buckets' stats). Bytes are RGW's `size_actual`, the figure its quotas count."""
        return await self._call(self._usage_sync)

    def _usage_sync(self) -> dict[str, dict]:
        return usage_by_owner(self._admin.get_bucket(stats=True) or [])

    async def quotas(self, uids) -> dict[str, int | None]:
        """The storage quota RGW enforces on each of `uids` (bytes; None: none), one Admin Ops call each."""
        return await self._call(self._quotas_sync, list(uids))

    def _quotas_sync(self, uids: list[str]) -> dict[str, int | None]:
        out = {}
        for uid in uids:
            try:
                out[uid] = quota_bytes(self._admin.get_user_quota(uid=uid))
            except rgw_errors.NoSuchUser:
                continue
        return out

    # -- plumbing ----------------------------------------------------------------------------
    def _lock(self, uid: str) -> asyncio.Lock:
        return self._locks.setdefault(uid, asyncio.Lock())

    async def _call(self, fn, *args):
        try:
            return await asyncio.wait_for(asyncio.to_thread(fn, *args), self.timeout * 3)
        except asyncio.CancelledError:
            raise
        except CredentialsUnavailable:
            raise
        except (asyncio.TimeoutError, rgw_errors.ServerDown, OSError) as e:
            self.log.error("RGW admin API unreachable (%s): %s", type(e).__name__, _safe(e))
            raise CredentialsUnavailable(UNREACHABLE) from None
        except Exception as e:  # requests' connection errors, rgwadmin's typed errors
            self.log.error("RGW admin API call failed (%s): %s", type(e).__name__, _safe(e))
            raise CredentialsUnavailable(UNREACHABLE) from None

    def _keys(self, info: dict) -> S3Credentials | None:
        for key in info.get("keys", []):
            if key.get("user") == info.get("user_id") and key.get("access_key"):
                return S3Credentials(key["access_key"], key["secret_key"], self.s3_endpoint)
        return None

    def _owned_user(self, uid: str, username: str) -> dict | None:
        """The RGW user `uid` if it exists and was made for hub user `username`; None if it does not exist.

        One made for someone else (its display name says whom) is never handed out: CredentialsUnavailable.
        """
        try:
            info = self._admin.get_user(uid=uid)
        except rgw_errors.NoSuchUser:
            return None
        if info.get("display_name") != display_name(username):
            self.log.error("RGW user %s belongs to another owner; refusing it to hub user %r", uid, username)
            raise CredentialsUnavailable("Your object-storage user name is already taken by another account. "
                                         "Tell your platform admin.")
        return info

    def _existing_sync(self, username: str) -> tuple[str, dict] | None:
        """The user's RGW user: under today's name, else under the previous scheme's name when that one's
        recorded owner is this user (users from before the injective names keep their storage)."""
        uid = rgw_uid(username)
        info = self._owned_user(uid, username)
        if info is not None:
            return uid, info
        legacy = legacy_rgw_uid(username)
        if legacy != uid:
            try:
                info = self._owned_user(legacy, username)
            except CredentialsUnavailable:
                return None  # the old name belongs to someone else: this user gets a new RGW user
            if info is not None:
                return legacy, info
        return None

    def _ensure_sync(self, uid: str, username: str, quota_bytes: int | None = None) -> S3Credentials:
        found = self._existing_sync(username)
        if found is None:
            info = self._create_sync(uid, username)
        else:
            uid, info = found
        if quota_bytes is not None:
            self._admin.set_user_quota(uid=uid, quota_type="user", max_size_kb=-(-quota_bytes // 1024),
                                       max_objects=self.quota_max_objects, enabled=True)
        creds = self._keys(info)
        if creds is None:  # a user without keys (e.g. an admin removed them): make one
            self._admin.create_key(uid=uid, generate_key=True)
            creds = self._keys(self._admin.get_user(uid=uid))
        if creds is None:
            raise CredentialsUnavailable("Object storage did not return keys for your user.")
        self._own_buckets_sync(uid, username, creds)
        return creds

    def _own_buckets_sync(self, uid: str, username: str, creds: S3Credentials) -> None:
        """Create the user's default buckets with the user's own keys (once per process and keys), so the
        user owns them. One that another user owns already (a squatted name) is not used: logged here for
        the admin, and the user's deploy refuses it later. Never fails the credential step."""
        if (username, creds.access_key) in self._buckets_done:
            return
        squatted = []
        try:
            s3 = buckets.s3_client(S3Credentials(creds.access_key, creds.secret_key, self.admin_endpoint))
            for bucket in buckets.default_buckets(username):
                if buckets.claim(s3, bucket):
                    continue
                squatted.append(bucket)
                try:
                    owner = self._admin.get_bucket(bucket=bucket).get("owner", "?")
                except Exception:
                    owner = "?"
                self.log.error("Bucket %s of hub user %r is owned by RGW user %s, not by %s: it is NOT used "
                               "for %r (their deploys refuse it). Remove or rename that bucket, then restart the "
                               "user's server.", bucket, username, owner, uid, username)
        except Exception as e:  # the notebook side creates (and checks) the bucket on first use instead
            self.log.warning("Could not create the default buckets of %s (%s): %s", uid, type(e).__name__, _safe(e))
            return
        if squatted:
            self.squatted[username] = squatted
        else:
            self.squatted.pop(username, None)
            self._buckets_done.add((username, creds.access_key))

    def _create_sync(self, uid: str, username: str) -> dict:
        try:
            self._admin.create_user(uid=uid, display_name=display_name(username), generate_key=True)
        except (rgw_errors.UserExists, rgw_errors.UserAlreadyExists):
            info = self._owned_user(uid, username)  # a concurrent spawn created it first
            if info is None:
                raise CredentialsUnavailable("Object storage did not create your user.") from None
            return info
        self.log.info("Created object-storage user %s for %s", uid, username)
        if self.quota_max_size_kb is not None or self.quota_max_objects is not None:
            try:
                self._admin.set_user_quota(uid=uid, quota_type="user", max_size_kb=self.quota_max_size_kb,
                                           max_objects=self.quota_max_objects, enabled=True)
            except Exception:
                self._admin.remove_user(uid=uid, purge_data=True)  # nothing half-made
                raise
        return self._admin.get_user(uid=uid)

    def _rotate_sync(self, username: str) -> S3Credentials:
        found = self._existing_sync(username)
        if found is None:
            raise CredentialsUnavailable(f"{username!r} has no object-storage user yet.")
        uid, info = found
        old = [k["access_key"] for k in info.get("keys", [])]
        self._admin.create_key(uid=uid, generate_key=True)
        for access_key in old:
            self._admin.remove_key(access_key=access_key, uid=uid)
        creds = self._keys(self._admin.get_user(uid=uid))
        if creds is None:
            raise CredentialsUnavailable("Object storage did not return the new keys.")
        self.log.info("Rotated object-storage keys of %s (%d old key(s) removed)", uid, len(old))
        return creds

    def _remove_sync(self, username: str, purge_data: bool) -> bool:
        found = self._existing_sync(username)
        if found is None:
            return False
        uid = found[0]
        try:
            self._admin.remove_user(uid=uid, purge_data=purge_data)
        except rgw_errors.NoSuchUser:
            return False
        self.log.info("Removed object-storage user %s", uid)
        return True


def usage_by_owner(buckets: list) -> dict[str, dict]:
    """Sum the Admin Ops API's bucket stats (`GET /admin/bucket?stats=True`) per owning uid. Pure."""
    out: dict[str, dict] = {}
    for b in buckets:
        if not isinstance(b, dict) or not isinstance(b.get("owner"), str):
            continue
        main = ((b.get("usage") or {}).get("rgw.main") or {}) if isinstance(b.get("usage"), dict) else {}
        u = out.setdefault(b["owner"], {"bytes": 0, "objects": 0, "buckets": 0})
        u["bytes"] += int(main.get("size_actual", main.get("size", 0)) or 0)
        u["objects"] += int(main.get("num_objects", 0) or 0)
        u["buckets"] += 1
    return out


def quota_bytes(quota) -> int | None:
    """The bytes an Admin Ops user quota allows (`max_size`, else `max_size_kb`), or None when it is off or
    unlimited. Pure."""
    if not isinstance(quota, dict) or not quota.get("enabled"):
        return None
    size = quota.get("max_size")
    if not isinstance(size, int) or size <= 0:
        kb = quota.get("max_size_kb")
        size = kb * 1024 if isinstance(kb, int) and kb > 0 else None
    return size


def display_name(username: str) -> str:
    """The RGW display name recording which hub user an RGW user was made for (checked before any use)."""
    return f"odh-hub user {username}"


def _safe(e: Exception) -> str:
    """An exception text for logs, cut short (never includes request bodies or keys we sent)."""
    return str(e).splitlines()[0][:300] if str(e) else type(e).__name__
