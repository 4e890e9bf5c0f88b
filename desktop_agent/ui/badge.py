"""The tray icon: a bell with a red unread badge, painted for each size and pixel ratio.

Painted with QPainterPath (no image files) into a pixmap of ``size * dpr`` device
pixels, so it stays crisp from 16 px to 64 px and on HiDPI screens. Three looks:

- ``"normal"``: a golden bell; a red badge with the count when there is one;
- ``"dnd"``: the bell muted, a blue crescent moon in the corner (the badge stays, so
  the count is still visible);
- ``"waiting"``: the bell turns alarm orange: a visitor waits past the first
  escalation step (the badge stays);
- ``"disconnected"``: everything in greys with a slash through the bell, so a stale
  count can never be mistaken for a live one.
"""

from __future__ import annotations

from typing import Literal

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QIcon, QPainter, QPainterPath, QPen, QPixmap

from desktop_agent.ui.icons import bell_path, moon_path

IconState = Literal["normal", "dnd", "disconnected", "waiting"]

ICON_SIZES = (16, 20, 22, 24, 32, 48, 64)
"""Logical sizes put into the tray QIcon (each also at @2x)."""

BELL_GOLD = QColor("#f2b01e")
BELL_OUTLINE = QColor("#5c4204")
BADGE_RED = QColor("#e11d2a")
MOON_BLUE = QColor("#3b6fe0")
BELL_ALARM = QColor("#f97316")
GREY_FILL = QColor("#a3a3a3")
GREY_DARK = QColor("#4a4a4a")


DOT_BELOW_PX = 20
"""Under this many device pixels the badge is a dot: no digit would be readable."""
ONE_DIGIT_BELOW_PX = 32
"""Under this many device pixels the badge holds one digit ("9+" above 9), drawn large."""


def badge_text(count: int, pixels: float = ONE_DIGIT_BELOW_PX) -> str:
    """The text of the unread badge on an icon of ``pixels`` device pixels.

    "" for 0 (or less), and for any count under :data:`DOT_BELOW_PX` (a plain dot
    then); one digit or "9+" under :data:`ONE_DIGIT_BELOW_PX`, where two digits
    would be ~5 px tall; else "1".."99", then "99+". The tooltip has the exact count.
    """
    if count <= 0 or pixels < DOT_BELOW_PX:
        return ""
    if pixels < ONE_DIGIT_BELOW_PX:
        return str(count) if count < 10 else "9+"
    return str(count) if count < 100 else "99+"


def badge_font(text: str, size: float) -> QFont:
    """The bold font of the badge text on an icon of ``size`` logical pixels."""
    font = QFont()
    font.setBold(True)
    font.setWeight(QFont.Weight.Black)
    font.setPixelSize(max(6, round(_badge_height(size) * (0.82 if len(text) < 3 else 0.66))))
    return font


def _badge_height(size: float) -> float:
    return max(8.0, size * 0.58)


def render_tray_icon(
    count: int, state: IconState, size: int, device_pixel_ratio: float = 1.0
) -> QPixmap:
    """Paint the tray icon.

    Args:
        count: unread count shown on the badge (0: no badge).
        state: ``"normal"``, ``"dnd"`` or ``"disconnected"``.
        size: logical size in pixels (square).
        device_pixel_ratio: screen scale; the pixmap has ``round(size * dpr)`` pixels.

    Returns:
        A transparent square pixmap with ``devicePixelRatio`` set.

    Raises:
        ValueError: unknown state or a size below 8.
    """
    if state not in ("normal", "dnd", "disconnected", "waiting"):
        raise ValueError(f"unknown icon state {state!r}; use normal, dnd, disconnected or waiting")
    if size < 8:
        raise ValueError("icon size must be at least 8 px")
    pixels = max(1, round(size * device_pixel_ratio))
    pixmap = QPixmap(pixels, pixels)
    pixmap.setDevicePixelRatio(device_pixel_ratio)
    pixmap.fill(Qt.GlobalColor.transparent)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
    s = float(size)
    text = badge_text(count, size * device_pixel_ratio)
    badge = count > 0
    # With a badge, the bell shrinks towards the bottom left to leave the corner free.
    bell_box = (
        QRectF(0, s * 0.10, s * 0.84, s * 0.84)
        if badge
        else QRectF(s * 0.04, s * 0.04, s * 0.92, s * 0.92)
    )
    _paint_bell(painter, bell_box, state)
    if state == "dnd":
        _paint_moon(painter, s)
    elif state == "disconnected":
        _paint_slash(painter, bell_box)
    if text:
        _paint_badge(painter, s, text, grey=state == "disconnected")
    elif badge:
        _paint_dot(painter, s, grey=state == "disconnected")
    painter.end()
    return pixmap


