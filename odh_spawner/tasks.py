"""Small asyncio helpers: awaiting several independent calls at once, and background loops."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable


async def gather_all(steps: list) -> list:
    """Await the steps (coroutines) at once and return their results in order. When any fails, all are awaited
    to their end and the first error in the steps' order is raised — the same error whichever answered first.
    Cancelling the caller cancels them all."""
    tasks = [asyncio.ensure_future(step) for step in steps]
    try:
        results = await asyncio.gather(*tasks, return_exceptions=True)
    finally:
        for task in tasks:
            task.cancel()
    failed = [r for r in results if isinstance(r, BaseException)]
    if failed:
        raise failed[0]
    return results


async def every(interval: float, once: Callable[[], Awaitable[None]], log: logging.Logger, what: str) -> None:
    """Await `once()` every `interval` seconds until cancelled; a failure is logged ("<what> failed") and the
    loop goes on."""
    while True:
        try:
            await once()
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("%s failed; trying again", what)
        await asyncio.sleep(interval)
