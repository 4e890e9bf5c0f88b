"""SQL of the v1.1 waiting state that both stores run (``?`` placeholders; the
PostgreSQL store numbers them with :func:`backend.store.lifecycle.numbered`)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from backend import protocol
from backend.store.base import QueueRow
from backend.store.rows import message

CHECKED_KINDS = frozenset({protocol.KIND_CONVERSATION_CREATED, protocol.KIND_MESSAGE_CREATED})
"""Kinds whose notifications may bring a step forward when nobody saw them."""
WAIT_STATE = "SELECT waiting_since, inbox_id, status FROM conversations WHERE id = ?"
START_WAIT = "UPDATE conversations SET waiting_since = ?, status = 'open' WHERE id = ?"
# The wait's steps, copied from the policy as it is now (later changes leave it alone).
SCHEDULE = (
    "INSERT INTO wait_steps (conversation_id, step, waiting_since, due_ms, target) "
    "SELECT ?, step, ?, ? + after_s * 1000, target FROM policy_steps WHERE inbox_id = ?"
)
END_WAIT = "UPDATE conversations SET waiting_since = NULL WHERE id = ?"
DROP_STEPS = "DELETE FROM wait_steps WHERE conversation_id = ?"
DROP_CHECKS = "DELETE FROM seen_checks WHERE conversation_id = ?"
ADD_CHECK = (
    "INSERT INTO seen_checks (event_id, conversation_id, waiting_since, due_ms) "
    "SELECT ?, c.id, c.waiting_since, ? + COALESCE(p.unseen_after_s, 30) * 1000 "
    "FROM conversations c LEFT JOIN inbox_policies p ON p.inbox_id = c.inbox_id "
    "WHERE c.id = ? AND c.waiting_since IS NOT NULL AND c.assignee_id IS NULL "
    "AND EXISTS (SELECT 1 FROM wait_steps w WHERE w.conversation_id = c.id AND w.early = 0)"
)
MARK_SEEN = (
    "UPDATE seen_checks SET seen = 1 WHERE seen = 0 AND event_id IN "
    "(SELECT event_id FROM notifications WHERE agent_id = ? AND seq = ?)"
)
ANY_UNSEEN_CHECK = "SELECT 1 FROM seen_checks WHERE seen = 0 LIMIT 1"
DUE_CHECKS = (
    "SELECT s.event_id, s.conversation_id, s.waiting_since, s.seen FROM seen_checks s "
    "WHERE s.due_ms <= ? ORDER BY s.due_ms, s.event_id LIMIT ?"
)
DELETE_CHECK = "DELETE FROM seen_checks WHERE event_id = ?"
EVENT_RECIPIENTS = "SELECT agent_id FROM notifications WHERE event_id = ?"
STILL_UNCLAIMED = (
    "SELECT 1 FROM conversations WHERE id = ? AND waiting_since = ? AND assignee_id IS NULL"
)
RESOLVE = "UPDATE conversations SET status = 'resolved', waiting_since = NULL WHERE id = ?"
# The claim itself: one statement, so of simultaneous claims (on any node) the store
# lets exactly one through; the others match no row.
CLAIM = (
    "UPDATE conversations SET assignee_id = ? "
    "WHERE id = ? AND (assignee_id IS NULL OR assignee_id = ?) RETURNING id"
)
HOLDER = (
    "SELECT a.name FROM conversations c LEFT JOIN agents a ON a.id = c.assignee_id WHERE c.id = ?"
)
OTHER_UNREAD_HOLDERS = (
    "SELECT a.id, a.public_id FROM agents a WHERE a.id IN ("
    "SELECT agent_id FROM notifications WHERE conversation_id = ? AND read = 0) "
    "AND a.id <> ? ORDER BY a.id"
)
"""The agents but one (the claimer) with unread notifications of a conversation, with
their public ids, in id order (the order their counters are locked in)."""
QUEUE_SELECT = """
    SELECT c.id, c.inbox_id, c.public_id, i.public_id, i.name, c.visitor_name,
        a.public_id, a.name, c.waiting_since,
        m.public_id, m.author_kind, ma.public_id, m.author_name, m.body, m.created_at
    FROM conversations c JOIN inboxes i ON i.id = c.inbox_id
    LEFT JOIN agents a ON a.id = c.assignee_id
    LEFT JOIN messages m ON m.id = (SELECT MAX(id) FROM messages WHERE conversation_id = c.id)
    LEFT JOIN agents ma ON ma.id = m.author_agent_id
"""
QUEUE_ORDER = " ORDER BY c.waiting_since, c.id"
POLICY = "SELECT unseen_after_s FROM inbox_policies WHERE inbox_id = ?"
POLICY_STEPS = "SELECT after_s, target FROM policy_steps WHERE inbox_id = ? ORDER BY step"
UPSERT_POLICY = (
    "INSERT INTO inbox_policies (inbox_id, unseen_after_s, updated_at) VALUES (?, ?, ?) "
    "ON CONFLICT (inbox_id) DO UPDATE SET unseen_after_s = excluded.unseen_after_s, "
    "updated_at = excluded.updated_at"
)
CLEAR_STEPS = "DELETE FROM policy_steps WHERE inbox_id = ?"
ADD_STEP = "INSERT INTO policy_steps (inbox_id, step, after_s, target) VALUES (?, ?, ?, ?)"
DUE = (
    "SELECT conversation_id, step, waiting_since, due_ms, target, early FROM wait_steps "
    "WHERE due_ms <= ? ORDER BY due_ms, conversation_id, step LIMIT ?"
)
DELETE_STEP = "DELETE FROM wait_steps WHERE conversation_id = ? AND step = ?"
STEPS_LEFT = "SELECT COUNT(*) FROM wait_steps WHERE conversation_id = ? AND waiting_since = ?"
BRING_FORWARD = (
    "UPDATE wait_steps SET due_ms = ?, early = 1 WHERE conversation_id = ? AND step = "
    "(SELECT MIN(step) FROM wait_steps WHERE conversation_id = ? AND waiting_since = ? "
    "AND early = 0)"
)
AGENT_BY_EMAIL = "SELECT id FROM agents WHERE email = ? AND disabled_at IS NULL"
INBOX_BY_NAME = "SELECT id FROM inboxes WHERE name = ?"


def epoch_ms(timestamp: str) -> int:
    """Milliseconds since the Unix epoch of a stored time stamp (``…T10:15:03.120Z``)."""
    return int(datetime.fromisoformat(timestamp.replace("Z", "+00:00")).timestamp() * 1000)


def queue_row(row: Sequence[Any]) -> QueueRow:
    """A :class:`QueueRow` from a row selected with :data:`QUEUE_SELECT`."""
    assignee = None if row[6] is None else protocol.AgentRef(row[6], row[7])
    last = None if row[9] is None else message(row[9:15])
    return QueueRow(
        id=row[0],
        inbox_id=row[1],
        entry=protocol.QueueEntry(
            id=row[2],
            inbox=protocol.InboxRef(row[3], row[4]),
            visitor=protocol.Visitor(row[5]),
            assignee=assignee,
            waiting_since=row[8],
            last_message=last,
        ),
    )
