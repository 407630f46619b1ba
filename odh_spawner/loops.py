"""The platform's background loops."""

from __future__ import annotations

import asyncio
import logging
from typing import Awaitable, Callable


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
