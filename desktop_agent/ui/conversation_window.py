"""The conversation window: transcript, reply box, reply states, "Assign to me".

It shows what it is given (:meth:`ConversationWindow.show_conversation`,
:meth:`ConversationWindow.add_message`, :meth:`ConversationWindow.set_reply_state`) and
asks for replies and assignment through signals; it never talks to the server.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from PySide6.QtCore import QEvent, QModelIndex, QPersistentModelIndex, Qt, Signal
from PySide6.QtGui import QCloseEvent, QKeyEvent
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from backend.protocol import MAX_BODY_CHARS, AgentRef, Conversation, Message
from desktop_agent.core.display_text import display_name, isolate, shorten
from desktop_agent.ui.delegate import Clock, local_now
from desktop_agent.ui.elided_label import ElidedLabel
from desktop_agent.ui.transcript import ReplyState, TranscriptModel, TranscriptRole
from desktop_agent.ui.transcript_delegate import TranscriptDelegate

STATUS_TEXT = {"open": "Open", "resolved": "Resolved"}
OFFLINE_TEXT = (
    "Offline: Deskbell is reconnecting on its own. Replies you send now wait and go "
    "out as soon as the connection is back."
)
WINDOW_TITLE_NAME_CHARS = 48
"""The window manager draws the title and cannot elide it to our width: cut names here."""


def new_client_msg_id() -> str:
    """A fresh id for one reply; a retry reuses it so the server can drop duplicates."""
    return uuid.uuid4().hex


class ReplyEdit(QPlainTextEdit):
    """A plain-text reply box: Enter sends, Shift+Enter starts a new line."""

    submitted = Signal()

    def keyPressEvent(self, event: QKeyEvent) -> None:
        """Enter (without Shift) emits ``submitted`` instead of inserting a newline."""
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter) and not (
            event.modifiers() & Qt.KeyboardModifier.ShiftModifier
        ):
            event.accept()
            self.submitted.emit()
            return
        if event.key() in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.insertPlainText("\n")  # Shift+Enter: a real newline, not a line separator
            event.accept()
            return
        super().keyPressEvent(event)


class ConversationWindow(QWidget):
    """One conversation.

    Args:
        conversation_id: the conversation shown.
        self_agent: the signed-in agent (own replies and "Assign to me").
        clock: "now", for message times.
        make_client_msg_id: makes the id of each new reply (injected by tests).

    Signals:
        replyRequested(str, str, str): conversation_id, body, client_msg_id. Answer with
            :meth:`set_reply_state`.
        assignToMeRequested(str): conversation_id.
        activeChanged(str, bool): conversation_id, whether the window is now the active
            one (the toast policy skips toasts for the conversation open and focused).
        closed(str): conversation_id; the window was closed.
    """

    replyRequested = Signal(str, str, str)
    assignToMeRequested = Signal(str)
    activeChanged = Signal(str, bool)
    closed = Signal(str)

    def __init__(
        self,
        conversation_id: str,
        self_agent: AgentRef,
        clock: Clock = local_now,
        make_client_msg_id: Callable[[], str] = new_client_msg_id,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.conversation_id = conversation_id
        self.self_agent = self_agent
        self._clock = clock
        self._make_id = make_client_msg_id
        self.setObjectName("deskbellConversationWindow")
        self.setWindowTitle("Conversation")

        # Visitor, inbox and agent names are typed by people (up to MAX_NAME_CHARS):
        # they elide to the room they get and never widen the window.
        self.title_label = ElidedLabel("Loading the conversation…", max_hint=360)
        font = self.title_label.font()
        font.setBold(True)
        self.title_label.setFont(font)
        self.inbox_label = ElidedLabel(max_hint=200, min_chars=10)
        self.status_label = QLabel()
        self.status_label.setTextFormat(Qt.TextFormat.PlainText)
        self.assignee_label = ElidedLabel(max_hint=240, min_chars=18)
        self.assign_button = QPushButton("Assign to me")
        self.assign_button.clicked.connect(
            lambda: self.assignToMeRequested.emit(self.conversation_id)
        )

        self.model = TranscriptModel(self_agent.id, self)
        self.view = QListView()
        self.view.setModel(self.model)
        self.delegate = TranscriptDelegate(self.view, clock, self.view)
        self.view.setItemDelegate(self.delegate)
        self.view.setResizeMode(QListView.ResizeMode.Adjust)
        self.view.setVerticalScrollMode(QAbstractItemView.ScrollMode.ScrollPerPixel)
        self.view.setWordWrap(True)
        self.view.doubleClicked.connect(self._retry_index)
        self.model.rowsInserted.connect(lambda *_: self.view.scrollToBottom())
        # Stay at the newest message while the agent has not scrolled up, also when the
        # view shrinks (the retry bar appears) or a row grows: otherwise a failed
        # reply and its "Not sent" line would slip below the fold.
        bar = self.view.verticalScrollBar()
        self._follow_newest = True
        bar.valueChanged.connect(self._note_scroll_position)
        bar.rangeChanged.connect(self._keep_newest_in_view)

        self.retry_label = QLabel()
        self.retry_label.setTextFormat(Qt.TextFormat.PlainText)
        self.retry_button = QPushButton("Retry")
        self.retry_button.clicked.connect(self.retry_failed)
        retry_bar = QHBoxLayout()
        retry_bar.addWidget(self.retry_label, 1)
        retry_bar.addWidget(self.retry_button)
        self.retry_bar = QWidget()
        self.retry_bar.setLayout(retry_bar)
        self.retry_bar.hide()

        self.offline_label = QLabel(OFFLINE_TEXT)
        self.offline_label.setObjectName("deskbellOffline")
        self.offline_label.setTextFormat(Qt.TextFormat.PlainText)
        self.offline_label.setWordWrap(True)
        self.offline_label.setStyleSheet(
            "background: #fef3c7; color: #78350f; padding: 4px 6px; border-radius: 4px"
        )
        self.offline_label.hide()

        self.error_label = QLabel()
        self.error_label.setTextFormat(Qt.TextFormat.PlainText)
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b91c1c")
        self.error_label.hide()

        self.reply_edit = ReplyEdit()
        self.reply_edit.setPlaceholderText("Write a reply. Enter sends, Shift+Enter adds a line.")
        self.reply_edit.setFixedHeight(72)
        self.reply_edit.submitted.connect(self.send_reply)
        self.send_button = QPushButton("Send")
        self.send_button.clicked.connect(self.send_reply)

        header = QHBoxLayout()
        header.addWidget(self.title_label)
        header.addWidget(self.inbox_label)
        header.addStretch(1)
        header.addWidget(self.status_label)
        header.addWidget(self.assignee_label)
        header.addWidget(self.assign_button)
        reply_row = QHBoxLayout()
        reply_row.addWidget(self.reply_edit, 1)
        reply_row.addWidget(self.send_button, 0, Qt.AlignmentFlag.AlignBottom)
        layout = QVBoxLayout(self)
        layout.addLayout(header)
        layout.addWidget(self.view, 1)
        layout.addWidget(self.retry_bar)
        layout.addWidget(self.offline_label)
        layout.addWidget(self.error_label)
        layout.addLayout(reply_row)
        self.resize(480, 600)

    # ------------------------------------------------------------------ slots

    def show_conversation(self, conversation: Conversation) -> None:
        """Show a conversation as fetched from the server (transcript, status, assignee)."""
        visitor = display_name(conversation.visitor.name)
        inbox = display_name(conversation.inbox.name, "")
        self.title_label.setText(isolate(visitor))
        self.inbox_label.setText(f"· {isolate(inbox)}" if inbox else "")
        title = isolate(shorten(visitor, WINDOW_TITLE_NAME_CHARS))
        if inbox:
            title += f" · {isolate(shorten(inbox, WINDOW_TITLE_NAME_CHARS))}"
        self.setWindowTitle(f"{title} — Deskbell")
        self.model.set_messages(conversation.messages)
        self.set_status(conversation.status)
        self.set_assignee(conversation.assignee)
        self.view.scrollToBottom()

    def add_message(self, message: Message) -> None:
        """Add a live message (an echo of an own reply is merged, not duplicated)."""
        self.model.add_message(message)
        self._update_retry_bar()

    def set_reply_state(
        self, client_msg_id: str, state: ReplyState, message: Message | None = None
    ) -> None:
        """Show the state of an own reply: "waiting", "sending", "sent" or "failed".

        ``message`` is the server's copy when the reply was accepted, so a later push
        of the same message is not shown twice.
        """
        self.model.set_state(client_msg_id, state, message)
        self._update_retry_bar()

    def set_status(self, status: str) -> None:
        """Show the conversation's status (open or resolved)."""
        self.status_label.setText(STATUS_TEXT.get(status, status))

    def set_assignee(self, assignee: AgentRef | None) -> None:
        """Show who the conversation is assigned to; "Assign to me" goes when it is you."""
        mine = assignee is not None and assignee.id == self.self_agent.id
        if assignee is None:
            self.assignee_label.setText("Unassigned")
        else:
            self.assignee_label.setText(
                "Assigned to you"
                if mine
                else f"Assigned to {isolate(display_name(assignee.name, 'an agent'))}"
            )
        self.assign_button.setVisible(not mine)

    def set_connection_state(self, state: str) -> None:
        """Say so while offline ("disconnected", "connecting"): replies then wait."""
        self.offline_label.setVisible(state in ("disconnected", "connecting"))

    def set_error(self, text: str) -> None:
        """Show a problem for a person (what happened, what to do); "" hides it."""
        self.error_label.setText(text)
        self.error_label.setVisible(bool(text))

    def changeEvent(self, event: QEvent) -> None:
        """Report activation changes as ``activeChanged``."""
        if event.type() == QEvent.Type.ActivationChange:
            self.activeChanged.emit(self.conversation_id, self.isActiveWindow())
        super().changeEvent(event)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Report the close as ``closed`` (the app drops its reference)."""
        self.activeChanged.emit(self.conversation_id, False)
        self.closed.emit(self.conversation_id)
        super().closeEvent(event)

    # ---------------------------------------------------------------- actions

    def send_reply(self) -> None:
        """Send the reply box's text (ignored when blank; refused when too long)."""
        body = self.reply_edit.toPlainText().strip()
        if not body:
            return
        if len(body) > MAX_BODY_CHARS:
            self.set_error(
                f"Your reply is {len(body)} characters long; the limit is {MAX_BODY_CHARS}. "
                "Shorten it and send again."
            )
            return
        self.set_error("")
        client_msg_id = self._make_id()
        self.model.add_pending(client_msg_id, body, self.self_agent.name, self._clock())
        self.reply_edit.clear()
        self.replyRequested.emit(self.conversation_id, body, client_msg_id)

    def retry(self, client_msg_id: str) -> None:
        """Send a failed reply again with the same ``client_msg_id``."""
        row = self.model.row_of_client_msg_id(client_msg_id)
        if row < 0 or self.model.entry(row).state != "failed":
            return
        body = self.model.entry(row).body
        self.model.set_state(client_msg_id, "sending")
        self._update_retry_bar()
        self.replyRequested.emit(self.conversation_id, body, client_msg_id)

    def retry_failed(self) -> None:
        """Retry every failed reply, oldest first."""
        for entry in self.model.failed():
            if entry.client_msg_id:
                self.retry(entry.client_msg_id)

    def _retry_index(self, index: QModelIndex | QPersistentModelIndex) -> None:
        client_msg_id = index.data(TranscriptRole.ClientMsgId)
        if client_msg_id and index.data(TranscriptRole.State) == "failed":
            self.retry(client_msg_id)

    def _note_scroll_position(self, value: int) -> None:
        self._follow_newest = value >= self.view.verticalScrollBar().maximum() - 4

    def _keep_newest_in_view(self, _minimum: int, maximum: int) -> None:
        if self._follow_newest:
            self.view.verticalScrollBar().setValue(maximum)

    def _update_retry_bar(self) -> None:
        failed = len(self.model.failed())
        if failed:
            self.retry_label.setText(
                "1 reply was not sent: check the connection, then Retry."
                if failed == 1
                else f"{failed} replies were not sent: check the connection, then Retry."
            )
        self.retry_bar.setVisible(failed > 0)
