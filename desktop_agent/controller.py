"""Controller: wires the connection's signals to the model, toasts, tray and windows.

It holds no widgets per row and creates at most one window per open conversation. It
decides nothing itself that the core decides better: which notifications toast is the
:class:`ToastPolicy`'s call; what the counts are is the server's.

Data flow (DESIGN.md)::

    ConnectionService ─► NotificationListModel ─► NotificationWindow
                      ─► ToastPolicy ─► Toaster          (click ─► ConversationWindow)
                      ─► unread counts ─► TrayController / LauncherEntry
    ConversationWindow ─► reply / assign ─► ConnectionService
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from PySide6.QtCore import QObject, Qt, QTimer, Signal

from backend.protocol import AgentRef, Message, Notification, QueueEntry, Welcome, WithdrawPush
from desktop_agent.core.pending_reads import (
    PendingReads,
    ReadAll,
    ReadConversation,
    ReadIds,
    ReadRequest,
    Ticket,
)
from desktop_agent.core.presence import PresenceTracker, presence_status
from desktop_agent.core.session import ResumeResult
from desktop_agent.core.settings import SOUND_DEFAULT, Settings
from desktop_agent.core.toast_policy import (
    ShowToast,
    SummaryToast,
    ToastDecision,
    ToastPolicy,
    offers_accept,
)
from desktop_agent.errors import DeskbellError, NotConnected, RequestFailed
from desktop_agent.platform.idle import IdleTime
from desktop_agent.platform.launcher_entry import LauncherEntryUnavailable
from desktop_agent.platform.toasts import ToastCallback, Toaster, ToastRequest
from desktop_agent.shell.tasks import TaskGroup
from desktop_agent.ui.conversation_window import ConversationWindow
from desktop_agent.ui.notification_model import NotificationListModel
from desktop_agent.ui.notification_window import NotificationWindow
from desktop_agent.ui.tray import TrayController
from desktop_agent.ui.waiting_model import WaitingListModel
from desktop_agent.ui.waiting_window import WaitingWindow

log = logging.getLogger(__name__)

Clock = Callable[[], datetime]
ToasterFactory = Callable[[ToastCallback, ToastCallback], Toaster]
"""Builds the toaster from (on_activated, on_mark_read)."""

HISTORY_PAGE = 50
IDLE_CHECK_MS = 15_000
"""How often the desktop's idle time is read (away-when-idle)."""
CLAIM_KEY = "claim:"
"""Toast key prefix of "someone else took this chat"."""
TRAY_REFRESH_MS = 30_000
"""How often the tray is redrawn so a timed do-not-disturb ends on time in the icon."""


def local_now() -> datetime:
    """The current local time, timezone-aware."""
    return datetime.now().astimezone()


class Connection(Protocol):
    """What the controller needs of :class:`desktop_agent.connection.ConnectionService`."""

    stateChanged: Any
    welcomed: Any
    notificationReceived: Any
    resumed: Any
    unreadChanged: Any
    readChanged: Any
    messageReceived: Any
    queueChanged: Any
    withdrawn: Any

    @property
    def state(self) -> str: ...

    def network_changed(self) -> None: ...

    async def history(
        self,
        before_seq: int | None = None,
        limit: int = 50,
        category: str | None = None,
        unread_only: bool = False,
    ) -> Any: ...

    async def mark_read(
        self, *, ids: list[str] | None = None, conversation_id: str | None = None
    ) -> Any: ...

    async def mark_all_read(self, category: str | None = None) -> Any: ...

    async def conversation(self, conversation_id: str) -> Any: ...

    async def reply(self, conversation_id: str, body: str, client_msg_id: str) -> Message: ...

    async def assign(self, conversation_id: str, agent_id: str) -> None: ...

    async def presence(self, status: Any) -> None: ...

    async def queue(self) -> list[QueueEntry]: ...

    async def claim(self, conversation_id: str) -> Any: ...

    async def seen(self, ids: list[str], how: Any) -> None: ...


class LauncherCount(Protocol):
    """The dock badge (``LauncherEntry``), used where there is no tray."""

    async def set_count(self, count: int) -> None: ...


