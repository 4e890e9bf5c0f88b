"""The PostgreSQL store commits concurrent changes in batches, one transaction each,
without changing what any single commit means: seq stays gap-free, a duplicate key is
still a duplicate, and one bad change fails alone."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import asyncpg
import pytest

from backend.errors import DeskbellError, StoreUnavailable
from backend.store.base import Change, Committed
from backend.store.pg_commit import recipient_set_key
from backend.store.postgres import PostgresStore
from tests.backend.bus.redis_server import wait_until
from tests.backend.store.test_store_contract import event, seed


@pytest.fixture
async def store(pg_url: str) -> AsyncIterator[PostgresStore]:
    opened = PostgresStore(pg_url + "?pool_size=4")
    await opened.open()
    try:
        yield opened
    finally:
        await opened.close()


async def stored_seqs(store: PostgresStore, agent_id: int) -> list[int]:
    agent = await store.agent(agent_id)
    items, _ = await store.notifications_after(agent, 0, 1000)
    return [item.seq for item in items]


async def test_concurrent_commits_share_transactions_and_keep_seq_gap_free(
    store: PostgresStore,
) -> None:
    world = await seed(store)
    a, b, c = world.alice.id, world.bob.id, world.carol.id
    shapes = [(a,), (b, a), (c,), (a, b, c), (c, a)]
    before = store.batches
    results = await asyncio.gather(
        *(
            store.commit(Change(event=event(*shapes[i % len(shapes)], title=f"e{i}")))
            for i in range(100)
        )
    )
    assert store.batches - before < 100 / 4, "commits were not batched"
    for agent_id in (a, b, c):
        seqs = sorted(d.seq for r in results for d in r.deliveries if d.agent_id == agent_id)
        assert seqs == list(range(1, len(seqs) + 1))
        assert await stored_seqs(store, agent_id) == seqs


async def test_a_key_seen_twice_in_one_batch_stores_once(store: PostgresStore) -> None:
    world = await seed(store)
    a, b = world.alice.id, world.bob.id
    first, again = await asyncio.gather(
        store.commit(Change(event=event(a, b), publish_key=(1, "k1"))),
        store.commit(Change(event=event(a, b), publish_key=(1, "k1"))),
    )
    assert (first.notifications, first.duplicate) == (2, False)
    assert (again.notifications, again.duplicate, again.deliveries) == (2, True, [])
    assert await stored_seqs(store, a) == [1]
    assert await store.publish_result(1, "k1") == 2


async def test_one_bad_change_in_a_batch_fails_alone(store: PostgresStore) -> None:
    world = await seed(store)
    a = world.alice.id
    nobody = 10_000_000  # no such agent: the counter row's foreign key refuses it
    outcomes = await asyncio.gather(
        *(store.commit(Change(event=event(a, title=f"good {i}"))) for i in range(5)),
        store.commit(Change(event=event(nobody, title="bad"))),
        *(store.commit(Change(event=event(a, title=f"good {i}"))) for i in range(5, 10)),
        return_exceptions=True,
    )
    bad = outcomes.pop(5)
    assert isinstance(bad, DeskbellError), bad
    assert all(isinstance(o, Committed) for o in outcomes), outcomes
    assert await stored_seqs(store, a) == list(range(1, 11))


async def test_close_finishes_the_commits_it_accepted(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    world = await seed(store)
    pending = [
        asyncio.create_task(store.commit(Change(event=event(world.alice.id)))) for _ in range(20)
    ]
    # Created after the commits, so it runs after each has queued its change.
    await asyncio.create_task(store.close())
    assert all(p.done() and not p.exception() for p in pending)
    reopened = PostgresStore(pg_url)
    await reopened.open()
    try:
        assert await stored_seqs(reopened, world.alice.id) == list(range(1, 21))
    finally:
        await reopened.close()


async def test_a_batch_of_keys_stores_the_new_and_answers_the_known(store: PostgresStore) -> None:
    world = await seed(store)
    a = world.alice.id
    await store.commit(Change(event=event(a), publish_key=(1, "old")))
    results = await asyncio.gather(
        *(
            store.commit(Change(event=event(a), publish_key=(1, key)))
            for key in ("n1", "old", "n2", "n1", "n3")
        )
    )
    assert [(r.notifications, r.duplicate) for r in results] == [
        (1, False),
        (1, True),
        (1, False),
        (1, True),
        (1, False),
    ]
    assert await stored_seqs(store, a) == [1, 2, 3, 4]


async def someone_waits_for_an_advisory_lock(conn: asyncpg.Connection) -> bool:
    return bool(
        await conn.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
        )
    )


async def test_a_commit_is_refused_at_once_while_its_writer_is_behind(pg_url: str) -> None:
    # One writer; any wait in its queue is too long.
    store = PostgresStore(pg_url + "?pool_size=2", max_commit_wait=0.0)
    await store.open()
    other_node = await asyncpg.connect(pg_url)
    try:
        world = await seed(store)
        a = world.alice.id
        # Another node holds the recipient set's lock: the writer's batch waits for it.
        await other_node.execute("SELECT pg_advisory_lock($1)", recipient_set_key((a,)))
        held = asyncio.create_task(store.commit(Change(event=event(a, title="held"))))
        await wait_until(
            lambda: someone_waits_for_an_advisory_lock(other_node),
            what="the writer waiting for the lock",
        )
        queued = asyncio.create_task(store.commit(Change(event=event(a, title="queued"))))
        await wait_until(lambda: store.queued_commits == 1, what="the second commit queued")
        with pytest.raises(StoreUnavailable, match="behind"):
            await store.commit(Change(event=event(a, title="refused")))
        await other_node.execute("SELECT pg_advisory_unlock($1)", recipient_set_key((a,)))
        assert [d.seq for r in await asyncio.gather(held, queued) for d in r.deliveries] == [
            1,
            2,
        ]
        # Caught up: accepted again.
        again = await store.commit(Change(event=event(a, title="again")))
        assert [d.seq for d in again.deliveries] == [3]
        stored, _ = await store.notifications_after(world.alice, 0, 10)
        assert [n.title for n in stored] == ["held", "queued", "again"]
    finally:
        await other_node.close()
        await store.close()
