"""Fixtures of the scale-out suite: a fresh PostgreSQL database per test, a Redis bus
(a channel of this test's own on the machine's Redis, or a private redis-server that
the test may restart), and seeded agents."""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator

import pytest

from tests.backend.bus.redis_server import SHARED_URL
from tests.backend.store.postgres_server import fresh_database, server_reachable


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    """The URL of an empty PostgreSQL database of this test's own."""
    problem = await server_reachable()
    if problem:
        pytest.skip(problem)
    async with fresh_database() as url:
        yield url


async def _shared_redis_reachable() -> bool:
    import redis.asyncio as redis

    client = redis.Redis.from_url(SHARED_URL, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except (OSError, redis.RedisError):
        return False
    finally:
        await client.aclose()


@pytest.fixture
async def bus_url() -> str:
    """The machine's Redis, on a pub/sub channel nobody else uses."""
    if not await _shared_redis_reachable():
        pytest.skip(f"Redis at {SHARED_URL} is not reachable")
    return f"{SHARED_URL}?channel=deskbell-test-{secrets.token_hex(6)}"
