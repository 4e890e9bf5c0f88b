"""The SQLite store's fan-out table: rows committed there are read, counted and marked
read exactly like rows already in place, before and after they move."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TypeVar

import pytest

from backend.store import sqlite_writer
from backend.store.base import Agent, Change, ImportRow, NewEvent
from backend.store.common import now_iso
from backend.store.sqlite import DIRECT_ROWS, SQLiteStore

T = TypeVar("T")


def event(recipients: tuple[int, ...], title: str) -> NewEvent:
    return NewEvent(
        kind="ticket.created",
        title=title,
        body="",
        conversation_public_id=None,
        url=None,
        data={},
        created_at=now_iso(),
        recipients=recipients,
    )


@contextlib.asynccontextmanager
async def store_with_agents(
    path: Path, extra: int
) -> AsyncIterator[tuple[SQLiteStore, list[Agent]]]:
    """An opened store with enough agents of one inbox (DIRECT_ROWS + ``extra``) that a
    fan-out to all of them goes through ``fanout``; closed on exit."""
    store = SQLiteStore(path)
    await store.open()
    try:
        result = await store.import_agents(
            [ImportRow(f"a{n}@x.org", f"A{n}", ("Support",)) for n in range(DIRECT_ROWS + extra)]
        )
        yield store, sorted(result.agents, key=lambda agent: agent.id)
    finally:
        await store.close()


async def test_fanout_and_direct_rows_read_as_one_stream(tmp_path: Path) -> None:
    store = SQLiteStore(tmp_path / "f.sqlite3")
    await store.open()
    try:
        result = await store.import_agents(
            [ImportRow(f"a{n}@x.org", f"A{n}", ("Support",)) for n in range(DIRECT_ROWS + 8)]
        )
        everyone = tuple(sorted(a.id for a in result.agents))
        ann = result.agents[0]
        await store.commit(Change(event=event(everyone, "to all 1")))  # through fanout
        await store.commit(Change(event=event((ann.id,), "to ann")))  # straight into place
        await store.commit(Change(event=event(everyone, "to all 2")))  # through fanout
        # Read at once, before the writer moved anything.
        items, truncated = await store.notifications_after(ann, 0, 10)
        assert [(n.seq, n.title) for n in items] == [
            (1, "to all 1"),
            (2, "to ann"),
            (3, "to all 2"),
        ]
        assert not truncated
        assert await store.agent_state(ann.id) == (3, {"ticket": 3})
        read = await store.mark_read(ann, seqs=[1, 3])
        assert read.unread == {"total": 1, "chat": 0, "ticket": 1}
        history, more = await store.history(ann, None, 10, None, True)
        assert [n.seq for n in history] == [2] and not more
        last = result.agents[-1]
        items, _ = await store.notifications_after(last, 0, 10)
        assert [n.title for n in items] == ["to all 1", "to all 2"]
    finally:
        await store.close()
    again = SQLiteStore(tmp_path / "f.sqlite3")
    await again.open()
    try:
        assert await again.agent_state(ann.id) == (3, {"ticket": 1})
    finally:
        await again.close()


async def test_polls_and_seen_reports_with_nothing_to_do_leave_the_rows_to_move_in_bulk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Moving rows costs per agent page touched, so the writer moves many events at once;
    the escalation poll (4 times a second) and agents' seen reports must not force a move
    when they have nothing to check or mark."""
    monkeypatch.setattr(sqlite_writer, "INDEX_DELAY", 3600.0)
    path = tmp_path / "f.sqlite3"
    async with store_with_agents(path, 8) as (store, agents):
        everyone = tuple(a.id for a in agents)
        ann = agents[0]
        await store.commit(Change(event=event(everyone, "to all")))
        await store.notifications_after(ann, 0, 10)  # a read moves everything pending
        await store.commit(Change(event=event(everyone, "to all again")))

        assert await store.check_unseen(2**62, 100, lambda _agents: False) == 0
        await store.mark_seen(ann.id, [2])

        with sqlite3.connect(path) as conn:
            assert conn.execute("SELECT count(*) FROM fanout").fetchone()[0] == len(everyone)
        items, _ = await store.notifications_after(ann, 0, 10)
        assert [n.title for n in items] == ["to all", "to all again"]


async def test_a_move_in_steps_between_commits_puts_every_row_in_place_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The background move goes by ranges of agents with commits between its steps;
    rows committed during a move for agents it already passed wait for the next one."""
    monkeypatch.setattr(sqlite_writer, "INDEX_DELAY", 0.0)
    monkeypatch.setattr(sqlite_writer, "INDEX_SLICE_ROWS", 25)
    path = tmp_path / "f.sqlite3"
    async with store_with_agents(path, 24) as (store, agents):
        everyone = tuple(a.id for a in agents)
        events = 30
        await asyncio.gather(  # one batch, then a move of many steps ...
            *(store.commit(Change(event=event(everyone, f"event {k}"))) for k in range(15))
        )
        for k in range(15, events):  # ... with each of these committed between two steps
            await store.commit(Change(event=event(everyone, f"event {k}")))

        def placed() -> list[tuple[int, int, int]]:
            with sqlite3.connect(path) as conn:
                if conn.execute("SELECT count(*) FROM fanout").fetchone()[0]:
                    return []
                return conn.execute(
                    "SELECT agent_id, seq, event_id FROM notifications ORDER BY agent_id, seq"
                ).fetchall()

        rows = await wait_for(placed)
        assert len(rows) == events * len(everyone)
        for agent in everyone:
            mine = [(seq, event_id) for a, seq, event_id in rows if a == agent]
            assert [seq for seq, _ in mine] == list(range(1, events + 1))
            assert [e for _, e in mine] == sorted(e for _, e in mine)


async def wait_for(condition: Callable[[], list[T]], seconds: float = 20.0) -> list[T]:
    """Poll ``condition`` until it returns something, at most ``seconds``."""
    deadline = asyncio.get_running_loop().time() + seconds
    while not (found := condition()):
        assert asyncio.get_running_loop().time() < deadline, "the writer never moved the rows"
        await asyncio.sleep(0.02)
    return found
