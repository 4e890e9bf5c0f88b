"""Small builders of protocol objects for the core tests."""

from __future__ import annotations

from typing import Any

from backend.protocol import Notification


def notification(
    seq: int,
    *,
    conversation_id: str | None = "c_1",
    kind: str = "chat.message.created",
    title: str = "Dana Smith",
    body: str = "Hi, my order has not arrived",
    read: bool = False,
    data: dict[str, Any] | None = None,
) -> Notification:
    """A notification with the given seq; everything else has a plain default."""
    return Notification(
        id=f"n_{seq}",
        seq=seq,
        kind=kind,
        category=kind.split(".", 1)[0],
        title=title,
        body=body,
        conversation_id=conversation_id,
        url=None,
        created_at="2026-11-25T10:15:03.120Z",
        read=read,
        data={"inbox": {"id": "i_1", "name": "Support"}} if data is None else data,
    )
