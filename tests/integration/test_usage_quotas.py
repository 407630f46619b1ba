"""Per-group quotas and the usage API against the real platform (hub, proxy, Ceph RGW, Kafka).

carol (tests/support/fixtures.py) is in the small-quota group `students` (STUDENT_QUOTAS: 2 MiB of storage, no
deployments, 1 ingestion, 1 Spark worker). Every refusal is proven by its message, which names the limit and
the group it comes from; her RGW quota is read back through the Admin Ops API."""

from __future__ import annotations

import io
import json
import time

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError
from rgwadmin import RGWAdmin

from odh_spawner.naming import rgw_uid, user_slug
from server_extension.client import OdhApiError
from server_extension.ingest import IngestClient
from server_extension.usage_client import UsageClient
from tests.support.kafka import create_topic
from tests.support.kernel import Kernel
from tests.support.wait import wait_for

pytestmark = pytest.mark.integration

QUOTA = 2 * 2**20  # STUDENT_QUOTAS["storage"]
STUDENTS = "group students"


def platform_url(hub) -> str:
    return hub.runtime["platform_url"] + "/services/odh-platform/"


def usage_of(hub, token: str, user: str = "") -> requests.Response:
    return requests.get(platform_url(hub) + "api/usage", params={"user": user} if user else None,
                        headers={"Authorization": f"token {token}"}, timeout=30)


def s3_of(env: dict):
    return boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}))


@pytest.fixture(scope="module")
def carol(user_server):
    return user_server("carol")


def test_a_spark_cluster_over_the_groups_limit_is_refused_before_anything_starts(hub, login):
    carol = login("carol")
    r = carol.api("POST", "/users/carol/server", json={"profile": "datascience", "spark": {"workers": 2}})
    assert r.status_code == 403, r.text
    assert r.json()["message"] == f"2 Spark workers exceed your limit of 1 ({STUDENTS})."
    assert carol.api("GET", "/users/carol").json()["servers"] == {}  # no failed spawn left behind


def test_the_groups_storage_quota_is_set_on_the_rgw_user_and_an_upload_over_it_is_refused(hub, ceph, carol):
    with open(ceph.admin_keys_file) as f:
        keys = json.load(f)
    host = ceph.endpoint.split("://", 1)[1]
    admin = RGWAdmin(keys["access_key"], keys["secret_key"], host, secure=False)
    quota = admin.get_user_quota(uid=rgw_uid("carol"))
    assert quota["enabled"] is True and quota["max_size_kb"] == QUOTA // 1024, quota
    s3 = s3_of(carol.env)
    s3.create_bucket(Bucket="carol-quota")
    s3.put_object(Bucket="carol-quota", Key="small", Body=b"x" * 1024)  # within the quota
    with pytest.raises(ClientError) as e:  # RGW itself refuses what would pass the quota
        s3.put_object(Bucket="carol-quota", Key="big", Body=b"x" * (3 * 2**20))
    assert e.value.response["Error"]["Code"] == "QuotaExceeded"
    # the bucket browser's upload (the server extension) says which quota, and where it comes from
    with pytest.raises(OdhApiError) as e:
        carol.client().upload("carol-quota", "big.bin", io.BytesIO(b"y" * (3 * 2**20)), size=3 * 2**20)
    assert e.value.status == 403
    assert e.value.message == f"Your storage quota of 2 MiB ({STUDENTS}) is full; delete objects first."
    keys_left = [o["Key"] for o in s3.list_objects_v2(Bucket="carol-quota").get("Contents", [])]
    assert keys_left == ["small"]
    s3.delete_object(Bucket="carol-quota", Key="small")
    s3.delete_bucket(Bucket="carol-quota")


def test_a_deployment_over_the_groups_limit_is_refused_before_any_work(hub, carol):
    # the bucket does not exist: the quota is checked first, so the answer is the quota's
    r = requests.post(platform_url(hub) + "api/deployments", headers={"Authorization": f"token {carol.token}"},
                      json={"name": "model-one", "model_uri": "s3://no-such-bucket-anywhere/model.joblib"},
                      timeout=30)
    assert r.status_code == 403, r.text
    assert r.json() == {"message": f"You may have no deployments ({STUDENTS}); ask your platform admin for a quota."}
    # the same through her notebook server
    r = requests.post(carol.url + "odh/api/deployments", headers={"Authorization": f"token {carol.token}"},
                      json={"name": "model-one", "model_uri": "s3://no-such-bucket-anywhere/model.joblib"},
                      timeout=30)
    assert r.status_code == 403 and r.json()["message"].startswith(f"You may have no deployments ({STUDENTS})")


