"""The /visitor and /auth channels: abuse limits, origins, reload, throttling."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from tests.support.backend import BackendHarness, in_process_backend


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[BackendHarness]:
    async with in_process_backend(
        tmp_path, visitor_messages_per_minute=3, visitor_origins=("https://shop.example",)
    ) as harness:
        yield harness


async def test_visitor_can_reattach_with_the_token_after_a_reload(server: BackendHarness) -> None:
    await server.seed({"ann@x.org": ["Support"]})
    first, started = await server.visitor_start("Support", "Dana", "Hello")
    await first.request({"type": "send", "text": "Anyone?", "client_msg_id": "v1"})
    await first.close()
    again = await server.channel("/visitor")
    attached = await again.request({"type": "attach", "token": started["token"]})
    assert attached["conversation"]["id"] == started["conversation"]["id"]
    assert [m["body"] for m in attached["conversation"]["messages"]] == ["Hello", "Anyone?"]


async def test_unknown_visitor_token_and_inbox_get_not_found(server: BackendHarness) -> None:
    client = await server.channel("/visitor")
    reply = await client.request({"type": "attach", "token": "dbvt_nope"})
    assert reply["code"] == "not_found"
    reply = await client.request({"type": "start", "inbox": "Nowhere", "name": "D", "text": "x"})
    assert reply["code"] == "not_found"
    reply = await client.request({"type": "send", "text": "x", "client_msg_id": "1"})
    assert reply["code"] == "bad_request" and "start" in reply["message"]


async def test_visitor_sending_too_fast_is_told_to_wait(server: BackendHarness) -> None:
    await server.seed({"ann@x.org": ["Support"]})
    visitor, _ = await server.visitor_start("Support", "Dana", "1")
    replies = [
        await visitor.request({"type": "send", "text": str(n), "client_msg_id": f"m{n}"})
        for n in range(4)
    ]
    assert [r["type"] for r in replies] == ["ok", "ok", "ok", "error"]
    assert replies[-1]["code"] == "rate_limited"
    assert "wait" in replies[-1]["message"]


async def test_visitor_retry_with_same_client_msg_id_stores_once(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    ann = await server.agent(tokens["ann@x.org"])
    visitor, _ = await server.visitor_start("Support", "Dana", "Hello")
    await ann.push("notification")
    first = await visitor.request({"type": "send", "text": "Again", "client_msg_id": "same"})
    second = await visitor.request({"type": "send", "text": "Again", "client_msg_id": "same"})
    assert first["message"]["id"] == second["message"]["id"]
    await ann.push("notification")
    history = await ann.request({"type": "history"})
    assert len(history["items"]) == 2


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [("https://shop.example", True), ("https://evil.example", False), (None, True)],
)
async def test_visitor_origin_must_be_allowed(
    server: BackendHarness, origin: str | None, allowed: bool
) -> None:
    kwargs = {"origin": origin} if origin else {}
    if allowed:
        client = await server.channel("/visitor", **kwargs)
        await client.close()
    else:
        with pytest.raises(InvalidStatus) as refused:
            await server.channel("/visitor", **kwargs)
        assert refused.value.response.status_code == 403


async def test_visitor_page_served_by_the_server_itself_is_allowed(server: BackendHarness) -> None:
    client = await server.channel("/visitor", origin=f"http://127.0.0.1:{server.port}")
    await client.close()


async def test_wrong_password_and_unknown_email_get_the_same_answer(server: BackendHarness) -> None:
    await server.seed({"ann@x.org": ["Support"]}, password="right")
    auth = await server.channel("/auth")
    timings = {}
    replies = {}
    for email in ("ann@x.org", "nobody@x.org"):
        started = time.perf_counter()
        replies[email] = await auth.request({"type": "login", "email": email, "password": "wrong"})
        timings[email] = time.perf_counter() - started
    wrong, unknown = replies["ann@x.org"], replies["nobody@x.org"]
    assert (wrong["code"], wrong["message"]) == (unknown["code"], unknown["message"])
    assert wrong["code"] == "unauthorized"
    # Both run the password hash; neither is an instant answer.
    assert min(timings.values()) > 0.25 * max(timings.values())


async def test_eleventh_failed_login_for_one_email_is_rate_limited(server: BackendHarness) -> None:
    await server.seed({"ann@x.org": ["Support"]}, password="right")
    auth = await server.channel("/auth")
    for _ in range(10):
        reply = await auth.request({"type": "login", "email": "ann@x.org", "password": "nope"})
        assert reply["code"] == "unauthorized"
    reply = await auth.request({"type": "login", "email": "ann@x.org", "password": "right"})
    assert reply["code"] == "rate_limited"
    assert "try again" in reply["message"]


async def test_too_many_new_conversations_say_when_to_try_again(
    server: BackendHarness,
) -> None:
    await server.seed({"ann@x.org": ["Support"]})
    visitor = await server.channel("/visitor")
    for n in range(10):  # the default: 10 conversations per address in 10 minutes
        reply = await visitor.request(
            {"type": "start", "inbox": "Support", "name": f"V{n}", "text": "hi"}
        )
        assert reply["type"] == "ok", reply
        visitor = await server.channel("/visitor")
    refused = await visitor.request(
        {"type": "start", "inbox": "Support", "name": "V", "text": "hi"}
    )
    assert refused["code"] == "rate_limited"
    assert refused["message"] == (
        "too many new conversations from your address; try again in 10 minutes"
    )
