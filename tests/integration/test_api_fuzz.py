"""Schemathesis over every HTTP API but buckets (tests/integration/test_buckets_fuzz.py), each from its own
OpenAPI document, against the real running services of the session (hub, proxy, platform service, alice's
notebook server, RGW, Kafka, MLServer), as alice with her real hub token:

- the platform service (deployments, ingestions, Spark) at <platform>/services/odh-platform/api;
- the model gateway at <platform>/v2/models/... (where the hub's proxy sends every model URL);
- alice's notebook server: deployments, ingestions with Kafka topics, Spark under /user/alice/odh/api;
- the platform and the gateway again as bob, with his own hub token, naming alice's things: refused, with a
  JSON message saying why, never a 2xx about hers.

Generated requests (valid and invalid, `ODH_FUZZ_EXAMPLES` per operation) are checked by Schemathesis
(no answer >= 500, the status and Content-Type documented, the body conforms to the documented schema) and
here: every 4xx is JSON with a non-empty `message`, no traceback. Something real to find: alice has one
deployment serving and one ingestion running; a path parameter naming a deployment, model or ingestion is
replaced by hers in about half of the cases (never for DELETE, so the seeds survive), and `?user=` names alice in most. Every answer joins
the secret scan (tests.support.secretscan.record_requests_response). What alice's fuzzing created is
deleted at the end of the module."""

from __future__ import annotations

import os
import zlib
from collections import Counter, defaultdict

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import (content_type_conformance, not_a_server_error, response_schema_conformance,
                                 status_code_conformance)

import server_extension
from odh_spawner import platform as platform_pkg
from server_extension.ingest import IngestClient, ingest
from tests.support import secretscan
from tests.support.kafka import create_topic, produce
from tests.support.kernel import Kernel

NB = os.path.dirname(server_extension.__file__)
PF = os.path.dirname(platform_pkg.__file__)
EXAMPLES = int(os.environ.get("ODH_FUZZ_EXAMPLES", "25"))
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]
SEED_DEPLOYMENT, SEED_INGESTION, SEED_BUCKET, SEED_TOPIC = "fuzz-model", "fuzz-ingest", "alice-fuzz", "fuzz-events"

PLATFORM = schemathesis.openapi.from_path(os.path.join(PF, "openapi.yaml"))
GATEWAY = schemathesis.openapi.from_path(os.path.join(PF, "gateway.openapi.yaml"))
NB_DEPLOYMENTS = schemathesis.openapi.from_path(os.path.join(NB, "deployments.openapi.yaml"))
NB_INGESTIONS = schemathesis.openapi.from_path(os.path.join(NB, "ingestions.openapi.yaml"))
NB_SPARK = schemathesis.openapi.from_path(os.path.join(NB, "spark.openapi.yaml"))
NB_USAGE = schemathesis.openapi.from_path(os.path.join(NB, "usage.openapi.yaml"))
NB_FEATURES = schemathesis.openapi.from_path(os.path.join(NB, "features.openapi.yaml"))

SENT: dict[str, Counter] = defaultdict(Counter)  # api -> status -> count
FUZZ = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)

DEPLOY = f'''
import numpy as np
from sklearn.linear_model import LogisticRegression
from server_extension.deploy import deploy
X = np.random.default_rng(0).random((60, 4)); y = (X[:, 0] > 0.5).astype(int)
d = deploy(LogisticRegression().fit(X, y), name={SEED_DEPLOYMENT!r}, sample=[[0.9, 0.1, 0.1, 0.1]])
print(d.infer_url)
'''


def platform_api(hub) -> str:
    return hub.runtime["platform_url"] + "/services/odh-platform/api"


def names(hub, token: str, what: str) -> set[str]:
    r = requests.get(f"{platform_api(hub)}/{what}", headers={"Authorization": f"token {token}"}, timeout=30)
    r.raise_for_status()
    return {x["name"] for x in r.json()[what]}


