"""Builders of v1.1 protocol objects shared by the desktop tests (waiting visitors)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from backend.protocol import AgentRef, Author, InboxRef, Message, Notification, QueueEntry, Visitor

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)
"""The queue factories' epoch: ``since_s`` counts seconds from it."""


def wire_time(since_s: float) -> str:
    return (T0 + timedelta(seconds=since_s)).isoformat()


def queue_entry(
    conversation_id: str,
    since_s: float | None,
    *,
    assignee: str | None = None,
    visitor: str | None = None,
    inbox: str = "Support",
    text: str = "Hello, is anyone there?",
) -> QueueEntry:
    """A ``queue``/``queue_changed`` conversation; ``since_s`` None: not waiting."""
    return QueueEntry(
        id=conversation_id,
        inbox=InboxRef(id=f"i_{inbox.lower()}", name=inbox),
        visitor=Visitor(name=visitor or f"Visitor {conversation_id}"),
        assignee=AgentRef(id=f"a_{assignee}", name=assignee.title()) if assignee else None,
        waiting_since=None if since_s is None else wire_time(since_s),
        last_message=Message(
            id=f"m_{conversation_id}",
            author=Author(kind="visitor", id=None, name=visitor or "Visitor"),
            body=text,
            created_at=wire_time(since_s or 0),
        ),
    )


def escalation_notification(
    seq: int,
    conversation_id: str,
    since_s: float,
    step: int,
    *,
    waited_s: int = 300,
    visitor: str = "Dana Smith",
    **data: Any,
) -> Notification:
    """A ``chat.conversation.waiting`` notification for step ``step`` of a wait."""
    return Notification(
        id=f"n_{seq}",
        seq=seq,
        kind="chat.conversation.waiting",
        category="chat",
        title=f"{visitor} is waiting",
        body=f"Nobody has answered {visitor} yet.",
        conversation_id=conversation_id,
        url=None,
        created_at=wire_time(since_s + waited_s),
        read=False,
        data={
            "inbox": "Support",
            "visitor_name": visitor,
            "waiting_since": wire_time(since_s),
            "step": step,
            "waited_s": waited_s,
            **data,
        },
    )
