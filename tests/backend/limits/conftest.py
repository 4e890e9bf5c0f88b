"""Fixtures of the abuse-limit suite."""

from __future__ import annotations

import pytest

from tests.support.crowd import raise_descriptor_limit


@pytest.fixture(autouse=True)
def many_descriptors() -> None:
    """This suite's tests hold a thousand sockets (and, in-process, their other ends)."""
    raise_descriptor_limit()
