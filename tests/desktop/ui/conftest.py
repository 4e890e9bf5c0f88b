"""Shared builders for the view tests: notifications, messages and a fixed clock."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from backend.protocol import Author, Message, Notification

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


def build_notification(
    seq: int,
    *,
    category: str = "chat",
    title: str | None = None,
    body: str = "Hello, I need help with my order",
    conversation_id: str | None = None,
    read: bool = False,
    age: timedelta = timedelta(minutes=5),
    url: str | None = None,
) -> Notification:
    """A notification with sensible defaults; chat ones belong to conversation c<seq>."""
    kind = "chat.message.created" if category == "chat" else f"{category}.updated"
    if conversation_id is None and category == "chat":
        conversation_id = f"c{seq}"
    return Notification(
        id=f"n{seq}",
        seq=seq,
        kind=kind,
        category=category,
        title=title if title is not None else f"Visitor {seq} · Support",
        body=body,
        conversation_id=conversation_id,
        url=url,
        created_at=(NOW - age).isoformat(),
        read=read,
    )


def build_message(
    message_id: str,
    body: str,
    *,
    kind: str = "visitor",
    author_id: str | None = None,
    name: str = "Dana Smith",
    at: datetime = NOW,
) -> Message:
    """A transcript message."""
    return Message(
        id=message_id,
        author=Author(kind=kind, id=author_id, name=name),  # type: ignore[arg-type]
        body=body,
        created_at=at.isoformat(),
    )


@pytest.fixture
def clock() -> Callable[[], datetime]:
    """A clock frozen at NOW."""
    return lambda: NOW


@pytest.fixture
def make_notification() -> Callable[..., Notification]:
    """Build notifications: ``make_notification(seq, category=..., read=...)``."""
    return build_notification


@pytest.fixture
def make_message() -> Callable[..., Message]:
    """Build transcript messages: ``make_message(id, body, kind=..., author_id=...)``."""
    return build_message
