"""Fixtures of the store suite: every test runs once per store implementation."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backend.store.base import Store
from backend.store.postgres import PostgresStore
from backend.store.sqlite import SQLiteStore
from tests.backend.store.postgres_server import fresh_database, server_reachable


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """The URL of an empty PostgreSQL database of this test's own."""
    problem = await server_reachable()
    if problem:
        pytest.skip(problem)
    async with fresh_database() as url:
        yield url


@pytest.fixture(params=["sqlite", "postgresql"])
def store_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
async def store_url(store_kind: str, tmp_path: Path) -> AsyncIterator[str]:
    """A URL for a fresh store of the parametrised kind (file path or postgresql://)."""
    if store_kind == "sqlite":
        yield str(tmp_path / "deskbell.sqlite3")
        return
    problem = await server_reachable()
    if problem:
        pytest.skip(problem)
    async with fresh_database() as url:
        yield url


def make_store(url: str) -> Store:
    if url.startswith("postgresql://"):
        return PostgresStore(url)
    return SQLiteStore(url)


@pytest.fixture
async def store(store_url: str) -> AsyncIterator[Store]:
    """An opened, empty store; closed after the test."""
    opened = make_store(store_url)
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()