class Controller(QObject):
    """Connects one signed-in session to the views.

    Args:
        model: the notification list (shared with the notification window).
        tray: the tray icon (or its fallback window).
        window: the notification window.
        policy: which notifications toast.
        settings: badge scope and sound are read from it on every use.
        make_toaster: builds the toaster with this controller's click callbacks.
        launcher: the dock badge, used only when there is no tray (None: none).
        clock: "now" for the toast policy and DND.
        waiting: the Waiting view's model (default: a new one).
        idle_seconds: reads the desktop's idle time (None: never away from idle).

    Signals:
        conversationOpened(str): a conversation window was opened (or raised).
        toastRequested(object): a ``ToastRequest`` was handed to the toaster.
        badgeChanged(int): the count now on the tray icon.
    """

    conversationOpened = Signal(str)
    toastRequested = Signal(object)
    badgeChanged = Signal(int)
    claimFinished = Signal(str, str)
    """(conversation id, "" when it is mine, else the server's words on who has it)."""

    def __init__(
        self,
        *,
        model: NotificationListModel,
        tray: TrayController,
        window: NotificationWindow,
        policy: ToastPolicy,
        settings: Settings,
        make_toaster: ToasterFactory,
        launcher: LauncherCount | None = None,
        clock: Clock = local_now,
        waiting: WaitingListModel | None = None,
        idle_seconds: IdleTime | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.waiting = waiting if waiting is not None else WaitingListModel(self)
        self.waiting_window = WaitingWindow(self.waiting, clock=clock)
        self.waiting_window.conversationRequested.connect(self.open_conversation)
        self.waiting_window.acceptRequested.connect(self.accept)
        self.waiting.escalatedChanged.connect(tray.set_escalated)
        self.presence = PresenceTracker()
        self.away_by_hand = False
        self._idle_seconds = idle_seconds
        """An async callable giving the desktop's idle seconds (None: unknown)."""
        self._toast_ids: dict[str, tuple[str, ...]] = {}
        self.model = model
        self.tray = tray
        self.window = window
        self.policy = policy
        self.settings = settings
        self.launcher = launcher
        self._clock = clock
        self.toaster = make_toaster(self._on_toast_activated, self._on_toast_mark_read)
        self.toaster.on_accept = self._on_toast_accept
        policy.muted_inboxes = settings.muted_inboxes
        self.tasks = TaskGroup()
        self.conversations: dict[str, ConversationWindow] = {}
        self._connection: Connection | None = None
        self._links: list[tuple[Any, Callable[..., Any]]] = []
        self._agent: AgentRef | None = None
        self._counts: dict[str, int] = {"total": 0, "chat": 0}
        self._state = "connecting"
        self._badge = -1
        self._toast_queue: asyncio.Queue[ToastRequest | str] | None = None
        self._toast_worker: asyncio.Task[None] | None = None
        self._history_loaded = False
        self._closed = False
        self._waiting_replies: dict[str, tuple[str, str]] = {}
        """Replies written offline: client_msg_id -> (conversation_id, body)."""
        self.pending_reads = PendingReads()
        """Reads made here that the server has not confirmed (offline ones wait here)."""
        self.focused_conversation: str | None = None
        """The conversation window that is active (its messages do not toast)."""

        tray.openNotifications.connect(self.show_notifications)
        tray.dndRequested.connect(self._on_dnd_requested)
        window.conversationRequested.connect(self.open_conversation)
        window.markReadRequested.connect(self._on_mark_ids_read)
        window.markAllReadRequested.connect(self._on_mark_all_read)
        window.moreHistoryRequested.connect(self._on_more_history)
        window.acceptRequested.connect(self.accept)
        tray.openWaiting.connect(self.show_waiting)
        tray.awayRequested.connect(self._on_away_requested)
        self._idle_timer = QTimer(self)
        self._idle_timer.setInterval(IDLE_CHECK_MS)
        self._idle_timer.timeout.connect(self.check_presence)
        self._idle_timer.start()
        self._tray_timer = QTimer(self)
        self._tray_timer.setInterval(TRAY_REFRESH_MS)
        self._tray_timer.timeout.connect(self.render_badge)
        self._tray_timer.start()
        self.render_badge()

    # ------------------------------------------------------------ session wiring

    @property
    def connection(self) -> Connection | None:
        return self._connection

    @property
    def agent(self) -> AgentRef | None:
        """The signed-in agent, once the server welcomed us."""
        return self._agent

    @property
    def badge_count(self) -> int:
        """The count shown on the tray icon (by the badge scope setting)."""
        return max(self._badge, 0)

    @property
    def unread_counts(self) -> dict[str, int]:
        """The server's latest unread counts, less the reads made here not yet confirmed."""
        return self.pending_reads.adjust(self._counts)

    def attach(self, connection: Connection) -> None:
        """Show this connection's session (after signing in)."""
        self.detach()
        self._connection = connection
        self._history_loaded = False
        for signal, slot in (
            (connection.stateChanged, self._on_state),
            (connection.welcomed, self._on_welcomed),
            (connection.notificationReceived, self._on_notification),
            (connection.resumed, self._on_resumed),
            (connection.unreadChanged, self._on_unread),
            (connection.readChanged, self._on_read),
            (connection.messageReceived, self._on_message),
            (connection.queueChanged, self.waiting.apply),
            (connection.withdrawn, self._on_withdrawn),
        ):
            signal.connect(slot)
            self._links.append((signal, slot))
        self._on_state(connection.state)

    def detach(self) -> None:
        """Stop showing the current session (signing out): windows close, rows go."""
        for signal, slot in self._links:
            signal.disconnect(slot)
        self._links.clear()
        self._connection = None
        for window in list(self.conversations.values()):
            window.close()
        self.conversations.clear()
        self.model.clear()
        self.waiting.clear()
        self.pending_reads.clear()
        self._waiting_replies.clear()
        self._counts = {"total": 0, "chat": 0}
        self._on_state("signed_out")

    async def close(self) -> None:
        """Stop background work (on quit); nothing toasts after this."""
        self._closed = True
        self._tray_timer.stop()
        self._idle_timer.stop()
        self.waiting_window.close()
        self.waiting_window.deleteLater()
        if self._toast_worker is not None:
            self._toast_worker.cancel()
        await self.tasks.cancel_all()

    # ----------------------------------------------------------- connection in

    def _on_state(self, state: str) -> None:
        self._state = state
        self.window.set_connection_state(state)
        self.waiting_window.set_connected(state == "connected")
        for window in self.conversations.values():
            window.set_connection_state(state)
        self.render_badge()

    def _on_welcomed(self, welcome: Welcome) -> None:
        self._agent = AgentRef(id=welcome.agent.id, name=welcome.agent.name)
        self.policy.self_agent_id = welcome.agent.id
        if not self._history_loaded and self.model.rowCount() == 0:
            # The model starts empty; a first page makes the window useful at once.
            self._history_loaded = True
            self.tasks.spawn(self._load_history(None), "loading the first history page")
        self.presence.reconnected()
        self.check_presence()
        self.tasks.spawn(self._load_queue(), "loading the waiting visitors")
        self._send_pending_reads()
        self._send_waiting_replies()
        for window in self.conversations.values():
            # A new connection has no subscriptions: fetching each open conversation
            # again subscribes it to live messages and fills in what came meanwhile.
            self.tasks.spawn(
                self._reload_conversation(window),
                f"reloading conversation {window.conversation_id}",
                on_error=_show_error_in(window),
            )

    def _on_notification(self, notification: Notification) -> None:
        self.model.upsert([notification])
        self.waiting.note_notification(notification)
        self._toast(self.policy.on_notification(notification, self._clock()))

    def _on_resumed(self, result: ResumeResult) -> None:
        if result.notifications:
            self.model.upsert(result.notifications)
            for notification in result.notifications:
                self.waiting.note_notification(notification)
        decision = self.policy.on_resumed(
            result.notifications,
            self._clock(),
            after_gap=result.after_gap,
            truncated=result.truncated,
        )
        self._toast(decision)

    def _on_unread(self, counts: dict[str, int]) -> None:
        self._counts = {"total": 0, "chat": 0, **counts}
        self.render_badge()

    def _on_read(self, ids: list[str]) -> None:
        conversations = {
            n.conversation_id
            for i in ids
            if (n := self.model.get(i)) is not None and n.conversation_id is not None
        }
        self.model.mark_read(ids)
        self.pending_reads.read_elsewhere(ids)
        for conversation_id in conversations:
            if not self.model.has_unread_in_conversation(conversation_id):
                # Read here or on another device: its toast has nothing left to say.
                self._conversation_read(conversation_id)

    def _on_message(self, conversation_id: str, message: Message) -> None:
        window = self.conversations.get(conversation_id)
        if window is not None:
            window.add_message(message)

    # ------------------------------------------------------------------ badge

    def render_badge(self) -> None:
        """Put the current count, connection state and DND on the tray (and dock)."""
        scope = self.settings.badge_scope
        counts = self.unread_counts
        count = counts.get("total" if scope == "all" else "chat", 0)
        dnd = self.policy.dnd.active(self._clock())
        self.tray.set_state(count, self._state, dnd, counts)
        self.window.set_unread_counts(counts)
        if count != self._badge:
            self._badge = count
            self.badgeChanged.emit(count)
            if self.launcher is not None and self.tray.tray is None:
                self.tasks.spawn(self._set_launcher_count(count), "updating the launcher count")

    async def _set_launcher_count(self, count: int) -> None:
        assert self.launcher is not None
        try:
            await self.launcher.set_count(count)
        except LauncherEntryUnavailable as exc:
            log.info("no launcher badge: %s", exc)
            self.launcher = None

    # ----------------------------------------------------------------- toasts

    def _toast(self, decision: ToastDecision | None) -> None:
        if decision is None:
            return
        if isinstance(decision, ShowToast):
            sound = self.settings.toast_sound(decision.inbox, urgent=decision.urgent)
            cid = decision.conversation_id
            actions: tuple[Any, ...] = ("open", "mark_read") if cid else ("open",)
            entry = self.waiting.get(cid) if cid else None
            if cid and offers_accept(
                decision.kind, entry is not None and entry.assignee_id is not None
            ):
                actions = ("accept", "open", "mark_read")
            request = ToastRequest(
                key=decision.key,
                title=decision.title,
                body=decision.body,
                conversation_id=cid,
                actions=actions,
                replaces=decision.replaces,
                sound=sound is not None,
                urgent=decision.urgent,
                notification_ids=decision.notification_ids,
                sound_name=None if sound in (None, SOUND_DEFAULT) else sound,
            )
        else:
            assert isinstance(decision, SummaryToast)
            request = ToastRequest(
                key=decision.key,
                title=decision.title,
                body=decision.body,
                conversation_id=None,
                actions=("open",),
                replaces=decision.replaces,
                sound=self.settings.toast_sound(None) is not None,
                notification_ids=decision.notification_ids,
            )
        self._enqueue_toast(request)
        self.toastRequested.emit(request)

    def _enqueue_toast(self, item: ToastRequest | str) -> None:
        # One worker shows toasts in order: a replacement must not overtake what it replaces.
        if self._closed:
            return  # quitting: a push that raced the goodbye must not start a new worker
        if self._toast_queue is None:
            self._toast_queue = asyncio.Queue()
        if self._toast_worker is None or self._toast_worker.done():
            self._toast_worker = asyncio.get_running_loop().create_task(
                self._show_toasts(self._toast_queue), name="toasts"
            )
        self._toast_queue.put_nowait(item)

    async def _show_toasts(self, queue: asyncio.Queue[ToastRequest | str]) -> None:
        while True:
            batch = [await queue.get()]
            while not queue.empty():
                batch.append(queue.get_nowait())
            for item in _without_superseded(batch):
                try:
                    if isinstance(item, ToastRequest):
                        if await self.toaster.show(item) and item.notification_ids:
                            self._toast_ids[item.key] = item.notification_ids
                            self._send_seen(item.notification_ids, "shown")
                    else:
                        await self.toaster.withdraw(item)
                except Exception:
                    log.exception("the toaster failed")

    def _send_seen(self, ids: tuple[str, ...], how: str) -> None:
        """A seen receipt, if connected (a late one is worth nothing to the server)."""
        connection = self._connection
        if connection is not None and connection.state == "connected":
            self.tasks.spawn(connection.seen(list(ids), how), f"reporting toasts {how}")

    def _on_toast_activated(self, key: str, conversation_id: str | None) -> None:
        ids = self._toast_ids.pop(key, ())
        if ids:
            self._send_seen(ids, "clicked")
        self.policy.toast_closed(key)
        if conversation_id is not None:
            self.open_conversation(conversation_id)
        else:
            self.show_notifications()

    def _on_toast_accept(self, key: str, conversation_id: str | None) -> None:
        ids = self._toast_ids.pop(key, ())
        if ids:
            self._send_seen(ids, "clicked")
        self.policy.toast_closed(key)
        if conversation_id is not None:
            self.accept(conversation_id)

    def _on_toast_mark_read(self, key: str, conversation_id: str | None) -> None:
        self.policy.toast_closed(key)
        if conversation_id is not None:
            self.mark_conversation_read(conversation_id)

    # ------------------------------------------------------ waiting visitors

    async def _load_queue(self) -> None:
        connection = self._require_connection()
        entries = await connection.queue()
        if connection is self._connection:
            self.waiting.reset(entries)

    def show_waiting(self) -> None:
        """Show the Waiting view in front."""
        window = self.waiting_window
        window.show()
        window.raise_()
        window.activateWindow()

    def accept(self, conversation_id: str) -> None:
        """Claim a conversation (Accept): open it when it is mine, else say who has it."""
        self.policy.note_own_action(conversation_id, self._clock())
        self.tasks.spawn(self._claim(conversation_id), f"accepting {conversation_id}")

    async def _claim(self, conversation_id: str) -> None:
        try:
            await self._require_connection().claim(conversation_id)
        except RequestFailed as exc:
            if exc.code != "conflict":
                self.claimFinished.emit(conversation_id, exc.message)
                self._toast_claim_outcome(
                    conversation_id, "This chat could not be accepted", exc.message
                )
                raise
            self.claimFinished.emit(conversation_id, exc.message)
            self._toast_claim_outcome(conversation_id, "Someone else took this chat", exc.message)
            return
        self.claimFinished.emit(conversation_id, "")
        self.open_conversation(conversation_id)

    def _toast_claim_outcome(self, conversation_id: str, title: str, message: str) -> None:
        # The chat's own toast is gone (withdrawn, or closed by the click): say what
        # happened where the agent was looking, and let a click open the conversation.
        request = ToastRequest(
            key=f"{CLAIM_KEY}{conversation_id}",
            title=title,
            body=message,
            conversation_id=conversation_id,
            actions=("open",),
        )
        self._enqueue_toast(request)
        self.toastRequested.emit(request)

    def _on_withdrawn(self, push: WithdrawPush) -> None:
        """Another agent took the chat: close its toasts here (``read`` follows)."""
        conversations = {
            n.conversation_id
            for i in push.ids
            if (n := self.model.get(i)) is not None and n.conversation_id is not None
        }
        for key, ids in list(self._toast_ids.items()):
            if set(ids) & set(push.ids) and key.startswith("conversation:"):
                conversations.add(key.removeprefix("conversation:"))
        for conversation_id in conversations:
            self._toast_ids.pop(f"conversation:{conversation_id}", None)
            self._conversation_read(conversation_id)

    # ------------------------------------------------------------- presence

    def _on_away_requested(self, away: bool) -> None:
        self.away_by_hand = away
        self.check_presence()

    def check_presence(self) -> None:
        """Work out the presence (DND, Away, idle time) and send it when it changed."""
        if self._idle_seconds is None or not self.settings.away_after_idle_seconds:
            self._announce_presence(None)
            return
        self.tasks.spawn(self._check_idle(), "reading the idle time")

    async def _check_idle(self) -> None:
        if self._idle_seconds is None:
            return
        try:
            idle = await self._idle_seconds()
        except Exception:
            log.info("the desktop's idle time could not be read", exc_info=True)
            idle = None
        self._announce_presence(idle)

    def _announce_presence(self, idle: float | None) -> None:
        connection = self._connection
        if connection is None or connection.state != "connected":
            return
        status = presence_status(
            dnd=self.policy.dnd.manual_active(self._clock()),
            away_by_hand=self.away_by_hand,
            idle_seconds=idle,
            away_after_seconds=self.settings.away_after_idle_seconds,
        )
        changed = self.presence.update(status)
        if changed is not None:
            self.tasks.spawn(self._send_presence(changed), "sending presence")

    # -------------------------------------------------------------- windows

    def show_notifications(self) -> None:
        """Show the notification window in front."""
        self.window.show()
        self.window.raise_()
        self.window.activateWindow()

    def open_conversation(self, conversation_id: str) -> None:
        """Open (or bring forward) the conversation's window, load it and mark it read."""
        window = self.conversations.get(conversation_id)
        if window is None:
            agent = self._agent or AgentRef(id="", name="You")
            window = ConversationWindow(conversation_id, agent)
            window.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose, True)
            window.replyRequested.connect(self._on_reply_requested)
            window.assignToMeRequested.connect(self._on_assign_requested)
            window.activeChanged.connect(self._on_conversation_active)
            window.closed.connect(self._on_conversation_closed)
            self.conversations[conversation_id] = window
        window.set_connection_state(self._state)
        window.show()
        window.raise_()
        window.activateWindow()
        self.tasks.spawn(
            self._load_conversation(window),
            f"opening conversation {conversation_id}",
            on_error=lambda exc: window.set_error(_conversation_error(exc)),
        )
        self.conversationOpened.emit(conversation_id)

    async def _load_conversation(self, window: ConversationWindow) -> None:
        await self._reload_conversation(window)
        self.mark_conversation_read(window.conversation_id)

    async def _reload_conversation(self, window: ConversationWindow) -> None:
        conversation = await self._require_connection().conversation(window.conversation_id)
        window.set_error("")
        window.show_conversation(conversation)

    def mark_conversation_read(self, conversation_id: str) -> None:
        """Mark a conversation's notifications read, here at once and on the server."""
        rows = self.model.unread_in_conversation(conversation_id)
        self.model.mark_conversation_read(conversation_id)
        self._conversation_read(conversation_id)
        self._read(ReadConversation(conversation_id), rows)

    def _conversation_read(self, conversation_id: str) -> None:
        key = f"conversation:{conversation_id}"
        self.policy.conversation_read(conversation_id)
        self.policy.toast_closed(key)
        self._enqueue_toast(key)

    def _on_reply_requested(self, conversation_id: str, body: str, client_msg_id: str) -> None:
        if conversation_id not in self.conversations:
            return
        self._send_reply_soon(conversation_id, body, client_msg_id)

    def _send_reply_soon(self, conversation_id: str, body: str, client_msg_id: str) -> None:
        """Send a reply now, or keep it "waiting" until the next welcome when offline."""
        window = self.conversations.get(conversation_id)
        connection = self._connection
        if connection is None or connection.state != "connected":
            self._waiting_replies[client_msg_id] = (conversation_id, body)
            if window is not None:
                window.set_reply_state(client_msg_id, "waiting")
            return
        if window is not None:
            window.set_reply_state(client_msg_id, "sending")
        self.tasks.spawn(
            self._send_reply(connection, conversation_id, body, client_msg_id),
            f"replying in {conversation_id}",
        )

    def _send_waiting_replies(self) -> None:
        waiting, self._waiting_replies = self._waiting_replies, {}
        for client_msg_id, (conversation_id, body) in waiting.items():
            self._send_reply_soon(conversation_id, body, client_msg_id)

    async def _send_reply(
        self, connection: Connection, conversation_id: str, body: str, client_msg_id: str
    ) -> None:
        try:
            message = await connection.reply(conversation_id, body, client_msg_id)
        except NotConnected:
            # Offline, or lost before the answer: the same client_msg_id goes again after
            # the next welcome, and the server stores it once whatever happened.
            if connection is self._connection:
                self._waiting_replies[client_msg_id] = (conversation_id, body)
                window = self.conversations.get(conversation_id)
                if window is not None:
                    window.set_reply_state(client_msg_id, "waiting")
            return
        except DeskbellError as exc:
            window = self.conversations.get(conversation_id)
            if window is not None:
                window.set_reply_state(client_msg_id, "failed")
                window.set_error(f"Your reply was not sent: {exc}")
            raise
        window = self.conversations.get(conversation_id)
        if window is not None:
            window.set_reply_state(client_msg_id, "sent", message)

    def _on_assign_requested(self, conversation_id: str) -> None:
        window = self.conversations.get(conversation_id)
        agent = self._agent
        if window is None or agent is None:
            return
        self.policy.note_own_action(conversation_id, self._clock())
        self.tasks.spawn(
            self._assign(window, agent),
            f"assigning {conversation_id}",
            on_error=lambda exc: window.set_error(f"The conversation was not assigned: {exc}"),
        )

    async def _assign(self, window: ConversationWindow, agent: AgentRef) -> None:
        await self._require_connection().assign(window.conversation_id, agent.id)
        window.set_error("")
        window.set_assignee(agent)

    def _on_conversation_active(self, conversation_id: str, active: bool) -> None:
        if active:
            self.focused_conversation = conversation_id
        elif self.focused_conversation == conversation_id:
            self.focused_conversation = None
        self.policy.set_focused_conversation(self.focused_conversation)

    def _on_conversation_closed(self, conversation_id: str) -> None:
        self.conversations.pop(conversation_id, None)

    # ------------------------------------------------------ notification window

    def _on_mark_ids_read(self, ids: list[str]) -> None:
        rows = self.model.unread_rows(ids)
        self.model.mark_read(ids)
        self._read(ReadIds(tuple(ids)), rows)

    def _on_mark_all_read(self, category: str | None) -> None:
        self.model.mark_category_read(category)
        self._read(ReadAll(category))

    # ------------------------------------------------------------------ reads

    def _read(self, request: ReadRequest, rows: list[tuple[str, str]] | None = None) -> None:
        """A read made here: shown at once; sent now, or after the next connect."""
        self.pending_reads.read(request, rows or ())
        self.render_badge()
        self._send_pending_reads()

    def _send_pending_reads(self) -> None:
        connection = self._connection
        if connection is None or connection.state != "connected":
            return  # they wait; the next welcome sends them
        for ticket in self.pending_reads.take():
            self.tasks.spawn(self._send_read(connection, ticket), "marking read")

    async def _send_read(self, connection: Connection, ticket: Ticket) -> None:
        request = ticket.request
        try:
            if isinstance(request, ReadIds):
                counts = await connection.mark_read(ids=list(request.ids))
            elif isinstance(request, ReadConversation):
                counts = await connection.mark_read(conversation_id=request.conversation_id)
            else:
                counts = await connection.mark_all_read(request.category)
        except NotConnected:
            # Offline, or the link dropped before the answer: again after the next welcome.
            self.pending_reads.lost(ticket)
            self.render_badge()
            return
        except DeskbellError:
            self.pending_reads.confirmed(ticket)  # refused for good: do not retry forever
            self.render_badge()
            raise
        self.pending_reads.confirmed(ticket)
        if connection is self._connection and isinstance(counts, dict):
            self._on_unread(counts)

    def _on_more_history(self, before_seq: int) -> None:
        self.tasks.spawn(
            self._load_history(before_seq),
            "loading older notifications",
            on_error=lambda exc: self.window.history_failed(),
        )

    async def _load_history(self, before_seq: int | None) -> None:
        page = await self._require_connection().history(before_seq=before_seq, limit=HISTORY_PAGE)
        self.model.add_history(page.items)
        self.window.set_history_complete(not page.more)

    # --------------------------------------------------------------------- DND

    def _on_dnd_requested(self, request: object) -> None:
        self.policy.dnd.apply_request(request)
        self.render_badge()
        self.check_presence()

    async def _send_presence(self, status: Any) -> None:
        connection = self._connection
        if connection is not None and connection.state == "connected":
            await connection.presence(status)

    # ------------------------------------------------------------------ misc

    def settings_changed(self) -> None:
        """Apply settings that take effect at once (toast categories, badge scope, DND)."""
        self.policy.categories = self.settings.toast_categories
        self.policy.muted_inboxes = self.settings.muted_inboxes
        self.policy.dnd.schedule = self.settings.dnd_schedule
        self.render_badge()

    def _require_connection(self) -> Connection:
        if self._connection is None:
            raise NotConnected("You are signed out. Sign in to Deskbell first.")
        return self._connection


def _conversation_error(exc: DeskbellError) -> str:
    return f"The conversation could not be loaded: {exc}"


def _show_error_in(window: ConversationWindow) -> Callable[[DeskbellError], None]:
    """An error handler that shows a loading problem in ``window``."""
    return lambda exc: window.set_error(_conversation_error(exc))


def _without_superseded(batch: list[ToastRequest | str]) -> list[ToastRequest | str]:
    """Drop queued toasts that a later item of the batch replaces or withdraws anyway.

    During a burst the toaster falls behind (each toast is a D-Bus round trip or two);
    showing a toast only to replace it a moment later costs time and flickers.
    """
    touched_later: set[str] = set()
    kept: list[ToastRequest | str] = []
    for item in reversed(batch):
        if isinstance(item, ToastRequest):
            if item.key in touched_later:
                continue
            touched_later.add(item.key)
            if item.replaces:
                touched_later.add(item.replaces)
        else:
            touched_later.add(item)
        kept.append(item)
    kept.reverse()
    return kept
