"""The pure helpers of backend/security.py."""

from __future__ import annotations

import pytest

from backend.security import wait_words


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0.0, "1 second"),
        (0.2, "1 second"),
        (41.3, "42 seconds"),
        (90.0, "90 seconds"),
        (90.5, "2 minutes"),
        (599.9, "10 minutes"),
    ],
)
def test_a_wait_is_said_in_whole_units_rounded_up(seconds: float, words: str) -> None:
    assert wait_words(seconds) == words
