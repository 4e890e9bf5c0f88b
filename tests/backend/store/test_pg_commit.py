"""A PostgreSQL commit batch bumps each recipient's counter row once, whatever the number
of its events, and several nodes committing at once still give every agent one gapless
stream whose seqs and counts are the ones each commit reported."""

from __future__ import annotations

import asyncio
from collections import Counter

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend import protocol
from backend.store.base import Change, Committed
from backend.store.pg_commit import apply_batch, recipient_set_key
from backend.store.postgres import PostgresStore
from tests.backend.store.postgres_server import fresh_database, server_reachable
from tests.backend.store.test_store_contract import event, seed


async def updated_rows_in(conn: asyncpg.Connection, table: str) -> int:
    """Row versions this transaction has written by UPDATE (an upsert's update too)."""
    return int(await conn.fetchval("SELECT pg_stat_get_xact_tuples_updated($1::regclass)", table))


async def test_a_batch_of_events_to_one_inbox_updates_each_counter_row_once(
    pg_url: str,
) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    try:
        world = await seed(store)
        agents = (world.alice.id, world.bob.id, world.carol.id)
        await store.commit(Change(event=event(*agents, title="first")))  # counter rows exist
    finally:
        await store.close()
    kinds = ["chat.message.created", "ticket.assigned", "chat.message.created"] * 3
    changes = [
        Change(event=event(*agents, kind=kind, title=f"e{i}"), publish_key=(1, f"k{i}"))
        for i, kind in enumerate(kinds)
    ]
    conn = await asyncpg.connect(pg_url)
    try:
        async with conn.transaction():
            results = await apply_batch(conn, changes, {})
            assert await updated_rows_in(conn, "agent_seq") == len(agents)
    finally:
        await conn.close()
    for agent in (world.alice, world.bob, world.carol):
        seen = [d for r in results for d in r.deliveries if d.agent_id == agent.id]
        assert [d.seq for d in seen] == list(range(2, 2 + len(kinds)))
        chats = tickets = 0
        for kind, delivered in zip(kinds, seen, strict=True):
            chats += kind.startswith("chat")
            tickets += kind.startswith("ticket")
            assert delivered.unread == protocol.unread_object(
                {"chat": 1 + chats, "ticket": tickets}
            )


def test_the_lock_key_of_a_recipient_set_ignores_order_and_repeats() -> None:
    assert recipient_set_key((3, 1, 2)) == recipient_set_key([1, 2, 3, 3])
    assert recipient_set_key((1, 2)) != recipient_set_key((1, 2, 3))


Plan = list[tuple[int, frozenset[int], str]]
"""Events to commit: (node, recipients as indexes of the seeded agents, kind)."""

plans = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.frozensets(st.integers(0, 2), min_size=1),
        st.sampled_from(["chat.message.created", "ticket.assigned"]),
    ),
    min_size=1,
    max_size=40,
)


@settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(plan=plans)
def test_two_nodes_committing_at_once_give_every_agent_one_gapless_stream(plan: Plan) -> None:
    asyncio.run(two_nodes_commit(plan))


async def two_nodes_commit(plan: Plan) -> None:
    problem = await server_reachable()
    if problem:
        pytest.skip(problem)
    async with fresh_database() as url:
        nodes = [PostgresStore(url + "?pool_size=4"), PostgresStore(url + "?pool_size=4")]
        for node in nodes:
            await node.open()
        try:
            world = await seed(nodes[0])
            agents = [world.alice, world.bob, world.carol]
            results: list[Committed] = await asyncio.gather(
                *(
                    nodes[n].commit(
                        Change(
                            event=event(
                                *(agents[a].id for a in sorted(to)), kind=kind, title=f"e{i}"
                            )
                        )
                    )
                    for i, (n, to, kind) in enumerate(plan)
                )
            )
            for agent in agents:
                # What each commit reported to this agent, in seq order.
                told = sorted(
                    (d.seq, f"e{i}", d.unread)
                    for i, r in enumerate(results)
                    for d in r.deliveries
                    if d.agent_id == agent.id
                )
                assert [seq for seq, _, _ in told] == list(range(1, len(told) + 1))
                stored, _ = await nodes[1].notifications_after(agent, 0, 1000)
                assert [(n.seq, n.title) for n in stored] == [(s, t) for s, t, _ in told]
                running: Counter[str] = Counter()
                for item, (_, _, unread) in zip(stored, told, strict=True):
                    running[item.category] += 1
                    assert unread == protocol.unread_object(dict(running))
                assert await nodes[0].agent_state(agent.id) == (len(told), dict(running))
        finally:
            for node in nodes:
                await node.close()
