"""One retryable Kubernetes write attempt, shared by the Kubernetes I/O modules (in the style of kubespawner's
_make_create_*_request): for use with jupyterhub.utils.exponential_backoff."""

from __future__ import annotations

import asyncio
from typing import Awaitable, Callable

from kubernetes_asyncio.client.rest import ApiException


async def create_or_update(create: Callable[[], Awaitable], update: Callable[[], Awaitable], timeout: float) -> bool:
    """Create the object; when it exists (409) update it instead. True when done; False to try again (a
    timeout, or the object deleted between our create and update: 404). Any other API error is raised."""
    try:
        try:
            await asyncio.wait_for(create(), timeout)
        except ApiException as e:
            if e.status != 409:
                raise
            await asyncio.wait_for(update(), timeout)
    except TimeoutError:
        return False
    except ApiException as e:
        if e.status == 404:
            return False
        raise
    return True


async def read_or_none(read: Callable[[], Awaitable], timeout: float) -> tuple | bool:
    """Read an object: `(obj,)`, or `(None,)` when there is none (404); False to try again (a timeout). Any
    other API error is raised. (The tuple keeps "no object" truthy for exponential_backoff.)"""
    try:
        return (await asyncio.wait_for(read(), timeout),)
    except TimeoutError:
        return False
    except ApiException as e:
        if e.status == 404:
            return (None,)
        raise


async def retry(attempt: Callable[[], Awaitable], what: str, timeout: float, log, error: type[Exception],
                timeout_message: str = "") -> object:
    """Run `attempt` (one of the attempts above, or any coroutine function returning something falsy to be tried
    again) with `exponential_backoff` until it returns something truthy, for at most `timeout` seconds.

    Failures reach the user as `error` (a typed error of the caller's feature) with a message safe to show: a
    timeout as `timeout_message` (default: the API did not answer; try again later), any other API error as
    "The cluster refused <what> (<status> <reason>); tell your platform admin." Only the status line is logged:
    an error body may echo what was sent, and a Secret must never reach a log."""
    from jupyterhub.utils import exponential_backoff

    try:
        return await exponential_backoff(attempt, f"{what}: the Kubernetes API did not answer", timeout=timeout)
    except TimeoutError:
        log.error("%s: no answer from the Kubernetes API within %.0f s", what, timeout)
        raise error(timeout_message or "The Kubernetes API did not answer in time; try again later.") from None
    except ApiException as e:
        log.error("%s: Kubernetes API error %s %s", what, e.status, e.reason)
        raise error(f"The cluster refused {what} ({e.status} {e.reason}); tell your platform admin.") from None
