"""Two and three real ``deskbell-server serve`` processes on PostgreSQL and Redis:
agents spread over the nodes, publishes sent to random nodes, and every agent sees one
ordered stream; a read on one node reaches the agent's session on another."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from tests.backend.scale.cluster import (
    Follower,
    Publisher,
    cluster,
    integration_token,
    last_seqs,
    publish_load,
    seed_agents,
    wait_for_streams,
)

pytestmark = pytest.mark.slow

AGENTS = 24
EVENTS = 120


@pytest.mark.parametrize("node_count", [2, 3])
async def test_every_agent_gets_every_notification_once_in_order_whichever_node_took_it(
    pg_url: str, bus_url: str, tmp_path: Path, node_count: int
) -> None:
    tokens = await seed_agents(pg_url, AGENTS)
    service = await integration_token(pg_url)
    async with cluster(pg_url, bus_url, tmp_path, node_count) as nodes:
        followers = {
            email: Follower(nodes, token, nodes.nodes[i % node_count])
            for i, (email, token) in enumerate(sorted(tokens.items()))
        }
        for follower in followers.values():
            await follower.start()
        publisher = Publisher(service)
        try:
            await publish_load(publisher, nodes, EVENTS, choose=random.Random(node_count))
            assert len(publisher.acked) == EVENTS, publisher.errors
            expected = await last_seqs(pg_url)
            assert set(expected.values()) == {EVENTS}
            await wait_for_streams(followers, expected)
        finally:
            await publisher.close()
            for follower in followers.values():
                await follower.stop()
    for email, follower in followers.items():
        follower.assert_stream(EVENTS)
        assert sorted(follower.titles) == sorted(f"e{i}" for i in range(EVENTS)), email
        assert len(follower.nodes) == 1, f"{email} reconnected: {follower.nodes}"
    # The load really was spread: every node served agents.
    assert {f.nodes[0] for f in followers.values()} == {n.name for n in nodes.nodes}


async def test_a_read_on_one_node_reaches_the_same_agents_session_on_another(
    pg_url: str, bus_url: str, tmp_path: Path
) -> None:
    tokens = await seed_agents(pg_url, 1)
    token = next(iter(tokens.values()))
    service = await integration_token(pg_url)
    async with cluster(pg_url, bus_url, tmp_path, 2) as nodes:
        first, second = nodes.nodes
        desk = await first.harness.agent(token, after_seq=0)
        laptop = await second.harness.agent(token, after_seq=0)
        publisher = Publisher(service)
        try:
            for i in range(3):
                assert await publisher.publish(nodes.nodes[i % 2], f"t{i}")
            on_desk = await desk.notifications(3)
            on_laptop = await laptop.notifications(3)
            assert [n["seq"] for n in on_desk] == [n["seq"] for n in on_laptop] == [1, 2, 3]

            reply = await desk.request({"type": "mark_read", "ids": [on_desk[0]["id"]]})
            assert reply["type"] == "ok", reply
            assert reply["unread"]["total"] == 2
            read = await laptop.push("read")
            assert read["ids"] == [on_desk[0]["id"]]
            assert (await laptop.push("unread"))["unread"]["total"] == 2
            # Every session hears of the read, the one that made it included.
            assert (await desk.push("read"))["ids"] == [on_desk[0]["id"]]

            reply = await laptop.request({"type": "mark_all_read", "category": None})
            assert reply["unread"]["total"] == 0
            read = await desk.push("read")
            assert sorted(read["ids"]) == sorted(n["id"] for n in on_desk[1:])
            assert (await desk.push("unread"))["unread"]["total"] == 0

            # A third session on either node starts from the same server state.
            fresh = await second.harness.agent(token, resume=False)
            assert fresh.welcome["unread"]["total"] == 0  # type: ignore[attr-defined]
            await fresh.close()
        finally:
            await publisher.close()
            await desk.close()
            await laptop.close()