@pytest.fixture(scope="module")
def seeds(user_server, hub, kafka_broker, login):
    """alice's server, one deployment serving and one ingestion running; afterwards everything of alice's and
    bob's that the fuzzing made is deleted (and the seeds)."""
    alice = user_server("alice")
    tokens = {"alice": alice.token, "bob": login("bob").token}
    before = {(who, what): names(hub, token, what) for who, token in tokens.items()
              for what in ("deployments", "ingestions")}
    kernel = Kernel(alice.url, alice.token)
    try:
        kernel.execute(DEPLOY, timeout=300)
    finally:
        kernel.close()
    client = alice.client()
    if SEED_BUCKET not in [b["name"] for b in client.list_buckets()]:
        client.create_bucket(SEED_BUCKET)
    create_topic(kafka_broker.bootstrap, SEED_TOPIC, 2)
    produce(kafka_broker.bootstrap, SEED_TOPIC, 50)
    ing = ingest(topic=SEED_TOPIC, bucket=SEED_BUCKET, prefix="fuzz/", flush_records=10, flush_seconds=1,
                 name=SEED_INGESTION, show_plan=False, client=IngestClient(hub.runtime["platform_url"]
                                                                             + "/services/odh-platform/", alice.token))
    ing.wait(50, timeout=120)
    yield alice
    for (who, what), old in before.items():
        for name in names(hub, tokens[who], what) - old:
            r = requests.delete(f"{platform_api(hub)}/{what}/{name}", timeout=120,
                                headers={"Authorization": f"token {tokens[who]}"})
            assert r.status_code == 200, f"{who}'s {what}/{name}: {r.status_code} {r.text[:200]}"


def seeded(case, param: str | None = None, value: str = "") -> None:
    """Name alice's own deployment/model/ingestion in about half of the cases (never for DELETE); name alice
    herself in three of four cases that name a user (`?user=`: any other name is a 403 for her, by design,
    which would leave the rest of such a request untried)."""
    params = case.path_parameters or {}
    if param in params and case.method.upper() != "DELETE" and zlib.crc32(repr(params).encode()) % 2:
        params[param] = value
    if case.query and "user" in case.query and zlib.crc32(repr(case.query).encode()) % 4:
        case.query["user"] = "alice"


def check(api: str, case, base_url: str, token: str, scheme: str = "token"):
    # the caller's real credential, always (authentication is tested elsewhere): it replaces any Authorization
    # header Schemathesis generated
    case.headers = {**(case.headers or {}), "Authorization": f"{scheme} {token}"}
    response = case.call(base_url=base_url, timeout=60, hooks={"response": secretscan.record_requests_response})
    SENT[api][response.status_code] += 1
    where = f"{api}: {case.method} {case.formatted_path} -> {response.status_code}: {response.text[:300]}"
    assert "Traceback" not in response.text, where
    if response.status_code in (414, 431):
        return  # URL or headers too large for the HTTP server: refused before reaching the API
    if 400 <= response.status_code < 500 and case.method.upper() != "HEAD":
        try:
            message = response.json()["message"]
        except (ValueError, KeyError, TypeError):
            raise AssertionError("a 4xx without a JSON message: " + where) from None
        assert isinstance(message, str) and message.strip(), where
    case.validate_response(response, checks=CHECKS)
    return response


@PLATFORM.parametrize()
@FUZZ
def test_platform_service(case, seeds, hub):
    seeded(case, "name", SEED_INGESTION if "/ingestions/" in case.path else SEED_DEPLOYMENT)
    check("platform", case, platform_api(hub), seeds.token)


@GATEWAY.parametrize()
@FUZZ
def test_model_gateway(case, seeds, hub):
    seeded(case, "model", f"alice.{SEED_DEPLOYMENT}")
    check("gateway", case, hub.runtime["platform_url"], seeds.token, scheme="Bearer")


@PLATFORM.parametrize()
@FUZZ
def test_platform_service_as_bob(case, seeds, hub, login):
    """bob, with his own hub token, fuzzes the platform with alice's names and `?user=alice`: every refusal is a
    JSON message, and nothing names alice's things for him (a request for her user is never a 2xx)."""
    seeded(case, "name", SEED_INGESTION if "/ingestions/" in case.path else SEED_DEPLOYMENT)
    response = check("platform as bob", case, platform_api(hub), login("bob").token)
    if (case.query or {}).get("user") == "alice":
        assert response.status_code in (400, 403, 404, 405, 414, 431), (case.formatted_path, response.text[:200])
        if response.status_code == 403:
            assert response.json()["message"].startswith(("Only admins may act on other users'",
                                                          "Only admins may see other users' usage.")), response.text


