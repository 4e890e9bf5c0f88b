"""Keeps a list still while the person is using it, however many rows arrive above.

New notifications are inserted at the top. A list that moves them in under the
pointer turns a click on one row into a click on another; so while the pointer is
over the list, a row is selected, or the list is scrolled away from its top, rows
inserted above the first visible row leave the visible rows where they are, and
:class:`ViewportAnchor` counts them for a "N new" button instead.
"""

from __future__ import annotations

from PySide6.QtCore import QEvent, QModelIndex, QObject, QPersistentModelIndex, QPoint, Signal
from PySide6.QtWidgets import QListView

ModelIndex = QModelIndex | QPersistentModelIndex


class ViewportAnchor(QObject):
    """Anchors ``view``'s visible rows against inserts above them.

    Call :meth:`scroll_to_newest` to jump to the top (the "N new" button does).

    Signals:
        newAboveChanged(int): rows inserted above the visible ones since the list was
            last at its top (0 once it is back at the top).
    """

    newAboveChanged = Signal(int)

    def __init__(self, view: QListView, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._view = view
        self._pointer_over = False
        self._anchor: tuple[QPersistentModelIndex, int] | None = None
        self._new_above = 0
        view.viewport().installEventFilter(self)
        view.verticalScrollBar().valueChanged.connect(self._on_scrolled)
        self._model: QObject | None = None
        self.watch_model()

    @property
    def new_above(self) -> int:
        """Rows that arrived above the visible ones and have not been scrolled to."""
        return self._new_above

    def watch_model(self) -> None:
        """Follow the view's current model (call again after ``setModel``)."""
        model = self._view.model()
        if model is self._model or model is None:
            return
        self._model = model
        model.rowsAboutToBeInserted.connect(self._before_insert)
        model.rowsInserted.connect(self._after_insert)
        model.modelReset.connect(self.reset)
        model.layoutChanged.connect(self.reset)

    def holding(self) -> bool:
        """Whether inserts above would now be kept out of sight (not while hidden: nobody
        is looking, and a hidden list need not lay out 100,000 rows at every insert)."""
        view = self._view
        return view.isVisible() and (
            self._pointer_over
            or view.selectionModel().hasSelection()
            or view.verticalScrollBar().value() > 0
        )

    def scroll_to_newest(self) -> None:
        """Show the top of the list (the newest rows); the count goes back to 0."""
        self._view.scrollToTop()
        self._set_new_above(0)

    def reset(self) -> None:
        """Forget the count (the list was reset or refiltered)."""
        self._anchor = None
        self._set_new_above(0)

    def eventFilter(self, watched: QObject, event: QEvent) -> bool:
        """Track whether the pointer is over the list's viewport."""
        if event.type() == QEvent.Type.Enter:
            self._pointer_over = True
        elif event.type() == QEvent.Type.Leave:
            self._pointer_over = False
        return False

    def _before_insert(self, parent: ModelIndex, first: int, _last: int) -> None:
        self._anchor = None
        if parent.isValid() or not self.holding():
            return
        top = self._view.indexAt(QPoint(1, 1))
        if top.isValid() and first <= top.row():
            self._anchor = (QPersistentModelIndex(top), self._view.visualRect(top).top())

    def _after_insert(self, parent: ModelIndex, first: int, last: int) -> None:
        anchor, self._anchor = self._anchor, None
        if anchor is None or parent.isValid():
            return
        index, old_top = anchor
        view = self._view
        view.doItemsLayout()  # the view lays out lazily; the new rows need positions now
        new_top = view.visualRect(view.model().index(index.row(), 0)).top()
        bar = view.verticalScrollBar()
        bar.setValue(bar.value() + new_top - old_top)
        self._set_new_above(self._new_above + last - first + 1)

    def _on_scrolled(self, value: int) -> None:
        if value == 0 and self._anchor is None:
            self._set_new_above(0)

    def _set_new_above(self, count: int) -> None:
        if count != self._new_above:
            self._new_above = count
            self.newAboveChanged.emit(count)
