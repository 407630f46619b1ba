"""gather_all: independent calls at once, the first error in the steps' order whichever ends first."""

import asyncio

import pytest

from odh_spawner.tasks import gather_all

pytestmark = pytest.mark.unit


async def step(value, delay, fail=False):
    await asyncio.sleep(delay)
    if fail:
        raise ValueError(value)
    return value


async def test_results_in_order_and_steps_run_at_once():
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    assert await gather_all([step("a", 0.2), step("b", 0.2), step("c", 0.2)]) == ["a", "b", "c"]
    assert loop.time() - t0 < 0.5


async def test_the_first_error_in_step_order_is_raised_even_when_a_later_one_fails_first():
    with pytest.raises(ValueError, match="first"):
        await gather_all([step("first", 0.2, fail=True), step("second", 0.0, fail=True), step("ok", 0.1)])


async def test_cancelling_the_caller_cancels_every_step():
    started, cancelled = [], []

    async def slow(i):
        started.append(i)
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError:
            cancelled.append(i)
            raise

    task = asyncio.ensure_future(gather_all([slow(1), slow(2)]))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await asyncio.sleep(0)
    assert sorted(started) == [1, 2] and sorted(cancelled) == [1, 2]
