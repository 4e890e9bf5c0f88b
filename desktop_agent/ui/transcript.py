"""A conversation transcript as a list model (painted by ``transcript_delegate``).

Rows are keyed by message id; the agent's own replies are added before the server has
them (keyed by their ``client_msg_id``) and carry a reply state: ``"sending"``,
``"sent"`` or ``"failed"``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import IntEnum
from typing import Any, Literal

from PySide6.QtCore import QAbstractListModel, QModelIndex, QObject, QPersistentModelIndex, Qt

from backend.protocol import Message
from desktop_agent.ui.notification_model import parse_timestamp

ReplyState = Literal["waiting", "sending", "sent", "failed"]
"""``waiting``: written while offline; it goes out by itself once the connection is back."""
ModelIndex = QModelIndex | QPersistentModelIndex
Clock = Callable[[], datetime]


@dataclass(frozen=True)
class TranscriptEntry:
    """One row: a server message, or an own reply the server may not have yet."""

    message_id: str | None
    author_kind: str
    author_name: str
    body: str
    created: datetime | None
    own: bool
    client_msg_id: str | None = None
    state: ReplyState | None = None


class TranscriptRole(IntEnum):
    """Item data roles of :class:`TranscriptModel`."""

    MessageId = Qt.ItemDataRole.UserRole + 1
    AuthorKind = Qt.ItemDataRole.UserRole + 2
    AuthorName = Qt.ItemDataRole.UserRole + 3
    Body = Qt.ItemDataRole.UserRole + 4
    Created = Qt.ItemDataRole.UserRole + 5
    Own = Qt.ItemDataRole.UserRole + 6
    ClientMsgId = Qt.ItemDataRole.UserRole + 7
    State = Qt.ItemDataRole.UserRole + 8
    Entry = Qt.ItemDataRole.UserRole + 9


class TranscriptModel(QAbstractListModel):
    """The messages of one conversation, oldest first.

    Args:
        self_agent_id: the signed-in agent's id, to tell own messages apart.
    """

    def __init__(self, self_agent_id: str, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._self_id = self_agent_id
        self._rows: list[TranscriptEntry] = []

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:
        """Number of messages (0 under a valid parent)."""
        return 0 if parent.isValid() else len(self._rows)

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """One field of a message; None for an invalid index or unknown role."""
        if not index.isValid() or not 0 <= index.row() < len(self._rows) or index.column() != 0:
            return None
        entry = self._rows[index.row()]
        if role in (Qt.ItemDataRole.DisplayRole, TranscriptRole.Body):
            return entry.body
        if role == Qt.ItemDataRole.AccessibleTextRole:
            return f"{entry.author_name}: {entry.body}"
        fields: dict[int, Any] = {
            TranscriptRole.MessageId: entry.message_id,
            TranscriptRole.AuthorKind: entry.author_kind,
            TranscriptRole.AuthorName: entry.author_name,
            TranscriptRole.Created: entry.created,
            TranscriptRole.Own: entry.own,
            TranscriptRole.ClientMsgId: entry.client_msg_id,
            TranscriptRole.State: entry.state,
            TranscriptRole.Entry: entry,
        }
        return fields.get(role)

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        """Rows can be selected (to copy or retry), never edited."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def entry(self, row: int) -> TranscriptEntry:
        """The entry at ``row``."""
        return self._rows[row]

    def entries(self) -> list[TranscriptEntry]:
        """A copy of all entries, oldest first."""
        return list(self._rows)

    def _from_message(self, message: Message) -> TranscriptEntry:
        own = message.author.kind == "agent" and message.author.id == self._self_id
        return TranscriptEntry(
            message_id=message.id,
            author_kind=message.author.kind,
            author_name=message.author.name,
            body=message.body,
            created=parse_timestamp(message.created_at),
            own=own,
        )

    def set_messages(self, messages: list[Message]) -> None:
        """Replace the transcript with the server's, keeping own replies it lacks yet."""
        known = {m.id for m in messages}
        pending = [
            e
            for e in self._rows
            if e.client_msg_id is not None
            and (e.message_id is None or e.message_id not in known)
            and e.state != "sent"
        ]
        self.beginResetModel()
        self._rows = [self._from_message(m) for m in messages] + pending
        self.endResetModel()

    def add_message(self, message: Message) -> bool:
        """Add a live message; returns False when it is already shown.

        An own message the server echoes back takes the place of the matching pending
        reply (same message id, or else the oldest unconfirmed reply with the same text).
        """
        if any(existing.message_id == message.id for existing in self._rows):
            return False
        entry = self._from_message(message)
        if entry.own:
            for row, pending in enumerate(self._rows):
                if (
                    pending.message_id is None
                    and pending.client_msg_id
                    and pending.body == message.body
                ):
                    self._replace(
                        row,
                        replace(
                            pending, message_id=message.id, created=entry.created, state="sent"
                        ),
                    )
                    return False
        position = len(self._rows)
        self.beginInsertRows(QModelIndex(), position, position)
        self._rows.append(entry)
        self.endInsertRows()
        return True

    def add_pending(
        self, client_msg_id: str, body: str, author_name: str, created: datetime
    ) -> None:
        """Show an own reply at once, in state "sending"."""
        position = len(self._rows)
        self.beginInsertRows(QModelIndex(), position, position)
        self._rows.append(
            TranscriptEntry(
                None, "agent", author_name, body, created, True, client_msg_id, "sending"
            )
        )
        self.endInsertRows()

    def row_of_client_msg_id(self, client_msg_id: str) -> int:
        """The row of an own reply, or -1."""
        for row, entry in enumerate(self._rows):
            if entry.client_msg_id == client_msg_id:
                return row
        return -1

    def set_state(
        self, client_msg_id: str, state: ReplyState, message: Message | None = None
    ) -> bool:
        """Set an own reply's state; ``message`` (the server's copy) binds its id.

        Returns False when no reply has this ``client_msg_id``.
        """
        row = self.row_of_client_msg_id(client_msg_id)
        if row < 0:
            return False
        entry = replace(self._rows[row], state=state)
        if message is not None:
            duplicate = next(
                (r for r, e in enumerate(self._rows) if e.message_id == message.id and r != row), -1
            )
            if duplicate >= 0:  # the push came before the reply's answer: keep one row
                self.beginRemoveRows(QModelIndex(), duplicate, duplicate)
                del self._rows[duplicate]
                self.endRemoveRows()
                row = self.row_of_client_msg_id(client_msg_id)
            entry = replace(
                entry, message_id=message.id, created=parse_timestamp(message.created_at)
            )
        self._replace(row, entry)
        return True

    def failed(self) -> list[TranscriptEntry]:
        """Own replies that failed to send."""
        return [e for e in self._rows if e.state == "failed"]

    def _replace(self, row: int, entry: TranscriptEntry) -> None:
        self._rows[row] = entry
        index = self.index(row, 0)
        self.dataChanged.emit(index, index, [])
