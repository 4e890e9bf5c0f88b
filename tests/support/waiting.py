"""Wait for a condition with a deadline (for conditions nothing can signal, like a file)."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_until(
    condition: Callable[[], bool], timeout: float = 10.0, what: str = "condition"
) -> None:
    """Return as soon as `condition()` is true; raise AssertionError after `timeout` s.

    Checks often (every few ms) so the wait ends right after the condition holds.
    """
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} did not happen within {timeout} s")
        time.sleep(0.005)
