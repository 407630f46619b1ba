"""Logging in with the local user file: no name enumeration (the same work and answer for an unknown user as for
a wrong password), and the password hash off the hub's event loop. The real authenticator, a real users file."""

from __future__ import annotations

import asyncio
import statistics
import time

import pytest
import yaml

from odh_spawner.auth import passwords
from odh_spawner.auth.authenticator import OdhFileAuthenticator
from odh_spawner.auth.passwords import hash_password, verify_password

pytestmark = pytest.mark.unit


@pytest.fixture
def authenticator(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump({"users": {"alice": {"password_hash": hash_password("right"),
                                                        "groups": ["data-science"]}}}))
    return OdhFileAuthenticator(users_file=str(path))


async def timed(auth, name, password) -> tuple[object, float]:
    start = time.perf_counter()
    answer = await auth.authenticate(None, {"username": name, "password": password})
    return answer, time.perf_counter() - start


async def test_the_right_password_logs_in_and_others_do_not(authenticator):
    assert (await authenticator.authenticate(None, {"username": "alice", "password": "right"})) == {
        "name": "alice", "groups": ["data-science"], "admin": False}
    for data in ({"username": "alice", "password": "wrong"}, {"username": "mallory", "password": "right"},
                 {"username": "alice", "password": None}, {"username": ["alice"], "password": "right"}, {}):
        assert await authenticator.authenticate(None, data) is None


async def test_an_unknown_name_costs_what_a_wrong_password_costs(authenticator):
    """The decoy hash has the default cost: an unknown name takes as long as a known one (medians of 7, within
    a factor that a 200,000-iteration PBKDF2 against no work at all could never meet)."""
    await timed(authenticator, "nobody", "x")  # the decoy is made once, on first use
    known, unknown = [], []
    for _ in range(7):  # interleaved, so that load on the machine falls on both alike
        known.append((await timed(authenticator, "alice", "wrong"))[1])
        unknown.append((await timed(authenticator, "nobody", "wrong"))[1])
    ratio = statistics.median(unknown) / statistics.median(known)
    assert 0.4 < ratio < 2.5, (known, unknown)  # without the decoy: ~0.001
    assert statistics.median(known) > 0.02  # PBKDF2 really ran (not a short-cut for either)


def test_the_decoy_matches_no_password_and_has_the_default_cost():
    decoy = passwords.decoy_hash()
    assert decoy is passwords.decoy_hash()
    algorithm, iterations, _, _ = decoy.split("$")
    assert (algorithm, int(iterations)) == (passwords.ALGORITHM, passwords.ITERATIONS)
    assert not any(verify_password(p, decoy) for p in ("", "password", "x" * 64))


async def test_the_hash_runs_off_the_event_loop(authenticator):
    """While a login hashes, the hub's event loop keeps turning: ticks every 5 ms, none held up for half of what
    one hash takes (a hash on the loop would hold a tick for all of it)."""
    await timed(authenticator, "nobody", "x")
    one_hash = statistics.median(_hash_seconds() for _ in range(3))
    gaps, done = [], asyncio.Event()

    async def ticker():
        last = time.perf_counter()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = time.perf_counter()
            gaps.append(now - last)
            last = now

    tick = asyncio.ensure_future(ticker())
    for name in ("alice", "nobody", "alice"):
        await timed(authenticator, name, "wrong")
    done.set()
    await tick
    assert len(gaps) > 10 and max(gaps) < max(0.05, one_hash / 2), (max(gaps), one_hash)


def _hash_seconds() -> float:
    start = time.perf_counter()
    verify_password("wrong", passwords.decoy_hash())
    return time.perf_counter() - start
