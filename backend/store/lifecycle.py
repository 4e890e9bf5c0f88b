"""SQL of the operator's lifecycle commands, written once for both stores.

The statements use ``?`` placeholders (SQLite's); :func:`numbered` turns them into
PostgreSQL's ``$1, $2, …``. Both stores run them in the same order inside one
transaction, so ``agent remove`` or ``inbox remove`` means the same on either.
"""

from __future__ import annotations

import functools
import re

from backend.errors import Conflict, NotFound
from backend.store.base import AgentRemoved

AGENT_COLUMNS = "id, public_id, email, name, password_hash, disabled_at IS NOT NULL"
"""The select list every agent look-up reads (an :class:`~backend.store.base.Agent`)."""

MEMBERS = (
    "SELECT agent_id FROM inbox_members WHERE inbox_id = ? "
    "AND agent_id NOT IN (SELECT id FROM agents WHERE disabled_at IS NOT NULL)"
)
"""Who routing counts as an inbox's agents: its members, less the disabled ones."""

INBOX_SUMMARIES = (
    "SELECT i.id, i.public_id, i.name, "
    "(SELECT COUNT(*) FROM inbox_members m WHERE m.inbox_id = i.id), "
    "(SELECT COUNT(*) FROM conversations c WHERE c.inbox_id = i.id) "
    "FROM inboxes i ORDER BY i.name"
)

SET_DISABLED = "UPDATE agents SET disabled_at = ? WHERE id = ?"
SET_PASSWORD = "UPDATE agents SET password_hash = ? WHERE id = ?"  # noqa: S105 - SQL
RENAME = "UPDATE agents SET name = ? WHERE id = ?"
DROP_AGENT_MEMBERSHIPS = "DELETE FROM inbox_members WHERE agent_id = ?"
ADD_MEMBERSHIP = "INSERT INTO inbox_members (inbox_id, agent_id) VALUES (?, ?)"
INBOX_ID = "SELECT id FROM inboxes WHERE name = ?"


def revoke_agent_tokens(now: str) -> str:
    """Revoke every live token of agent ``?``, returning their hashes; ``now`` is the
    SQL expression (or placeholder) of the revocation time."""
    return (
        f"UPDATE tokens SET revoked_at = {now} "  # noqa: S608 - our own expression
        "WHERE agent_id = ? AND revoked_at IS NULL RETURNING hash"
    )


# Removing an agent, in this order, after its tokens were revoked.
REMOVE_AGENT = (
    # Revoked rows stay (the revocation watcher of every node reads them), unlinked.
    ("tokens", "UPDATE tokens SET agent_id = NULL WHERE agent_id = ?"),
    ("unassigned", "UPDATE conversations SET assignee_id = NULL WHERE assignee_id = ?"),
    ("messages_kept", "UPDATE messages SET author_agent_id = NULL WHERE author_agent_id = ?"),
    ("notifications", "DELETE FROM notifications WHERE agent_id = ?"),
    ("memberships", DROP_AGENT_MEMBERSHIPS),
)
DELETE_AGENT = "DELETE FROM agents WHERE id = ?"


def agent_removed(revoked: list[str], counts: dict[str, int]) -> AgentRemoved:
    """The report of ``agent remove``: the revoked token hashes and the row counts of
    :data:`REMOVE_AGENT`, by name."""
    return AgentRemoved(
        revoked,
        counts["notifications"],
        counts["memberships"],
        counts["unassigned"],
        counts["messages_kept"],
    )


INBOX_CONTENT = (
    "SELECT (SELECT COUNT(*) FROM conversations WHERE inbox_id = ?), "
    "(SELECT COUNT(*) FROM messages WHERE conversation_id "
    "IN (SELECT id FROM conversations WHERE inbox_id = ?))"
)
READ_INBOX_NOTIFICATIONS = (
    "UPDATE notifications SET read = 1 WHERE read = 0 AND conversation_id "
    "IN (SELECT id FROM conversations WHERE inbox_id = ?) RETURNING agent_id"
)
"""Notifications about an inbox's conversations that were unread, marked read."""

# Removing an inbox, in this order, after its unread notifications were marked read.
REMOVE_INBOX = (
    (
        "notifications",
        "UPDATE notifications SET conversation_id = NULL WHERE conversation_id "
        "IN (SELECT id FROM conversations WHERE inbox_id = ?)",
    ),
    (
        "events",
        "UPDATE events SET conversation_id = NULL WHERE conversation_id "
        "IN (SELECT id FROM conversations WHERE inbox_id = ?)",
    ),
    (
        "seen_checks",
        "DELETE FROM seen_checks WHERE conversation_id "
        "IN (SELECT id FROM conversations WHERE inbox_id = ?)",
    ),
    (
        "wait_steps",
        "DELETE FROM wait_steps WHERE conversation_id "
        "IN (SELECT id FROM conversations WHERE inbox_id = ?)",
    ),
    (
        "messages",
        "DELETE FROM messages WHERE conversation_id "
        "IN (SELECT id FROM conversations WHERE inbox_id = ?)",
    ),
    ("conversations", "DELETE FROM conversations WHERE inbox_id = ?"),
    ("memberships", "DELETE FROM inbox_members WHERE inbox_id = ?"),
    ("policy_steps", "DELETE FROM policy_steps WHERE inbox_id = ?"),
    ("policy", "DELETE FROM inbox_policies WHERE inbox_id = ?"),
    ("inbox", "DELETE FROM inboxes WHERE id = ?"),
)


@functools.cache
def numbered(sql: str) -> str:
    """``?`` placeholders as PostgreSQL's ``$1, $2, …`` (none of our literals has one).

    Cached: the PostgreSQL store numbers a shared query where it runs it."""
    counter = iter(range(1, sql.count("?") + 1))
    return re.sub(r"\?", lambda _: f"${next(counter)}", sql)


def unknown_inbox(name: str) -> NotFound:
    """The refusal of an agent's inbox that does not exist, with what to do about it."""
    return NotFound(
        f"there is no inbox named {name}; create it first with `deskbell-server inbox add {name}`"
    )


def inbox_in_use(name: str, conversations: int, messages: int) -> Conflict:
    """The refusal of ``inbox remove`` without ``--force``: what would be lost."""
    return Conflict(
        f"inbox {name} still has {conversations} conversation"
        f"{'' if conversations == 1 else 's'} ({messages} message"
        f"{'' if messages == 1 else 's'}); removing it deletes them for good. "
        f"To remove it anyway: deskbell-server inbox remove {name} --force"
    )
