"""Waiting, the queue, claim, withdraw and resolve against a real server (both stores)."""

from __future__ import annotations

import asyncio
from typing import Any

from tests.support.backend import BackendHarness, WsClient

AGENTS = {"ann@x.org": ["Support"], "bob@x.org": ["Support"], "cy@x.org": ["Support"]}


async def _agents(server: BackendHarness) -> dict[str, WsClient]:
    tokens = await server.seed(AGENTS)
    return {email.split("@")[0]: await server.agent(token) for email, token in tokens.items()}


async def _conversation(client: WsClient, conversation_id: str) -> dict[str, Any]:
    reply = await client.request({"type": "conversation", "conversation_id": conversation_id})
    assert reply["type"] == "ok", reply
    conversation: dict[str, Any] = reply["conversation"]
    return conversation


async def test_a_visitor_message_starts_a_wait_and_an_agent_reply_ends_it(
    server: BackendHarness,
) -> None:
    clients = await _agents(server)
    ann = clients["ann"]
    assert (await ann.request({"type": "queue"}))["conversations"] == []
    _, started = await server.visitor_start("Support", "Dana", "Hello?")
    conversation_id = started["conversation"]["id"]
    first = started["conversation"]["messages"][0]

    changed = await ann.push("queue_changed")
    assert changed["waiting"] is True
    assert changed["conversation"]["waiting_since"] == first["created_at"]
    assert changed["conversation"]["last_message"]["body"] == "Hello?"
    conversation = await _conversation(ann, conversation_id)
    assert conversation["waiting_since"] == first["created_at"]
    queue = (await ann.request({"type": "queue"}))["conversations"]
    assert [entry["id"] for entry in queue] == [conversation_id]
    assert queue[0]["assignee"] is None and queue[0]["visitor"] == {"name": "Dana"}

    reply = await ann.request(
        {"type": "reply", "conversation_id": conversation_id, "body": "Hi", "client_msg_id": "1"}
    )
    assert reply["type"] == "ok", reply
    left = await ann.push("queue_changed")
    assert left["waiting"] is False and left["conversation"]["waiting_since"] is None
    assert (await _conversation(ann, conversation_id))["waiting_since"] is None
    assert (await ann.request({"type": "queue"}))["conversations"] == []


async def test_the_queue_is_longest_wait_first_and_a_second_message_keeps_the_start(
    server: BackendHarness,
) -> None:
    clients = await _agents(server)
    _, one = await server.visitor_start("Support", "One", "first")
    _, two = await server.visitor_start("Support", "Two", "second")
    visitor, _ = one, None
    queue = (await clients["ann"].request({"type": "queue"}))["conversations"]
    assert [e["visitor"]["name"] for e in queue] == ["One", "Two"]
    since = queue[0]["waiting_since"]
    assert since == visitor["conversation"]["messages"][0]["created_at"]
    assert two["conversation"]["id"] == queue[1]["id"]


async def test_a_claim_assigns_and_withdraws_the_others_notifications(
    server: BackendHarness,
) -> None:
    clients = await _agents(server)
    ann, bob = clients["ann"], clients["bob"]
    _, started = await server.visitor_start("Support", "Dana", "Hello?")
    conversation_id = started["conversation"]["id"]
    (bob_note,) = await bob.notifications(1)
    await ann.notifications(1)

    claimed = await ann.request({"type": "claim", "conversation_id": conversation_id})
    assert claimed["type"] == "ok", claimed
    assert claimed["conversation"]["assignee"]["name"] == "Ann"

    withdraw = await bob.push("withdraw")
    assert withdraw["ids"] == [bob_note["id"]]
    assert withdraw["reason"] == "claimed" and withdraw["by"]["name"] == "Ann"
    read = await bob.push("read")
    assert read["ids"] == [bob_note["id"]]
    assert (await bob.push("unread"))["unread"]["chat"] == 0
    assert ann.no_pending_pushes("withdraw")

    lost = await bob.request({"type": "claim", "conversation_id": conversation_id})
    assert lost["type"] == "error" and lost["code"] == "conflict"
    assert "Ann" in lost["message"]
    again = await ann.request({"type": "claim", "conversation_id": conversation_id})
    assert again["type"] == "ok"


