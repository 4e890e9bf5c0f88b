"""NotificationDelegate: what it paints for a row, and the relative time wording."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PySide6.QtCore import QRect
from PySide6.QtGui import QColor, QImage, QPainter
from PySide6.QtWidgets import QStyleOptionViewItem

from backend.protocol import Notification
from desktop_agent.ui.delegate import NotificationDelegate, one_line, relative_time
from desktop_agent.ui.notification_model import NotificationListModel

NOW = datetime(2026, 3, 10, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("then", "text"),
    [
        (NOW - timedelta(seconds=20), "just now"),
        (NOW + timedelta(minutes=3), "just now"),
        (NOW - timedelta(minutes=5), "5 min"),
        (NOW - timedelta(minutes=59, seconds=59), "59 min"),
        (NOW - timedelta(hours=2, minutes=10), "2 h"),
        (NOW - timedelta(hours=16), "yesterday"),
        (NOW - timedelta(days=1, hours=5), "yesterday"),
        (NOW - timedelta(days=3), "7 Mar"),
        (datetime(2025, 12, 24, 9, 0, tzinfo=UTC), "24 Dec 2025"),
        (None, ""),
    ],
)
def test_relative_time(then: datetime | None, text: str) -> None:
    assert relative_time(then, NOW) == text


def test_relative_time_counts_days_in_the_local_timezone() -> None:
    from datetime import timezone

    tokyo = timezone(timedelta(hours=9))
    now = datetime(2026, 3, 10, 10, 0, tzinfo=tokyo)  # 01:00 UTC on the 10th
    assert relative_time(datetime(2026, 3, 9, 23, 0, tzinfo=UTC), now) == "2 h"
    assert relative_time(datetime(2026, 3, 9, 14, 0, tzinfo=UTC), now) == "yesterday"


def test_preview_is_one_line() -> None:
    assert one_line("first line\nsecond\tline  ") == "first line second line"


class RecordingPainter(QPainter):
    """A painter that remembers every string drawn and the font it was drawn with."""

    def __init__(self, device: QImage) -> None:
        super().__init__(device)
        self.texts: list[tuple[str, bool]] = []

    def drawText(self, *args: Any) -> None:  # type: ignore[override]
        self.texts.append((args[-1], self.font().bold()))
        super().drawText(*args)


def paint_row(item: Notification) -> tuple[RecordingPainter, QImage]:
    model = NotificationListModel()
    model.upsert([item])
    delegate = NotificationDelegate(clock=lambda: NOW)
    option = QStyleOptionViewItem()
    option.rect = QRect(0, 0, 600, 48)
    image = QImage(600, 48, QImage.Format.Format_ARGB32)
    image.fill(QColor("white"))
    painter = RecordingPainter(image)
    delegate.paint(painter, option, model.index(0, 0))
    painter.end()
    return painter, image


def test_row_paints_title_preview_and_time(
    qapp: Any, make_notification: Callable[..., Notification]
) -> None:
    painter, _ = paint_row(
        make_notification(1, title="Dana Smith · Support", body="Where is\nmy order?")
    )
    drawn = [text for text, _ in painter.texts]
    assert drawn == ["Dana Smith · Support", "5 min", "Where is my order?"]


def test_visitor_markup_is_painted_literally(
    qapp: Any, make_notification: Callable[..., Notification]
) -> None:
    painter, _ = paint_row(
        make_notification(1, title="<b>x</b>", body="<i>hi</i> &amp; <a href='x'>y</a>")
    )
    drawn = [text for text, _ in painter.texts]
    assert "<b>x</b>" in drawn
    assert "<i>hi</i> &amp; <a href='x'>y</a>" in drawn


def test_unread_title_is_bold_with_an_accent_dot(
    qapp: Any, make_notification: Callable[..., Notification]
) -> None:
    unread_painter, unread_image = paint_row(make_notification(1, read=False))
    read_painter, read_image = paint_row(make_notification(1, read=True))
    assert unread_painter.texts[0][1] is True
    assert read_painter.texts[0][1] is False
    dot = unread_image.pixelColor(8, 24)
    assert dot.blue() > 200 and dot.red() < 100  # the accent dot
    assert read_image.pixelColor(8, 24) == QColor("white")


def count_colour(image: QImage, test: Callable[[QColor], bool]) -> int:
    return sum(
        1 for y in range(image.height()) for x in range(0, 60) if test(image.pixelColor(x, y))
    )


def test_chat_and_other_rows_have_different_kind_icons(
    qapp: Any, make_notification: Callable[..., Notification]
) -> None:
    _, chat = paint_row(make_notification(1))
    _, ticket = paint_row(make_notification(2, category="ticket"))

    def green(c: QColor) -> bool:
        return c.green() > 130 and c.red() < 60 and c.blue() < 120

    def purple(c: QColor) -> bool:
        return c.red() > 90 and c.blue() > 200 and c.green() < 90

    assert count_colour(chat, green) > 100 and count_colour(chat, purple) == 0
    assert count_colour(ticket, purple) > 100 and count_colour(ticket, green) == 0
