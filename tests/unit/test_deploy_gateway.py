"""The model gateway's decisions (pure parts): who may call a deployment's endpoint, the bounded token cache,
the API key's life, and what the API shows of it. The gateway against a real hub, proxy and MLServer is in
tests/integration/test_deploy.py."""

import asyncio

import pytest

from odh_spawner.deploy.model import KEY_PREFIX, Deployment, key_digest, key_matches, new_api_key
from odh_spawner.platform.gateway import _HUB_DOWN, ModelGateway, TokenUsers

USERS = {"alice-token": {"kind": "user", "name": "alice", "scopes": ["access:services!service=odh-platform"]},
         "bob-token": {"kind": "user", "name": "bob", "scopes": ["access:services!service=odh-platform"]},
         "alice-narrow": {"kind": "user", "name": "alice", "scopes": ["read:users:name!user=alice"]},
         "service-token": {"kind": "service", "name": "alice", "scopes": []}}


class Hub:
    """A stand-in for HubAuth's token check (the real one is exercised against a real hub in integration)."""

    def __init__(self, down=False):
        self.calls = []
        self.down = down

    async def user_for_token(self, token, use_cache=True, session_id="", *, sync=True):
        assert use_cache is False and sync is False
        self.calls.append(token)
        await asyncio.sleep(0.01)
        if self.down:
            raise OSError("hub down")
        return USERS.get(token)


def gateway(hub=None, ttl=30, size=100):
    users = TokenUsers(hub or Hub(), ttl=ttl, max_entries=size)
    return ModelGateway(None, users, lambda u: "access:services!service=odh-platform" in u["scopes"], None)


def alice_deployment(**kw) -> Deployment:
    d = Deployment(owner="alice", name="churn", model_name="alice.churn", api_key=new_api_key(), **kw)
    d.add_version("s3://b/p/", "sklearn", example_input=[[1.0, 2.0]])
    d.serving, d.url = 1, "http://hub"
    return d


@pytest.mark.parametrize("header,status,words", [
    ("", 401, "needs a credential"),
    ("Basic YWxpY2U6eA==", 401, "needs a credential"),
    ("Bearer ", 401, "needs a credential"),
    ("token bob-token", 403, "belongs to another user"),
    ("Bearer service-token", 403, "belongs to another user"),
    ("token alice-narrow", 403, "lacks the access scope"),
    ("token unknown", 401, "not valid"),
    ("Bearer odhk_wrong", 401, "rotated"),
])
async def test_refusals(header, status, words):
    refused = await gateway().refusal(alice_deployment(), header)
    assert refused[0] == status and words in refused[1]


async def test_who_gets_through():
    gw, d = gateway(), alice_deployment()
    for header in ("token alice-token", "Bearer alice-token", f"Bearer {d.api_key}", f"token {d.api_key}",
                   f"  bearer   {d.api_key}  "):
        assert await gw.refusal(d, header) is None, header
    old = d.api_key
    d.api_key = new_api_key()  # rotation: at once
    assert (await gw.refusal(d, f"Bearer {old}"))[0] == 401
    d.public = True
    assert await gw.refusal(d, "") is None and await gw.refusal(d, "token bob-token") is None
    d.public, d.api_key = False, ""  # a record without a key accepts no key at all
    assert (await gw.refusal(d, f"Bearer {KEY_PREFIX}"))[0] == 401


async def test_token_answers_are_cached_bounded_and_shared():
    hub = Hub()
    users = TokenUsers(hub, ttl=30, max_entries=2)
    results = await asyncio.gather(*[users.lookup("alice-token") for _ in range(20)])
    assert all(r["name"] == "alice" for r in results) and hub.calls == ["alice-token"]  # one hub call
    assert await users.lookup("nope") is None and await users.lookup("nope") is None  # invalid: cached too
    assert hub.calls == ["alice-token", "nope"]
    await users.lookup("bob-token")
    assert len(users) == 2  # bounded: the least recently used (alice's) went
    await users.lookup("alice-token")
    assert hub.calls.count("alice-token") == 2


async def test_token_answers_expire():
    hub = Hub()
    users = TokenUsers(hub, ttl=0.05)
    await users.lookup("alice-token")
    await asyncio.sleep(0.1)
    await users.lookup("alice-token")
    assert hub.calls == ["alice-token", "alice-token"]


async def test_a_hub_that_does_not_answer_is_503_and_not_cached():
    hub = Hub(down=True)
    gw = gateway(hub)
    refused = await gw.refusal(alice_deployment(), "token alice-token")
    assert refused[0] == 503 and "API key" in refused[1]
    hub.down = False
    assert await gw.refusal(alice_deployment(), "token alice-token") is None
    assert await TokenUsers(Hub(down=True)).lookup("x") is _HUB_DOWN


def test_keys():
    a, b = new_api_key(), new_api_key()
    assert a != b and a.startswith(KEY_PREFIX) and len(a) > 40
    assert key_matches(a, key_digest(a)) and not key_matches(b, key_digest(a)) and not key_matches(a, b"")
    assert not key_matches("ünïcode", key_digest(a))


def test_the_api_shows_the_key_only_on_request():
    d = alice_deployment()
    listed, shown = d.to_api(), d.to_api(with_key=True)
    assert "api_key" not in listed and d.api_key not in str(listed)
    assert listed["example_request"]["headers"]["Authorization"] == "Bearer $ODH_MODEL_KEY"
    assert shown["api_key"] == d.api_key and shown["public"] is False
    assert shown["example_request"]["headers"] == {"Content-Type": "application/json",
                                                   "Authorization": f"Bearer {d.api_key}"}
    assert f"-H 'Authorization: Bearer {d.api_key}'" in shown["example_request"]["curl"]
    assert d.auth_headers() == {"Authorization": f"Bearer {d.api_key}"}
    d.public = True
    assert "Authorization" not in d.to_api(with_key=True)["example_request"]["headers"]
    assert d.auth_headers() == {}
    assert Deployment.from_json(d.to_json()).to_json() == d.to_json()  # key and flag persist
    assert "upstream" not in d.to_api(with_key=True)


@pytest.mark.parametrize("path,ok", [
    ("/v2/models/alice.churn/infer", True),
    ("/v2/models/alice.churn", True),
    ("/v2/models/alice.churn/versions/v1/infer", True),
    ("/v2/models/alice.churn/../bob.x/infer", False),
    ("/v2/models/alice.churn/%2e%2e/bob.x/infer", False),
    ("/v2/models/alice.churn/%252e%252e/bob.x/infer", False),
    ("/v2/models/alice.churn/.%2fx", False),
    ("/v2/models/alice.churn/a.b..c", True),
    ("/v2/models/alice.churn/x%2f..%2fbob/infer", False),
    ("/v2/models/alice.churn/x%5cy", False),
    ("/v2/models/alice.churn/./infer", False),
])
def test_paths_that_could_reach_another_model_are_refused(path, ok):
    from odh_spawner.platform.gateway import plain_path

    assert plain_path(path) is ok
