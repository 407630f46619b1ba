"""The readiness wait's poll interval: a lone start is polled every `base` seconds; many starts at once share
one polling budget (found by bench/hub_load: 50 starts at 0.05 s were 1,000 connections a second on the hub)."""

import asyncio
import socket

import pytest

from odh_spawner.spawners import readiness
from odh_spawner.spawners.readiness import MAX_INTERVAL, poll_interval, wait_http

pytestmark = pytest.mark.unit


def test_the_interval_grows_with_concurrent_starts_up_to_a_second():
    assert poll_interval(0.05, 1) == 0.05
    assert poll_interval(0.05, 0) == 0.05
    assert poll_interval(0.05, 10) == pytest.approx(0.5)
    assert poll_interval(0.05, 50) == MAX_INTERVAL == 1.0


def test_concurrent_waits_count_themselves_and_leave_nothing_counted():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()  # nothing listens: every poll is refused

    async def main():
        seen = []

        async def one():
            return await wait_http(f"http://127.0.0.1:{port}/", alive=lambda: seen.append(readiness._waiting) or True,
                                   timeout=0.3, interval=0.05)

        results = await asyncio.gather(*(one() for _ in range(4)))
        return results, seen

    results, seen = asyncio.run(main())
    assert results == [False] * 4
    assert max(seen) == 4  # each wait saw the others
    assert readiness._waiting == 0
    # 4 at once poll every 0.2 s: about 0.3 / 0.2 + 1 polls each, not 0.3 / 0.05 + 1
    assert len(seen) <= 4 * 4
