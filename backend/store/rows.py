"""Rows to protocol objects: the shapes both stores read their results in."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgspec

from backend import ids, protocol
from backend.store.base import Agent, ClientVersion, ConversationFacts, Inbox, NewMessage

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


def agent(row: Sequence[Any], inboxes: tuple[str, ...], *, with_password: bool = True) -> Agent:
    """An agent from a row of :data:`backend.store.lifecycle.AGENT_COLUMNS` (its password
    hash left out unless ``with_password``: only a sign-in needs it)."""
    password_hash = row[4] if with_password else None
    return Agent(row[0], row[1], row[2], row[3], inboxes, password_hash, bool(row[5]))


FACTS_COLUMNS = {
    column: (
        "SELECT c.id, c.public_id, i.id, i.public_id, i.name, "  # noqa: S608 - our literals
        "c.visitor_name, c.status, a.id, a.public_id, a.email, a.name, c.waiting_since "
        "FROM conversations c JOIN inboxes i ON i.id = c.inbox_id "
        f"LEFT JOIN agents a ON a.id = c.assignee_id WHERE {column} = ?"
    )
    for column in ("c.id", "c.public_id", "c.visitor_token_hash", "c.external_id")
}
"""By the column a conversation is found by: the query :func:`conversation_facts`
reads (``?`` placeholder; PostgreSQL numbers it)."""


def conversation_facts(row: Sequence[Any], inbox_members: frozenset[int]) -> ConversationFacts:
    """A conversation's facts from a row of :data:`FACTS_COLUMNS` and its inbox's members."""
    assignee = None if row[7] is None else Agent(row[7], row[8], row[9], row[10])
    return ConversationFacts(
        id=row[0],
        public_id=row[1],
        inbox=Inbox(row[2], row[3], row[4]),
        visitor_name=row[5],
        status=row[6],
        assignee=assignee,
        inbox_members=inbox_members,
        waiting_since=row[11],
    )


def new_message(msg: NewMessage) -> protocol.Message:
    """The message a commit just stored, as the wire shows it."""
    return protocol.Message(
        id=msg.public_id,
        author=protocol.Author(
            kind=msg.author_kind, id=msg.author_agent_public_id, name=msg.author_name
        ),
        body=msg.body,
        created_at=msg.created_at,
    )
