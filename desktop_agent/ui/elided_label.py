"""A one-line label that elides its text to the width it gets, instead of widening.

A plain ``QLabel`` asks its layout for the width of its whole text, so a 120-character
visitor name makes a window wider than the screen and the window cannot be narrowed.
This label asks for little, shows as much as fits with "…", and keeps the whole text
in its tooltip.
"""

from __future__ import annotations

from PySide6.QtCore import QSize, Qt
from PySide6.QtGui import QPainter, QPaintEvent
from PySide6.QtWidgets import QLabel, QSizePolicy, QWidget

from desktop_agent.core.display_text import without_format_controls

MIN_CHARS = 8
"""The narrowest the label gets, in average character widths."""
MAX_HINT_PX = 320
"""The widest the label asks to be by default; it gets more only when its layout has room."""


class ElidedLabel(QLabel):
    """A plain-text, one-line label that elides to fit its width (on the right by default).

    ``text()`` is the whole text; :meth:`shown_text` is what is painted.

    Args:
        text: the text.
        max_hint: the widest the label asks to be, in pixels.
        min_chars: the narrowest it gets, in average character widths (a text this
            short is never cut, e.g. "Assigned to you").
        mode: where the "…" goes (middle suits addresses, whose ends both matter).
    """

    def __init__(
        self,
        text: str = "",
        parent: QWidget | None = None,
        *,
        max_hint: int = MAX_HINT_PX,
        mode: Qt.TextElideMode = Qt.TextElideMode.ElideRight,
        min_chars: int = MIN_CHARS,
    ) -> None:
        super().__init__(parent)
        self._max_hint = max_hint
        self._min_chars = min_chars
        self._mode = mode
        self.setTextFormat(Qt.TextFormat.PlainText)
        self.setWordWrap(False)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Fixed)
        self.setText(text)

    def setText(self, text: str) -> None:
        """Show ``text`` (elided as needed); the whole text goes to the tooltip."""
        super().setText(text)
        self.setToolTip(without_format_controls(text))
        self.updateGeometry()
        self.update()

    def shown_text(self) -> str:
        """The text as painted at the current width."""
        return self.fontMetrics().elidedText(
            self.text(), self._mode, max(self.contentsRect().width(), 0)
        )

    def is_elided(self) -> bool:
        """Whether the current width cuts the text."""
        return self.shown_text() != self.text()

    def sizeHint(self) -> QSize:
        """The whole text's width, capped at ``max_hint``."""
        margins = self.contentsMargins()
        width = self.fontMetrics().horizontalAdvance(self.text()) + 2
        extra = margins.left() + margins.right()
        return QSize(min(width, self._max_hint) + extra, super().sizeHint().height())

    def minimumSizeHint(self) -> QSize:
        """A few characters wide: the label gives way before anything else in its row."""
        width = min(
            self.fontMetrics().averageCharWidth() * self._min_chars, self.sizeHint().width()
        )
        return QSize(width, super().minimumSizeHint().height())

    def paintEvent(self, event: QPaintEvent) -> None:
        """Paint the elided text with the label's alignment and palette."""
        painter = QPainter(self)
        painter.setPen(self.palette().color(self.foregroundRole()))
        painter.drawText(self.contentsRect(), int(self.alignment()), self.shown_text())
