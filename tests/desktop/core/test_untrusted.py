"""core.untrusted: the desktop shows server text only after cleaning it itself."""

from __future__ import annotations

from core_factories import notification

from backend.protocol import (
    AgentRef,
    Author,
    Conversation,
    ConversationOk,
    InboxRef,
    Message,
    NotificationPush,
    Visitor,
)
from desktop_agent.core.untrusted import shown

HOSTILE_NAME = "\u202eDana\x00\x1b[2J Smith\r\n\tevil\u200b"
HOSTILE_BODY = "Hi\x07 there\r\nline two\u2066\tend\x9b"


def test_a_notifications_title_becomes_one_line_and_its_body_keeps_lines() -> None:
    push = NotificationPush(
        notification=notification(
            1,
            title=HOSTILE_NAME,
            body=HOSTILE_BODY,
            data={"visitor_name": HOSTILE_NAME, "inbox": {"name": "Sup\u202eport"}},
        ),
        unread={"total": 1, "chat": 1},
    )
    clean = shown(push).notification
    assert clean.title == "Dana[2J Smith evil"
    assert clean.body == "Hi there\nline two\tend"
    assert clean.data == {"visitor_name": "Dana[2J Smith evil", "inbox": {"name": "Support"}}
    assert (clean.id, clean.seq, clean.created_at) == ("n_1", 1, "2026-11-25T10:15:03.120Z")


def test_every_name_and_body_of_a_conversation_is_cleaned() -> None:
    message = Message(
        id="m_1",
        author=Author(kind="visitor", id=None, name=HOSTILE_NAME),
        body=HOSTILE_BODY,
        created_at="2026-11-25T10:15:03.120Z",
    )
    reply = ConversationOk(
        id=7,
        conversation=Conversation(
            id="c_1",
            inbox=InboxRef(id="i_1", name="Support\n"),
            status="open",
            assignee=AgentRef(id="a_1", name="Ada\u202e"),
            visitor=Visitor(name=HOSTILE_NAME),
            messages=[message, message],
        ),
    )
    clean = shown(reply).conversation
    assert clean.visitor.name == "Dana[2J Smith evil"
    assert clean.inbox.name == "Support" and clean.assignee is not None
    assert clean.assignee.name == "Ada"
    assert [m.author.name for m in clean.messages] == ["Dana[2J Smith evil"] * 2
    assert [m.body for m in clean.messages] == ["Hi there\nline two\tend"] * 2


def test_clean_frames_come_back_as_the_same_object() -> None:
    push = NotificationPush(notification=notification(1), unread={"total": 1, "chat": 1})
    assert shown(push) is push
