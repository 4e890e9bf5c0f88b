"""Claims, escalation and presence across real ``deskbell-server serve`` processes:
nodes on PostgreSQL and Redis, and one SQLite node started after a step fell due."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from backend import protocol
from backend.app import open_service
from backend.config import Config
from backend.store.waiting_sql import epoch_ms
from tests.backend.bus.redis_server import wait_until
from tests.backend.scale.cluster import INBOX, Node, cluster, seed_agents
from tests.backend.scale.conftest import bus_url, pg_url
from tests.support.backend import BackendHarness, ServerProcess, WsClient, seed_db

pytestmark = pytest.mark.slow
__all__ = ["bus_url", "pg_url"]


async def _set_policy(db: str, *steps: str, unseen: int = protocol.MAX_STEP_SECONDS) -> None:
    async with open_service(Config(db=db)) as service:
        await service.waiting.set_policy(
            INBOX, escalate=list(steps), unseen_after_s=unseen, clear=False
        )


async def _presence_known(nodes: list[Node], others: int, online_elsewhere: list[int]) -> None:
    """Until every node holds the other nodes' presence reports, and each node's count of
    agents online elsewhere is as given (its metrics say so)."""

    async def known() -> bool:
        texts = await asyncio.gather(
            *(asyncio.to_thread(_text, f"http://127.0.0.1:{node.port}/metrics") for node in nodes)
        )
        return all(
            f"deskbell_presence_nodes {float(others)}" in text
            and f"deskbell_presence_agents_online {float(online)}" in text
            for text, online in zip(texts, online_elsewhere, strict=True)
        )

    await wait_until(known, what=f"every node to hold {others} other nodes' presence")


@contextlib.asynccontextmanager
async def _chat_shown_to_ann_on_n2(
    pg_url: str, bus_url: str, tmp_path: Path, presence: str
) -> AsyncIterator[tuple[WsClient, dict[str, Any]]]:
    """Two nodes; Ann's one session on n2 says ``presence``; once both nodes know, Dana
    starts a chat on n1 and Ann's tray app reports its toast shown. Yields Ann and the
    visitor's ``conversation`` (policy: a step in an hour, unseen after 2 s)."""
    tokens = await seed_agents(pg_url, 1)
    await _set_policy(pg_url, "3600", unseen=2)
    async with cluster(pg_url, bus_url, tmp_path, 2) as nodes:
        n1, n2 = nodes.nodes
        ann = await n2.harness.agent(tokens["agent0@x.org"])
        assert (await ann.request({"type": "presence", "status": presence}))["type"] == "ok"
        # n1 has n2's report from after Ann's presence (a report from before could say
        # otherwise); n2 sees nobody online on n1.
        await _presence_known(nodes.nodes, 1, [int(presence == "online"), 0])
        _, started = await n1.harness.visitor_start(INBOX, "Dana", "Hello?")
        conversation = started["conversation"]
        (note,) = await ann.notifications(1)
        assert note["conversation_id"] == conversation["id"]
        await ann.send_raw(json.dumps({"type": "seen", "ids": [note["id"]], "how": "shown"}))
        yield ann, conversation


async def test_a_shown_chat_escalates_early_when_its_only_agent_is_away_on_another_node(
    pg_url: str, bus_url: str, tmp_path: Path
) -> None:
    # Whichever node checks the unseen notification, it must know that Ann's one
    # session, held by n2, is away: a toast shown to nobody at the desk is not seen.
    async with _chat_shown_to_ann_on_n2(pg_url, bus_url, tmp_path, "away") as (ann, chat):
        assert chat["busy"] is True  # n1 knew nobody could answer soon
        (waiting,) = await ann.notifications(1, timeout=10)
        assert waiting["kind"] == "chat.conversation.waiting"
        assert waiting["conversation_id"] == chat["id"]
        assert waiting["data"]["early"] is True and waiting["data"]["step"] == 1


async def test_a_shown_chat_does_not_escalate_early_while_its_agent_is_online_on_another_node(
    pg_url: str, bus_url: str, tmp_path: Path
) -> None:
    async with _chat_shown_to_ann_on_n2(pg_url, bus_url, tmp_path, "online") as (ann, chat):
        assert chat["busy"] is False  # Ann, on n2, is at her desk
        # The check is gone once a node has decided on it; then nothing may have fired.
        await wait_until(
            lambda: _checks_left(pg_url), what="a node to decide on the seen check", timeout=20
        )
        history = await ann.request({"type": "history", "limit": 50})
        assert [n["kind"] for n in history["items"]] == ["chat.conversation.created"]