def test_an_ingestion_over_the_groups_limit_is_refused_naming_it(hub, carol, kafka_broker):
    s3 = s3_of(carol.env)
    try:
        s3.create_bucket(Bucket="carol-raw")
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    create_topic(kafka_broker.bootstrap, "carol-events", 1)
    c = IngestClient(platform_url(hub), carol.token)
    c.call("POST", json={"name": "first", "topic": "carol-events", "bucket": "carol-raw", "prefix": "first/"})
    try:
        with pytest.raises(OdhApiError) as e:
            c.call("POST", json={"name": "second", "topic": "carol-events", "bucket": "carol-raw",
                                 "prefix": "second/"})
        assert e.value.status == 403
        assert e.value.message == f"You may have at most 1 ingestion ({STUDENTS}); delete one first."
        assert [i["name"] for i in c.call("GET")["ingestions"]] == ["first"]
        got = usage_of(hub, carol.token).json()
        assert got["ingestions"] == {"count": 1, "limit": 1, "source": STUDENTS}
    finally:
        c.call("DELETE", "/first")


def test_usage_shows_the_users_own_figures_and_limits(hub, login, carol):
    def with_memory():
        r = usage_of(hub, carol.token)
        return r.json() if r.status_code == 200 and r.json()["memory_bytes"] > 10 * 2**20 else None

    got = wait_for(with_memory, timeout=30, what="carol's server's memory", interval=1)
    assert got["user"] == "carol"
    assert got["storage_quota_bytes"] == QUOTA and got["storage_quota_source"] == STUDENTS
    assert got["deployments"] == {"count": 0, "limit": 0, "source": STUDENTS}
    assert got["spark_workers"] == {"count": 0, "limit": 1, "source": STUDENTS}
    assert got["cpu_hours"] >= 0 and abs(got["as_of"] - time.time()) < 60
    # through her notebook server (what the Usage panel calls), and odh_hub.usage()
    r = requests.get(carol.url + "odh/api/usage", headers={"Authorization": f"token {carol.token}"}, timeout=30)
    assert r.status_code == 200 and r.json()["user"] == "carol" and r.json()["storage_quota_bytes"] == QUOTA
    assert UsageClient(carol.url, carol.token).usage()["deployments"]["source"] == STUDENTS
    # her CPU time grows as her server works (the platform's running total): a cell burns 2 s of CPU
    before = got["cpu_seconds"]
    kernel, seen = Kernel(carol.url, carol.token), []
    try:
        kernel.execute("import time\nt = time.process_time()\nwhile time.process_time() - t < 2: pass", timeout=60)

        def grown():
            seen.append(usage_of(hub, carol.token).json()["cpu_seconds"])
            return seen[-1] >= before + 1.5

        try:
            wait_for(grown, timeout=30, what="carol's CPU seconds growing", interval=1)
        except AssertionError as e:
            raise AssertionError(f"{e}: from {before}, seen {seen}") from None
    finally:
        kernel.ws.close()
        requests.delete(carol.url + f"api/kernels/{kernel.id}", headers={"Authorization": f"token {carol.token}"},
                        timeout=30)
    # alice's limits are the platform's (no group of hers sets any)
    alice = usage_of(hub, login("alice").token).json()
    assert alice["user"] == "alice" and alice["storage_quota_bytes"] == 10 * 2**30
    assert alice["storage_quota_source"] == "the platform default"


def test_another_users_usage_is_for_admins_only(hub, login, carol):
    r = usage_of(hub, carol.token, "alice")
    assert r.status_code == 403 and r.json() == {"message": "Only admins may see other users' usage."}
    r = requests.get(carol.url + "odh/api/usage", params={"user": "alice"},
                     headers={"Authorization": f"token {carol.token}"}, timeout=30)
    assert r.status_code == 403 and r.json()["message"] == "Only admins may see other users' usage."
    r = usage_of(hub, login("admin").token, "carol")
    assert r.status_code == 200 and r.json()["user"] == "carol" and r.json()["storage_quota_source"] == STUDENTS
    admin = usage_of(hub, login("admin").token).json()
    assert admin["storage_quota_bytes"] == 50 * 2**30 and admin["storage_quota_source"] == "group platform-admins"
    r = requests.get(platform_url(hub) + "api/usage", timeout=30)
    assert r.status_code == 403 and "token" in r.json()["message"]


def test_the_metrics_report_each_users_own_quota(hub, login, carol):
    """odh_user_quota_bytes is the quota RGW enforces on each user (their group's), read every storage refresh."""
    from tests.integration.test_metrics import scrape_platform, value, wait_for_value

    token = login("admin").token
    got = wait_for_value(lambda: scrape_platform(hub, token),
                         lambda s: value(s, "odh_user_quota_bytes", owner=user_slug("carol")) == QUOTA,
                         75, "carol's 2 MiB quota in the metrics")
    assert value(got, "odh_user_quota_bytes", owner=user_slug("admin")) in (None, 50 * 2**30)  # admin's group's
