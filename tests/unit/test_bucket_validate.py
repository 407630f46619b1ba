"""Input validation of the bucket API, and S3 errors mapped to user-safe HTTP answers. Pure."""

import pytest
from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from server_extension import validate as v
from server_extension.s3 import http_error


@pytest.mark.parametrize("name", ["abc", "my-bucket.data", "a" * 63, "0-9"])
def test_valid_bucket_names(name):
    assert v.bucket(name) == name


@pytest.mark.parametrize("name", ["ab", "a" * 64, "Upper", "under_score", "-start", "end-", "a..b", "a.-b",
                                  "192.168.0.1", "", None, 5, "spa ce", "s3://x"])
def test_invalid_bucket_names(name):
    with pytest.raises(v.BadRequest) as e:
        v.bucket(name)
    assert e.value.status_code == 400 and "bucket name" in str(e.value)


@pytest.mark.parametrize("key", ["a", "dir/file.csv", "ünïcode/ключ.txt", "x" * 1024, "with space"])
def test_valid_keys(key):
    assert v.key(key) == key


@pytest.mark.parametrize("key,fragment", [("", "required"), (None, "required"), ("/abs", "must not start"),
                                          ("x" * 1025, "1024 bytes"), ("é" * 513, "1024 bytes"),
                                          ("bad\x00nul", "control"), ("new\nline", "control"),
                                          ("\ud800", "UTF-8")])
def test_invalid_keys(key, fragment):
    with pytest.raises(v.BadRequest, match=fragment):
        v.key(key)


def test_integers_tokens_delimiters():
    assert v.integer(None, "page_size", 1, 1000, 1000) == 1000
    assert v.integer("25", "page_size", 1, 1000) == 25
    for bad in ("0", "1001", "-1", "1.5", "ten", True, 3.0):
        with pytest.raises(v.BadRequest):
            v.integer(bad, "page_size", 1, 1000)
    assert v.token("") is None and v.token("abc") == "abc"
    with pytest.raises(v.BadRequest):
        v.token("x" * 3000)
    assert v.delimiter(None) == "/" and v.delimiter("") == ""
    with pytest.raises(v.BadRequest):
        v.delimiter("|")


def test_folder_and_body():
    assert v.folder("a/b") == "a/b/" and v.folder("a/b///") == "a/b/"
    with pytest.raises(v.BadRequest):
        v.folder("///")
    assert v.body_object({"name": "x"}, ("name",)) == {"name": "x"}
    with pytest.raises(v.BadRequest, match="Unknown field"):
        v.body_object({"name": "x", "acl": "public"}, ("name",))
    with pytest.raises(v.BadRequest, match="Missing field"):
        v.body_object({}, ("name",))
    with pytest.raises(v.BadRequest, match="JSON object"):
        v.body_object([1], ("name",))


def test_part_size_fits_ten_thousand_parts():
    assert v.part_size_for(0, 8 * v.MiB) == 8 * v.MiB
    assert v.part_size_for(2**30, 8 * v.MiB) == 8 * v.MiB
    big = 200 * 2**30
    ps = v.part_size_for(big, 8 * v.MiB)
    assert ps % v.MiB == 0 and -(-big // ps) <= 10_000


def _client_error(code, status):
    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "Op")


@pytest.mark.parametrize("code,status,expected", [
    ("NoSuchBucket", 404, 404), ("NoSuchKey", 404, 404), ("404", 404, 404), ("AccessDenied", 403, 403),
    ("BucketAlreadyExists", 409, 409), ("QuotaExceeded", 403, 403), ("EntityTooSmall", 400, 400),
    ("SomethingNew", 400, 400), ("InternalError", 500, 502), ("SlowDown", 503, 502),
])
def test_s3_errors_map_to_http(code, status, expected):
    err = http_error(_client_error(code, status))
    assert err.status_code == expected and str(err)


def test_unreachable_and_missing_credentials():
    assert http_error(EndpointConnectionError(endpoint_url="http://x")).status_code == 503
    assert "AWS_ACCESS_KEY_ID" in str(http_error(NoCredentialsError()))


def test_upload_ids():
    assert v.upload_id("2~n0gclrqrITcHS4_IwWAC_zKmaNsaY5s") == "2~n0gclrqrITcHS4_IwWAC_zKmaNsaY5s"
    for bad in ("", "a/b", "x" * 513, "ü", None):
        with pytest.raises(v.BadRequest):
            v.upload_id(bad)
