"""Waiting for a just-started server to answer HTTP, at a short interval (longer when many start at once).

JupyterHub checks a new server with exponential backoff and full jitter (waits drawn from 0-0.2 s, 0-0.4 s,
0-0.8 s, 0-1.6 s, 0-3.2 s ...): a server that is up after 2.5 s is typically noticed 0.5-2.5 s later. The
local spawner waits here instead, polling every `interval` seconds, before it hands the server to the hub,
whose first check then succeeds at once. A poll costs a refused connection on loopback until the server
binds. Readiness means what it means to the hub: any answer below 500 (jupyterhub.utils.wait_for_http_server).
"""

from __future__ import annotations

import asyncio
import time
from typing import Callable

from tornado.httpclient import AsyncHTTPClient, HTTPClientError


class ServerExited(Exception):
    """The process died before it answered."""


MAX_INTERVAL = 1.0  # never slower than the hub's own checks would be
_waiting = 0  # servers being waited for now, in this process


def poll_interval(base: float, waiting: int) -> float:
    """The wait between two polls of one server when `waiting` servers start at once: the hub's total polling
    stays at 1/base per second (50 servers starting at once are not 1,000 connections a second on the hub's
    event loop), and a lone start is noticed within `base`. Pure."""
    return min(MAX_INTERVAL, base * max(1, waiting))


async def wait_http(url: str, *, alive: Callable[[], bool], timeout: float, interval: float = 0.05,
                    request_timeout: float = 5.0) -> bool:
    """Poll `url` until it answers with a status below 500. Returns True once it does, False when `timeout`
    seconds passed first (the caller lets the hub's own wait decide then); raises ServerExited as soon as
    `alive()` says the process is gone."""
    global _waiting
    client = AsyncHTTPClient()
    deadline = time.monotonic() + timeout
    _waiting += 1
    try:
        while True:
            if not alive():
                raise ServerExited(url)
            try:
                response = await client.fetch(url, follow_redirects=False, raise_error=False,
                                              request_timeout=request_timeout, connect_timeout=request_timeout)
                if response.code < 500:  # 599: tornado's code for no answer
                    return True
            except (OSError, HTTPClientError, asyncio.TimeoutError):
                pass  # not listening yet
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(poll_interval(interval, _waiting))
    finally:
        _waiting -= 1
