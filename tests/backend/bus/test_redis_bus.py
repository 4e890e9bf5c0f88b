"""RedisBus under faults, on a private redis-server: Redis restarted, a subscription
dropped, Redis down when a node starts. Each time the node must report it through
``healthy``, come back by itself and ask its gateway to catch up (``resync``)."""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from backend.bus import ReadChanged, open_bus
from backend.redis_bus import DEFAULT_CHANNEL, RedisBus, backoff
from tests.backend.bus.conftest import Node, fast_delays
from tests.backend.bus.redis_server import RedisServer, wait_until
from tests.backend.store.tcp_proxy import TcpProxy
from tests.support.backend import free_port

Start = Callable[[str], Awaitable[Node]]


def event(n: int) -> ReadChanged:
    return ReadChanged(agent_id=n, ids=[], unread={"total": n})


@pytest.fixture
async def start_node() -> AsyncIterator[Start]:
    channel = f"deskbell-test:{secrets.token_hex(6)}"
    nodes: list[Node] = []

    async def start(url: str) -> Node:
        node = Node(RedisBus(url, channel=channel, reconnect_delays=fast_delays, connect_timeout=1))
        await node.start()
        nodes.append(node)
        return node

    try:
        yield start
    finally:
        for node in nodes:
            await node.bus.close()


async def test_a_redis_restart_is_reported_and_followed_by_a_resync(
    private_redis: RedisServer, start_node: Start, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="backend.redis_bus")
    a = await start_node(private_redis.url)
    b = await start_node(private_redis.url)
    await a.bus.publish(event(1))
    await wait_until(lambda: b.received == [event(1)], what="the first event")
    resyncs_before = b.resyncs

    await private_redis.stop()
    await wait_until(lambda: not a.bus.healthy and not b.bus.healthy, what="both unhealthy")
    await a.bus.publish(event(2))  # stored, in real life; the bus cannot carry it
    assert a.received[-1] == event(2)  # this node's own agents still get it

    await private_redis.start()
    await wait_until(lambda: a.bus.healthy and b.bus.healthy, what="both healthy again")
    await a.bus.publish(event(3))
    await wait_until(lambda: b.received[-1:] == [event(3)], what="events flowing again")
    assert event(2) not in b.received  # lost on the bus: the resync fills it from the store
    assert b.resyncs > resyncs_before  # b resubscribed, so it catches up
    messages = [r.getMessage() for r in caplog.records]
    assert any("event=bus_down" in m for m in messages)
    assert any("event=bus_up" in m for m in messages)


async def test_a_node_cut_off_alone_asks_the_others_to_catch_up(
    private_redis: RedisServer, start_node: Start
) -> None:
    # Only a loses Redis (a network partition): b never resubscribes, so only a's
    # resync request can tell b that events were dropped.
    async with TcpProxy("127.0.0.1", private_redis.port) as proxy:
        a = await start_node(f"redis://127.0.0.1:{proxy.port}/0")
        b = await start_node(private_redis.url)
        resyncs_before = b.resyncs
        await proxy.stop()
        await a.bus.publish(event(1))  # dropped on the way to Redis
        await wait_until(lambda: not a.bus.healthy, what="a to notice")
        assert b.bus.healthy
        await proxy.start()
        await wait_until(lambda: a.bus.healthy, what="a to reconnect")
        await wait_until(lambda: b.resyncs > resyncs_before, what="b to be asked to resync")
        assert isinstance(b.bus, RedisBus) and b.bus.subscriptions == 1
        await a.bus.publish(event(2))
        await wait_until(lambda: b.received == [event(2)], what="events flowing again")


async def test_a_dropped_subscription_is_renewed_and_followed_by_a_resync(
    private_redis: RedisServer, start_node: Start
) -> None:
    a = await start_node(private_redis.url)
    b = await start_node(private_redis.url)
    assert isinstance(b.bus, RedisBus)
    resyncs_before = b.resyncs
    await private_redis.command("CLIENT", "KILL", "TYPE", "pubsub")
    await wait_until(lambda: b.bus.subscriptions == 2, what="b to resubscribe")
    assert b.resyncs > resyncs_before
    await a.bus.publish(event(1))
    await wait_until(lambda: b.received == [event(1)], what="delivery after resubscribing")


async def test_a_node_starts_degraded_without_redis_and_recovers_when_it_comes(
    start_node: Start,
) -> None:
    server = RedisServer()
    server.port = free_port()
    server.url = f"redis://127.0.0.1:{server.port}/0"
    node = await start_node(server.url)
    try:
        assert not node.bus.healthy
        await node.bus.publish(event(1))  # never raises; local delivery still works
        assert node.received == [event(1)]
        await server.start()
        await wait_until(lambda: node.bus.healthy, what="the bus to connect")
        assert node.resyncs >= 1
    finally:
        await server.stop()


async def test_a_node_ignores_undecodable_messages(
    private_redis: RedisServer, start_node: Start
) -> None:
    a = await start_node(private_redis.url)
    b = await start_node(private_redis.url)
    assert isinstance(a.bus, RedisBus)
    await private_redis.command("PUBLISH", a.bus.channel, "not msgpack at all")
    await a.bus.publish(event(1))
    await wait_until(lambda: b.received == [event(1)], what="the good event")


def test_open_bus_selects_redis_for_redis_urls_with_an_optional_channel() -> None:
    bus = open_bus("redis://127.0.0.1:6379/0")
    assert isinstance(bus, RedisBus) and bus.channel == DEFAULT_CHANNEL
    named = open_bus("redis://:pw@127.0.0.1:6379/2?channel=deskbell-eu&socket_timeout=3")
    assert isinstance(named, RedisBus) and named.channel == "deskbell-eu"
    assert named.url == "redis://:pw@127.0.0.1:6379/2?socket_timeout=3"


async def test_deployments_on_different_channels_do_not_hear_each_other(
    private_redis: RedisServer,
) -> None:
    eu = Node(RedisBus(private_redis.url + "?channel=eu", reconnect_delays=fast_delays))
    eu_peer = Node(RedisBus(private_redis.url + "?channel=eu", reconnect_delays=fast_delays))
    us = Node(RedisBus(private_redis.url + "?channel=us", reconnect_delays=fast_delays))
    for node in (eu, eu_peer, us):
        await node.start()
    try:
        await eu.bus.publish(event(1))
        await us.bus.publish(event(2))
        await wait_until(lambda: eu_peer.received == [event(1)], what="the eu event")
        await eu.bus.publish(event(3))
        await wait_until(lambda: eu_peer.received == [event(1), event(3)], what="eu again")
        assert us.received == [event(2)]
    finally:
        for node in (eu, eu_peer, us):
            await node.bus.close()


def test_the_default_backoff_grows_to_a_cap_with_jitter() -> None:
    delays = backoff(first=0.1, factor=2, cap=1)
    values = [next(delays) for _ in range(8)]
    assert 0.08 <= values[0] <= 0.12
    assert all(0.8 <= v <= 1.2 for v in values[4:])
    assert values[1] > values[0] * 1.2
