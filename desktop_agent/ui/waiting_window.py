"""The Waiting view: visitors waiting for an answer in my inboxes, longest wait first.

One model (:class:`WaitingListModel`), one delegate that paints a row, and one timer
that repaints the visible rows every second while the window is shown, so waiting
times count up live without a widget or a timer per row. Accept (claim) and Open go
out as signals; the model changes when the server's ``queue_changed`` comes back.
"""

from __future__ import annotations

from PySide6.QtCore import (
    QModelIndex,
    QObject,
    QPersistentModelIndex,
    QPoint,
    QRect,
    QSize,
    Qt,
    QTimer,
    Signal,
)
from PySide6.QtGui import QColor, QFont, QFontMetrics, QHideEvent, QPainter, QPalette, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QLabel,
    QListView,
    QMenu,
    QStackedWidget,
    QStyle,
    QStyledItemDelegate,
    QStyleOptionViewItem,
    QVBoxLayout,
    QWidget,
)

from desktop_agent.core.display_text import display_name, isolate, one_line
from desktop_agent.core.waiting_queue import WaitingEntry, waited_text
from desktop_agent.ui.delegate import Clock, local_now
from desktop_agent.ui.waiting_model import WaitingListModel, WaitingRole

TICK_MS = 1000
"""How often the visible rows are repainted (the waiting times count in seconds)."""
ESCALATED_COLOUR = QColor("#c2410c")
UNASSIGNED_COLOUR = QColor("#2563eb")
EMPTY_TEXT = (
    "Nobody is waiting.\nVisitors who wrote and have no answer yet appear here, longest wait first."
)
OFFLINE_EMPTY_TEXT = "Offline: the waiting visitors show here once Deskbell is connected."


def assignee_text(entry: WaitingEntry) -> str:
    """Who has the conversation, for the row's second line."""
    if entry.assignee_name:
        return f"Taken by {isolate(one_line(entry.assignee_name))}"
    return "Nobody has taken it: Accept to answer"


class WaitingDelegate(QStyledItemDelegate):
    """Paints a waiting row: visitor · inbox, the live waiting time, who has it, and
    the latest message. Escalated waits show their time in alarm colour."""

    def __init__(self, clock: Clock = local_now, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._clock = clock

    def sizeHint(
        self, option: QStyleOptionViewItem, index: QModelIndex | QPersistentModelIndex
    ) -> QSize:
        line = QFontMetrics(option.font).height()
        return QSize(320, line * 3 + 16)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionViewItem,
        index: QModelIndex | QPersistentModelIndex,
    ) -> None:
        entry = index.data(WaitingRole.Entry)
        if not isinstance(entry, WaitingEntry):
            return
        rect: QRect = option.rect
        palette: QPalette = option.palette
        selected = bool(option.state & QStyle.StateFlag.State_Selected)
        painter.save()
        painter.setLayoutDirection(option.direction)
        if selected:
            painter.fillRect(rect, palette.color(QPalette.ColorRole.Highlight))
        elif option.state & QStyle.StateFlag.State_MouseOver:
            painter.fillRect(rect, palette.color(QPalette.ColorRole.AlternateBase))
        text = palette.color(
            QPalette.ColorRole.HighlightedText if selected else QPalette.ColorRole.Text
        )
        muted = QColor(text)
        muted.setAlphaF(0.65)
        base = QFont(option.font)
        bold = QFont(base)
        bold.setBold(True)
        metrics = QFontMetrics(base)
        line = metrics.height()
        pad = 10
        top = rect.top() + (rect.height() - 3 * line) // 2
        left = rect.left() + pad + 6
        width = rect.width() - 2 * pad - 6

        if entry.escalation_step or entry.assignee_id is None:
            painter.fillRect(
                QRect(rect.left(), rect.top() + 4, 4, rect.height() - 8),
                ESCALATED_COLOUR if entry.escalation_step else UNASSIGNED_COLOUR,
            )

        waited = waited_text(entry.waited_seconds(self._clock()))
        painter.setFont(bold)
        time_width = QFontMetrics(bold).horizontalAdvance(waited) + pad
        painter.setPen(ESCALATED_COLOUR if entry.escalation_step and not selected else text)
        painter.drawText(
            QRect(rect.right() - pad - time_width, top, time_width, line),
            Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter,
            waited,
        )
        # The name is a bidi isolate: an Arabic name must not pull " · Support" leftwards.
        title = (
            f"{isolate(display_name(one_line(entry.visitor_name)))} · {one_line(entry.inbox_name)}"
        )
        painter.setPen(text)
        painter.drawText(
            QRect(left, top, width - time_width, line),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            QFontMetrics(bold).elidedText(title, Qt.TextElideMode.ElideRight, width - time_width),
        )
        painter.setFont(base)
        who = assignee_text(entry)
        if entry.escalation_step:
            who += f" · escalated (step {entry.escalation_step})"
        painter.setPen(text if entry.assignee_id is None else muted)
        painter.drawText(
            QRect(left, top + line, width, line),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            metrics.elidedText(who, Qt.TextElideMode.ElideRight, width),
        )
        painter.setPen(muted)
        painter.drawText(
            QRect(left, top + 2 * line, width, line),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
            metrics.elidedText(one_line(entry.last_message), Qt.TextElideMode.ElideRight, width),
        )
        painter.restore()


