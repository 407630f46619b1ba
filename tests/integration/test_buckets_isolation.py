"""Two users spawn through the real hub; each gets and uses only their own keys; B cannot touch A's data."""

import boto3
import pytest
import requests
from botocore.config import Config
from botocore.exceptions import ClientError

from odh_spawner.credentials import rgw_uid
from server_extension.client import OdhApiError
from tests.support.fixtures import server_pid


def own_s3(server):
    env = server.env
    return boto3.client("s3", endpoint_url=env["S3_ENDPOINT_URL"], aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
                        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1",
                        config=Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))


@pytest.fixture(scope="module")
def alice_data(user_server):
    alice = user_server("alice").client()
    if "alice-private" not in [b["name"] for b in alice.list_buckets()]:
        alice.create_bucket("alice-private")
    alice.put_small("alice-private", "secret/report.csv", b"a,b\n1,2\n")
    return alice


def test_each_user_gets_their_own_keys(user_server, ceph):
    a, b = user_server("alice").env, user_server("bob").env
    assert a["AWS_ACCESS_KEY_ID"] != b["AWS_ACCESS_KEY_ID"]
    assert a["S3_ENDPOINT_URL"] == b["S3_ENDPOINT_URL"] == ceph.endpoint
    assert a["AWS_REQUEST_CHECKSUM_CALCULATION"] == "WHEN_REQUIRED"
    from rgwadmin import RGWAdmin

    admin = RGWAdmin(ceph.admin.access_key, ceph.admin.secret_key, ceph.endpoint.split("//")[1], secure=False)
    keys = admin.get_user(uid=rgw_uid("alice"))["keys"]
    assert [k["access_key"] for k in keys] == [a["AWS_ACCESS_KEY_ID"]]


def test_restart_reuses_the_same_keys(user_server, login):
    alice = user_server("alice")
    before = alice.env["AWS_ACCESS_KEY_ID"]
    r = login("alice").api("GET", "/users/alice")
    assert r.ok
    # stop and start again: same RGW user, same keys
    login("alice").stop()
    r = login("alice").api("POST", "/users/alice/server", json={"profile": "minimal"})
    assert r.status_code in (201, 202)
    login("alice").wait_ready()
    alice.pid = server_pid(login("admin"), "alice")
    assert alice.env["AWS_ACCESS_KEY_ID"] == before


@pytest.mark.parametrize("call", ["list", "metadata", "download", "put", "delete", "delete_prefix", "presign",
                                  "upload"])
def test_bob_cannot_touch_alices_bucket_through_the_api(alice_data, user_server, call):
    bob = user_server("bob").client()
    actions = {
        "list": lambda: bob.list_page("alice-private"),
        "metadata": lambda: bob.metadata("alice-private", "secret/report.csv"),
        "download": lambda: bob.get_bytes("alice-private", "secret/report.csv"),
        "put": lambda: bob.put_small("alice-private", "evil.txt", b"x"),
        "delete": lambda: bob.delete("alice-private", "secret/report.csv"),
        "delete_prefix": lambda: bob.delete_prefix("alice-private", "secret/", confirm=True),
        "presign": lambda: bob.presign("alice-private", "secret/report.csv"),
        "upload": lambda: bob.upload("alice-private", "evil.bin", __import__("io").BytesIO(b"x" * 10), size=10),
    }
    with pytest.raises(OdhApiError) as e:
        actions[call]()
    assert e.value.status == 403, e.value
    assert alice_data.get_bytes("alice-private", "secret/report.csv") == b"a,b\n1,2\n"


@pytest.mark.parametrize("call", ["list", "get", "put", "delete", "presign"])
def test_bob_cannot_touch_alices_bucket_with_his_own_keys(alice_data, user_server, call):
    s3 = own_s3(user_server("bob"))
    if call == "presign":
        url = s3.generate_presigned_url("get_object", Params={"Bucket": "alice-private", "Key": "secret/report.csv"})
        assert requests.get(url, timeout=10).status_code == 403
        return
    actions = {
        "list": lambda: s3.list_objects_v2(Bucket="alice-private"),
        "get": lambda: s3.get_object(Bucket="alice-private", Key="secret/report.csv"),
        "put": lambda: s3.put_object(Bucket="alice-private", Key="evil.txt", Body=b"x"),
        "delete": lambda: s3.delete_object(Bucket="alice-private", Key="secret/report.csv"),
    }
    with pytest.raises(ClientError) as e:
        actions[call]()
    assert e.value.response["Error"]["Code"] == "AccessDenied"
    assert alice_data.get_bytes("alice-private", "secret/report.csv") == b"a,b\n1,2\n"


