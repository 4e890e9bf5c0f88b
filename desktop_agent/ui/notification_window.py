"""The notification window: Chat / All / Other tabs, search, Mark all read, lazy history.

It shows a :class:`NotificationListModel` through its own filter proxy and a
:class:`NotificationDelegate`; it never changes the model itself. Clicks, "Mark all
read" and the need for older pages go out as signals, and the model changes when the
server's answer comes back.
"""

from __future__ import annotations

from PySide6.QtCore import QModelIndex, QPersistentModelIndex, QPoint, Qt, QTimer, Signal
from PySide6.QtGui import QHideEvent, QKeySequence, QResizeEvent, QShortcut, QShowEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QMenu,
    QPushButton,
    QStackedWidget,
    QTabBar,
    QVBoxLayout,
    QWidget,
)

from desktop_agent.core.display_text import one_line, shorten
from desktop_agent.ui.delegate import Clock, NotificationDelegate, local_now
from desktop_agent.ui.list_anchor import ViewportAnchor
from desktop_agent.ui.notification_model import (
    CHAT_CATEGORY,
    FilterMode,
    NotificationFilterProxy,
    NotificationListModel,
    Role,
)

TABS: tuple[tuple[str, FilterMode], ...] = (("Chat", "chat"), ("All", "all"), ("Other", "other"))

HISTORY_MARGIN_ROWS = 20
"""Ask for the next page when the last visible row is this close to the end."""

EMPTY_TEXT: dict[FilterMode, str] = {
    "chat": "No chat notifications yet.\nNew chats from visitors will appear here as they arrive.",
    "all": "No notifications yet.\nThey will appear here as they arrive.",
    "other": "No other notifications yet.\nTicket and system notifications will appear here.",
}
CONNECTION_EMPTY_TEXT = {
    "connecting": "Connecting to the server…\nNotifications will appear here once connected.",
    "disconnected": "Offline: Deskbell is reconnecting on its own.\n"
    "New notifications will appear here when the connection is back.",
    "signed_out": "You are signed out.\nSign in to see your notifications.",
}
OFFLINE_TEXT = (
    "Offline: Deskbell is reconnecting on its own. What you read now is marked read "
    "on the server once the connection is back."
)
OFFLINE_STATES = ("disconnected", "connecting")
"""Connection states in which the window says it is offline (once it was connected)."""
SERVER_COUNT_KEYS = ("total", "chat")


