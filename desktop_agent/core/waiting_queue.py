"""The waiting visitors of my inboxes: a pure, ordered list that says how it changed.

Fed by the ``queue`` reply (:meth:`WaitingQueue.reset`) and then by every
``queue_changed`` push (:meth:`WaitingQueue.apply`), as PROTOCOL.md v1.1 describes. Rows
are keyed by conversation id and kept longest wait first (oldest ``waiting_since``; ties
by id, so the order never depends on arrival). Each change returns the row operations a
view needs (insert, remove, change), napari-style: the Qt model only turns them into
``beginInsertRows`` and friends.

It also knows which waits escalated: a ``chat.conversation.waiting`` notification whose
``data.waiting_since`` is the entry's current wait marks it with the step that fired, so
the tray can show that something waits past the first step. A new wait (another
``waiting_since``) starts unescalated.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from backend.protocol import KIND_CONVERSATION_WAITING, Notification, QueueEntry


def parse_wire_time(text: str | None) -> datetime | None:
    """A wire timestamp as an aware datetime (naive taken as UTC); None if unreadable."""
    if not text:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


@dataclass(frozen=True)
class WaitingEntry:
    """One waiting conversation as the Waiting view shows it.

    Attributes:
        conversation_id, inbox_name, visitor_name: what it is.
        assignee_id, assignee_name: who has it (None: nobody yet, anyone may Accept).
        waiting_since: when the wait began (aware).
        last_message: the latest visitor message's text ("" when the server sent none).
        escalation_step: the highest escalation step that fired in this wait (0: none).
    """

    conversation_id: str
    inbox_name: str
    visitor_name: str
    assignee_id: str | None
    assignee_name: str | None
    waiting_since: datetime
    last_message: str = ""
    escalation_step: int = 0

    @classmethod
    def from_wire(cls, entry: QueueEntry) -> WaitingEntry | None:
        """The entry of a ``queue``/``queue_changed`` conversation; None when it is not
        waiting (no readable ``waiting_since``)."""
        since = parse_wire_time(entry.waiting_since)
        if since is None:
            return None
        assignee = entry.assignee
        return cls(
            conversation_id=entry.id,
            inbox_name=entry.inbox.name,
            visitor_name=entry.visitor.name,
            assignee_id=assignee.id if assignee is not None else None,
            assignee_name=assignee.name if assignee is not None else None,
            waiting_since=since,
            last_message=entry.last_message.body if entry.last_message is not None else "",
        )

    @property
    def sort_key(self) -> tuple[datetime, str]:
        return (self.waiting_since, self.conversation_id)

    def waited_seconds(self, now: datetime) -> int:
        """Whole seconds waited at ``now`` (never negative, whatever the clocks say)."""
        return max(0, int((now - self.waiting_since).total_seconds()))


@dataclass(frozen=True)
class Inserted:
    row: int


@dataclass(frozen=True)
class Removed:
    row: int


@dataclass(frozen=True)
class Changed:
    row: int


QueueChange = Inserted | Removed | Changed


class WaitingQueue:
    """Waiting conversations, longest wait first, keyed by conversation id."""

    def __init__(self) -> None:
        self._rows: list[WaitingEntry] = []
        self._keys: list[tuple[datetime, str]] = []
        self._by_id: dict[str, WaitingEntry] = {}
        self._escalations: dict[tuple[str, datetime], int] = {}
        """(conversation id, waiting_since) -> highest step seen; may come before the row."""

    # ------------------------------------------------------------------ reading

    def __len__(self) -> int:
        return len(self._rows)

    def __iter__(self) -> Any:
        return iter(self._rows)

    def at(self, row: int) -> WaitingEntry:
        """The entry at ``row`` (IndexError outside)."""
        return self._rows[row]

    def get(self, conversation_id: str) -> WaitingEntry | None:
        return self._by_id.get(conversation_id)

    def row_of(self, conversation_id: str) -> int:
        """The row of a conversation, or -1."""
        entry = self._by_id.get(conversation_id)
        if entry is None:
            return -1
        return bisect.bisect_left(self._keys, entry.sort_key)

    def escalated(self, min_step: int = 1) -> list[WaitingEntry]:
        """Entries whose current wait reached at least step ``min_step``, longest first."""
        return [e for e in self._rows if e.escalation_step >= min_step]

    # ------------------------------------------------------------------ changes

    def reset(self, entries: Iterable[WaitingEntry]) -> None:
        """Replace everything (the ``queue`` reply of a new connection)."""
        fresh = {e.conversation_id: self._with_step(e) for e in entries}
        self._rows = sorted(fresh.values(), key=lambda e: e.sort_key)
        self._keys = [e.sort_key for e in self._rows]
        self._by_id = dict(fresh)
        live = {(e.conversation_id, e.waiting_since) for e in self._rows}
        self._escalations = {k: v for k, v in self._escalations.items() if k in live}

    def clear(self) -> None:
        self.reset(())

    def apply(self, entry: QueueEntry, waiting: bool) -> list[QueueChange]:
        """Apply one ``queue_changed`` push; return the row operations, in order."""
        parsed = WaitingEntry.from_wire(entry) if waiting else None
        if parsed is None:
            return self.remove(entry.id)
        return self.upsert(parsed)

    def upsert(self, entry: WaitingEntry) -> list[QueueChange]:
        """Add or update an entry; a changed wait start moves it (remove, then insert)."""
        entry = self._with_step(entry)
        old = self._by_id.get(entry.conversation_id)
        if old is not None and old.sort_key == entry.sort_key:
            row = self.row_of(entry.conversation_id)
            self._rows[row] = entry
            self._by_id[entry.conversation_id] = entry
            return [] if old == entry else [Changed(row)]
        changes: list[QueueChange] = []
        if old is not None:
            changes += self.remove(entry.conversation_id)
        row = bisect.bisect_left(self._keys, entry.sort_key)
        self._rows.insert(row, entry)
        self._keys.insert(row, entry.sort_key)
        self._by_id[entry.conversation_id] = entry
        changes.append(Inserted(row))
        return changes

    def remove(self, conversation_id: str) -> list[QueueChange]:
        """Take a conversation out (it no longer waits); nothing when it was not there."""
        row = self.row_of(conversation_id)
        if row < 0:
            return []
        entry = self._rows.pop(row)
        del self._keys[row]
        del self._by_id[conversation_id]
        self._escalations.pop((conversation_id, entry.waiting_since), None)
        return [Removed(row)]

    def note_notification(self, notification: Notification) -> list[QueueChange]:
        """Take note of an escalation (``chat.conversation.waiting``); other kinds: nothing."""
        if notification.kind != KIND_CONVERSATION_WAITING or not notification.conversation_id:
            return []
        data = notification.data
        since = parse_wire_time(data.get("waiting_since"))
        step = data.get("step")
        if since is None or not isinstance(step, int) or isinstance(step, bool) or step < 1:
            return []
        key = (notification.conversation_id, since)
        if self._escalations.get(key, 0) >= step:
            return []
        self._escalations[key] = step
        entry = self._by_id.get(notification.conversation_id)
        if entry is None or entry.waiting_since != since:
            return []  # kept for when (and if) this wait shows up in the queue
        return self.upsert(entry)

    def _with_step(self, entry: WaitingEntry) -> WaitingEntry:
        step = self._escalations.get((entry.conversation_id, entry.waiting_since), 0)
        old = self._by_id.get(entry.conversation_id)
        if old is not None and old.waiting_since == entry.waiting_since:
            step = max(step, old.escalation_step)
        return entry if entry.escalation_step == step else replace(entry, escalation_step=step)


def waited_text(seconds: int) -> str:
    """A waiting time for a row: "45 s", "3 min", "1 h 05 min"."""
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"
