"""The agent's notifications as a Qt list model, and the proxy behind the filter tabs.

:class:`NotificationListModel` keeps ``backend.protocol.Notification`` objects keyed by
their id, newest first (highest ``seq`` at row 0). Live, replayed and history
notifications all go through :meth:`NotificationListModel.upsert`, which inserts each
batch with as few ``beginInsertRows`` calls as the rows allow (one when the batch is
contiguous, which is the case for a live push, a resume and a history page), so
100,000 rows stay cheap. Rows are found by bisecting on ``seq``, never by index caches
that an insert at the top would invalidate.
"""

from __future__ import annotations

import bisect
import contextlib
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from enum import IntEnum
from typing import Any, Literal

import msgspec
from PySide6.QtCore import (
    QAbstractItemModel,
    QAbstractListModel,
    QByteArray,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QSortFilterProxyModel,
    Qt,
    Signal,
)

from backend.protocol import Notification

CHAT_CATEGORY = "chat"
MAX_CHANGED_RUNS = 32
"""Above this many separate runs of changed rows, one dataChanged covers their span."""

ModelIndex = QModelIndex | QPersistentModelIndex
FilterMode = Literal["chat", "all", "other"]


class Role(IntEnum):
    """Item data roles: one per notification field, plus a few derived ones."""

    Id = Qt.ItemDataRole.UserRole + 1
    Seq = Qt.ItemDataRole.UserRole + 2
    Kind = Qt.ItemDataRole.UserRole + 3
    Category = Qt.ItemDataRole.UserRole + 4
    Title = Qt.ItemDataRole.UserRole + 5
    Body = Qt.ItemDataRole.UserRole + 6
    ConversationId = Qt.ItemDataRole.UserRole + 7
    Url = Qt.ItemDataRole.UserRole + 8
    CreatedAt = Qt.ItemDataRole.UserRole + 9
    """The wire timestamp (ISO 8601 text)."""
    Created = Qt.ItemDataRole.UserRole + 10
    """The timestamp as an aware ``datetime`` (None when it cannot be read)."""
    Read = Qt.ItemDataRole.UserRole + 11
    Data = Qt.ItemDataRole.UserRole + 12
    IsChat = Qt.ItemDataRole.UserRole + 13
    Notification = Qt.ItemDataRole.UserRole + 14
    """The ``Notification`` object itself."""


def parse_timestamp(text: str) -> datetime | None:
    """Read a wire timestamp; None when it is not ISO 8601. Naive values are taken as UTC."""
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value