async def test_of_two_claims_on_different_nodes_exactly_one_wins_ten_times(
    pg_url: str, bus_url: str, tmp_path: Path
) -> None:
    tokens = await seed_agents(pg_url, 2)
    async with cluster(pg_url, bus_url, tmp_path, 3) as nodes:
        n1, n2, n3 = nodes.nodes
        ann = await n2.harness.agent(tokens["agent0@x.org"])
        bob = await n3.harness.agent(tokens["agent1@x.org"])
        for round_ in range(10):
            _, started = await n1.harness.visitor_start(INBOX, f"V{round_}", "Hello?")
            conversation_id = started["conversation"]["id"]
            (ann_note,) = await ann.notifications(1)
            (bob_note,) = await bob.notifications(1)
            replies = await asyncio.gather(
                ann.request({"type": "claim", "conversation_id": conversation_id}),
                bob.request({"type": "claim", "conversation_id": conversation_id}),
            )
            assert sorted(r["type"] for r in replies) == ["error", "ok"], replies
            winner_name = next(r for r in replies if r["type"] == "ok")["conversation"]["assignee"][
                "name"
            ]
            loser, note = (bob, bob_note) if replies[0]["type"] == "ok" else (ann, ann_note)
            refusal = next(r for r in replies if r["type"] == "error")
            assert refusal["code"] == "conflict" and winner_name in refusal["message"]
            withdraw = await loser.push("withdraw")
            assert withdraw["ids"] == [note["id"]] and withdraw["by"]["name"] == winner_name


async def test_steps_fire_once_each_when_the_node_that_started_the_wait_is_killed(
    pg_url: str, bus_url: str, tmp_path: Path
) -> None:
    tokens = await seed_agents(pg_url, 1)
    await _set_policy(pg_url, "2", "4")
    async with cluster(pg_url, bus_url, tmp_path, 3) as nodes:
        n1, _, n3 = nodes.nodes
        ann = await n3.harness.agent(tokens["agent0@x.org"])
        _, started = await n1.harness.visitor_start(INBOX, "Dana", "Hello?")
        n1.process.kill()
        since_ms = epoch_ms(started["conversation"]["messages"][0]["created_at"])
        await ann.notifications(1)
        steps: list[tuple[dict[str, Any], float]] = []
        for _ in range(2):
            (note,) = await ann.notifications(1, timeout=10)
            steps.append((note, time.time() * 1000))
        for k, (note, arrived_ms) in enumerate(steps, 1):
            assert note["kind"] == "chat.conversation.waiting"
            assert note["data"]["step"] == k
            assert arrived_ms <= since_ms + 2000 * k + 2000
        history = await ann.request({"type": "history", "limit": 50})
        fired = [
            n["data"]["step"] for n in history["items"] if n["kind"] == "chat.conversation.waiting"
        ]
        assert sorted(fired) == [1, 2]


async def test_a_step_that_fell_due_while_no_node_ran_fires_within_2_s_of_healthz(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "deskbell.sqlite3")
    tokens = await seed_db(db, {"ann@x.org": [INBOX]})
    await _set_policy(db, "1")
    async with open_service(Config(db=db)) as service:
        session = await service.visitor_start(INBOX, "Dana", "Hello?", "127.0.0.1")
    due_ms = epoch_ms(session.messages[0].created_at) + 1000
    await wait_until(lambda: time.time() * 1000 > due_ms + 500, what="the step to fall due")
    server = ServerProcess(db)
    await asyncio.to_thread(server.start)
    try:
        healthy_ms = time.time() * 1000
        status = await asyncio.to_thread(_status, f"http://127.0.0.1:{server.port}/healthz")
        assert status == 200
        harness = BackendHarness(None, server.port, server.db)
        ann = await harness.agent(tokens["ann@x.org"], after_seq=0)
        notes = await ann.notifications(2, timeout=10)
        (waiting,) = [n for n in notes if n["kind"] == "chat.conversation.waiting"]
        assert epoch_ms(waiting["created_at"]) <= healthy_ms + 2000
        await ann.close()
    finally:
        server.terminate()


async def _checks_left(db: str) -> bool:
    conn = await asyncpg.connect(db)
    try:
        return int(await conn.fetchval("SELECT COUNT(*) FROM seen_checks")) == 0
    finally:
        await conn.close()


def _text(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


def _status(url: str) -> int:
    with urllib.request.urlopen(url, timeout=5) as response:
        return int(response.status)
