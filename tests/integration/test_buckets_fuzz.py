"""Schemathesis against the extension's own OpenAPI description, on a real server with real RGW:
no 5xx and no traceback over >= 1,000 generated requests (valid and invalid), every 4xx JSON with a message,
and every answer as documented (status, Content-Type, body schema)."""

import os

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

import server_extension

SPEC = os.path.join(os.path.dirname(server_extension.__file__), "openapi.yaml")
schema = schemathesis.openapi.from_path(SPEC)
SENT = {"requests": 0, "by_status": {}, "proxy_retries": 0}


def _proxy_dropped(response) -> bool:
    """The proxy's own 503 page (HTML from the hub's error handler, not our JSON): configurable-http-proxy answers
    it when its connection to the server failed before an answer came (node's keep-alive reuse of a socket the
    server is closing: tornado closes a connection after answering a request whose body it did not read, as
    this fuzzing does often). The request never got an answer from the server at all."""
    return (response.status_code == 503 and "application/json" not in response.headers.get("Content-Type", "")
            and "<title>JupyterHub</title>" in response.text)
EXAMPLES = int(os.environ.get("ODH_FUZZ_EXAMPLES", "100"))


@pytest.fixture(scope="module")
def target(user_server):
    server = user_server("alice")
    client = server.client()
    # something real to find: generated bucket names mostly miss, these hit
    for name in ("fuzz-bucket",):
        if name not in [b["name"] for b in client.list_buckets()]:
            client.create_bucket(name)
    client.put_small("fuzz-bucket", "a.txt", b"hello")
    return server


@schema.parametrize()
@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_no_server_errors(case, target):
    # authentication is tested elsewhere: here every request carries the user's real token
    case.headers = {**(case.headers or {}), "Authorization": f"token {target.token}"}
    response = case.call(base_url=target.url.rstrip("/") + "/odh/api", timeout=30)
    if _proxy_dropped(response):  # sent again once, as a browser does; the answer must then come from the server
        SENT["proxy_retries"] += 1
        response = case.call(base_url=target.url.rstrip("/") + "/odh/api", timeout=30)
    SENT["requests"] += 1
    SENT["by_status"][response.status_code] = SENT["by_status"].get(response.status_code, 0) + 1
    assert response.status_code < 500, f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    assert "Traceback" not in response.text
    if response.status_code in (414, 431):
        return  # URL or headers too large for the proxy/HTTP server: refused before reaching the API
    if response.status_code >= 400:
        try:  # an answer the user can read: JSON with a message
            message = response.json()["message"]
        except (ValueError, KeyError, TypeError):
            raise AssertionError(f"{case.method} {case.formatted_path} -> {response.status_code}: {response.text[:200]}")
        assert message
    # the answer as documented: status, Content-Type and body schema
    case.validate_response(response, checks=[not_a_server_error, status_code_conformance, content_type_conformance,
                                             response_schema_conformance])


def test_enough_requests_were_generated():
    print("schemathesis requests by status:", SENT["by_status"])
    assert SENT["requests"] >= 1000, SENT
    assert SENT["proxy_retries"] <= SENT["requests"] // 100, SENT  # a rare race, never a pattern