class NotificationListModel(QAbstractListModel):
    """Notifications keyed by id, newest first by ``seq``.

    Signals:
        unreadCountsChanged(): the per-category unread counts changed.
    """

    unreadCountsChanged = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._rows: list[Notification] = []
        self._keys: list[int] = []  # -seq of each row, ascending, so bisect works
        self._by_id: dict[str, Notification] = {}
        self._created: dict[str, datetime | None] = {}
        self._unread: dict[str, int] = {}
        # ids per conversation: a `read` push or an opened conversation touches its
        # rows without scanning 100,000 of them on the GUI thread
        self._by_conversation: dict[str, set[str]] = {}

    # ------------------------------------------------------------------ Qt API

    def rowCount(self, parent: ModelIndex = QModelIndex()) -> int:
        """Number of notifications (0 under any valid parent: this is a flat list)."""
        return 0 if parent.isValid() else len(self._rows)

    def roleNames(self) -> dict[int, QByteArray]:
        """Role names, for QML and for debugging."""
        names = dict(super().roleNames())
        for role in Role:
            names[int(role)] = QByteArray((role.name[0].lower() + role.name[1:]).encode())
        return names

    def data(self, index: ModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        """Return one field of a row; None for an invalid index or an unknown role."""
        if not index.isValid() or index.parent().isValid():
            return None
        row = index.row()
        if not 0 <= row < len(self._rows) or index.column() != 0:
            return None
        item = self._rows[row]
        if role in (Qt.ItemDataRole.DisplayRole, Role.Title):
            return item.title
        if role == Qt.ItemDataRole.ToolTipRole:
            return item.body or item.title
        if role == Qt.ItemDataRole.AccessibleTextRole:
            state = "read" if item.read else "unread"
            return f"{item.title}, {state}: {item.body}"
        return self._field(item, role)

    def _field(self, item: Notification, role: int) -> Any:
        if role == Role.Id:
            return item.id
        if role == Role.Seq:
            return item.seq
        if role == Role.Kind:
            return item.kind
        if role == Role.Category:
            return item.category
        if role == Role.Body:
            return item.body
        if role == Role.ConversationId:
            return item.conversation_id
        if role == Role.Url:
            return item.url
        if role == Role.CreatedAt:
            return item.created_at
        if role == Role.Created:
            return self.created_at(item)
        if role == Role.Read:
            return item.read
        if role == Role.Data:
            return item.data
        if role == Role.IsChat:
            return item.category == CHAT_CATEGORY
        if role == Role.Notification:
            return item
        return None

    def flags(self, index: ModelIndex) -> Qt.ItemFlag:
        """Rows are selectable and enabled, never editable."""
        if not index.isValid():
            return Qt.ItemFlag.NoItemFlags
        return (
            Qt.ItemFlag.ItemIsEnabled
            | Qt.ItemFlag.ItemIsSelectable
            | Qt.ItemFlag.ItemNeverHasChildren
        )

    # ------------------------------------------------------------- read access

    def notification_at(self, row: int) -> Notification:
        """The notification shown at ``row`` (raises IndexError outside the model)."""
        return self._rows[row]

    def get(self, notification_id: str) -> Notification | None:
        """The notification with this id, or None."""
        return self._by_id.get(notification_id)

    def row_of(self, notification_id: str) -> int:
        """The row of a notification id, or -1 when it is not in the model."""
        item = self._by_id.get(notification_id)
        if item is None:
            return -1
        row = bisect.bisect_left(self._keys, -item.seq)
        while row < len(self._rows) and self._keys[row] == -item.seq:
            if self._rows[row].id == notification_id:
                return row
            row += 1
        return -1  # pragma: no cover - the two indexes always agree

    def created_at(self, item: Notification) -> datetime | None:
        """The notification's timestamp as an aware datetime (parsed once, then cached)."""
        try:
            return self._created[item.id]
        except KeyError:
            value = self._created[item.id] = parse_timestamp(item.created_at)
            return value

    def oldest_seq(self) -> int | None:
        """The smallest ``seq`` held (the ``before_seq`` of the next history page)."""
        return self._rows[-1].seq if self._rows else None

    def newest_seq(self) -> int | None:
        """The largest ``seq`` held."""
        return self._rows[0].seq if self._rows else None

    def unread_count(self, category: str | None = None) -> int:
        """Unread rows held in this model: all of them, or of one category."""
        if category is None:
            return sum(self._unread.values())
        return self._unread.get(category, 0)

    def unread_rows(self, ids: Iterable[str]) -> list[tuple[str, str]]:
        """(id, category) of the given notifications that are held and unread."""
        return [
            (n.id, n.category)
            for i in dict.fromkeys(ids)
            if (n := self._by_id.get(i)) is not None and not n.read
        ]

    def unread_in_conversation(self, conversation_id: str) -> list[tuple[str, str]]:
        """(id, category) of the held unread notifications of one conversation."""
        return self.unread_rows(self._by_conversation.get(conversation_id, ()))

    def has_unread_in_conversation(self, conversation_id: str) -> bool:
        """Whether any held notification of the conversation is unread."""
        return any(not self._by_id[i].read for i in self._by_conversation.get(conversation_id, ()))

    def unread_categories(self) -> list[str]:
        """Categories with at least one unread row, sorted."""
        return sorted(c for c, n in self._unread.items() if n > 0)

    # ---------------------------------------------------------------- changes

    def upsert(self, notifications: Iterable[Notification]) -> None:
        """Add new notifications and replace known ones (same id), keeping seq order.

        Live pushes, resumed notifications and history pages all come through here:
        a notification already held is updated in place, so a replay never makes a
        duplicate row. New rows are inserted in as few batches as their positions allow.
        """
        fresh: dict[str, Notification] = {}
        changed_rows: list[int] = []
        moved: list[Notification] = []
        counts_before = dict(self._unread)
        latest = {item.id: item for item in notifications}  # the last copy of an id wins
        for item in latest.values():
            old = self._by_id.get(item.id)
            if old is None:
                fresh[item.id] = item
                continue
            if old.seq != item.seq:
                moved.append(item)
                continue
            row = self.row_of(item.id)
            self._count(old, -1)
            self._count(item, +1)
            self._rows[row] = item
            self._unindex(old)
            self._by_id[item.id] = item
            self._index(item)
            self._created.pop(item.id, None)
            changed_rows.append(row)
        if moved:
            self.remove([m.id for m in moved])
            for item in moved:
                fresh[item.id] = item
        if changed_rows:
            self._emit_changed(changed_rows, [])
        if fresh:
            self._insert_sorted(sorted(fresh.values(), key=lambda n: -n.seq))
        if self._unread != counts_before:
            self.unreadCountsChanged.emit()

    def add_history(self, page: Sequence[Notification]) -> None:
        """Add an older page from ``history`` (same rules as :meth:`upsert`)."""
        self.upsert(page)

    def _insert_sorted(self, items: list[Notification]) -> None:
        """Insert new rows (sorted newest first), one beginInsertRows per gap they fill."""
        start = 0
        while start < len(items):
            position = bisect.bisect_right(self._keys, -items[start].seq)
            stop = start + 1
            # Extend the run while the next item lands in the same gap.
            limit = self._keys[position] if position < len(self._keys) else None
            while stop < len(items) and (limit is None or -items[stop].seq < limit):
                stop += 1
            run = items[start:stop]
            self.beginInsertRows(QModelIndex(), position, position + len(run) - 1)
            self._rows[position:position] = run
            self._keys[position:position] = [-n.seq for n in run]
            for item in run:
                self._by_id[item.id] = item
                self._index(item)
                self._count(item, +1)
            self.endInsertRows()
            start = stop

    def remove(self, ids: Iterable[str]) -> None:
        """Remove notifications by id (unknown ids are ignored)."""
        rows = sorted({r for r in (self.row_of(i) for i in ids) if r >= 0}, reverse=True)
        counts_before = dict(self._unread)
        for first, last in _runs_descending(rows):
            self.beginRemoveRows(QModelIndex(), first, last)
            for item in self._rows[first : last + 1]:
                self._count(item, -1)
                self._unindex(item)
                del self._by_id[item.id]
                self._created.pop(item.id, None)
            del self._rows[first : last + 1]
            del self._keys[first : last + 1]
            self.endRemoveRows()
        if self._unread != counts_before:
            self.unreadCountsChanged.emit()

    def clear(self) -> None:
        """Drop every row (on sign-out or when switching servers)."""
        self.beginResetModel()
        self._rows.clear()
        self._keys.clear()
        self._by_id.clear()
        self._created.clear()
        self._unread.clear()
        self._by_conversation.clear()
        self.endResetModel()
        self.unreadCountsChanged.emit()

    def mark_read(self, ids: Iterable[str]) -> None:
        """Mark notifications read by id (a ``read`` push, or an optimistic local read)."""
        self._set_read(self.row_of(i) for i in ids)

    def mark_conversation_read(self, conversation_id: str) -> None:
        """Mark every notification of one conversation read."""
        self._set_read(self.row_of(i) for i, _ in self.unread_in_conversation(conversation_id))

    def mark_category_read(self, category: str | None) -> None:
        """Mark every notification of a category read (None: every notification)."""
        if category is not None and self._unread.get(category, 0) == 0:
            return
        self._set_read(
            row
            for row, n in enumerate(self._rows)
            if not n.read and (category is None or n.category == category)
        )

    def _set_read(self, rows: Iterable[int]) -> None:
        changed: list[int] = []
        for row in rows:
            if row < 0:
                continue
            item = self._rows[row]
            if item.read:
                continue
            updated = msgspec.structs.replace(item, read=True)
            self._count(item, -1)
            self._count(updated, +1)
            self._rows[row] = updated
            self._by_id[item.id] = updated
            changed.append(row)
        if changed:
            self._emit_changed(changed, [Role.Read, Qt.ItemDataRole.AccessibleTextRole])
            self.unreadCountsChanged.emit()

    def _index(self, item: Notification) -> None:
        if item.conversation_id is not None:
            self._by_conversation.setdefault(item.conversation_id, set()).add(item.id)

    def _unindex(self, item: Notification) -> None:
        if item.conversation_id is None:
            return
        ids = self._by_conversation.get(item.conversation_id)
        if ids is not None:
            ids.discard(item.id)
            if not ids:
                del self._by_conversation[item.conversation_id]

    def _count(self, item: Notification, delta: int) -> None:
        if item.read:
            return
        value = self._unread.get(item.category, 0) + delta
        if value:
            self._unread[item.category] = value
        else:
            self._unread.pop(item.category, None)

    def _emit_changed(self, rows: list[int], roles: list[int]) -> None:
        # A few rows far apart (a `read` push): one signal per run, because the filter
        # proxy re-checks every row of a span, and a span from row 3 to row 90,000 is
        # 90,000 checks. Many runs (a whole category read): one signal over the span,
        # cheaper than thousands of signals.
        runs = _runs_descending(sorted(set(rows), reverse=True))
        if len(runs) > MAX_CHANGED_RUNS:
            runs = [(min(rows), max(rows))]
        for first, last in runs:
            self.dataChanged.emit(self.index(first), self.index(last), roles)


def _runs_descending(rows: list[int]) -> list[tuple[int, int]]:
    """Group descending row numbers into (first, last) runs of consecutive rows."""
    runs: list[tuple[int, int]] = []
    for row in rows:
        if runs and runs[-1][0] == row + 1:
            runs[-1] = (row, runs[-1][1])
        else:
            runs.append((row, row))
    return runs


class NotificationFilterProxy(QSortFilterProxyModel):
    """The filter tabs and the search box over a :class:`NotificationListModel`.

    Modes: ``"chat"`` (category chat, the default), ``"all"``, ``"other"`` (not chat).
    The search matches title and body, case-insensitively (casefold). Order is the
    source's (newest first): the proxy filters, it does not sort.
    """

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._mode: FilterMode = "chat"
        self._needle = ""
        # Not dynamic: Qt would re-check the filter of every row in a dataChanged span,
        # even for a change of the read state, which no filter looks at (a `read` push
        # of 2,000 ids spans nearly all 100,000 rows). Inserted rows are filtered all the
        # same; rows whose text changed are re-checked in _on_source_changed.
        self.setDynamicSortFilter(False)

    def setSourceModel(self, source: QAbstractItemModel) -> None:
        """Qt hook: also watch the source for rows whose text changed."""
        old = self.sourceModel()
        if old is not None:
            with contextlib.suppress(RuntimeError, TypeError):
                old.dataChanged.disconnect(self._on_source_changed)
        super().setSourceModel(source)
        source.dataChanged.connect(self._on_source_changed)

    def _on_source_changed(
        self, _top_left: ModelIndex, _bottom_right: ModelIndex, roles: list[int]
    ) -> None:
        # A row replaced in place (empty roles: every field) may now match the tab or
        # the search differently; a read-state change never does.
        if not roles and (self._mode != "all" or self._needle):
            self.beginFilterChange()
            self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def mode(self) -> FilterMode:
        """The current filter tab."""
        return self._mode

    def search_text(self) -> str:
        """The current search text, as typed."""
        return self._needle

    def set_mode(self, mode: FilterMode) -> None:
        """Show chat, all, or other notifications."""
        if mode not in ("chat", "all", "other"):
            raise ValueError(f"unknown filter mode {mode!r}; use chat, all or other")
        if mode == self._mode:
            return
        self._mode = mode
        self._refilter()

    def set_search_text(self, text: str) -> None:
        """Keep only rows whose title or body contains ``text`` (ignoring case)."""
        needle = text.strip().casefold()
        if needle == self._needle:
            return
        self._needle = needle
        self._refilter()

    def _refilter(self) -> None:
        # invalidate() rebuilds the mapping behind one layoutChanged. The finer
        # begin/endFilterChange emits one rowsInserted per run of rows that appear,
        # which for interleaved chat/other rows is tens of thousands of signals
        # (seconds with 100,000 rows instead of milliseconds).
        self.invalidate()

    def category(self) -> str | None:
        """The category to pass to ``mark_all_read`` for this tab (None for all / other)."""
        return CHAT_CATEGORY if self._mode == "chat" else None

    def accepts(self, item: Notification) -> bool:
        """Whether a notification passes the current tab and search."""
        is_chat = item.category == CHAT_CATEGORY
        if self._mode == "chat" and not is_chat:
            return False
        if self._mode == "other" and is_chat:
            return False
        if self._needle:
            return self._needle in item.title.casefold() or self._needle in item.body.casefold()
        return True

    def filterAcceptsRow(self, source_row: int, source_parent: ModelIndex) -> bool:
        """Qt hook: read the notification straight from the source, no role lookups."""
        source = self.sourceModel()
        if isinstance(source, NotificationListModel):
            return self.accepts(source.notification_at(source_row))
        item = source.index(source_row, 0, source_parent).data(Role.Notification)
        return isinstance(item, Notification) and self.accepts(item)
