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
