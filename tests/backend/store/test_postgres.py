"""What only the PostgreSQL store has to prove: several nodes on one database, one
schema source kept in step with SQLite, and a database that goes away and comes back.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import pytest

from backend.errors import ConfigError, StoreUnavailable
from backend.store import open_store
from backend.store.base import SCHEMA_VERSION, Change
from backend.store.postgres import PostgresStore, pg_dialect, split_pool_options
from backend.store.sqlite import SQLITE_ONLY_TABLES, SQLiteStore
from tests.backend.store.postgres_server import fresh_database, server_reachable
from tests.backend.store.tcp_proxy import TcpProxy
from tests.backend.store.test_store_contract import event, seed


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    problem = await server_reachable()
    if problem:
        pytest.skip(problem)
    async with fresh_database() as url:
        yield url


@pytest.fixture
async def nodes(pg_url: str) -> AsyncIterator[tuple[PostgresStore, PostgresStore]]:
    """Two stores on one database, as two deskbell-server nodes would have."""
    first = PostgresStore(pg_url + "?pool_size=4")
    second = PostgresStore(pg_url + "?pool_size=4")
    await asyncio.gather(first.open(), second.open())  # both migrate at once: one wins
    try:
        yield first, second
    finally:
        await first.close()
        await second.close()


async def test_two_nodes_assign_seq_for_the_same_agents_without_gap_or_duplicate(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = nodes
    world = await seed(first)
    a, b, c = world.alice.id, world.bob.id, world.carol.id
    # Overlapping recipient sets named in different orders: the lock order must not
    # depend on it, or two nodes would deadlock.
    shapes = [(a, b, c), (c, b, a), (b, a), (c, a), (a,), (c, b)]
    changes = [Change(event=event(*shapes[i % len(shapes)], title=f"e{i}")) for i in range(120)]
    results = await asyncio.gather(
        *((first if i % 2 else second).commit(change) for i, change in enumerate(changes))
    )
    for agent in (world.alice, world.bob, world.carol):
        expected = sum(agent.id in shape for shape in (shapes[i % 6] for i in range(120)))
        seqs = [d.seq for r in results for d in r.deliveries if d.agent_id == agent.id]
        assert sorted(seqs) == list(range(1, expected + 1))
        for node in (first, second):
            items, _ = await node.notifications_after(agent, 0, 1000)
            assert [n.seq for n in items] == list(range(1, expected + 1))
            last_seq, unread = await node.agent_state(agent.id)
            assert (last_seq, unread) == (expected, {"chat": expected})


async def test_two_nodes_store_a_publish_key_once(
    nodes: tuple[PostgresStore, PostgresStore],
) -> None:
    first, second = nodes
    world = await seed(first)
    results = await asyncio.gather(
        *(
            node.commit(Change(event=event(world.alice.id), publish_key=(1, "k1")))
            for node in (first, second) * 5
        )
    )
    assert sum(not r.duplicate for r in results) == 1
    assert await second.publish_result(1, "k1") == 1
    assert (await first.agent_state(world.alice.id))[0] == 1


async def test_the_postgresql_schema_has_every_table_column_and_index_of_sqlite(
    pg_url: str, tmp_path: Path
) -> None:
    sqlite_store = SQLiteStore(tmp_path / "s.sqlite3")
    await sqlite_store.open()
    await sqlite_store.close()
    lite = sqlite3.connect(tmp_path / "s.sqlite3")
    tables = [
        r[0]
        for r in lite.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
        if r[0] not in SQLITE_ONLY_TABLES
    ]
    lite_columns = {
        (table, r[1], bool(r[3]) or bool(r[5]))
        for table in tables
        for r in lite.execute(f"PRAGMA table_info({table})")
    }
    lite_indexes = {
        r[0]
        for r in lite.execute(
            "SELECT name FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL"
        )
    }
    lite.close()
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(pg_url)
    try:
        pg_columns = {
            (r[0], r[1], r[2] == "NO")
            for r in await conn.fetch(
                "SELECT table_name, column_name, is_nullable FROM information_schema.columns "
                "WHERE table_schema = 'public'"
            )
        }
        pg_indexes = {
            r[0]
            for r in await conn.fetch(
                "SELECT indexname FROM pg_indexes WHERE schemaname = 'public'"
            )
        }
    finally:
        await conn.close()
    assert lite_columns <= pg_columns
    assert lite_indexes <= pg_indexes


def test_the_dialect_translation_keeps_sqlite_semantics() -> None:
    sql = (
        "CREATE TABLE t (id INTEGER PRIMARY KEY, n INTEGER NOT NULL, s TEXT UNIQUE);\n"
        "CREATE TABLE k (a INTEGER, b TEXT, PRIMARY KEY (a, b)\n) WITHOUT ROWID;"
    )
    assert pg_dialect(sql) == (
        "CREATE TABLE t (id BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
        'n BIGINT NOT NULL, s TEXT COLLATE "C" UNIQUE);\n'
        'CREATE TABLE k (a BIGINT, b TEXT COLLATE "C", PRIMARY KEY (a, b)\n);'
    )


async def test_a_database_of_a_newer_schema_is_refused_with_advice(pg_url: str) -> None:
    store = PostgresStore(pg_url)
    await store.open()
    await store.close()
    conn = await asyncpg.connect(pg_url)
    await conn.execute("UPDATE deskbell_schema SET version = $1", SCHEMA_VERSION + 1)
    await conn.close()
    with pytest.raises(StoreUnavailable, match="upgrade deskbell-server"):
        await PostgresStore(pg_url).open()


async def test_an_unreachable_server_gives_a_clear_error_without_the_password() -> None:
    with TcpProxy.free_port() as port:
        url = f"postgresql://deskbell:s3cret@127.0.0.1:{port}/deskbell"
        with pytest.raises(StoreUnavailable, match="cannot be reached") as caught:
            await PostgresStore(url).open()
    assert "s3cret" not in caught.value.message
    assert "Check that PostgreSQL is running" in caught.value.message


async def test_a_missing_database_says_to_create_it(pg_url: str) -> None:
    parts = urlsplit(pg_url)
    url = urlunsplit(parts._replace(path="/deskbell_no_such_database"))
    with pytest.raises(StoreUnavailable, match="does not exist"):
        await PostgresStore(url).open()


async def test_a_store_survives_the_database_going_away_and_coming_back(pg_url: str) -> None:
    target = urlsplit(pg_url)
    async with TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        url = urlunsplit(target._replace(netloc=f"{target.username}@127.0.0.1:{proxy.port}"))
        store = PostgresStore(url + "?pool_size=3", connect_timeout=2)
        await store.open()
        try:
            world = await seed(store)
            await store.commit(Change(event=event(world.alice.id)))
            await proxy.stop()
            with pytest.raises(StoreUnavailable, match="cannot be reached"):
                await store.commit(Change(event=event(world.alice.id)))
            with pytest.raises(StoreUnavailable):
                await store.ping()
            with pytest.raises(StoreUnavailable):
                await store.agent_state(world.alice.id)
            await proxy.start()
            await store.ping()
            committed = await store.commit(Change(event=event(world.alice.id)))
            assert [d.seq for d in committed.deliveries] == [2]  # the failed one left no gap
        finally:
            await store.close()


def test_the_pool_is_sized_by_the_url() -> None:
    url, min_size, max_size = split_pool_options(
        "postgresql://u@h/db?pool_size=20&pool_min_size=5&sslmode=disable"
    )
    assert (url, min_size, max_size) == ("postgresql://u@h/db?sslmode=disable", 5, 20)
    assert split_pool_options("postgresql://u@h/db")[1:] == (2, 10)
    store = open_store("postgresql://u@h/db?pool_size=3")
    assert isinstance(store, PostgresStore) and store.pool_size == 3
    with pytest.raises(ConfigError, match="pool_size"):
        PostgresStore("postgresql://u@h/db?pool_size=0")
    with pytest.raises(ConfigError, match="whole numbers"):
        open_store("postgresql://u@h/db?pool_size=many")
