"""Fixtures of the bus suite: every contract test runs on LocalBus and RedisBus."""

from __future__ import annotations

import itertools
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from backend.bus import Bus, BusEvent, LocalBus
from backend.redis_bus import RedisBus
from tests.backend.bus.redis_server import SHARED_URL


def fast_delays() -> Iterator[float]:
    """Reconnect at once, again and again: tests wait for conditions, not timers."""
    return itertools.repeat(0.02)


class Node:
    """One bus as a node holds it, with what its gateway received."""

    def __init__(self, bus: Bus):
        self.bus = bus
        self.received: list[BusEvent] = []
        self.resyncs = 0

    async def start(self) -> None:
        await self.bus.start(self.received.append, self._resync)

    def _resync(self) -> None:
        self.resyncs += 1


NodeFactory = Callable[[], Awaitable[Node]]


async def _shared_redis_reachable() -> bool:
    import redis.asyncio as redis

    client = redis.Redis.from_url(SHARED_URL, socket_connect_timeout=1)
    try:
        return bool(await client.ping())
    except (OSError, redis.RedisError):
        return False
    finally:
        await client.aclose()


@pytest.fixture(params=["local", "redis"])
async def make_node(request: pytest.FixtureRequest) -> AsyncIterator[NodeFactory]:
    """Start nodes on one bus of the parametrised kind (a channel of this test's own)."""
    kind = request.param
    if kind == "redis" and not await _shared_redis_reachable():
        pytest.skip(f"Redis at {SHARED_URL} is not reachable")
    channel = f"deskbell-test:{secrets.token_hex(6)}"
    nodes: list[Node] = []

    async def make() -> Node:
        bus: Bus = (
            LocalBus()
            if kind == "local"
            else RedisBus(SHARED_URL, channel=channel, reconnect_delays=fast_delays)
        )
        node = Node(bus)
        await node.start()
        nodes.append(node)
        return node

    try:
        yield make
    finally:
        for node in nodes:
            await node.bus.close()
