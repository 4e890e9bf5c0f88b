"""Escalation steps against a real server, on SQLite and PostgreSQL.

Most tests drive the store's clock by hand (``escalation.fire_due`` with an explicit
``now``) on steps an hour or more away, which the server's own loop (on real time)
never reaches: deterministic, and no waiting. One test per promise about real time
(fires within 2 s of due, early when unseen) lets the server's loop do it alone.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.request
from pathlib import Path
from typing import Any

from backend import escalation, protocol
from backend.app import _availability
from backend.store.waiting_sql import epoch_ms
from tests.support.backend import BackendHarness, WsClient, in_process_backend

HOUR_MS = 3600 * 1000
AGENTS = {"ann@x.org": ["Support"], "bob@x.org": ["Support"], "lee@x.org": ["Leads"]}


async def _setup(
    server: BackendHarness, *steps: str, unseen: int = protocol.MAX_STEP_SECONDS
) -> dict[str, Any]:
    """Agents, and the Support policy (unseen notifications bring nothing forward
    unless a test says when)."""
    tokens = await server.seed(AGENTS)
    await server.service.waiting.set_policy(
        "Support", escalate=list(steps) or None, unseen_after_s=unseen, clear=False
    )
    return tokens


async def _start(server: BackendHarness, name: str = "Dana") -> tuple[WsClient, str, int]:
    visitor, started = await server.visitor_start("Support", name, "Hello?")
    since = started["conversation"]["messages"][0]["created_at"]
    return visitor, started["conversation"]["id"], epoch_ms(since)


async def _waiting_notes(server: BackendHarness, email: str) -> list[dict[str, Any]]:
    agent = await server.service.store.agent_by_email(email)
    items, _ = await server.service.store.history(agent, None, 200, None, False)
    return [n for n in items if n.kind == "chat.conversation.waiting"]


async def test_a_step_reaches_connected_recipients_within_2_s_of_due(
    server: BackendHarness,
) -> None:
    tokens = await _setup(server, "1")
    ann = await server.agent(tokens["ann@x.org"])
    _, conversation_id, since_ms = await _start(server)
    await ann.notifications(1)  # conversation created
    (note,) = await ann.notifications(1, timeout=5)
    arrived_ms = time.time() * 1000
    assert note["kind"] == "chat.conversation.waiting"
    assert note["conversation_id"] == conversation_id
    assert note["data"]["step"] == 1 and "early" not in note["data"]
    assert note["data"]["waiting_since"] == note["data"]["waiting_since"]
    assert 1 <= note["data"]["waited_s"] <= 3
    due_ms = since_ms + 1000
    assert due_ms <= epoch_ms(note["created_at"]) <= due_ms + 2000
    assert arrived_ms <= due_ms + 2000
    # Fired once: nothing is left to fire, whenever asked.
    assert await escalation.fire_due(server.service, since_ms + 10 * HOUR_MS) == 0


async def test_steps_fire_once_each_in_order_to_their_targets(server: BackendHarness) -> None:
    await _setup(server, "3600", "7200:inbox:Leads", "9000:ann@x.org")
    _, conversation_id, since_ms = await _start(server)
    service = server.service
    assert await escalation.fire_due(service, since_ms + HOUR_MS - 1) == 0
    assert await escalation.fire_due(service, since_ms + HOUR_MS) == 1
    assert await escalation.fire_due(service, since_ms + HOUR_MS + 5000) == 0
    assert await escalation.fire_due(service, since_ms + 2 * HOUR_MS + 1000) == 1
    assert await escalation.fire_due(service, since_ms + 3 * HOUR_MS) == 1
    assert await escalation.fire_due(service, since_ms + 30 * HOUR_MS) == 0

    ann = await _waiting_notes(server, "ann@x.org")
    bob = await _waiting_notes(server, "bob@x.org")
    lee = await _waiting_notes(server, "lee@x.org")
    assert sorted(n.data["step"] for n in ann) == [1, 3]
    assert [n.data["step"] for n in bob] == [1]
    assert [n.data["step"] for n in lee] == [2]
    assert lee[0].conversation_id == conversation_id
    assert lee[0].data["waited_s"] == 7201


async def test_no_step_fires_after_an_agent_reply_or_a_resolve(server: BackendHarness) -> None:
    tokens = await _setup(server, "3600")
    ann = await server.agent(tokens["ann@x.org"])
    _, replied, since_ms = await _start(server, "Replied")
    _, resolved, _ = await _start(server, "Resolved")
    _, left_waiting, _ = await _start(server, "Waiting")
    reply = await ann.request(
        {"type": "reply", "conversation_id": replied, "body": "Hi", "client_msg_id": "1"}
    )
    assert reply["type"] == "ok"
    assert (await ann.request({"type": "resolve", "conversation_id": resolved}))["type"] == "ok"

    assert await escalation.fire_due(server.service, since_ms + 2 * HOUR_MS) == 1
    notes = await _waiting_notes(server, "ann@x.org")
    assert [n.conversation_id for n in notes] == [left_waiting]


async def test_a_new_wait_after_a_reply_gets_its_steps_again(server: BackendHarness) -> None:
    tokens = await _setup(server, "3600")
    ann = await server.agent(tokens["ann@x.org"])
    visitor, conversation_id, since_ms = await _start(server)
    await ann.request(
        {"type": "reply", "conversation_id": conversation_id, "body": "Hi", "client_msg_id": "1"}
    )
    sent = await visitor.request({"type": "send", "text": "again", "client_msg_id": "2"})
    second_ms = epoch_ms(sent["message"]["created_at"])
    assert await escalation.fire_due(server.service, since_ms + HOUR_MS) == 0 or (
        second_ms == since_ms
    )
    assert await escalation.fire_due(server.service, second_ms + HOUR_MS) == 1
    (note,) = await _waiting_notes(server, "ann@x.org")
    assert note.data["waiting_since"] == sent["message"]["created_at"]


async def test_a_policy_change_applies_to_later_waits_only(server: BackendHarness) -> None:
    await _setup(server, "3600")
    _, first, since_ms = await _start(server, "Before")
    await server.service.waiting.set_policy(
        "Support", escalate=None, unseen_after_s=None, clear=True
    )
    _, second, _ = await _start(server, "After")
    assert await escalation.fire_due(server.service, since_ms + 2 * HOUR_MS) == 1
    notes = await _waiting_notes(server, "ann@x.org")
    assert [n.conversation_id for n in notes] == [first]
    assert second != first


async def test_due_steps_survive_a_restart(tmp_path: Path, store_url: str) -> None:
    async with in_process_backend(tmp_path, db=store_url) as before:
        await _setup(before, "3600")
        _, conversation_id, since_ms = await _start(before)
    async with in_process_backend(tmp_path, db=store_url) as after:
        assert await escalation.fire_due(after.service, since_ms + 2 * HOUR_MS) == 1
        assert await escalation.fire_due(after.service, since_ms + 3 * HOUR_MS) == 0
        (note,) = await _waiting_notes(after, "ann@x.org")
        assert note.conversation_id == conversation_id


async def test_a_notification_nobody_saw_brings_the_next_step_forward(
    server: BackendHarness,
) -> None:
    tokens = await _setup(server, "3600", "7200", unseen=600)
    ann = await server.agent(tokens["ann@x.org"])
    bob = await server.agent(tokens["bob@x.org"])
    _, unseen, since_ms = await _start(server, "Unseen")
    _, seen, _ = await _start(server, "Seen")
    created = await ann.notifications(2)
    seen_note = next(n for n in created if n["conversation_id"] == seen)
    await bob.notifications(2)
    await ann.send_raw(
        json.dumps({"type": "seen", "ids": [seen_note["id"], "n_unknown_1", "x"], "how": "shown"})
    )
    # A frame sent after `seen` on the same connection is answered after it was handled.
    assert (await ann.request({"type": "history", "limit": 1}))["type"] == "ok"
    available = _availability(server.backend.gateway, server.backend.bus)  # type: ignore[union-attr]

    service = server.service
    assert await escalation.fire_due(service, since_ms + 599_000, available) == 0
    assert await escalation.fire_due(service, since_ms + 601_000, available) == 1
    notes = await _waiting_notes(server, "ann@x.org")
    assert [(n.conversation_id, n.data["step"], n.data.get("early")) for n in notes] == [
        (unseen, 1, True)
    ]
    # It counted as step 1: step 2 keeps its due time, and step 1 does not fire again.
    assert await escalation.fire_due(service, since_ms + HOUR_MS + 1000, available) == 1
    assert await escalation.fire_due(service, since_ms + 2 * HOUR_MS + 1000, available) == 2


async def test_a_seen_notification_still_escalates_early_when_everyone_is_away(
    server: BackendHarness,
) -> None:
    tokens = await _setup(server, "3600", unseen=600)
    ann = await server.agent(tokens["ann@x.org"])
    bob = await server.agent(tokens["bob@x.org"])
    _, conversation_id, since_ms = await _start(server)
    (note,) = await ann.notifications(1)
    await bob.notifications(1)
    await ann.send_raw(json.dumps({"type": "seen", "ids": [note["id"]], "how": "clicked"}))
    for client, status in ((ann, "away"), (bob, "dnd")):
        reply = await client.request({"type": "presence", "status": status})
        assert reply["type"] == "ok"
    available = _availability(server.backend.gateway, server.backend.bus)  # type: ignore[union-attr]
    assert await escalation.fire_due(server.service, since_ms + 601_000, available) == 1
    (waiting,) = await _waiting_notes(server, "ann@x.org")
    assert waiting.data["early"] is True and waiting.conversation_id == conversation_id


async def test_the_server_escalates_an_unseen_chat_early_on_its_own(
    server: BackendHarness,
) -> None:
    tokens = await _setup(server, "3600", unseen=1)
    ann = await server.agent(tokens["ann@x.org"])
    _, conversation_id, since_ms = await _start(server)
    await ann.notifications(1)
    (note,) = await ann.notifications(1, timeout=5)
    assert note["conversation_id"] == conversation_id
    assert note["kind"] == "chat.conversation.waiting"
    assert note["data"]["early"] is True and note["data"]["step"] == 1
    assert epoch_ms(note["created_at"]) - since_ms <= 1000 + 2000


async def test_an_assigned_conversation_does_not_escalate_early(server: BackendHarness) -> None:
    tokens = await _setup(server, "3600", unseen=600)
    ann = await server.agent(tokens["ann@x.org"])
    _, conversation_id, since_ms = await _start(server)
    claimed = await ann.request({"type": "claim", "conversation_id": conversation_id})
    assert claimed["type"] == "ok"
    assert await escalation.fire_due(server.service, since_ms + 601_000) == 0


async def test_metrics_count_escalations_and_the_wait_until_reply(server: BackendHarness) -> None:
    tokens = await _setup(server, "3600", unseen=600)
    ann = await server.agent(tokens["ann@x.org"])
    _, conversation_id, since_ms = await _start(server)
    assert await escalation.fire_due(server.service, since_ms + 601_000) == 1
    await ann.request(
        {"type": "reply", "conversation_id": conversation_id, "body": "Hi", "client_msg_id": "1"}
    )
    text = await asyncio.to_thread(_get, f"http://127.0.0.1:{server.port}/metrics")
    assert 'deskbell_escalations_fired_total{early="true",step="1"} 1.0' in text
    assert "deskbell_wait_until_reply_seconds_count 1.0" in text


def _get(url: str) -> str:
    with urllib.request.urlopen(url, timeout=5) as response:
        return str(response.read().decode())


async def test_the_visitor_hears_the_team_is_busy_once_the_last_step_fired(
    server: BackendHarness,
) -> None:
    """The widget's honest line (docs/protocol.md, `team_status`): only after the last
    step of the wait's policy, not after an earlier one."""
    await _setup(server, "3600", "7200")
    visitor, conversation_id, since_ms = await _start(server)
    assert await escalation.fire_due(server.service, since_ms + HOUR_MS) == 1
    assert await escalation.fire_due(server.service, since_ms + 2 * HOUR_MS) == 1
    pushed = await visitor.push("team_status")
    assert pushed == {"type": "team_status", "conversation_id": conversation_id, "busy": True}
    assert [f for f in visitor.frames if f["type"] == "team_status"] == [pushed]


async def test_a_resolve_reaches_the_visitor_as_a_status_push(server: BackendHarness) -> None:
    tokens = await _setup(server)
    ann = await server.agent(tokens["ann@x.org"])
    visitor, conversation_id, _ = await _start(server)
    resolved = await ann.request({"type": "resolve", "conversation_id": conversation_id})
    assert resolved["type"] == "ok"
    pushed = await visitor.push("status")
    assert pushed == {"type": "status", "conversation_id": conversation_id, "status": "resolved"}
