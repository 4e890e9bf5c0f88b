"""Queries both stores build the same way, written once with ``?`` placeholders
(SQLite's); the PostgreSQL store numbers them with :func:`lifecycle.numbered`."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

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

MEMBERSHIP_VERSION = "SELECT version FROM membership_version"
"""Moves whenever an inbox's routed members may have changed (schema v6's triggers)."""
