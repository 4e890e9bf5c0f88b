"""Queries both stores build the same way, written once with ``?`` placeholders
(SQLite's); the PostgreSQL store numbers them with :func:`lifecycle.numbered`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from backend.store.base import NewConversation, NewMessage
from backend.store.common import now_iso
from backend.store.lifecycle import AGENT_COLUMNS
from backend.store.rows import NOTIFICATION_COLUMNS


def history(
    agent_id: int, before_seq: int | None, limit: int, category: str | None, unread_only: bool
) -> tuple[str, list[Any]]:
    """One page of an agent's notifications, newest first, one more than ``limit`` (to
    tell whether there are older ones): the SQL and its parameters."""
    clauses = ["n.agent_id = ?"]
    params: list[Any] = [agent_id]
    if before_seq is not None:
        clauses.append("n.seq < ?")
        params.append(before_seq)
    if category is not None:
        clauses.append("n.category = ?")
        params.append(category)
    if unread_only:
        clauses.append("n.read = 0")
    params.append(limit + 1)
    sql = f"SELECT {NOTIFICATION_COLUMNS} WHERE {' AND '.join(clauses)} ORDER BY n.seq DESC LIMIT ?"
    return sql, params


NOTIFICATIONS_AFTER = (
    f"SELECT {NOTIFICATION_COLUMNS} WHERE n.agent_id = ? AND n.seq > ? ORDER BY n.seq DESC LIMIT ?"
)
"""An agent's notifications after a seq, newest first (agent id, after seq, limit + 1:
the newest ``limit`` of them, and whether there were more)."""

MARK_READ = "UPDATE notifications SET read = 1 WHERE agent_id = ? AND read = 0"
"""Marks an agent's unread notifications read; a mark-read appends its condition and
``RETURNING seq, category``."""


def unread_after_read(counts: dict[str, int], categories: Iterable[str]) -> dict[str, int]:
    """Unread counts by category once notifications of ``categories`` (one entry per
    notification) were marked read; categories left at 0 are dropped."""
    after = dict(counts)
    for category in categories:
        after[category] = after.get(category, 0) - 1
    return {category: n for category, n in after.items() if n > 0}


CLIENT_VERSIONS_SINCE = (
    "SELECT agent_id, version, os, seen_at FROM client_versions "
    "WHERE seen_at >= ? ORDER BY agent_id, seen_at DESC, version, os"
)
"""The app versions seen since a time, for :func:`rows.group_client_versions`."""


# -- look-ups and writes both stores make with the same SQL ----------------------------
INBOX_BY_NAME = "SELECT id, public_id, name FROM inboxes WHERE name = ?"
"""An :class:`~backend.store.base.Inbox` by name."""

ALL_AGENTS = f"SELECT {AGENT_COLUMNS} FROM agents ORDER BY email"  # noqa: S608 - constant
ALL_MEMBERSHIPS = (
    "SELECT m.agent_id, i.name FROM inbox_members m "
    "JOIN inboxes i ON i.id = m.inbox_id ORDER BY i.name"
)
"""(agent id, inbox name) of every membership, by inbox name."""
AGENT_INBOX_NAMES = (
    "SELECT i.name FROM inbox_members m JOIN inboxes i ON i.id = m.inbox_id "
    "WHERE m.agent_id = ? ORDER BY i.name"
)
AGENT_INBOX_IDS = "SELECT inbox_id FROM inbox_members WHERE agent_id = ?"


def agent_where(column: str) -> str:
    """An agent by ``column`` (one of the store's own column names, never input)."""
    return f"SELECT {AGENT_COLUMNS} FROM agents WHERE {column} = ?"  # noqa: S608


INSERT_TOKEN = (
    "INSERT INTO tokens (hash, kind, agent_id, name, device, created_at) "  # noqa: S105 - SQL
    "VALUES (?, ?, ?, ?, ?, ?)"
)
LIVE_TOKEN = (
    "SELECT id, hash, kind, agent_id, name FROM tokens WHERE hash = ? "  # noqa: S105 - SQL
    "AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?)"
)
"""A :class:`~backend.store.base.Token` by hash, unless revoked or expired (hash, now)."""
REVOKED_SINCE = "SELECT hash, revoked_at FROM tokens WHERE revoked_at > ? ORDER BY revoked_at"

DROP_EXPIRED_NONCES = "DELETE FROM sso_nonces WHERE expires_at < ?"
CLAIM_NONCE = (
    "INSERT INTO sso_nonces (nonce_hash, expires_at) VALUES (?, ?) "
    "ON CONFLICT (nonce_hash) DO NOTHING"
)

_MESSAGE = (
    "SELECT m.public_id, m.author_kind, a.public_id, m.author_name, m.body, m.created_at "
    "FROM messages m LEFT JOIN agents a ON a.id = m.author_agent_id "
)
RECENT_MESSAGES = _MESSAGE + "WHERE m.conversation_id = ? ORDER BY m.id DESC LIMIT ?"
"""A conversation's newest messages, newest first, for :func:`rows.message`."""
MESSAGE_BY_CLIENT_ID = (
    _MESSAGE + "WHERE m.conversation_id = ? AND m.author_kind = ? AND m.client_msg_id = ?"
)
"""The message a retried send stored first, for :func:`rows.message`."""

PUBLISH_RESULT = "SELECT notifications FROM publish_keys WHERE token_id = ? AND key = ?"
"""How many notifications the publish with a key stored (service token id, key)."""
ASSIGN = "UPDATE conversations SET assignee_id = ? WHERE id = ?"

INSERT_CONVERSATION = (
    "INSERT INTO conversations (public_id, inbox_id, visitor_name, visitor_token_hash, "
    "external_id, created_at) VALUES (?, ?, ?, ?, ?, ?)"
)


def conversation_params(new: NewConversation) -> tuple[Any, ...]:
    """The parameters of :data:`INSERT_CONVERSATION`, stamped now."""
    return (
        new.public_id,
        new.inbox_id,
        new.visitor_name,
        new.visitor_token_hash,
        new.external_id,
        now_iso(),
    )


INSERT_MESSAGE = (
    "INSERT INTO messages (public_id, conversation_id, author_kind, author_agent_id, "
    "author_name, body, client_msg_id, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)


def message_params(msg: NewMessage, conversation_id: int | None) -> tuple[Any, ...]:
    """The parameters of :data:`INSERT_MESSAGE`."""
    return (
        msg.public_id,
        conversation_id,
        msg.author_kind,
        msg.author_agent_id,
        msg.author_name,
        msg.body,
        msg.client_msg_id,
        msg.created_at,
    )


MEMBERSHIP_VERSION = "SELECT version FROM membership_version"
"""Moves whenever an inbox's routed members may have changed (schema v6's triggers)."""
