"""Painting one notification row: kind icon, title, one-line preview, relative time.

Text is painted with ``QPainter.drawText`` on plain strings, so visitor text such as
``<b>x</b>`` shows literally; nothing here ever goes through a rich-text engine.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable
from datetime import datetime, timedelta

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPointF,
    QRect,
    QRectF,
    QSize,
    Qt,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QPainter, QPalette
from PySide6.QtWidgets import QStyle, QStyledItemDelegate, QStyleOptionViewItem

from desktop_agent.core.display_text import UNNAMED_VISITOR, isolate_within, one_line
from desktop_agent.ui.icons import chat_bubble_path, ticket_path
from desktop_agent.ui.notification_model import Role

Clock = Callable[[], datetime]

ACCENT = QColor("#2563eb")
CHAT_COLOUR = QColor("#16a34a")
OTHER_COLOUR = QColor("#7c3aed")


def local_now() -> datetime:
    """The current local time, timezone-aware (the default clock)."""
    return datetime.now().astimezone()


def relative_time(then: datetime | None, now: datetime) -> str:
    """Say how long ago ``then`` was, for a person scanning a list.

    Returns "just now" (under a minute, or in the future by clock skew), "N min"
    (under an hour), "N h" (earlier the same day), "yesterday", then a date ("3 Mar",
    with the year when it is not this year). Days are counted in ``now``'s timezone.
    """
    if then is None:
        return ""
    if then.tzinfo is not None and now.tzinfo is not None:
        then = then.astimezone(now.tzinfo)
    age = now - then
    if age < timedelta(minutes=1):
        return "just now"
    if age < timedelta(hours=1):
        return f"{int(age.total_seconds() // 60)} min"
    days = (now.date() - then.date()).days
    if days == 0:
        return f"{int(age.total_seconds() // 3600)} h"
    if days == 1:
        return "yesterday"
    text = f"{then.day} {calendar.month_abbr[then.month]}"
    return text if then.year == now.year else f"{text} {then.year}"


def row_title(title: str, data: object, is_chat: bool) -> str:
    """A row's title as shown: one line, never blank, the visitor's name isolated.

    ``data`` is the notification's ``data``; its ``visitor_name`` (when the title holds
    it) is made a bidirectional isolate, so an Arabic or Hebrew name neither reorders
    the English around it nor right-aligns the row.
    """
    text = one_line(title)
    visitor = data.get("visitor_name") if isinstance(data, dict) else None
    if not text:
        return UNNAMED_VISITOR if is_chat else "(no title)"
    if isinstance(visitor, str) and one_line(visitor) and one_line(visitor) in text:
        return isolate_within(text, one_line(visitor))
    return text


class NotificationDelegate(QStyledItemDelegate):
    """Paints a notification row. Unread rows are bold with an accent dot.

    Args:
        clock: returns "now" as an aware datetime; injected so tests see fixed times.
    """

    def __init__(self, clock: Clock = local_now, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._clock = clock

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        """Two text lines plus padding; the same for every row (uniform item sizes)."""
        line = QFontMetrics(option.font).height()
        return QSize(320, line * 2 + 16)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        """Draw the row into ``option.rect``."""
        rect: QRect = option.rect
        palette: QPalette = option.palette
        state = option.state
        selected = bool(state & QStyle.StateFlag.State_Selected)
        unread = not index.data(Role.Read)
        is_chat = bool(index.data(Role.IsChat))

        painter.save()
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        # The row's direction is the view's, never guessed from a visitor's text.
        painter.setLayoutDirection(option.direction)
        if selected:
            painter.fillRect(rect, palette.color(QPalette.ColorRole.Highlight))
        elif state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(rect, palette.color(QPalette.ColorRole.AlternateBase))
        text_colour = palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        )
        muted = QColor(text_colour)
        muted.setAlphaF(0.65)

        pad = 8
        icon_size = min(rect.height() - 2 * pad, 28)
        icon_box = QRectF(
            rect.left() + pad + 10, rect.center().y() - icon_size / 2, icon_size, icon_size
        )
        self._paint_icon(painter, icon_box, is_chat)
        if unread:
            painter.setPen(Qt.PenStyle.NoPen)
            painter.setBrush(ACCENT if not selected else text_colour)
            painter.drawEllipse(QPointF(rect.left() + pad, rect.center().y()), 3.5, 3.5)

        base: QFont = QFont(option.font)
        title_font = QFont(base)
        title_font.setBold(unread)
        time_text = relative_time(index.data(Role.Created), self._clock())
        metrics = QFontMetrics(base)
        time_width = metrics.horizontalAdvance(time_text) + pad
        left = int(icon_box.right()) + pad + 2
        line = metrics.height()
        top = rect.top() + (rect.height() - 2 * line) // 2
        title_rect = QRect(left, top, rect.right() - left - time_width - pad, line)
        body_rect = QRect(left, top + line, rect.right() - left - pad, line)

        painter.setFont(title_font)
        painter.setPen(text_colour)
        title = QFontMetrics(title_font).elidedText(
            row_title(str(index.data(Role.Title) or ""), index.data(Role.Data), is_chat),
            Qt.TextElideMode.ElideRight,
            title_rect.width(),
        )
        painter.drawText(
            title_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, title
        )

        painter.setFont(base)
        painter.setPen(text_colour if unread else muted)
        painter.drawText(
            QRect(rect.right() - time_width - pad, top, time_width, line),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            time_text,
        )
        painter.setPen(muted)
        body = metrics.elidedText(
            one_line(str(index.data(Role.Body) or "")),
            Qt.TextElideMode.ElideRight,
            body_rect.width(),
        )
        painter.drawText(
            body_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter, body
        )
        painter.restore()

    @staticmethod
    def _paint_icon(painter: QPainter, box: QRectF, is_chat: bool) -> None:
        colour = CHAT_COLOUR if is_chat else OTHER_COLOUR
        path = chat_bubble_path(box) if is_chat else ticket_path(box)
        painter.setPen(Qt.PenStyle.NoPen)
        painter.setBrush(colour)
        painter.drawPath(path)
        if is_chat:
            # three dots: "someone is talking"
            painter.setBrush(QColor("white"))
            r = box.width() * 0.07
            y = box.top() + box.height() * 0.43
            for fx in (0.3, 0.5, 0.7):
                painter.drawEllipse(QPointF(box.left() + box.width() * fx, y), r, r)
