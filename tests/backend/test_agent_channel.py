"""The /agent channel against a real server on a free port."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from tests.support.backend import SUBPROTOCOL, BackendHarness, in_process_backend

MARKUP = "<script>alert('x')</script> <img src=x onerror=alert(1)> &amp; <b>bold</b> \U0001f600"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[BackendHarness]:
    async with in_process_backend(tmp_path) as harness:
        yield harness


async def publish_tickets(server: BackendHarness, recipient: str, count: int) -> None:
    """Store ``count`` ticket notifications for ``recipient`` through the service."""
    from backend import protocol

    for n in range(count):
        event = protocol.GenericEvent(
            kind="ticket.assigned", recipients=[recipient], title=f"Ticket {n}", body="b"
        )
        await server.service.publish(1, event, None)


async def test_welcome_reports_last_seq_and_unread_counts(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    await publish_tickets(server, "ann@x.org", 3)
    client = await server.agent(tokens["ann@x.org"], resume=False)
    welcome = client.welcome  # type: ignore[attr-defined]
    assert welcome["agent"]["email"] == "ann@x.org"
    assert welcome["last_seq"] == 3
    assert welcome["unread"] == {"total": 3, "chat": 0, "ticket": 3}
    assert welcome["server"]["version"]


async def test_nothing_is_pushed_before_resume(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    client = await server.agent(tokens["ann@x.org"], resume=False)
    await publish_tickets(server, "ann@x.org", 2)
    reply = await client.request({"type": "history", "limit": 10})
    assert len(reply["items"]) == 2
    assert client.no_pending_pushes("notification")


async def test_resume_replays_what_was_missed_in_order_then_live(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    await publish_tickets(server, "ann@x.org", 5)
    client = await server.agent(tokens["ann@x.org"], resume=False)
    reply = await client.request({"type": "resume", "after_seq": 2})
    replayed = await client.notifications(3)
    assert [n["seq"] for n in replayed] == [3, 4, 5]
    assert reply == {"type": "ok", "id": reply["id"], "last_seq": 5, "truncated": False}
    await publish_tickets(server, "ann@x.org", 1)
    (live,) = await client.notifications(1)
    assert live["seq"] == 6


async def test_resume_beyond_limit_sends_newest_and_says_truncated(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    await publish_tickets(server, "ann@x.org", 8)
    client = await server.agent(tokens["ann@x.org"], resume=False)
    reply = await client.request({"type": "resume", "after_seq": 0, "limit": 3})
    assert [n["seq"] for n in await client.notifications(3)] == [6, 7, 8]
    assert reply["truncated"] is True and reply["last_seq"] == 8


async def test_notification_stored_during_replay_arrives_once_after_it(
    server: BackendHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    await publish_tickets(server, "ann@x.org", 3)
    store = server.service.store
    original = store.notifications_after
    delivered = asyncio.Event()
    gateway_deliver = server.backend.gateway.deliver  # type: ignore[union-attr]

    def spy(event: object) -> None:
        gateway_deliver(event)  # type: ignore[arg-type]
        delivered.set()

    monkeypatch.setattr(server.backend.gateway, "deliver", spy)  # type: ignore[union-attr]
    await server.backend.bus.start(spy)  # type: ignore[union-attr]

    async def replay_with_a_new_event(*args: object, **kwargs: object) -> object:
        # While the replay is being read, one more notification is committed and
        # reaches the gateway; it must come after the replay, exactly once.
        result = await original(*args, **kwargs)
        await publish_tickets(server, "ann@x.org", 1)
        await delivered.wait()
        return result

    monkeypatch.setattr(store, "notifications_after", replay_with_a_new_event)
    client = await server.agent(tokens["ann@x.org"], resume=False)
    await client.request({"type": "resume", "after_seq": 0})
    seqs = [n["seq"] for n in await client.notifications(4)]
    assert seqs == [1, 2, 3, 4]
    kinds = [f["type"] for f in client.frames if f["type"] in ("ok", "notification")]
    assert kinds == ["notification"] * 3 + ["ok", "notification"]


async def test_concurrent_publishes_during_resume_give_one_gap_free_stream(
    server: BackendHarness,
) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    await publish_tickets(server, "ann@x.org", 20)
    client = await server.agent(tokens["ann@x.org"], resume=False)
    more = asyncio.create_task(publish_tickets(server, "ann@x.org", 200))
    await client.request({"type": "resume", "after_seq": 0})
    await more
    seqs = [n["seq"] for n in await client.notifications(220)]
    assert seqs == list(range(1, 221))


async def test_read_on_one_session_reaches_every_session_of_the_agent(
    server: BackendHarness,
) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    laptop = await server.agent(tokens["ann@x.org"])
    phone = await server.agent(tokens["ann@x.org"])
    await publish_tickets(server, "ann@x.org", 2)
    first, second = await laptop.notifications(2)
    assert second["seq"] == 2
    reply = await laptop.request({"type": "mark_read", "ids": [first["id"]]})
    assert reply["unread"] == {"total": 1, "chat": 0, "ticket": 1}
    read = await phone.push("read")
    assert read["ids"] == [first["id"]]
    unread = await phone.push("unread")
    assert unread["unread"] == {"total": 1, "chat": 0, "ticket": 1}
    reply = await phone.request({"type": "mark_all_read", "category": "ticket"})
    assert reply["unread"] == {"total": 0, "chat": 0}
    # The laptop is told of both reads, its own included.
    assert (await laptop.push("read"))["ids"] == [first["id"]]
    assert (await laptop.push("read"))["ids"] == [second["id"]]


async def test_new_notification_carries_the_counts_after_it(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    client = await server.agent(tokens["ann@x.org"])
    await server.visitor_start("Support", "Dana", "Hello")
    push = await client.push("notification")
    assert push["unread"] == {"total": 1, "chat": 1}


@pytest.mark.parametrize(
    ("raw", "request_id", "words"),
    [
        (b'{"type":"resume","id":1,"after_seq":0}', None, "binary frames"),
        ("{not json", None, "not valid JSON"),
        ("[1, 2]", None, "object"),
        ('{"id": 7}', 7, "type"),
        ('{"type": "launch", "id": "x"}', "x", "unknown frame type"),
        ('{"type": "resume", "id": 3}', 3, "after_seq"),
        ('{"type": "resume", "id": 4, "after_seq": "ten"}', 4, "int"),
        ('{"type": "history", "id": 5, "limit": 100000}', 5, "200"),
        ('{"type": "mark_read", "id": 6}', 6, "ids"),
        (
            '{"type": "reply", "id": 8, "conversation_id": "c", "body": "", "client_msg_id": "a"}',
            8,
            "length",
        ),
    ],
)
async def test_bad_frame_gets_bad_request_and_the_connection_stays_usable(
    server: BackendHarness, raw: str | bytes, request_id: object, words: str
) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    client = await server.agent(tokens["ann@x.org"])
    await client.send_raw(raw)
    error = await client.push("error")
    assert error["code"] == "bad_request"
    assert error["id"] == request_id
    assert words.lower() in error["message"].lower()
    reply = await client.request({"type": "history"})
    assert reply["type"] == "ok"


async def test_unknown_ids_get_not_found(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"], "bob@x.org": ["Support"]})
    await publish_tickets(server, "bob@x.org", 1)
    bob = await server.agent(tokens["bob@x.org"], resume=False)
    bob_notification = (await bob.request({"type": "history"}))["items"][0]["id"]
    ann = await server.agent(tokens["ann@x.org"])
    for frame in (
        {"type": "mark_read", "ids": [bob_notification]},
        {"type": "mark_read", "ids": ["n_nonsense"]},
        {"type": "mark_read", "conversation_id": "c_missing"},
        {"type": "conversation", "conversation_id": "c_missing"},
        {"type": "reply", "conversation_id": "c_missing", "body": "hi", "client_msg_id": "1"},
    ):
        reply = await ann.request(frame)
        assert reply["type"] == "error" and reply["code"] == "not_found", (frame, reply)
    assert (await bob.request({"type": "history"}))["items"][0]["read"] is False


async def test_oversize_message_closes_with_1009(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    client = await server.agent(tokens["ann@x.org"])
    await client.send_raw(json.dumps({"type": "history", "id": 1, "pad": "x" * 70_000}))
    await asyncio.wait_for(client.closed.wait(), 10)
    assert client.ws.close_code == 1009


async def test_agent_never_sees_another_inboxs_notifications_or_conversations(
    server: BackendHarness,
) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"], "bob@x.org": ["Sales"]})
    ann = await server.agent(tokens["ann@x.org"])
    bob = await server.agent(tokens["bob@x.org"])
    _, started = await server.visitor_start("Support", "Dana", "Where is my order?")
    conversation = started["conversation"]["id"]
    assert (await ann.push("notification"))["notification"]["conversation_id"] == conversation
    await server.visitor_start("Sales", "Eve", "Pricing?")
    bob_first = (await bob.push("notification"))["notification"]
    assert bob_first["title"] == "Eve", "Bob got Support's notification first"
    for frame in (
        {"type": "conversation", "conversation_id": conversation},
        {"type": "reply", "conversation_id": conversation, "body": "hi", "client_msg_id": "1"},
        {"type": "mark_read", "conversation_id": conversation},
        {"type": "assign", "conversation_id": conversation, "agent_id": bob.welcome["agent"]["id"]},  # type: ignore[attr-defined]
    ):
        reply = await bob.request(frame)
        assert reply["code"] == "not_found", (frame, reply)
    history = await bob.request({"type": "history"})
    assert [n["title"] for n in history["items"]] == ["Eve"]


async def test_visitor_markup_is_stored_and_returned_byte_identical(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    ann = await server.agent(tokens["ann@x.org"])
    _, started = await server.visitor_start("Support", MARKUP, MARKUP)
    notification = (await ann.push("notification"))["notification"]
    assert notification["title"] == MARKUP and notification["body"] == MARKUP
    conversation = await ann.request(
        {"type": "conversation", "conversation_id": notification["conversation_id"]}
    )
    message = conversation["conversation"]["messages"][0]
    assert message["body"] == MARKUP and message["author"]["name"] == MARKUP
    assert conversation["conversation"]["visitor"]["name"] == MARKUP
    history = await ann.request({"type": "history"})
    assert history["items"][0]["body"] == MARKUP
    assert started["conversation"]["messages"][0]["body"] == MARKUP


async def test_reply_reaches_visitor_and_retry_stores_nothing_new(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    ann = await server.agent(tokens["ann@x.org"])
    visitor, started = await server.visitor_start("Support", "Dana", "Hi")
    conversation = started["conversation"]["id"]
    await ann.request({"type": "conversation", "conversation_id": conversation})
    frame = {
        "type": "reply",
        "conversation_id": conversation,
        "body": "On it!",
        "client_msg_id": "k1",
    }
    first = await ann.request(dict(frame))
    again = await ann.request(dict(frame))
    assert first["message"] == again["message"]
    pushed = await visitor.push("message")
    assert pushed["message"]["body"] == "On it!"
    assert pushed["message"]["author"]["kind"] == "agent"
    transcript = await ann.request({"type": "conversation", "conversation_id": conversation})
    assert [m["body"] for m in transcript["conversation"]["messages"]] == ["Hi", "On it!"]


async def test_assign_notifies_the_assignee_unless_they_assigned_themselves(
    server: BackendHarness,
) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"], "bob@x.org": ["Support"]})
    ann = await server.agent(tokens["ann@x.org"])
    bob = await server.agent(tokens["bob@x.org"])
    _, started = await server.visitor_start("Support", "Dana", "Hi")
    conversation = started["conversation"]["id"]
    await ann.push("notification")
    await bob.push("notification")
    bob_id = bob.welcome["agent"]["id"]  # type: ignore[attr-defined]
    ann_id = ann.welcome["agent"]["id"]  # type: ignore[attr-defined]
    assert (
        await ann.request({"type": "assign", "conversation_id": conversation, "agent_id": ann_id})
    )["type"] == "ok"
    assert (
        await ann.request({"type": "assign", "conversation_id": conversation, "agent_id": bob_id})
    )["type"] == "ok"
    assigned = (await bob.push("notification"))["notification"]
    assert assigned["kind"] == "chat.conversation.assigned"
    assert assigned["conversation_id"] == conversation
    # Ann's self-assignment notified nobody; her next notification is the visitor's.
    await server.visitor_start("Support", "Zed", "Another chat")
    assert (await ann.push("notification"))["notification"]["title"] == "Zed"


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"Authorization": "Bearer dbat_unknown"}, 401),
        ({"Authorization": "Basic abc"}, 401),
    ],
)
async def test_agent_handshake_without_a_valid_token_is_refused(
    server: BackendHarness, headers: dict[str, str], status: int
) -> None:
    with pytest.raises(InvalidStatus) as refused:
        await connect(f"{server.url}/agent", subprotocols=[SUBPROTOCOL], additional_headers=headers)  # type: ignore[list-item]
    assert refused.value.response.status_code == status


async def test_service_token_is_not_an_agent_token(server: BackendHarness) -> None:
    token = await server.service.issue_service_token("crm")
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            f"{server.url}/agent",
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Bearer {token}"},
        )
    assert refused.value.response.status_code == 401


async def test_handshake_without_the_subprotocol_gets_400(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    with pytest.raises(InvalidStatus) as refused:
        await connect(
            f"{server.url}/agent",
            additional_headers={"Authorization": f"Bearer {tokens['ann@x.org']}"},
        )
    assert refused.value.response.status_code == 400


async def test_revoked_token_is_refused_and_its_sessions_closed_with_4001(
    server: BackendHarness,
) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    client = await server.agent(tokens["ann@x.org"])
    await server.service.revoke_token(tokens["ann@x.org"])
    await asyncio.wait_for(client.closed.wait(), 10)
    assert client.ws.close_code == 4001
    with pytest.raises(InvalidStatus):
        await server.agent(tokens["ann@x.org"])


async def test_logout_on_auth_revokes_the_token(server: BackendHarness) -> None:
    await server.seed({"ann@x.org": ["Support"]}, password="correct horse")
    auth = await server.channel("/auth")
    login = await auth.request(
        {"type": "login", "email": "ann@x.org", "password": "correct horse", "device": "laptop"}
    )
    assert login["type"] == "ok" and login["token"].startswith("dbat_")
    assert login["agent"]["email"] == "ann@x.org"
    client = await server.agent(login["token"])
    assert (await auth.request({"type": "logout", "token": login["token"]}))["type"] == "ok"
    await asyncio.wait_for(client.closed.wait(), 10)
    assert client.ws.close_code == 4001


async def test_closed_connection_does_not_disturb_others(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"], "bob@x.org": ["Support"]})
    ann = await server.agent(tokens["ann@x.org"])
    bob = await server.agent(tokens["bob@x.org"])
    ann.ws.transport.abort()
    await server.visitor_start("Support", "Dana", "Hi")
    assert (await bob.push("notification"))["notification"]["title"] == "Dana"
    with pytest.raises(ConnectionClosed):
        await ann.ws.send("{}")
