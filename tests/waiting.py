"""Waiting for a condition in tests that watch other processes: poll, never sleep a fixed time
(a loaded 2-core machine is slow by seconds)."""

from __future__ import annotations

import time


def wait_for(predicate, timeout=30.0, every=0.05, what="condition"):
    """The predicate's first truthy value within `timeout` seconds, else AssertionError."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(every)
    raise AssertionError(f"{what}: not met within {timeout:g} s")
