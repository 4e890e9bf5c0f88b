"""The /service channel: publishing from integrations."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.support.backend import SUBPROTOCOL, BackendHarness, WsClient, in_process_backend


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[BackendHarness]:
    async with in_process_backend(tmp_path) as harness:
        yield harness


async def publisher(server: BackendHarness) -> WsClient:
    token = await server.service.issue_service_token("crm")
    return await server.channel("/service", token)


def ticket(recipients: list[str], title: str = "Ticket #42 assigned to you") -> dict[str, object]:
    return {
        "kind": "ticket.assigned",
        "recipients": recipients,
        "title": title,
        "body": "Printer on fire",
        "url": "https://tickets.example/42",
    }


async def test_publish_notifies_listed_agents_and_inbox_members(server: BackendHarness) -> None:
    tokens = await server.seed(
        {"ann@x.org": ["Support"], "bob@x.org": ["Sales"], "cy@x.org": ["Sales"]}
    )
    ann, bob, cy = [await server.agent(tokens[e]) for e in ("ann@x.org", "bob@x.org", "cy@x.org")]
    crm = await publisher(server)
    reply = await crm.request({"type": "publish", "event": ticket(["ann@x.org", "inbox:Sales"])})
    assert reply == {"type": "ok", "id": reply["id"], "notifications": 3}
    for client in (ann, bob, cy):
        notification = (await client.push("notification"))["notification"]
        assert notification["kind"] == "ticket.assigned"
        assert notification["category"] == "ticket"
        assert notification["url"] == "https://tickets.example/42"


async def test_publish_is_acknowledged_only_after_it_is_stored(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    crm = await publisher(server)
    reply = await crm.request({"type": "publish", "event": ticket(["ann@x.org"])})
    assert reply["notifications"] == 1
    # A fresh session that never saw the push finds it in the store.
    ann = await server.agent(tokens["ann@x.org"], resume=False)
    history = await ann.request({"type": "history"})
    assert [n["title"] for n in history["items"]] == ["Ticket #42 assigned to you"]


async def test_repeated_idempotency_key_returns_first_result_and_stores_nothing(
    server: BackendHarness,
) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    crm = await publisher(server)
    frame = {"type": "publish", "event": ticket(["ann@x.org"]), "key": "evt-1"}
    first = await crm.request(dict(frame))
    second = await crm.request(dict(frame))
    assert first["notifications"] == second["notifications"] == 1
    ann = await server.agent(tokens["ann@x.org"], resume=False)
    assert ann.welcome["last_seq"] == 1  # type: ignore[attr-defined]


async def test_concurrent_publishes_with_one_key_store_once(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    crm = await publisher(server)
    replies = await asyncio.gather(
        *(
            crm.request({"type": "publish", "event": ticket(["ann@x.org"]), "key": "same"})
            for _ in range(20)
        )
    )
    assert {r["notifications"] for r in replies} == {1}
    ann = await server.agent(tokens["ann@x.org"], resume=False)
    assert ann.welcome["last_seq"] == 1  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("event", "code", "words"),
    [
        (ticket(["nobody@x.org"]), "not_found", "nobody@x.org"),
        (ticket(["inbox:Nope"]), "not_found", "Nope"),
        ({"kind": "ticket.assigned", "title": "x"}, "bad_request", "recipients"),
        ({"title": "x"}, "bad_request", "kind"),
        ({"kind": "Not A Kind", "recipients": ["a"], "title": "x"}, "bad_request", "kind"),
        (
            {
                "kind": "chat.message.created",
                "conversation": {"external_id": "z"},
                "author": {"kind": "visitor", "name": "V"},
                "text": "hi",
            },
            "not_found",
            "z",
        ),
        (
            {"kind": "chat.conversation.assigned", "recipients": ["a"], "title": "t"},
            "bad_request",
            "backend",
        ),
    ],
)
async def test_bad_events_get_a_clear_error_and_store_nothing(
    server: BackendHarness, event: dict[str, object], code: str, words: str
) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    crm = await publisher(server)
    reply = await crm.request({"type": "publish", "event": event})
    assert reply["type"] == "error" and reply["code"] == code, reply
    assert words in reply["message"]
    ann = await server.agent(tokens["ann@x.org"], resume=False)
    assert ann.welcome["last_seq"] == 0  # type: ignore[attr-defined]
    assert (await crm.request({"type": "publish", "event": ticket(["ann@x.org"])}))["type"] == "ok"


async def test_external_chat_is_routed_like_the_widget(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"], "bob@x.org": ["Support"]})
    ann = await server.agent(tokens["ann@x.org"])
    bob = await server.agent(tokens["bob@x.org"])
    crm = await publisher(server)
    created = await crm.request(
        {
            "type": "publish",
            "event": {
                "kind": "chat.conversation.created",
                "inbox": "Support",
                "conversation": {"external_id": "zen-1", "visitor_name": "Dana"},
                "text": "Hello?",
            },
        }
    )
    assert created["notifications"] == 2
    conversation = (await ann.push("notification"))["notification"]["conversation_id"]
    await bob.push("notification")
    bob_id = bob.welcome["agent"]["id"]  # type: ignore[attr-defined]
    await ann.request({"type": "assign", "conversation_id": conversation, "agent_id": bob_id})
    assert (await bob.push("notification"))["notification"]["kind"] == "chat.conversation.assigned"
    message = await crm.request(
        {
            "type": "publish",
            "event": {
                "kind": "chat.message.created",
                "conversation": {"external_id": "zen-1"},
                "author": {"kind": "visitor", "name": "Dana"},
                "text": "Still there?",
            },
        }
    )
    assert message["notifications"] == 1  # only the assignee
    assert (await bob.push("notification"))["notification"]["body"] == "Still there?"


async def test_service_channel_refuses_agent_tokens(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            f"{server.url}/service",
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Bearer {tokens['ann@x.org']}"},
        )
    assert refused.value.response.status_code == 401
