"""Polling with a deadline, for tests that wait on real components."""

import time


def wait_for(predicate, timeout: float, what: str, interval: float = 0.2):
    """The first truthy value of predicate(), polled until `timeout` seconds; AssertionError naming `what`."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")