def make_tray_icon(count: int, state: IconState) -> QIcon:
    """A QIcon holding the tray icon at every size of :data:`ICON_SIZES`, at 1x and 2x."""
    icon = QIcon()
    for size in ICON_SIZES:
        for dpr in (1.0, 2.0):
            icon.addPixmap(render_tray_icon(count, state, size, dpr))
    return icon


def _paint_bell(painter: QPainter, box: QRectF, state: IconState) -> None:
    fill = GREY_FILL if state == "disconnected" else BELL_GOLD
    if state == "waiting":
        fill = BELL_ALARM
    if state == "dnd":
        fill = QColor("#c9b27a")  # muted gold: still a bell, clearly quieter
    outline = GREY_DARK if state == "disconnected" else BELL_OUTLINE
    pen = QPen(outline, max(1.0, box.width() / 18))
    pen.setJoinStyle(Qt.PenJoinStyle.RoundJoin)
    painter.setPen(pen)
    painter.setBrush(fill)
    painter.drawPath(bell_path(box))


def _paint_slash(painter: QPainter, box: QRectF) -> None:
    width = max(1.5, box.width() / 9)
    start = QPointF(box.left() + box.width() * 0.1, box.top() + box.height() * 0.1)
    end = QPointF(box.right() - box.width() * 0.1, box.bottom() - box.height() * 0.05)
    # a light halo first, so the slash reads on the grey bell and on dark panels
    painter.setPen(
        QPen(QColor("#f2f2f2"), width * 2.0, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap)
    )
    painter.drawLine(start, end)
    painter.setPen(QPen(GREY_DARK, width, Qt.PenStyle.SolidLine, Qt.PenCapStyle.RoundCap))
    painter.drawLine(start, end)


def _paint_moon(painter: QPainter, s: float) -> None:
    box = QRectF(0, s * 0.52, s * 0.46, s * 0.46)
    painter.setPen(QPen(QColor("white"), max(1.0, s / 24)))
    painter.setBrush(MOON_BLUE)
    painter.drawPath(moon_path(box))


def _paint_badge(painter: QPainter, s: float, text: str, *, grey: bool) -> None:
    # As tall as the corner allows, the digits in a heavy weight: at 22 px a digit is
    # about 9 px tall (it was 5 px with two digits and a thinner font).
    height = _badge_height(s)
    font = badge_font(text, s)
    metrics = QFontMetricsF(font)
    width = max(height, metrics.horizontalAdvance(text) + height * 0.36)
    width = min(width, s)
    pill = QRectF(s - width, 0, width, height)
    path = QPainterPath()
    path.addRoundedRect(pill, height / 2, height / 2)
    painter.setPen(QPen(QColor("white"), max(1.0, s / 32)))
    painter.setBrush(GREY_DARK if grey else BADGE_RED)
    painter.drawPath(path)
    painter.setPen(QColor("white"))
    painter.setFont(font)
    painter.drawText(pill, Qt.AlignmentFlag.AlignCenter, text)


def _paint_dot(painter: QPainter, s: float, *, grey: bool) -> None:
    diameter = s * 0.5
    painter.setPen(QPen(QColor("white"), max(1.0, s / 16)))
    painter.setBrush(GREY_DARK if grey else BADGE_RED)
    painter.drawEllipse(QRectF(s - diameter, 0, diameter, diameter))
