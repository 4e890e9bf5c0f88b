"""Fixtures shared by the backend suites."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.backend.bus.redis_server import RedisServer


@pytest.fixture
async def private_redis() -> AsyncIterator[RedisServer]:
    """A redis-server of this test's own, which the test may stop and start again."""
    if not RedisServer.available():
        pytest.skip("redis-server is not installed")
    server = RedisServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()
