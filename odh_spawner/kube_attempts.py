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
