"""Upgrading a store made by an older release, on SQLite and on PostgreSQL."""

from __future__ import annotations

import sqlite3
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from backend.errors import Conflict
from backend.store import open_store
from backend.store.base import SCHEMA_VERSION, Change, NewEvent
from backend.store.common import migrations, now_iso
from backend.store.sqlite import _statements, sqlite_migrations
from tests.backend.store.postgres_server import fresh_database, server_reachable

# Two integrations that shared a name under schema v1, and a key one of them used.
V1_ROWS = [
    "INSERT INTO agents (id, public_id, email, name, created_at) "
    "VALUES (1, 'a_1', 'ann@x.org', 'Ann', '2026-01-01T00:00:00.000Z')",
    "INSERT INTO tokens (hash, kind, name, created_at) "
    "VALUES ('older', 'service', 'crm', '2026-01-01T00:00:00.000Z')",
    "INSERT INTO tokens (hash, kind, name, created_at) "
    "VALUES ('newer', 'service', 'crm', '2026-01-02T00:00:00.000Z')",
    "INSERT INTO tokens (hash, kind, name, created_at, revoked_at) "
    "VALUES ('gone', 'service', 'crm', '2025-12-01T00:00:00.000Z', '2025-12-02T00:00:00.000Z')",
    "INSERT INTO tokens (hash, kind, agent_id, created_at) "
    "VALUES ('agent', 'agent', 1, '2026-01-01T00:00:00.000Z')",
    "INSERT INTO publish_keys (service, key, notifications, created_at) "
    "VALUES ('crm', 'k-before', 3, '2026-01-03T00:00:00.000Z')",
]


@pytest.fixture(params=["sqlite", "postgresql"])
async def v1_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A store at schema version 1 holding :data:`V1_ROWS`."""
    version, shared = migrations()[0]
    assert version == 1
    if request.param == "sqlite":
        path = tmp_path / "v1.sqlite3"
        conn = sqlite3.connect(path, isolation_level=None)
        extras = dict(sqlite_migrations())[1]
        for statement in [*_statements(shared + ";\n" + extras), *V1_ROWS]:
            conn.execute(statement)
        conn.execute("PRAGMA user_version = 1")
        conn.close()
        yield str(path)
        return
    problem = await server_reachable()
    if problem:
        pytest.skip(problem)
    from backend.store.postgres import pg_migrations

    async with fresh_database() as url:
        conn = await asyncpg.connect(url)
        try:
            await conn.execute(pg_migrations()[0][1])
            await conn.execute("CREATE TABLE deskbell_schema (version BIGINT NOT NULL)")
            await conn.execute("INSERT INTO deskbell_schema VALUES (1)")
            for statement in V1_ROWS:
                await conn.execute(statement)
        finally:
            await conn.close()
        yield url


def ticket() -> NewEvent:
    return NewEvent(
        kind="ticket.assigned",
        title="T",
        body="",
        conversation_public_id=None,
        url=None,
        data={},
        created_at=now_iso(),
        recipients=(1,),
    )


async def test_v1_service_tokens_get_ids_and_keep_their_keys_and_names_become_unique(
    v1_store_url: str,
) -> None:
    store = open_store(v1_store_url)
    await store.open()
    try:
        assert await store.schema_version() == SCHEMA_VERSION
        older, newer = await store.token("older"), await store.token("newer")
        assert older is not None and newer is not None and older.id != newer.id
        # Both integrations keep working; the newest keeps the name.
        assert newer.name == "crm"
        assert older.name == f"crm (#{older.id})"
        agent = await store.token("agent")
        assert agent is not None and agent.agent_id == 1
        assert await store.token("gone") is None
        # A key published before the upgrade is still a repeat, for either of them.
        assert await store.publish_result(older.id, "k-before") == 3
        assert await store.publish_result(newer.id, "k-before") == 3
        # From now on each token's keys are its own.
        for token_id in (older.id, newer.id):
            committed = await store.commit(Change(event=ticket(), publish_key=(token_id, "k1")))
            assert not committed.duplicate
        assert await store.agent_state(1) == (2, {"ticket": 2})
        with pytest.raises(Conflict, match="--replace"):
            await store.add_token("third", "service", name="crm")
    finally:
        await store.close()


async def test_agents_of_an_older_store_are_enabled_and_can_be_disabled(
    v1_store_url: str,
) -> None:
    store = open_store(v1_store_url)
    await store.open()
    try:
        [ann] = await store.list_agents()
        assert (ann.email, ann.disabled) == ("ann@x.org", False)
        assert await store.set_agent_disabled(ann.id, True) == ["agent"]
        assert (await store.agent(ann.id)).disabled
    finally:
        await store.close()