class NotificationWindow(QWidget):
    """The list of notifications, filtered by tab and search.

    Args:
        model: the shared notification model (not owned, not modified).
        clock: "now" for relative times; injected for tests.

    Signals:
        conversationRequested(str): a chat row was clicked: open this conversation.
        markReadRequested(list): these notification ids were opened: mark them read.
        urlRequested(str): a non-chat row with a link was clicked.
        markAllReadRequested(object): "Mark all read" for a category, or None for all.
            On the Other tab it is emitted once per non-chat category with unread rows.
        moreHistoryRequested(int): the list is scrolled near its end: fetch the page
            before this ``seq``. Emitted once per page.
        acceptRequested(str): "Accept" in a chat row's context menu: claim this
            conversation.
    """

    conversationRequested = Signal(str)
    markReadRequested = Signal(list)
    urlRequested = Signal(str)
    markAllReadRequested = Signal(object)
    moreHistoryRequested = Signal(int)
    acceptRequested = Signal(str)

    def __init__(
        self,
        model: NotificationListModel,
        clock: Clock = local_now,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Deskbell notifications")
        self.setObjectName("deskbellNotificationWindow")
        self.model = model
        self.proxy = NotificationFilterProxy(self)
        self.proxy.setSourceModel(model)
        self._connection = "connected"
        self._was_connected = False
        self._counts: dict[str, int] | None = None
        self._history_complete = False
        self._requested_before: int | None = None

        self.tabs = QTabBar()
        for label, _mode in TABS:
            self.tabs.addTab(label)
        self.tabs.currentChanged.connect(self._on_tab_changed)
        self.search = QLineEdit()
        self.search.setPlaceholderText("Search titles and messages")
        self.search.setClearButtonEnabled(True)
        self.search.textChanged.connect(self._on_search)
        self.mark_all_button = QPushButton("Mark all read")
        self.mark_all_button.clicked.connect(self._on_mark_all)

        self.view = QListView()
        self.view.setModel(self.proxy)
        self.delegate = NotificationDelegate(clock, self.view)
        self.view.setItemDelegate(self.delegate)
        self.view.setUniformItemSizes(True)  # 100,000 rows: no per-row size queries
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setMouseTracking(True)
        self.view.clicked.connect(self._open)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.menu: QMenu | None = None
        for key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            shortcut = QShortcut(QKeySequence(key), self.view)
            shortcut.setContext(Qt.ShortcutContext.WidgetShortcut)
            shortcut.activated.connect(lambda: self._open(self.view.currentIndex()))
        scrollbar = self.view.verticalScrollBar()
        scrollbar.valueChanged.connect(self._maybe_request_history)
        scrollbar.rangeChanged.connect(self._maybe_request_history)

        # Rows arriving above must not move the row under the pointer; say "N new".
        self.anchor = ViewportAnchor(self.view, self)
        # It floats over the list: a button pushing the list down would move rows too.
        self.new_button = QPushButton(self.view)
        self.new_button.setObjectName("deskbellNewAbove")
        self.new_button.setToolTip("Show the newest notifications")
        self.new_button.clicked.connect(self.anchor.scroll_to_newest)
        self.new_button.hide()
        self.anchor.newAboveChanged.connect(self._on_new_above)

        self.offline_label = QLabel(OFFLINE_TEXT)
        self.offline_label.setObjectName("deskbellOffline")
        self.offline_label.setTextFormat(Qt.TextFormat.PlainText)
        self.offline_label.setWordWrap(True)
        self.offline_label.setStyleSheet(
            "background: #fef3c7; color: #78350f; padding: 4px 6px; border-radius: 4px"
        )
        self.offline_label.hide()

        self.empty_label = QLabel()
        self.empty_label.setTextFormat(Qt.TextFormat.PlainText)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setWordWrap(True)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.view)
        self.stack.addWidget(self.empty_label)

        top = QHBoxLayout()
        top.addWidget(self.tabs)
        top.addStretch(1)
        top.addWidget(self.mark_all_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.offline_label)
        layout.addWidget(self.search)
        layout.addWidget(self.stack, 1)

        for signal in (
            self.proxy.rowsInserted,
            self.proxy.rowsRemoved,
            self.proxy.modelReset,
            self.proxy.layoutChanged,
        ):
            signal.connect(self._refresh)
        model.unreadCountsChanged.connect(self._refresh)
        model.modelReset.connect(self._forget_history_requests)
        # relative times ("5 min") age while the window is open
        self._tick = QTimer(self)
        self._tick.setInterval(60_000)
        self._tick.timeout.connect(self.view.viewport().update)
        self.resize(420, 560)
        self._refresh()

    # ----------------------------------------------------------------- public

    def mode(self) -> FilterMode:
        """The current tab's filter."""
        return self.proxy.mode()

    def set_mode(self, mode: FilterMode) -> None:
        """Switch tab (chat, all, other)."""
        self.tabs.setCurrentIndex([m for _, m in TABS].index(mode))

    def set_connection_state(self, state: str) -> None:
        """Say what the connection is doing: a bar while offline, and in the empty list."""
        self._connection = state
        if state == "connected":
            self._was_connected = True
        elif state == "signed_out":
            self._was_connected = False
        # Before the first connection the empty list says "Connecting…" already.
        self.offline_label.setVisible(self._was_connected and state in OFFLINE_STATES)
        self._refresh()

    def set_unread_counts(self, counts: dict[str, int] | None) -> None:
        """Use the server's unread counts (``total``, ``chat``, per category) for the tab
        counts and "Mark all read"; None falls back to the rows loaded here."""
        self._counts = dict(counts) if counts is not None else None
        self._refresh()

    def set_history_complete(self, complete: bool) -> None:
        """Tell the window whether the server has older pages (``more`` of history)."""
        self._history_complete = complete
        if not complete:
            self._requested_before = None
            self._maybe_request_history()

    def history_failed(self) -> None:
        """The last page could not be fetched: allow asking for it again."""
        self._requested_before = None
        self._maybe_request_history()

    # ---------------------------------------------------------------- private

    def showEvent(self, event: QShowEvent) -> None:
        """Start the relative-time tick and check whether history is needed."""
        super().showEvent(event)
        self._tick.start()
        QTimer.singleShot(0, self._maybe_request_history)

    def hideEvent(self, event: QHideEvent) -> None:
        """Stop the relative-time tick while hidden."""
        self._tick.stop()
        super().hideEvent(event)

    def _on_tab_changed(self, index: int) -> None:
        self.proxy.set_mode(TABS[index][1])
        self._refresh()
        self._maybe_request_history()

    def _on_new_above(self, count: int) -> None:
        self.new_button.setText(f"↑ {count} new" if count else "")
        self.new_button.setVisible(count > 0)
        self._place_new_button()

    def _place_new_button(self) -> None:
        button = self.new_button
        button.adjustSize()
        button.move((self.view.width() - button.width()) // 2, 6)
        button.raise_()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """Keep the "N new" button centred over the list."""
        super().resizeEvent(event)
        self._place_new_button()

    def _on_search(self, text: str) -> None:
        self.proxy.set_search_text(text)
        self._refresh()

    def _on_mark_all(self) -> None:
        mode = self.proxy.mode()
        if mode == "chat":
            self.markAllReadRequested.emit(CHAT_CATEGORY)
        elif mode == "all":
            self.markAllReadRequested.emit(None)
        else:
            # Every other category the server counts, loaded here or not.
            for category in self._other_unread_categories():
                self.markAllReadRequested.emit(category)

    def _other_unread_categories(self) -> list[str]:
        if self._counts is None:
            return [c for c in self.model.unread_categories() if c != CHAT_CATEGORY]
        return sorted(
            key for key, value in self._counts.items() if key not in SERVER_COUNT_KEYS and value > 0
        )

    def unread_by_tab(self) -> dict[FilterMode, int]:
        """Unread notifications behind each tab: the server's counts when known."""
        if self._counts is not None:
            chat = self._counts.get(CHAT_CATEGORY, 0)
            total = self._counts.get("total", 0)
        else:
            chat = self.model.unread_count(CHAT_CATEGORY)
            total = self.model.unread_count()
        return {"chat": chat, "all": total, "other": max(0, total - chat)}

    def _refresh(self, *_args: object) -> None:
        counts = self.unread_by_tab()
        self.mark_all_button.setEnabled(counts[self.proxy.mode()] > 0)
        for index, (label, mode) in enumerate(TABS):
            self.tabs.setTabText(index, f"{label} ({counts[mode]})" if counts[mode] else label)
        if self.proxy.rowCount() > 0:
            self.stack.setCurrentWidget(self.view)
            return
        self.empty_label.setText(self._empty_text())
        self.stack.setCurrentWidget(self.empty_label)

    def _empty_text(self) -> str:
        if self.proxy.search_text():
            return (
                f"No notifications here match “{shorten(one_line(self.search.text()), 40)}”.\n"
                "Try other words, or clear the search."
            )
        if self._connection in CONNECTION_EMPTY_TEXT and self.model.rowCount() == 0:
            return CONNECTION_EMPTY_TEXT[self._connection]
        return EMPTY_TEXT[self.proxy.mode()]

    def _open(self, index: QModelIndex | QPersistentModelIndex) -> None:
        if not index.isValid():
            return
        if not index.data(Role.Read):
            self.markReadRequested.emit([index.data(Role.Id)])
        conversation_id = index.data(Role.ConversationId)
        if index.data(Role.IsChat) and conversation_id:
            self.conversationRequested.emit(conversation_id)
        elif index.data(Role.Url):
            self.urlRequested.emit(index.data(Role.Url))

    def context_menu_for(self, index: QModelIndex | QPersistentModelIndex) -> QMenu:
        """The menu of a row: Open, and Accept on chat rows of a conversation."""
        menu = QMenu(self)
        menu.addAction("Open").triggered.connect(lambda: self._open(index))
        conversation_id = index.data(Role.ConversationId)
        if index.data(Role.IsChat) and conversation_id:
            menu.addAction("Accept").triggered.connect(
                lambda: self.acceptRequested.emit(conversation_id)
            )
        return menu

    def _context_menu(self, point: QPoint) -> None:
        index = self.view.indexAt(point)
        if index.isValid():
            self.menu = self.context_menu_for(index)
            self.menu.popup(self.view.viewport().mapToGlobal(point))

    def _forget_history_requests(self) -> None:
        self._requested_before = None
        self._history_complete = False

    def _near_end(self) -> bool:
        count = self.proxy.rowCount()
        if count == 0:
            return True
        viewport = self.view.viewport()
        last = self.view.indexAt(viewport.rect().bottomLeft())
        last_row = last.row() if last.isValid() else count - 1
        return last_row >= count - 1 - HISTORY_MARGIN_ROWS

    def _maybe_request_history(self, *_args: object) -> None:
        if self._history_complete or not self.isVisible():
            return
        before = self.model.oldest_seq()
        if before is None or before <= 1 or before == self._requested_before:
            return
        if self._near_end():
            self._requested_before = before
            self.moreHistoryRequested.emit(before)