def test_alices_own_keys_work_directly(alice_data, user_server):
    s3 = own_s3(user_server("alice"))
    assert s3.get_object(Bucket="alice-private", Key="secret/report.csv")["Body"].read() == b"a,b\n1,2\n"
    url = alice_data.presign("alice-private", "secret/report.csv", expires=60)
    assert requests.get(url, timeout=10).content == b"a,b\n1,2\n"


def test_unauthenticated_calls_are_refused(user_server):
    url = user_server("alice").url + "odh/api/buckets"
    for method in ("GET", "POST"):
        r = requests.request(method, url, json={"name": "x-y-z"}, allow_redirects=False, timeout=10)
        assert r.status_code == 403, (method, r.status_code, r.text[:200])
    r = requests.get(url, headers={"Authorization": "token not-a-token"}, allow_redirects=False, timeout=10)
    assert r.status_code == 403


def test_state_changing_calls_need_xsrf_with_cookie_auth(user_server, login):
    alice = login("alice")
    server = user_server("alice")
    # a browser session: the OAuth dance for the server sets its cookie
    r = alice.s.get(server.url + "lab", timeout=30)
    assert r.status_code == 200
    api = server.url + "odh/api/buckets"
    assert alice.s.get(api, timeout=10).status_code == 200
    r = alice.s.post(api, json={"name": "xsrf-test"}, timeout=10)
    assert r.status_code == 403, r.text
    xsrf = alice.s.cookies.get("_xsrf", path="/user/alice/") or alice.s.cookies.get("_xsrf")
    r = alice.s.post(api, json={"name": "xsrf-test"}, headers={"X-XSRFToken": xsrf}, timeout=10)
    assert r.status_code == 201, r.text


def test_no_secret_in_api_answers_progress_or_logs(user_server, login, hub):
    alice = user_server("alice")
    secret = alice.env["AWS_SECRET_ACCESS_KEY"]
    client = alice.client()
    answers = [client.list_buckets(), client.list_page("alice-private", prefix="secret/"),
               client.metadata("alice-private", "secret/report.csv")]
    assert secret not in repr(answers)
    assert secret not in repr(login("alice").model())
    with open(hub.log_path, encoding="utf-8", errors="replace") as f:
        log = f.read()
    assert secret not in log and alice.env["AWS_SECRET_ACCESS_KEY"][:12] not in log
    bob_secret = user_server("bob").env["AWS_SECRET_ACCESS_KEY"]
    assert bob_secret not in log


def test_bad_input_is_a_4xx_with_a_message(user_server):
    c = user_server("alice").client()
    for action, status in [
        (lambda: c.create_bucket("Not_Valid"), 400),
        (lambda: c.list_page("alice-private", page_size=0), 400),
        (lambda: c.list_page("no-such-bucket-here"), 404),
        (lambda: c.metadata("alice-private", "missing.csv"), 404),
        (lambda: c.delete_prefix("alice-private", "secret/", confirm=False), 400),
        (lambda: c.create_bucket("alice-private"), 409),
    ]:
        with pytest.raises(OdhApiError) as e:
            action()
        assert e.value.status == status and e.value.message
    r = requests.post(c.api + "/buckets", data="not json", headers={"Authorization": f"token {c.token}"}, timeout=10)
    assert r.status_code == 400 and "JSON" in r.json()["message"]
    r = requests.get(c.api + "/buckets/alice-private/objects", params={"delimiter": "|"},
                     headers={"Authorization": f"token {c.token}"}, timeout=10)
    assert r.status_code == 400 and "Delimiter" in r.json()["message"]
