"""Painting a transcript row: a bubble with name, time, the text, and an own reply's state.

Visitor bubbles sit on the left, agents' on the right (the signed-in agent's in blue),
system messages centred without a bubble. Bodies are laid out with QTextLayout on plain
strings, so visitor markup is shown literally.
"""

from __future__ import annotations

from datetime import datetime

from PySide6.QtCore import QObject, QPointF, QRectF, QSize, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPalette, QTextLayout, QTextOption
from PySide6.QtWidgets import QStyledItemDelegate, QStyleOptionViewItem, QWidget

from desktop_agent.core.display_text import display_name, isolate
from desktop_agent.ui.transcript import Clock, ModelIndex, TranscriptRole

STATE_TEXT: dict[str, str] = {
    "waiting": "Waiting for the connection; it is sent once Deskbell is back online.",
    "sending": "Sending…",
    "sent": "Sent",
    "failed": "Not sent. Retry below, or double-click this reply.",
}

VISITOR_BUBBLE = QColor("#eceff3")
OWN_BUBBLE = QColor("#dbe8ff")
AGENT_BUBBLE = QColor("#dcf3e4")
FAILED_TEXT = QColor("#b91c1c")


def fit_header(name: str, time_text: str, metrics: QFontMetricsF, width: float) -> str:
    """The bubble header "name · time" in ``width``: the name gives way, the time stays.

    The name is a bidirectional isolate, so an Arabic name keeps the time on its right.
    """
    suffix = f" · {time_text}" if time_text else ""
    room = max(0.0, width - metrics.horizontalAdvance(suffix))
    return isolate(metrics.elidedText(name, Qt.TextElideMode.ElideRight, room)) + suffix


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
        name = display_name(str(index.data(TranscriptRole.AuthorName) or ""))
        time_text = format_time(index.data(TranscriptRole.Created), self._clock())
        header = f"{isolate(name)} · {time_text}" if time_text else isolate(name)
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
            fit_header(
                display_name(str(index.data(TranscriptRole.AuthorName) or "")),
                format_time(index.data(TranscriptRole.Created), self._clock()),
                header_metrics,
                header_rect.width(),
            ),
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
