"""A conversation transcript as a list model, and the delegate that paints its bubbles.

Rows are keyed by message id; the agent's own replies are added before the server has
them (keyed by their ``client_msg_id``) and carry a reply state: ``"sending"``,
``"sent"`` or ``"failed"``. Text is laid out with QTextLayout on plain strings:
visitor markup stays literal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import datetime
from enum import IntEnum
from typing import Any, Literal

from PySide6.QtCore import (
    QAbstractListModel,
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPointF,
    QRectF,
    QSize,
    Qt,
)
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPalette, QTextLayout, QTextOption
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem, QWidget

from backend.protocol import Message
from desktop_agent.ui.notification_model import parse_timestamp

ReplyState = Literal["sending", "sent", "failed"]
ModelIndex = QModelIndex | QPersistentModelIndex
Clock = Callable[[], datetime]

STATE_TEXT: dict[str, str] = {
    "sending": "Sending…",
    "sent": "Sent",
    "failed": "Not sent. Retry below, or double-click this reply.",
}


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


# ------------------------------------------------------------------- painting

VISITOR_BUBBLE = QColor("#eceff3")
OWN_BUBBLE = QColor("#dbe8ff")
AGENT_BUBBLE = QColor("#dcf3e4")
FAILED_TEXT = QColor("#b91c1c")


def layout_plain_text(text: str, font: QFont, width: float) -> tuple[QTextLayout, float, float]:
    """Lay out plain text wrapped to ``width``.

    Returns the layout, its height and its widest line. Newlines become line breaks;
    long words break anywhere rather than overflow.
    """
    layout = QTextLayout(text.replace("\r\n", "\n").replace("\n", "\u2028"), font)
    option = QTextOption()
    option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
    layout.setTextOption(option)
    layout.beginLayout()
    height = 0.0
    widest = 0.0
    while True:
        line = layout.createLine()
        if not line.isValid():
            break
        line.setLineWidth(max(10.0, width))
        line.setPosition(QPointF(0, height))
        height += line.height()
        widest = max(widest, line.naturalTextWidth())
    layout.endLayout()
    return layout, height, widest


def format_time(created: datetime | None, now: datetime) -> str:
    """ "14:02" today, "9 Mar 14:02" on other days (in ``now``'s timezone)."""
    if created is None:
        return ""
    if created.tzinfo is not None and now.tzinfo is not None:
        created = created.astimezone(now.tzinfo)
    clock = f"{created.hour:02d}:{created.minute:02d}"
    if created.date() == now.date():
        return clock
    return f"{created.day} {created.strftime('%b')} {clock}"


class TranscriptDelegate(QStyledItemDelegate):
    """Paints messages as bubbles: visitor on the left, agents on the right, system centred.

    Each bubble has a header (name and time); own replies show their state under it.
    """

    PAD = 8.0
    MARGIN = 10.0

    def __init__(self, view: QWidget, clock: Clock, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._view = view
        self._clock = clock

    def _width(self, option: QStyleOptionViewItem) -> float:
        rect = option.rect
        width = rect.width() if rect.isValid() and rect.width() > 0 else self._view.width()
        return float(max(200, width))

    def _bubble_width(self, total: float) -> float:
        return total * 0.78 - 2 * self.PAD

    def _lines(
        self, option: QStyleOptionViewItem, index: ModelIndex
    ) -> tuple[QFont, QFont, str, str]:
        base = QFont(option.font)
        small = QFont(base)
        small.setPointSizeF(max(6.0, base.pointSizeF() * 0.85))
        name = str(index.data(TranscriptRole.AuthorName) or "")
        time_text = format_time(index.data(TranscriptRole.Created), self._clock())
        header = f"{name} · {time_text}" if time_text else name
        state = index.data(TranscriptRole.State)
        footer = STATE_TEXT.get(state, "") if state else ""
        return base, small, header, footer

    def layout_for(self, option: QStyleOptionViewItem, index: ModelIndex) -> QTextLayout:
        """The body layout used to paint a row (tests read its text)."""
        base = QFont(option.font)
        body = str(index.data(TranscriptRole.Body) or "")
        return layout_plain_text(body, base, self._bubble_width(self._width(option)))[0]

    def sizeHint(self, option: QStyleOptionViewItem, index: ModelIndex) -> QSize:
        """Height of header, wrapped body and state line, for the view's width."""
        width = self._width(option)
        base, small, _header, footer = self._lines(option, index)
        body = str(index.data(TranscriptRole.Body) or "")
        _, body_height, _ = layout_plain_text(body, base, self._bubble_width(width))
        small_line = QFontMetricsF(small).height()
        height = small_line + body_height + 2 * self.PAD + self.MARGIN
        if footer:
            height += small_line
        return QSize(int(width), int(height + 1))

    def paint(self, painter: QPainter, option: QStyleOptionViewItem, index: ModelIndex) -> None:
        """Draw the bubble for one message."""
        rect = QRectF(option.rect)
        palette: QPalette = option.palette
        base, small, header, footer = self._lines(option, index)
        kind = index.data(TranscriptRole.AuthorKind)
        own = bool(index.data(TranscriptRole.Own))
        state = index.data(TranscriptRole.State)
        body = str(index.data(TranscriptRole.Body) or "")
        layout, body_height, widest = layout_plain_text(
            body, base, self._bubble_width(rect.width())
        )
        small_metrics = QFontMetricsF(small)
        header_font = QFont(small)
        header_font.setBold(True)
        header_metrics = QFontMetricsF(header_font)
        bubble_width = max(widest, header_metrics.horizontalAdvance(header) + 1) + 2 * self.PAD
        bubble_width = min(bubble_width, rect.width() * 0.78)
        if kind == "system":
            left = rect.left() + (rect.width() - bubble_width) / 2
        elif kind == "visitor":
            left = rect.left() + self.MARGIN
        else:
            left = rect.right() - self.MARGIN - bubble_width
        top = rect.top() + self.MARGIN / 2
        bubble = QRectF(
            left, top, bubble_width, small_metrics.height() + body_height + 2 * self.PAD
        )

        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        if kind != "system":
            colour = VISITOR_BUBBLE if kind == "visitor" else OWN_BUBBLE if own else AGENT_BUBBLE
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(colour)
            painter.drawRoundedRect(bubble, 10, 10)
        text_colour = (
            QColor("#1f2328")
            if kind != "system"
            else palette.color(QPalette.ColorRole.PlaceholderText)
        )
        painter.setFont(header_font)
        painter.setPen(text_colour)
        header_rect = QRectF(
            bubble.left() + self.PAD,
            bubble.top() + self.PAD / 2,
            bubble.width() - 2 * self.PAD,
            small_metrics.height(),
        )
        painter.drawText(
            header_rect,
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            header_metrics.elidedText(header, Qt.TextElideMode.ElideRight, header_rect.width()),
        )
        painter.setPen(text_colour)
        layout.draw(painter, QPointF(bubble.left() + self.PAD, header_rect.bottom() + self.PAD / 2))
        if footer:
            painter.setFont(small)
            painter.setPen(
                FAILED_TEXT
                if state == "failed"
                else palette.color(QPalette.ColorRole.PlaceholderText)
            )
            footer_rect = QRectF(
                rect.left() + self.MARGIN,
                bubble.bottom() + 1,
                rect.width() - 2 * self.MARGIN,
                small_metrics.height(),
            )
            painter.drawText(
                footer_rect, Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter, footer
            )
        painter.restore()