class WaitingWindow(QWidget):
    """The list of waiting visitors.

    Signals:
        conversationRequested(str): a row was opened (click or Enter, or "Open").
        acceptRequested(str): "Accept" on an unassigned row: claim it.
    """

    conversationRequested = Signal(str)
    acceptRequested = Signal(str)

    def __init__(
        self, model: WaitingListModel, clock: Clock = local_now, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Deskbell: waiting visitors")
        self.setObjectName("deskbellWaitingWindow")
        self.model = model
        self._connected = True
        self.view = QListView()
        self.view.setModel(model)
        self.delegate = WaitingDelegate(clock, self.view)
        self.view.setItemDelegate(self.delegate)
        self.view.setUniformItemSizes(True)
        self.view.setMouseTracking(True)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.activated.connect(self._open)
        self.view.clicked.connect(self._open)
        self.empty_label = QLabel()
        self.empty_label.setTextFormat(Qt.TextFormat.PlainText)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.empty_label)
        layout = QVBoxLayout(self)
        layout.addWidget(self.stack)
        for signal in (model.rowsInserted, model.rowsRemoved, model.modelReset):
            signal.connect(self._refresh)
        # One timer for every row: repaint what is visible, only while shown.
        self.tick = QTimer(self)
        self.tick.setInterval(TICK_MS)
        self.tick.timeout.connect(self.view.viewport().update)
        self.menu: QMenu | None = None
        self.resize(420, 480)
        self._refresh()

    def set_connected(self, connected: bool) -> None:
        self._connected = connected
        self._refresh()

    def showEvent(self, event: QShowEvent) -> None:
        super().showEvent(event)
        self.tick.start()

    def hideEvent(self, event: QHideEvent) -> None:
        self.tick.stop()
        super().hideEvent(event)

    def _refresh(self, *_args: object) -> None:
        if self.model.rowCount() > 0:
            self.stack.setCurrentWidget(self.view)
            return
        self.empty_label.setText(EMPTY_TEXT if self._connected else OFFLINE_EMPTY_TEXT)
        self.stack.setCurrentWidget(self.empty_label)

    def _open(self, index: QModelIndex | QPersistentModelIndex) -> None:
        if index.isValid():
            self.conversationRequested.emit(index.data(WaitingRole.ConversationId))

    def context_menu_for(self, row: int) -> QMenu:
        """The menu a right click on ``row`` shows (Accept only while unassigned)."""
        index = self.model.index(row)
        conversation_id = str(index.data(WaitingRole.ConversationId))
        menu = QMenu(self)
        accept = menu.addAction("Accept")
        accept.setEnabled(not index.data(WaitingRole.Assigned))
        accept.triggered.connect(lambda: self.acceptRequested.emit(conversation_id))
        menu.addAction("Open").triggered.connect(
            lambda: self.conversationRequested.emit(conversation_id)
        )
        return menu

    def _context_menu(self, point: QPoint) -> None:
        index = self.view.indexAt(point)
        if not index.isValid():
            return
        self.menu = self.context_menu_for(index.row())
        self.menu.popup(self.view.viewport().mapToGlobal(point))
