"""Rows to protocol objects: the shapes both stores read their results in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from backend import ids, protocol
from backend.store.base import ClientVersion

_data_decoder = msgspec.json.Decoder(dict[str, Any])

NOTIFICATION_COLUMNS = """
    n.seq, n.read, e.kind, e.category, e.title, e.body, c.public_id, e.url, e.data,
    e.created_at
    FROM notifications n JOIN events e ON e.id = n.event_id
    LEFT JOIN conversations c ON c.id = e.conversation_id
"""
"""The select list and joins that :func:`notification` reads, up to the WHERE."""


def notification(agent_public_id: str, row: Sequence[Any]) -> protocol.Notification:
    """One agent's notification from a row selected with :data:`NOTIFICATION_COLUMNS`."""
    seq, read, kind, category, title, body, conversation, url, data, created_at = row
    return protocol.Notification(
        id=ids.notification_id(agent_public_id, seq),
        seq=seq,
        kind=kind,
        category=category,
        title=title,
        body=body,
        conversation_id=conversation,
        url=url,
        created_at=created_at,
        read=bool(read),
        data=_data_decoder.decode(data) if data != "{}" else {},
    )


def message(row: Sequence[Any]) -> protocol.Message:
    """A message from (public id, author kind, agent public id, name, body, created_at)."""
    public_id, kind, agent_public_id, name, body, created_at = row
    return protocol.Message(
        id=public_id,
        author=protocol.Author(kind=kind, id=agent_public_id, name=name),
        body=body,
        created_at=created_at,
    )


def group_client_versions(rows: Sequence[Sequence[Any]]) -> dict[int, list[ClientVersion]]:
    """Rows of (agent_id, version, os, seen_at), ordered by agent, into a list per agent."""
    grouped: dict[int, list[ClientVersion]] = {}
    for agent_id, version, os, seen_at in rows:
        grouped.setdefault(agent_id, []).append(ClientVersion(version, os, seen_at))
    return grouped
