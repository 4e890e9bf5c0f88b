"""Visitor names and messages lose control, bidi-override and stray zero-width
characters at input (docs/protocol.md, "Untrusted text"): what is stored, pushed and
shown is the cleaned text, on every way in."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend import protocol
from backend.protocol import clean_text
from tests.support.backend import BackendHarness, in_process_backend

REMOVED = (
    [chr(c) for c in range(0x20) if c not in (0x09, 0x0A)]
    + [chr(c) for c in range(0x7F, 0xA0)]
    + [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))]
    + ["\u200b", "\u2060", "\ufeff"]
)
HOSTILE_NAME = "\u202eDana\x00 \x1b[2JSmith\u2066\u200b\r\nevil\t\x9b"
HOSTILE_TEXT = "Hi\x00 there\x1b]0;pwned\x07\r\nline two\u2028line three\u202egnp.exe\tend\ufeff"
CLEAN_NAME = "Dana [2JSmith evil"
CLEAN_TEXT = "Hi there]0;pwned\nline two\nline threegnp.exe\tend"


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[BackendHarness]:
    async with in_process_backend(tmp_path) as harness:
        yield harness


def test_names_become_one_line_and_messages_keep_their_lines() -> None:
    assert clean_text(HOSTILE_NAME, single_line=True) == CLEAN_NAME
    assert clean_text(HOSTILE_TEXT, single_line=False) == CLEAN_TEXT


@pytest.mark.parametrize(
    "text",
    [
        # ZWJ in an emoji sequence, ZWNJ in Persian
        "👩\u200d💻 and \u0645\u06cc\u200c\u062e\u0648\u0627\u0647\u0645",
        "\u05e9\u05dc\u05d5\u05dd \u200fRTL mark kept\u200e",
        "Zoë, Ünïcode, 中文, emoji 🔔, NBSP\u00a0kept",
        "<b>markup is text</b> &amp; stays as it is",
    ],
)
def test_legitimate_text_is_kept_as_it_is(text: str) -> None:
    assert clean_text(text, single_line=False) == text


@given(st.text())
def test_cleaned_text_holds_nothing_removed_and_cleaning_twice_changes_nothing(
    text: str,
) -> None:
    for single_line in (True, False):
        cleaned = clean_text(text, single_line=single_line)
        assert not any(c in cleaned for c in REMOVED)
        assert "\r" not in cleaned and "\u2028" not in cleaned
        assert clean_text(cleaned, single_line=single_line) == cleaned
        if single_line:
            assert "\n" not in cleaned and "\t" not in cleaned
            assert cleaned == cleaned.strip()


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "start", "id": 1, "inbox": "Support", "name": "\u202e\x00 \t", "text": "hi"},
        {"type": "start", "id": 1, "inbox": "Support", "name": "Ann", "text": "\x00\u200b\x1b"},
        {"type": "send", "id": 1, "text": "\u2066\u2069", "client_msg_id": "a"},
    ],
)
def test_text_with_nothing_visible_left_is_bad_request(frame: dict[str, object]) -> None:
    import json

    with pytest.raises(protocol.ProtocolError) as refused:
        protocol.visitor_decoder.decode(json.dumps(frame))
    assert refused.value.code == "bad_request"
    assert "visible text" in refused.value.message
    assert refused.value.request_id == 1


async def test_the_widget_channel_stores_and_pushes_clean_names_and_messages(
    server: BackendHarness,
) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    ann = await server.agent(tokens["ann@x.org"])
    visitor, started = await server.visitor_start("Support", HOSTILE_NAME, HOSTILE_TEXT)
    assert started["conversation"]["messages"][0]["body"] == CLEAN_TEXT
    assert started["conversation"]["messages"][0]["author"]["name"] == CLEAN_NAME
    pushed = (await ann.push("notification"))["notification"]
    assert (pushed["title"], pushed["body"]) == (CLEAN_NAME, CLEAN_TEXT)
    assert pushed["data"]["visitor_name"] == CLEAN_NAME
    sent = await visitor.request({"type": "send", "text": HOSTILE_TEXT, "client_msg_id": "1"})
    assert sent["message"]["body"] == CLEAN_TEXT
    conversation = (
        await ann.request({"type": "conversation", "conversation_id": pushed["conversation_id"]})
    )["conversation"]
    assert conversation["visitor"]["name"] == CLEAN_NAME
    assert [m["body"] for m in conversation["messages"]] == [CLEAN_TEXT, CLEAN_TEXT]
    reply = await ann.request(
        {
            "type": "reply",
            "conversation_id": pushed["conversation_id"],
            "body": HOSTILE_TEXT,
            "client_msg_id": "r1",
        }
    )
    assert reply["message"]["body"] == CLEAN_TEXT


async def test_chat_events_from_integrations_are_cleaned_too(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    ann = await server.agent(tokens["ann@x.org"])
    crm = await server.channel("/service", await server.service.issue_service_token("crm"))
    created = {
        "kind": "chat.conversation.created",
        "inbox": "Support",
        "conversation": {"external_id": "x1", "visitor_name": HOSTILE_NAME},
        "text": HOSTILE_TEXT,
    }
    assert (await crm.request({"type": "publish", "event": created}))["type"] == "ok"
    first = (await ann.push("notification"))["notification"]
    assert (first["title"], first["body"]) == (CLEAN_NAME, CLEAN_TEXT)
    message = {
        "kind": "chat.message.created",
        "conversation": {"external_id": "x1"},
        "author": {"kind": "visitor", "name": HOSTILE_NAME},
        "text": HOSTILE_TEXT,
    }
    assert (await crm.request({"type": "publish", "event": message}))["type"] == "ok"
    second = (await ann.push("notification"))["notification"]
    assert (second["title"], second["body"]) == (CLEAN_NAME, CLEAN_TEXT)
    ticket = {
        "kind": "ticket.assigned",
        "recipients": ["ann@x.org"],
        "title": HOSTILE_NAME,
        "body": HOSTILE_TEXT,
    }
    assert (await crm.request({"type": "publish", "event": ticket}))["type"] == "ok"
    third = (await ann.push("notification"))["notification"]
    assert (third["title"], third["body"]) == (CLEAN_NAME, CLEAN_TEXT)