async def test_a_claim_of_a_conversation_outside_my_inboxes_is_not_found(
    server: BackendHarness,
) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"], "eve@x.org": ["Sales"]})
    eve = await server.agent(tokens["eve@x.org"])
    _, started = await server.visitor_start("Support", "Dana", "Hello?")
    reply = await eve.request({"type": "claim", "conversation_id": started["conversation"]["id"]})
    assert reply["code"] == "not_found"


async def test_an_assign_withdraws_from_everyone_but_the_new_assignee(
    server: BackendHarness,
) -> None:
    clients = await _agents(server)
    ann, bob, cy = clients["ann"], clients["bob"], clients["cy"]
    _, started = await server.visitor_start("Support", "Dana", "Hello?")
    conversation_id = started["conversation"]["id"]
    for client in (ann, bob, cy):
        await client.notifications(1)
    bob_id = bob.welcome["agent"]["id"]  # type: ignore[attr-defined]
    reply = await ann.request(
        {"type": "assign", "conversation_id": conversation_id, "agent_id": bob_id}
    )
    assert reply["type"] == "ok", reply
    withdraw = await cy.push("withdraw")
    assert withdraw["reason"] == "assigned" and withdraw["by"]["name"] == "Bob"
    assert (await ann.push("withdraw"))["by"]["name"] == "Bob"
    assigned = await bob.notifications(1)
    assert assigned[0]["kind"] == "chat.conversation.assigned"
    assert bob.no_pending_pushes("withdraw")


async def test_resolve_ends_the_wait_and_a_later_visitor_message_reopens(
    server: BackendHarness,
) -> None:
    clients = await _agents(server)
    ann = clients["ann"]
    await ann.request({"type": "queue"})
    visitor, started = await server.visitor_start("Support", "Dana", "Hello?")
    conversation_id = started["conversation"]["id"]
    await ann.push("queue_changed")
    reply = await ann.request({"type": "resolve", "conversation_id": conversation_id})
    assert reply == {"type": "ok", "id": reply["id"]}
    left = await ann.push("queue_changed")
    assert left["waiting"] is False
    conversation = await _conversation(ann, conversation_id)
    assert conversation["status"] == "resolved" and conversation["waiting_since"] is None

    sent = await visitor.request({"type": "send", "text": "Still there?", "client_msg_id": "2"})
    assert sent["type"] == "ok", sent
    back = await ann.push("queue_changed")
    assert back["waiting"] is True
    assert back["conversation"]["waiting_since"] == sent["message"]["created_at"]
    assert (await _conversation(ann, conversation_id))["status"] == "open"


async def test_of_two_simultaneous_claims_exactly_one_wins_ten_times(
    server: BackendHarness,
) -> None:
    clients = await _agents(server)
    ann, bob = clients["ann"], clients["bob"]
    for round_ in range(10):
        _, started = await server.visitor_start("Support", f"V{round_}", "Hello?")
        conversation_id = started["conversation"]["id"]
        replies = await asyncio.gather(
            ann.request({"type": "claim", "conversation_id": conversation_id}),
            bob.request({"type": "claim", "conversation_id": conversation_id}),
        )
        outcomes = sorted(reply["type"] for reply in replies)
        assert outcomes == ["error", "ok"], replies
        winner = next(r for r in replies if r["type"] == "ok")
        loser = next(r for r in replies if r["type"] == "error")
        assert loser["code"] == "conflict"
        assert winner["conversation"]["assignee"]["name"] in loser["message"]


async def test_an_agent_removed_from_the_inbox_gets_no_more_of_its_queue(
    server: BackendHarness,
) -> None:
    clients = await _agents(server)
    ann, bob = clients["ann"], clients["bob"]
    for client in (ann, bob):
        await client.request({"type": "queue"})
    await server.service.update_agent("bob@x.org", name=None, inboxes=[])
    _, started = await server.visitor_start("Support", "Dana", "Hello?")
    assert (await ann.push("queue_changed"))["conversation"]["id"] == started["conversation"]["id"]
    # A frame answered after the push went out to everyone who may see it.
    await bob.request({"type": "history", "limit": 1})
    assert bob.no_pending_pushes("queue_changed")
