"""The Waiting view's list model: a thin Qt skin over :class:`WaitingQueue`.

The core decides the order and says which rows changed; this model only wraps each
change in ``beginInsertRows``/``endRemoveRows``/``dataChanged``. Waiting times are not
data: the view's delegate computes them from ``waiting_since`` and the clock at paint
time, so one timer repainting the visible rows keeps them live.
"""

from __future__ import annotations

from collections.abc import Callable
from enum import IntEnum
from typing import Any

from PySide6.QtCore import (
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    Qt,
    Signal,
)

from backend.protocol import Notification, QueueEntry
from desktop_agent.core.waiting_queue import (
    Changed,
    Inserted,
    QueueChange,
    Removed,
    WaitingEntry,
    WaitingQueue,
)

ModelIndex = QModelIndex | QPersistentModelIndex


class WaitingRole(IntEnum):
    Entry = Qt.ItemDataRole.UserRole + 1
    """The :class:`WaitingEntry` itself."""
    ConversationId = Qt.ItemDataRole.UserRole + 2
    Assigned = Qt.ItemDataRole.UserRole + 3
    EscalationStep = Qt.ItemDataRole.UserRole + 4


class WaitingListModel(QAbstractListModel):
    """Waiting conversations of my inboxes, longest wait first.

    Signals:
        escalatedChanged(int): how many rows wait past the first escalation step.
    """

    escalatedChanged = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.queue = WaitingQueue()
        self._rows: list[WaitingEntry] = []
        """What views see: follows the core one row operation at a time."""
        self._escalated = 0

    # ------------------------------------------------------------------ Qt API

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._rows)

    def roleNames(self) -> dict[int, QByteArray]:
        names = dict(super().roleNames())
        for role in WaitingRole:
            names[int(role)] = QByteArray(role.name.encode())
        return names

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid() or index.parent().isValid() or index.column() != 0:
            return None
        if not 0 <= index.row() < len(self._rows):
            return None
        entry = self._rows[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return entry.visitor_name
        if role == Qt.ItemDataRole.ToolTipRole:
            return entry.last_message or entry.visitor_name
        if role == Qt.ItemDataRole.AccessibleTextRole:
            who = f"taken by {entry.assignee_name}" if entry.assignee_name else "unassigned"
            return f"{entry.visitor_name}, {entry.inbox_name}, {who}: {entry.last_message}"
        if role == WaitingRole.Entry:
            return entry
        if role == WaitingRole.ConversationId:
            return entry.conversation_id
        if role == WaitingRole.Assigned:
            return entry.assignee_id is not None
        if role == WaitingRole.EscalationStep:
            return entry.escalation_step
        return None

    # ---------------------------------------------------------------- changes

    def entry_at(self, row: int) -> WaitingEntry:
        return self._rows[row]

    def get(self, conversation_id: str) -> WaitingEntry | None:
        return self.queue.get(conversation_id)

    def reset(self, entries: list[QueueEntry]) -> None:
        """The ``queue`` reply of a new connection."""
        self.beginResetModel()
        self.queue.reset(e for w in entries if (e := WaitingEntry.from_wire(w)) is not None)
        self._rows = list(self.queue)
        self.endResetModel()
        self._count_escalated()

    def clear(self) -> None:
        self.beginResetModel()
        self.queue.clear()
        self._rows = []
        self.endResetModel()
        self._count_escalated()

    def apply(self, entry: QueueEntry, waiting: bool) -> None:
        """One ``queue_changed`` push."""
        self._play(lambda: self.queue.apply(entry, waiting), entry.id)

    def note_notification(self, notification: Notification) -> None:
        """A notification arrived: an escalation marks its row."""
        if notification.conversation_id is None:
            return
        self._play(lambda: self.queue.note_notification(notification), notification.conversation_id)

    def _play(self, change: Callable[[], list[QueueChange]], conversation_id: str) -> None:
        # The core changes at once and reports row operations; Qt wants each one
        # announced before views see it, so the rows views read follow one step at a time.
        changes = change()
        after = list(self.queue)
        for item in changes:
            if isinstance(item, Removed):
                self.beginRemoveRows(QModelIndex(), item.row, item.row)
                del self._rows[item.row]
                self.endRemoveRows()
            elif isinstance(item, Inserted):
                self.beginInsertRows(QModelIndex(), item.row, item.row)
                self._rows.insert(item.row, after[item.row])
                self.endInsertRows()
            elif isinstance(item, Changed):
                self._rows[item.row] = after[item.row]
                index = self.index(item.row)
                self.dataChanged.emit(index, index, [])
        self._count_escalated()

    def _count_escalated(self) -> None:
        count = len(self.queue.escalated())
        if count != self._escalated:
            self._escalated = count
            self.escalatedChanged.emit(count)

    @property
    def escalated(self) -> int:
        return self._escalated
