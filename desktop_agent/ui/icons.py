"""Vector glyphs drawn with QPainterPath: crisp at any size and any pixel ratio.

Every function takes the square (in logical pixels) the glyph must fill and returns a
path; callers pick pens and brushes. No image files, so nothing blurs on HiDPI.
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, QRectF
from PySide6.QtGui import QPainterPath


def chat_bubble_path(box: QRectF) -> QPainterPath:
    """A rounded speech bubble with a tail at the bottom left."""
    w, h = box.width(), box.height()
    body = QRectF(box.left(), box.top() + h * 0.08, w, h * 0.70)
    path = QPainterPath()
    path.addRoundedRect(body, w * 0.22, h * 0.22)
    tail = QPainterPath()
    tail.moveTo(box.left() + w * 0.22, body.bottom() - 1)
    tail.lineTo(box.left() + w * 0.14, box.top() + h * 0.98)
    tail.lineTo(box.left() + w * 0.48, body.bottom() - 1)
    tail.closeSubpath()
    return path.united(tail)


def ticket_path(box: QRectF) -> QPainterPath:
    """A ticket stub: a rectangle with a round notch on each side."""
    w, h = box.width(), box.height()
    body = QRectF(box.left(), box.top() + h * 0.18, w, h * 0.64)
    path = QPainterPath()
    path.addRoundedRect(body, w * 0.08, w * 0.08)
    notch = h * 0.13
    for x in (body.left(), body.right()):
        hole = QPainterPath()
        hole.addEllipse(QPointF(x, body.center().y()), notch, notch)
        path = path.subtracted(hole)
    return path


def bell_path(box: QRectF) -> QPainterPath:
    """A desk bell seen from the side: dome, flared rim, knob on top, clapper below."""
    w, h = box.width(), box.height()
    x0, y0 = box.left(), box.top()
    cx = x0 + w / 2
    rim_y = y0 + h * 0.78
    path = QPainterPath()
    path.moveTo(x0 + w * 0.08, rim_y)
    # left flank up to the shoulder, then the dome, then down the right flank
    path.cubicTo(
        x0 + w * 0.20, rim_y - h * 0.06, x0 + w * 0.20, y0 + h * 0.50, x0 + w * 0.22, y0 + h * 0.40
    )
    path.cubicTo(x0 + w * 0.25, y0 + h * 0.18, cx - w * 0.10, y0 + h * 0.13, cx, y0 + h * 0.13)
    path.cubicTo(
        cx + w * 0.10, y0 + h * 0.13, x0 + w * 0.75, y0 + h * 0.18, x0 + w * 0.78, y0 + h * 0.40
    )
    path.cubicTo(
        x0 + w * 0.80, y0 + h * 0.50, x0 + w * 0.80, rim_y - h * 0.06, x0 + w * 0.92, rim_y
    )
    path.closeSubpath()
    knob = QPainterPath()
    knob.addEllipse(QPointF(cx, y0 + h * 0.10), w * 0.07, w * 0.07)
    clapper = QPainterPath()
    clapper.addEllipse(QPointF(cx, rim_y + h * 0.08), w * 0.11, h * 0.09)
    return path.united(knob).united(clapper)


def moon_path(box: QRectF) -> QPainterPath:
    """A crescent moon (do not disturb)."""
    outer = QPainterPath()
    outer.addEllipse(box)
    bite = QPainterPath()
    shift = box.width() * 0.38
    bite.addEllipse(box.translated(shift, -shift * 0.6))
    return outer.subtracted(bite)
