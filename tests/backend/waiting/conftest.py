"""Fixtures of the waiting-visitor suites: a real server on each store."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.backend.store.conftest import store_kind, store_url
from tests.support.backend import BackendHarness, in_process_backend

__all__ = ["server", "store_kind", "store_url"]


@pytest.fixture
async def server(tmp_path: Path, store_url: str) -> AsyncIterator[BackendHarness]:
    """A real backend on a free port, on SQLite and on PostgreSQL."""
    async with in_process_backend(tmp_path, db=store_url) as harness:
        yield harness
