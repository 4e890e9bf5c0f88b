"""Faults of a scaled-out deployment, each on real node processes under load: a node
killed or stopped, Redis restarted, PostgreSQL cut off, two nodes storing for the same
agent at once. In every case nothing acknowledged is lost and every agent's stream
stays 1..N, once each, in order.

Redis and PostgreSQL "failures" are a private redis-server and a TCP proxy in front of
PostgreSQL: the machine's own servers are never stopped.
"""

from __future__ import annotations

import asyncio
import random
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest
from websockets.exceptions import InvalidStatus

from tests.backend.bus.redis_server import RedisServer, wait_until
from tests.backend.scale.cluster import (
    Cluster,
    Follower,
    Publisher,
    cluster,
    integration_token,
    last_seqs,
    publish_load,
    seed_agents,
    wait_for_streams,
)
from tests.backend.store.tcp_proxy import TcpProxy

pytestmark = pytest.mark.slow

AGENTS = 12


async def follow(nodes: Cluster, tokens: dict[str, str]) -> dict[str, Follower]:
    """One session per agent, spread round-robin over the nodes."""
    followers = {
        email: Follower(nodes, token, nodes.nodes[i % len(nodes.nodes)])
        for i, (email, token) in enumerate(sorted(tokens.items()))
    }
    for follower in followers.values():
        await follower.start()
    return followers


async def stop_all(publisher: Publisher, followers: dict[str, Follower]) -> None:
    await publisher.close()
    for follower in followers.values():
        await follower.stop()


def assert_nothing_acknowledged_lost(
    followers: dict[str, Follower], publisher: Publisher, expected: dict[str, int]
) -> None:
    for email, follower in followers.items():
        follower.assert_stream(expected[email])
        missing = set(publisher.acked) - set(follower.titles)
        assert not missing, f"{email} never got acknowledged events {sorted(missing)}"


async def test_kill_9_of_a_node_under_load_loses_nothing_acknowledged(
    pg_url: str, bus_url: str, tmp_path: Path
) -> None:
    tokens = await seed_agents(pg_url, AGENTS)
    service = await integration_token(pg_url)
    async with cluster(pg_url, bus_url, tmp_path, 2) as nodes:
        victim, survivor = nodes.nodes
        followers = await follow(nodes, tokens)
        publisher = Publisher(service)
        try:
            load = asyncio.create_task(publish_load(publisher, nodes, 240, workers=6))
            await wait_until(lambda: len(publisher.acked) >= 60, what="load before the kill")
            victim.process.kill()  # SIGKILL: no drain, no goodbye
            await load
            expected = await last_seqs(pg_url)
            await wait_for_streams(followers, expected)
        finally:
            await stop_all(publisher, followers)
    assert len(publisher.acked) >= 120, publisher.errors
    assert set(expected.values()) == {max(expected.values())}  # one event, every agent
    assert_nothing_acknowledged_lost(followers, publisher, expected)
    moved = [f for f in followers.values() if f.nodes[0] == victim.name]
    assert moved, "no agent was on the killed node"
    for follower in moved:
        assert follower.nodes[1:] == [survivor.name], follower.nodes


async def test_sigterm_closes_agents_with_1001_and_they_resume_on_another_node(
    pg_url: str, bus_url: str, tmp_path: Path
) -> None:
    tokens = await seed_agents(pg_url, AGENTS)
    service = await integration_token(pg_url)
    async with cluster(pg_url, bus_url, tmp_path, 2) as nodes:
        leaving, staying = nodes.nodes
        followers = await follow(nodes, tokens)
        publisher = Publisher(service)
        try:
            load = asyncio.create_task(publish_load(publisher, nodes, 240, workers=6))
            await wait_until(lambda: len(publisher.acked) >= 60, what="load before SIGTERM")
            exit_code = await asyncio.to_thread(leaving.process.terminate)
            await load
            expected = await last_seqs(pg_url)
            await wait_for_streams(followers, expected)
        finally:
            await stop_all(publisher, followers)
    assert exit_code == 0, nodes.logs()
    assert_nothing_acknowledged_lost(followers, publisher, expected)
    moved = [f for f in followers.values() if f.nodes[0] == leaving.name]
    assert moved
    for follower in moved:
        assert follower.close_codes[0] == 1001, follower.close_codes
        assert follower.nodes[1:] == [staying.name], follower.nodes