@GATEWAY.parametrize()
@FUZZ
def test_model_gateway_as_bob(case, seeds, hub, login):
    """bob calls alice's model (and others) with his own hub token: never a 2xx from hers, and the refusal
    says why (403: it belongs to another user)."""
    seeded(case, "model", f"alice.{SEED_DEPLOYMENT}")
    # the fuzzing of alice's own deployments API may have made her seed public ({"public": true} is a valid
    # PATCH): a public endpoint answers everyone on purpose, so bob's refusal is checked on a private one
    r = requests.patch(f"{platform_api(hub)}/deployments/{SEED_DEPLOYMENT}", json={"public": False}, timeout=30,
                       headers={"Authorization": f"token {seeds.token}"})
    assert r.status_code == 200 and r.json()["public"] is False, r.text
    response = check("gateway as bob", case, hub.runtime["platform_url"], login("bob").token, scheme="Bearer")
    if (case.path_parameters or {}).get("model") == f"alice.{SEED_DEPLOYMENT}":
        assert not 200 <= response.status_code < 300, (case.formatted_path, response.status_code)
        if response.status_code == 403 and case.method.upper() != "HEAD":
            assert "belongs to another user" in response.json()["message"], response.text


@NB_DEPLOYMENTS.parametrize()
@FUZZ
def test_notebook_deployments(case, seeds):
    seeded(case, "name", SEED_DEPLOYMENT)
    check("notebook deployments", case, seeds.url + "odh/api", seeds.token)


@NB_INGESTIONS.parametrize()
@FUZZ
def test_notebook_ingestions_and_kafka_topics(case, seeds):
    seeded(case, "name", SEED_INGESTION)
    check("notebook ingestions", case, seeds.url + "odh/api", seeds.token)


@NB_SPARK.parametrize()
@FUZZ
def test_notebook_spark(case, seeds):
    seeded(case)
    check("notebook spark", case, seeds.url + "odh/api", seeds.token)


@NB_USAGE.parametrize()
@FUZZ
def test_notebook_usage(case, seeds):
    seeded(case)
    check("notebook usage", case, seeds.url + "odh/api", seeds.token)


@NB_FEATURES.parametrize()
@FUZZ
def test_notebook_features(case, seeds):
    check("notebook features", case, seeds.url + "odh/api", seeds.token)


def test_every_api_was_fuzzed_and_the_seeds_were_reached(seeds, hub):
    """What was sent, per API and status (printed for the record); each API got requests, none a 5xx, and the
    seeded cases reached alice's real deployment and ingestion (200s from each)."""
    for api, statuses in sorted(SENT.items()):
        print(f"schemathesis {api}: {sum(statuses.values())} requests, by status {dict(sorted(statuses.items()))}")
    assert set(SENT) == {"platform", "gateway", "notebook deployments", "notebook ingestions", "notebook spark",
                         "notebook usage", "notebook features", "platform as bob", "gateway as bob"}
    for api, statuses in SENT.items():
        # GET /odh/api/features takes no parameters: Schemathesis has one case to send
        assert sum(statuses.values()) >= (1 if api == "notebook features" else EXAMPLES), (api, statuses)
        assert not [s for s in statuses if s >= 500], (api, statuses)
        if not api.endswith(" as bob"):
            assert statuses[200] > 0, (api, statuses)
    assert SENT["gateway as bob"][403] > 0, SENT["gateway as bob"]  # bob did reach alice's model, and was refused
    # the seeds are still there, and alice's model still answers through the gateway
    assert SEED_DEPLOYMENT in names(hub, seeds.token, "deployments")
    assert SEED_INGESTION in names(hub, seeds.token, "ingestions")


def test_a_refused_ingestion_creates_no_topic(seeds, hub, kafka_broker):
    """Found while fuzzing: a create with `create_topic: true` and a bucket alice does not own was refused, but
    the topic had been created first. Now the bucket is checked first: the refusal says why, and Kafka has no
    such topic afterwards."""
    from confluent_kafka.admin import AdminClient

    topic = "fuzz-refused-topic"
    r = requests.post(f"{platform_api(hub)}/ingestions", timeout=60, headers={"Authorization": f"token {seeds.token}"},
                      json={"name": "refused", "topic": topic, "bucket": "no-such-bucket-of-alice",
                            "create_topic": True})
    assert (r.status_code, r.json()["message"]) == (
        400, "Bucket 'no-such-bucket-of-alice' does not exist; create it first."), r.text
    topics = AdminClient({"bootstrap.servers": kafka_broker.bootstrap}).list_topics(timeout=10).topics
    assert topic not in topics, sorted(topics)
