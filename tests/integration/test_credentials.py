"""Per-user RGW users and keys through the real Admin Ops API of a real Ceph RGW."""

import asyncio
import logging
import socket
import time

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError
from rgwadmin import RGWAdmin

from odh_spawner.credentials import CredentialsUnavailable, rgw_uid
from odh_spawner.credentials.rgw import RgwCredentialStore


def s3(creds, endpoint):
    return boto3.client("s3", endpoint_url=endpoint, aws_access_key_id=creds.access_key,
                        aws_secret_access_key=creds.secret_key, region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


@pytest.fixture
def store(ceph):
    return RgwCredentialStore(ceph.endpoint, ceph.admin.access_key, ceph.admin.secret_key, timeout=5,
                              quota_max_size_kb=1024 * 1024, quota_max_objects=50_000)


async def test_first_use_creates_then_reuses_even_when_concurrent(store, ceph):
    first, second = await asyncio.gather(store.ensure("cred-carol"), store.ensure("cred-carol"))
    assert first == second
    assert await store.ensure("cred-carol") == first
    s3(first, ceph.endpoint).create_bucket(Bucket="carol-bucket")
    admin = RGWAdmin(ceph.admin.access_key, ceph.admin.secret_key, ceph.endpoint.split("//")[1], secure=False)
    info = admin.get_user(uid=rgw_uid("cred-carol"))
    assert len(info["keys"]) == 1
    quota = admin.get_user_quota(uid=rgw_uid("cred-carol"))
    assert quota["enabled"] and quota["max_objects"] == 50_000 and quota["max_size_kb"] == 1024 * 1024


async def test_two_stores_racing_on_one_user(ceph):
    """Two hub processes (two stores, no shared lock) creating the same user at once."""
    a = RgwCredentialStore(ceph.endpoint, ceph.admin.access_key, ceph.admin.secret_key)
    b = RgwCredentialStore(ceph.endpoint, ceph.admin.access_key, ceph.admin.secret_key)
    results = await asyncio.gather(*[s.ensure("cred-race") for s in (a, b, a, b)])
    assert len({r.access_key for r in results}) == 1


async def test_rotate_invalidates_old_keys(store, ceph):
    old = await store.ensure("cred-dave")
    s3(old, ceph.endpoint).list_buckets()
    new = await store.rotate("cred-dave")
    assert new.access_key != old.access_key
    s3(new, ceph.endpoint).list_buckets()
    with pytest.raises(ClientError) as e:
        s3(old, ceph.endpoint).list_buckets()
    assert e.value.response["Error"]["Code"] == "InvalidAccessKeyId"
    assert await store.ensure("cred-dave") == new


async def test_remove_user(store, ceph):
    creds = await store.ensure("cred-erin")
    assert await store.remove("cred-erin") is True
    assert await store.remove("cred-erin") is False
    with pytest.raises(ClientError) as e:
        s3(creds, ceph.endpoint).list_buckets()
    assert e.value.response["Error"]["Code"] == "InvalidAccessKeyId"


async def test_unreachable_rgw_fails_fast_with_a_clear_message():
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    store = RgwCredentialStore(f"http://127.0.0.1:{port}", "AK", "SK", timeout=1)
    t0 = time.monotonic()
    with pytest.raises(CredentialsUnavailable, match="not reachable"):
        await store.ensure("nobody")
    assert time.monotonic() - t0 < 3


async def test_hanging_rgw_is_bounded_in_time():
    """A server that accepts the connection and never answers: the spawn still gets an answer in time."""
    with socket.socket() as hang:
        hang.bind(("127.0.0.1", 0))
        hang.listen(16)
        store = RgwCredentialStore(f"http://127.0.0.1:{hang.getsockname()[1]}", "AK", "SK", timeout=1)
        t0 = time.monotonic()
        with pytest.raises(CredentialsUnavailable):
            await store.ensure("nobody")
        assert time.monotonic() - t0 < 4


async def test_secrets_never_logged_or_printed(store, caplog):
    with caplog.at_level(logging.DEBUG):
        creds = await store.ensure("cred-frank")
        rotated = await store.rotate("cred-frank")
    text = caplog.text + repr(creds) + str(rotated)
    assert creds.secret_key not in text and rotated.secret_key not in text
    assert "cred-frank" in caplog.text


def test_admin_commands_rotate_and_remove(ceph, capsys):
    """`odh-hub credentials rotate|remove USER`."""
    from odh_spawner.cli import main

    import subprocess
    import sys

    # the command runs its own event loop, so create the user from another process first
    created = subprocess.run([sys.executable, "-c", (
        "import asyncio, json, sys; from odh_spawner.credentials.rgw import RgwCredentialStore as S; "
        "k = json.load(open(sys.argv[1])); "
        "print(asyncio.run(S(k['endpoint'], k['access_key'], k['secret_key']).ensure('cred-gina')).access_key)"),
        ceph.admin_keys_file], capture_output=True, text=True, check=True).stdout.strip()
    assert main(["credentials", "rotate", "cred-gina", "--admin-keys", ceph.admin_keys_file]) == 0
    out = capsys.readouterr().out
    assert "rotated" in out and created not in out
    assert main(["credentials", "remove", "cred-gina", "--admin-keys", ceph.admin_keys_file]) == 0
    assert "removed" in capsys.readouterr().out
    assert main(["credentials", "remove", "cred-gina", "--admin-keys", ceph.admin_keys_file]) == 0
    assert "had no object-storage user" in capsys.readouterr().out
    assert main(["credentials", "rotate", "cred-gina", "--admin-keys", "/nonexistent.json"]) == 2


async def test_names_cannot_be_taken_over_and_old_names_are_kept(store, ceph):
    """Under the previous naming scheme `bob.smith` and `bob-smith-<its 8 hex>` shared one RGW user. A user
    made under that scheme keeps it (its display name records its owner), and the colleague whose new name
    equals it is refused it: never handed someone else's keys."""
    from odh_spawner.credentials.rgw import display_name
    from odh_spawner.naming import legacy_rgw_uid

    victim = "bob.smith"
    legacy = legacy_rgw_uid(victim)
    attacker = legacy[len("odh-"):]  # a safe name: today's scheme maps it to exactly the victim's old uid
    assert rgw_uid(attacker) == legacy and rgw_uid(victim) != legacy
    admin = RGWAdmin(ceph.admin.access_key, ceph.admin.secret_key, ceph.endpoint.split("//")[1], secure=False)
    admin.create_user(uid=legacy, display_name=display_name(victim), generate_key=True)  # made before the change
    key = admin.get_user(uid=legacy)["keys"][0]
    s3(type("K", (), {"access_key": key["access_key"], "secret_key": key["secret_key"]}),
       ceph.endpoint).create_bucket(Bucket="bob-smith-old-data")

    kept = await store.ensure(victim)
    assert kept.access_key == key["access_key"], "the existing user keeps their RGW user and keys"
    assert "bob-smith-old-data" in [b["Name"] for b in s3(kept, ceph.endpoint).list_buckets()["Buckets"]]
    with pytest.raises(CredentialsUnavailable) as e:
        await store.ensure(attacker)
    assert "taken" in str(e.value)
    assert key["secret_key"] not in str(e.value)


async def test_hub_user_named_like_the_platform_admin_gets_no_admin_keys(store, ceph):
    """Hub user `admin` maps to RGW uid `odh-admin`. The platform's own admin user lives outside the slug
    space (`odh_platform_admin`), so the hub user gets an ordinary RGW user of their own, never admin keys."""
    creds = await store.ensure("admin")
    assert creds.access_key != ceph.admin.access_key
    client = s3(creds, ceph.endpoint)
    client.list_buckets()
    admin_api = RGWAdmin(creds.access_key, creds.secret_key, ceph.endpoint.split("//")[1], secure=False)
    with pytest.raises(Exception):
        admin_api.get_users()


# -- buckets are owned (issue 18) ---------------------------------------------------------------------------
def _admin(ceph):
    return RGWAdmin(ceph.admin.access_key, ceph.admin.secret_key, ceph.endpoint.split("//")[1], secure=False)


async def test_credentials_make_the_users_default_buckets_as_that_user(store, ceph):
    from odh_spawner.naming import models_bucket

    creds = await store.ensure("cred-frank")
    names = {b["Name"] for b in s3(creds, ceph.endpoint).list_buckets()["Buckets"]}
    assert models_bucket("cred-frank") in names
    assert _admin(ceph).get_bucket(bucket=models_bucket("cred-frank"))["owner"] == rgw_uid("cred-frank")
    assert store.squatted == {}


async def test_a_squatted_models_bucket_is_not_used_and_the_victims_deploy_refuses(store, ceph, caplog):
    """bob creates the victim's models bucket before the victim's storage exists and lets everyone write it:
    the credential step does not use it (logged for the admin), and the victim's upload refuses it."""
    from server_extension.deploy import DeployClient, DeployError
    from server_extension.s3 import ensure_bucket
    from server_extension.validate import BadRequest

    from odh_spawner.naming import models_bucket
    from sklearn.linear_model import LinearRegression

    bucket = models_bucket("cred-victim")
    bob = s3(await store.ensure("cred-bob"), ceph.endpoint)
    bob.create_bucket(Bucket=bucket, ACL="public-read-write")
    with caplog.at_level(logging.ERROR, logger="odh_spawner.credentials"):
        victim_creds = await store.ensure("cred-victim")  # the credential step still succeeds
    assert store.squatted == {"cred-victim": [bucket]}
    assert any(bucket in r.getMessage() and rgw_uid("cred-bob") in r.getMessage() and "NOT used" in r.getMessage()
               for r in caplog.records), [r.getMessage() for r in caplog.records]
    victim = s3(victim_creds, ceph.endpoint)
    # the cause is ownership, not access: the victim *can* write into bob's bucket...
    victim.put_object(Bucket=bucket, Key="probe", Body=b"x")
    victim.delete_object(Bucket=bucket, Key="probe")
    # ...and is refused anyway, by the notebook side's ensure_bucket and by the one-click deploy's upload
    with pytest.raises(BadRequest) as e:
        ensure_bucket(victim, bucket)
    assert (e.value.status_code, str(e.value)) == (
        403, f"The bucket {bucket} belongs to another user; choose one of your own buckets.")
    client = DeployClient("http://127.0.0.1:9", token="", bucket=bucket, s3=victim)
    with pytest.raises(DeployError) as e:
        client.upload(LinearRegression().fit([[0.0], [1.0]], [0.0, 1.0]), "churn")
    assert e.value.status == 403 and f"Your models bucket {bucket} belongs to another user" in e.value.message
    assert bob.list_objects_v2(Bucket=bucket).get("KeyCount") == 0  # nothing of the victim's landed there
    # once bob's bucket is gone, the victim's next credential step makes it theirs
    bob.delete_bucket(Bucket=bucket)
    await store.ensure("cred-victim")
    assert store.squatted == {}
    assert _admin(ceph).get_bucket(bucket=bucket)["owner"] == rgw_uid("cred-victim")
    ensure_bucket(victim, bucket)  # their own: used


async def test_ownership_is_one_listing_and_tells_missing_from_taken(store, ceph):
    from odh_spawner.credentials import buckets

    mine = s3(await store.ensure("cred-gina"), ceph.endpoint)
    other = s3(await store.ensure("cred-hank"), ceph.endpoint)
    other.create_bucket(Bucket="hank-open", ACL="public-read-write")
    assert buckets.ownership(mine, buckets.default_buckets("cred-gina")[0]) == buckets.MINE
    assert buckets.ownership(mine, "hank-open") == buckets.OTHERS
    assert buckets.ownership(mine, "nobody-made-this") == buckets.MISSING
    assert buckets.claim(mine, "hank-open") is False
    assert buckets.claim(mine, "gina-new") is True and buckets.ownership(mine, "gina-new") == buckets.MINE