async def test_redis_restart_under_load_is_caught_up_from_the_store(
    pg_url: str, private_redis: RedisServer, tmp_path: Path
) -> None:
    tokens = await seed_agents(pg_url, AGENTS)
    service = await integration_token(pg_url)
    async with cluster(pg_url, private_redis.url, tmp_path, 2) as nodes:
        publishing, delivering = nodes.nodes
        # Every agent on one node, every publish on the other: each notification
        # crosses Redis, or is caught up from the store when Redis lost it.
        followers = {email: Follower(nodes, token, delivering) for email, token in tokens.items()}
        for follower in followers.values():
            await follower.start()
        publisher = Publisher(service)
        done = asyncio.Event()
        try:
            load = asyncio.create_task(
                publish_load(publisher, nodes, 40, workers=3, nodes=[publishing], until=done)
            )
            await wait_until(lambda: len(publisher.acked) >= 20, what="load before the outage")
            await private_redis.stop()

            async def both_degraded() -> bool:
                states = [await node.health() for node in nodes.nodes]
                return states == [(200, "degraded")] * 2

            await wait_until(both_degraded, what="both nodes to report the bus degraded")
            during = len(publisher.acked)
            await wait_until(
                lambda: len(publisher.acked) >= during + 20,
                what="publishes acknowledged while Redis is down",
            )
            await private_redis.start()

            async def both_ok() -> bool:
                return [await node.health() for node in nodes.nodes] == [(200, "ok")] * 2

            await wait_until(both_ok, what="both nodes to report the bus back")
            after = len(publisher.acked)
            await wait_until(lambda: len(publisher.acked) >= after + 20, what="load after")
            done.set()
            await load
            expected = await last_seqs(pg_url)
            await wait_for_streams(followers, expected)
        finally:
            await stop_all(publisher, followers)
    assert not publisher.failed, publisher.errors  # the store was up: every publish stored
    assert_nothing_acknowledged_lost(followers, publisher, expected)
    for email, follower in followers.items():
        # Caught up on the same connection, not by a client reconnect.
        assert follower.nodes == [delivering.name], (email, follower.nodes)
    # The node reads what Redis lost from the store by itself, also when a resync
    # request arrives while a socket's catch-up is already under way: no client has
    # to ask for a gap.
    asked = {email: f.gaps for email, f in followers.items() if f.gaps}
    assert not asked, f"clients had to ask for gaps: {asked}"


def through(proxy: TcpProxy, url: str) -> str:
    parts = urlsplit(url)
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}127.0.0.1:{proxy.port}"))


async def test_postgresql_outage_answers_unavailable_503_and_recovers_by_itself(
    pg_url: str, bus_url: str, tmp_path: Path
) -> None:
    tokens = await seed_agents(pg_url, 2)
    service = await integration_token(pg_url)
    target = urlsplit(pg_url)
    async with (
        TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy,
        cluster(through(proxy, pg_url), bus_url, tmp_path, 2) as nodes,
    ):
        followers = await follow(nodes, tokens)
        publisher = Publisher(service)
        try:
            for node in nodes.nodes:
                assert await publisher.publish(node, f"before {node.name}")

            await proxy.stop()  # PostgreSQL is gone for both nodes
            for node in nodes.nodes:
                assert not await publisher.publish(node, f"during {node.name}")
            assert [e["code"] for e in publisher.errors] == [
                "unavailable",
                "unavailable",
            ], publisher.errors
            for error in publisher.errors:
                assert "database" in error["message"] and "try again" in error["message"]
            for node in nodes.nodes:
                assert await node.health() == (503, "unavailable")
            # A new session cannot be authorized without the database: 503, not a hang.
            with pytest.raises(InvalidStatus) as refused:
                await nodes.nodes[0].harness.agent(next(iter(tokens.values())))
            assert refused.value.response.status_code == 503

            await proxy.start()  # PostgreSQL is back: nobody restarts anything

            async def both_ok() -> bool:
                return [await n.health() for n in nodes.nodes] == [(200, "ok")] * 2

            await wait_until(both_ok, what="both nodes to see PostgreSQL again")
            for node in nodes.nodes:
                assert await publisher.publish(node, f"after {node.name}")
            expected = await last_seqs(pg_url)
            await wait_for_streams(followers, expected)
        finally:
            await stop_all(publisher, followers)
        assert all(node.alive for node in nodes.nodes), nodes.logs()
    assert set(expected.values()) == {4}
    for email, follower in followers.items():
        follower.assert_stream(4)
        assert follower.titles == ["before n1", "before n2", "after n1", "after n2"]
        assert len(follower.nodes) == 1, (email, follower.nodes)


async def test_two_nodes_assigning_seq_for_the_same_agents_at_once_leave_no_gap_or_duplicate(
    pg_url: str, bus_url: str, tmp_path: Path
) -> None:
    tokens = await seed_agents(pg_url, 2)
    service = await integration_token(pg_url)
    async with cluster(pg_url, bus_url, tmp_path, 2) as nodes:
        # Each agent has a session on each node: four streams to check.
        sessions = [
            Follower(nodes, token, node) for token in tokens.values() for node in nodes.nodes
        ]
        for session in sessions:
            await session.start()
        publisher = Publisher(service)
        try:
            await publish_load(
                publisher, nodes, 150, workers=8, choose=random.Random(7), recipients=None
            )
            expected = await last_seqs(pg_url)
            stored = await stored_seqs(pg_url)
            await wait_until(
                lambda: all(s.last_seq >= 150 for s in sessions), what="every session at 150"
            )
        finally:
            await publisher.close()
            for session in sessions:
                await session.stop()
    assert len(publisher.acked) == 150, publisher.errors
    assert expected == {email: 150 for email in tokens}
    assert stored == {email: list(range(1, 151)) for email in tokens}
    for session in sessions:
        session.assert_stream(150)
        assert len(session.nodes) == 1


async def stored_seqs(db: str) -> dict[str, list[int]]:
    conn = await asyncpg.connect(db, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT a.email, array_agg(n.seq ORDER BY n.seq) FROM notifications n "
            "JOIN agents a ON a.id = n.agent_id GROUP BY a.email"
        )
    finally:
        await conn.close()
    return {row[0]: list(row[1]) for row in rows}
