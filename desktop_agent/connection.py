"""ConnectionService: the only code that touches the agent's WebSocket.

It runs as one asyncio task (on the qasync loop in the app, on a plain loop in tests)
and talks to the rest of the app through Qt signals that carry protocol objects.

One connection's life (PROTOCOL.md, agent channel):

1. connect to ``<server>/agent`` with subprotocol ``deskbell.v1`` and the bearer token;
2. read ``welcome``; resume after the persisted last seq (or the server's, on a first
   start); the replay and its ``ok`` become one ``resumed`` signal;
3. live ``notification`` frames go through :class:`SessionCursor`: in order, never twice;
   a skipped seq sends ``resume`` again on the same socket;
4. on any loss, wait a backoff delay (cut short by :meth:`ConnectionService.wake`) and
   start again; a 401 handshake or close code 4001 ends in ``signed_out``.

Dead links are found by the websockets library's keep-alive pings.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import ssl
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, Final, TypeVar

from PySide6.QtCore import QObject, Signal
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus, ProxyError
from websockets.typing import Subprotocol

from backend.protocol import (
    CLOSE_GOING_AWAY,
    CLOSE_TOKEN_REVOKED,
    CLOSE_TRY_AGAIN_LATER,
    SUBPROTOCOL,
    AgentInfo,
    Assign,
    Claim,
    Conversation,
    ConversationOk,
    Error,
    GetConversation,
    History,
    HistoryOk,
    Login,
    LoginOk,
    Logout,
    MarkAllRead,
    MarkRead,
    Message,
    MessageOk,
    MessagePush,
    NotificationPush,
    Ok,
    Presence,
    PresenceStatus,
    ProtocolError,
    Queue,
    QueueChangedPush,
    QueueEntry,
    QueueOk,
    ReadPush,
    Reply,
    ResumeOk,
    Seen,
    SeenHow,
    ServerFrame,
    SignInOptions,
    SignInOptionsOk,
    SsoLogin,
    Unread,
    UnreadOk,
    UnreadPush,
    Welcome,
    WithdrawPush,
    decode_as,
    encode,
    peek,
)
from desktop_agent.core.backoff import quick_reconnect_delay, reconnect_delays
from desktop_agent.core.client_info import client_headers
from desktop_agent.core.server_url import channel_url
from desktop_agent.core.session import (
    AgentStream,
    Ask,
    Counts,
    Deliver,
    Effect,
    GiveUp,
    Replayed,
    SessionCursor,
)
from desktop_agent.core.state import CursorStore
from desktop_agent.core.untrusted import shown
from desktop_agent.errors import (
    AuthRejected,
    ConnectionLost,
    DeskbellError,
    NotConnected,
    RequestFailed,
    RequestTimedOut,
    ServerProtocolError,
    ServerUnreachable,
)
from desktop_agent.platform.network import NetworkAccess, TlsSetupError
from desktop_agent.platform.proxies import ProxyUnusable

log = logging.getLogger(__name__)

T = TypeVar("T")

# States carried by ``stateChanged``.
CONNECTING: Final = "connecting"
CONNECTED: Final = "connected"
DISCONNECTED: Final = "disconnected"
SIGNED_OUT: Final = "signed_out"

_SUBPROTOCOL = Subprotocol(SUBPROTOCOL)

MAX_SERVER_FRAME_BYTES: Final = 16 * 1024 * 1024
"""Largest frame accepted from the server (history pages can be large)."""
SIGNED_OUT_REJECTED = (
    "The server no longer accepts this sign-in (it was revoked or has expired). "
    "Sign in again to keep receiving notifications."
)
SIGNED_OUT_REVOKED = (
    "You were signed out because this device's sign-in was revoked on the server. "
    "Sign in again to keep receiving notifications."
)


class _RedactSecrets(logging.Filter):
    """Keeps the bearer token out of logs: websockets logs handshake headers at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if (
            isinstance(args, tuple)
            and len(args) == 2
            and isinstance(args[0], str)
            and args[0].lower() == "authorization"
        ):
            record.args = (args[0], "[redacted]")
        return True


_socket_log = logging.getLogger("desktop_agent.connection.websocket")
_socket_log.addFilter(_RedactSecrets())


@dataclass
class _SessionEnd:
    """Why a connection ended and what to do next."""

    action: str  # "retry", "quick", "signed_out", "stop"
    reason: str = ""
    welcomed: bool = False


class _SignedOut(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class ConnectionService(QObject):
    """Keeps one agent connected to the server and turns frames into signals.

    Signals:
        stateChanged(str): "connecting", "connected", "disconnected" or "signed_out".
        welcomed(object): the ``Welcome`` of each new connection.
        notificationReceived(object): a live ``Notification``, in seq order, never twice.
        resumed(object): a :class:`ResumeResult` after every resume (on connect, after a gap).
        unreadChanged(dict): the agent's unread counts, whenever they change.
        readChanged(list): ids of notifications marked read by any session.
        messageReceived(str, object): conversation id and a ``Message`` in an open conversation.
        authFailed(str): the token was refused; the text is for a person.
        queueChanged(object, bool): a ``QueueEntry`` of a ``queue_changed`` push and
            whether it waits (v1.1; only after :meth:`queue` on this connection).
        withdrawn(object): a ``WithdrawPush``: someone else took these notifications' chat.
        connectFailed(str): a connection attempt failed; the text is for a person (says
            what to tell IT when a proxy or certificate is the cause).

    Args:
        server_url: the server address as configured (``ws://host:port`` or ``http://…``).
        token: the agent token.
        cursors: where the last delivered seq is persisted.
        delays: a factory of reconnect delay generators; a fresh one starts after every
            connection that got as far as ``welcome``.
        quick_delay: the delay after a close with 1001 (server going away) or 1013.
        ping_interval, ping_timeout: keep-alive (seconds; None turns it off).
        open_timeout: how long a connection attempt may take.
        request_timeout: how long a request waits for its reply.
        resume_limit: ``limit`` of every ``resume``.
        probe_timeout: how long :meth:`wake` waits for a pong before dropping the link.
        close_timeout: how long a closing handshake may take on a link that died.
        cursor_save_delay: the persisted cursor is written at most this often while
            notifications stream in (and always when a connection ends or on stop), so
            a busy stream does not write a file per notification on the GUI thread.
        network: proxy and TLS trust (default: proxy from the environment, the OS trust
            store).
    """

    stateChanged = Signal(str)
    welcomed = Signal(object)
    notificationReceived = Signal(object)
    resumed = Signal(object)
    unreadChanged = Signal(dict)
    readChanged = Signal(list)
    messageReceived = Signal(str, object)
    authFailed = Signal(str)
    queueChanged = Signal(object, bool)
    withdrawn = Signal(object)
    connectFailed = Signal(str)

    def __init__(
        self,
        server_url: str,
        token: str,
        cursors: CursorStore,
        *,
        delays: Callable[[], Iterator[float]] = reconnect_delays,
        quick_delay: Callable[[], float] = quick_reconnect_delay,
        ping_interval: float | None = 20.0,
        ping_timeout: float | None = 20.0,
        open_timeout: float = 10.0,
        request_timeout: float = 30.0,
        resume_limit: int = 500,
        probe_timeout: float = 5.0,
        close_timeout: float = 2.0,
        cursor_save_delay: float = 1.0,
        network: NetworkAccess | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._network = network if network is not None else NetworkAccess()
        self._server_url = server_url
        self._url = channel_url(server_url, "agent")
        self._token = token
        self._cursors = cursors
        self._delays = delays
        self._quick_delay = quick_delay
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._open_timeout = open_timeout
        self._request_timeout = request_timeout
        self._resume_limit = resume_limit
        self._probe_timeout = probe_timeout
        self._close_timeout = close_timeout
        self._cursor_save_delay = cursor_save_delay
        self._save_handle: asyncio.TimerHandle | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

        self._state = DISCONNECTED
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        self._ws: ClientConnection | None = None
        self._agent: AgentInfo | None = None
        self._stream: AgentStream | None = None
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[ServerFrame]] = {}
        self._probes: set[asyncio.Task[None]] = set()
        self._stopping = False

    # ------------------------------------------------------------------ lifecycle

    @property
    def state(self) -> str:
        """The current state, as last sent by ``stateChanged``."""
        return self._state

    @property
    def agent(self) -> AgentInfo | None:
        """The signed-in agent, known from the first ``welcome``."""
        return self._agent

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start connecting (and keep reconnecting) on the running asyncio loop.

        Raises:
            RuntimeError: no running event loop.
        """
        if self.running:
            return
        self._loop = asyncio.get_running_loop()
        self._stopping = False
        self._task = self._loop.create_task(self._run(), name="deskbell-connection")
        self._task.add_done_callback(self._task_done)

    def set_network(self, network: NetworkAccess) -> None:
        """Use ``network`` (proxy, TLS trust) from the next connection attempt on."""
        self._network = network

    def set_token(self, token: str) -> None:
        """Use ``token`` from the next connection on (after signing in again)."""
        self._token = token

    async def stop(self) -> None:
        """Close the connection and stop reconnecting. Safe to call twice."""
        for probe in list(self._probes):
            probe.cancel()
        task, self._task = self._task, None
        self._stopping = True
        ws = self._ws
        if ws is not None:
            # Say goodbye properly (1000) rather than vanish mid-frame.
            with contextlib.suppress(ConnectionClosed, OSError):
                await ws.close()
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._save_cursor()
        if self._state != SIGNED_OUT:
            self._set_state(DISCONNECTED)

    def wake(self) -> None:
        """Reconnect now instead of waiting out the backoff; when connected, check the link.

        The app calls this when the network comes back or the machine wakes up: a link
        that died during sleep is then found within a ping instead of the keep-alive's
        full interval.
        """
        self._wake.set()
        ws = self._ws
        if ws is not None and self._state == CONNECTED and self._loop is not None:
            probe = self._loop.create_task(self._probe(ws, self._probe_timeout))
            self._probes.add(probe)
            probe.add_done_callback(self._probes.discard)

    def network_changed(self) -> None:
        """The network came back or changed (QNetworkInformation): same as :meth:`wake`."""
        self.wake()

    def _task_done(self, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            log.error("connection task failed", exc_info=exc)
            self._set_state(DISCONNECTED)

    def _set_state(self, state: str) -> None:
        if state != self._state:
            self._state = state
            self.stateChanged.emit(state)

    async def _run(self) -> None:
        delays = self._delays()
        while True:
            self._wake.clear()
            self._set_state(CONNECTING)
            try:
                end = await self._connect_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                # A bug here must not end reconnecting for good: log it and retry.
                log.exception("unexpected error in the connection; reconnecting")
                end = _SessionEnd("retry")
            if self._stopping:
                return
            if end.action == "signed_out":
                self._set_state(SIGNED_OUT)
                self.authFailed.emit(end.reason)
                return
            self._set_state(DISCONNECTED)
            if end.welcomed:
                delays = self._delays()
            delay = self._quick_delay() if end.action == "quick" else next(delays)
            log.info("reconnecting in %.1f s (%s)", delay, end.reason or end.action)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=delay)

    async def _connect_once(self) -> _SessionEnd:
        try:
            network_options = await self._network.connect_options(self._url)
            async with connect(
                self._url,
                subprotocols=[_SUBPROTOCOL],
                additional_headers={
                    "Authorization": f"Bearer {self._token}",
                    **client_headers(),
                },
                open_timeout=self._open_timeout,
                ping_interval=self._ping_interval,
                ping_timeout=self._ping_timeout,
                max_size=MAX_SERVER_FRAME_BYTES,
                close_timeout=self._close_timeout,
                logger=_socket_log,
                **network_options,
            ) as ws:
                return await self._session(ws)
        except InvalidStatus as exc:
            status = exc.response.status_code
            if status == 401:
                return _SessionEnd("signed_out", SIGNED_OUT_REJECTED)
            return _SessionEnd("retry", f"server answered HTTP {status}")
        except (OSError, TimeoutError, InvalidHandshake, ProxyUnusable, TlsSetupError) as exc:
            message = self._network.describe_failure(exc, self._url)
            self.connectFailed.emit(message)
            return _SessionEnd("retry", message)

    async def _session(self, ws: ClientConnection) -> _SessionEnd:
        welcomed = False
        try:
            raw = await asyncio.wait_for(ws.recv(), timeout=self._request_timeout)
            welcome = _decode(raw, Welcome)
            stream = self._on_welcome(welcome)
            welcomed = True
            self._ws = ws
            self._set_state(CONNECTED)
            self.welcomed.emit(welcome)
            await self._carry_out(ws, stream.welcome(welcome))
            while True:
                await self._dispatch(ws, await ws.recv())
                # recv() returns at once while frames are queued, so a backlog would be
                # handled in one go and starve the rest of the loop (toasts, repaints).
                await asyncio.sleep(0)
        except ConnectionClosed as exc:
            code = exc.rcvd.code if exc.rcvd is not None else None
            reason = exc.rcvd.reason if exc.rcvd is not None else "connection lost"
            if code == CLOSE_TOKEN_REVOKED:
                return _SessionEnd("signed_out", SIGNED_OUT_REVOKED, welcomed)
            if code in (CLOSE_GOING_AWAY, CLOSE_TRY_AGAIN_LATER):
                return _SessionEnd("quick", f"server closed with {code} {reason}", welcomed)
            return _SessionEnd("retry", f"closed ({code}) {reason}", welcomed)
        except TimeoutError:
            return _SessionEnd("retry", "no welcome from the server", welcomed)
        except (ProtocolError, ServerProtocolError) as exc:
            log.warning("server sent an unusable frame: %s", exc)
            return _SessionEnd("retry", str(exc), welcomed)
        finally:
            self._ws = None
            if self._stream is not None:
                self._stream.ended()
            self._fail_pending()
            self._save_cursor()

    def _on_welcome(self, welcome: Welcome) -> AgentStream:
        if self._agent is None or self._agent.id != welcome.agent.id or self._stream is None:
            persisted = self._cursors.load(self._server_url, welcome.agent.id)
            self._stream = AgentStream(
                SessionCursor(persisted), self._resume_limit, lambda: next(self._ids)
            )
        self._agent = welcome.agent
        return self._stream

    # -------------------------------------------------------------- the stream

    async def _carry_out(self, ws: ClientConnection, effects: list[Effect]) -> None:
        """Do what the stream (core/session.py) decided, in order."""
        for effect in effects:
            match effect:
                case Deliver(notification=notification):
                    self.notificationReceived.emit(notification)
                    self._save_cursor_soon()
                case Counts(unread=unread):
                    self.unreadChanged.emit(unread)
                case Replayed(result=result):
                    self.resumed.emit(result)
                    self._save_cursor()
                case Ask(resume=resume):
                    await ws.send(encode(resume), text=True)
                case GiveUp(reason=reason):
                    raise ServerProtocolError(reason)

    async def _dispatch(self, ws: ClientConnection, raw: str | bytes) -> None:
        try:
            frame = peek(raw)
            kind = frame.type
            if kind == "notification":
                await self._on_notification(ws, _decode(frame.raw, NotificationPush))
            elif kind in ("ok", "error"):
                await self._on_reply(ws, frame)
            elif kind == "unread":
                self.unreadChanged.emit(dict(_decode(frame.raw, UnreadPush).unread))
            elif kind == "read":
                self.readChanged.emit(list(_decode(frame.raw, ReadPush).ids))
            elif kind == "message":
                push = _decode(frame.raw, MessagePush)
                self.messageReceived.emit(push.conversation_id, push.message)
            elif not self._dispatch_waiting(frame):
                # Newer servers may push more; an old client ignores what it does not know.
                log.debug("ignoring server frame of type %r", kind)
        except ProtocolError as exc:
            log.warning("ignoring a server frame this client cannot read: %s", exc.message)

    def _dispatch_waiting(self, frame: ServerFrame) -> bool:
        """The v1.1 pushes (waiting visitors); False for any other frame type.

        Raises:
            ProtocolError: the frame does not have its type's shape.
        """
        if frame.type == "queue_changed":
            push = _decode(frame.raw, QueueChangedPush)
            self.queueChanged.emit(push.conversation, push.waiting)
            return True
        if frame.type == "withdraw":
            self.withdrawn.emit(_decode(frame.raw, WithdrawPush))
            return True
        return False

    async def _on_notification(self, ws: ClientConnection, push: NotificationPush) -> None:
        assert self._stream is not None
        last = self._stream.cursor.last_seq
        effects = self._stream.notification(push)
        if any(isinstance(effect, Ask) for effect in effects):
            log.warning(
                "notification seq %d after %d: resuming to fetch the missing ones",
                push.notification.seq,
                last,
            )
        await self._carry_out(ws, effects)

    async def _on_reply(self, ws: ClientConnection, frame: ServerFrame) -> None:
        stream = self._stream
        if stream is not None and stream.owns(frame.id):
            if frame.type == "error":
                effects = stream.refused(_decode(frame.raw, Error))
            else:
                effects = stream.resumed(_decode(frame.raw, ResumeOk))
            await self._carry_out(ws, effects)
            return
        future = self._pending.get(frame.id) if isinstance(frame.id, int) else None
        if future is not None and not future.done():
            future.set_result(frame)
        elif frame.type == "error":
            error = _decode(frame.raw, Error)
            log.warning("server error %s: %s", error.code, error.message)

    def _save_cursor_soon(self) -> None:
        if self._save_handle is None and self._loop is not None:
            self._save_handle = self._loop.call_later(self._cursor_save_delay, self._save_cursor)

    def _save_cursor(self) -> None:
        if self._save_handle is not None:
            self._save_handle.cancel()
            self._save_handle = None
        if self._stream is None or self._agent is None:
            return
        try:
            self._cursors.save(self._server_url, self._agent.id, self._stream.cursor.last_seq)
        except OSError:
            # Not fatal: the cursor lives on in memory; a restart resumes from the server's seq.
            log.exception("could not save the notification cursor")

    async def _probe(self, ws: ClientConnection, pong_within: float) -> None:
        """Ping now; drop the connection if no pong comes back in time."""
        try:
            pong = await ws.ping()
            await asyncio.wait_for(pong, pong_within)
        except TimeoutError:
            log.info("no pong within %.0f s after wake-up; reconnecting", pong_within)
            ws.transport.abort()
        except ConnectionClosed:
            pass

    # ------------------------------------------------------------------ requests

    def _fail_pending(self) -> None:
        pending, self._pending = self._pending, {}
        for future in pending.values():
            if not future.done():
                future.set_exception(ConnectionLost())
                # Mark retrieved: a request that already gave up must not warn at exit.
                future.exception()

    async def _request(self, make: Callable[[int], Any], reply_type: type[T]) -> T:
        ws = self._ws
        if ws is None or self._state != CONNECTED:
            raise NotConnected()
        request_id = next(self._ids)
        future: asyncio.Future[ServerFrame] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        try:
            try:
                await ws.send(encode(make(request_id)), text=True)
            except ConnectionClosed:
                raise ConnectionLost() from None
            try:
                frame = await asyncio.wait_for(future, self._request_timeout)
            except TimeoutError:
                raise RequestTimedOut(
                    "The Deskbell server did not answer in time. Try again in a moment."
                ) from None
        finally:
            self._pending.pop(request_id, None)
        return _reply(frame, reply_type)

    async def history(
        self,
        before_seq: int | None = None,
        limit: int = 50,
        category: str | None = None,
        unread_only: bool = False,
    ) -> HistoryOk:
        """Fetch one page of older notifications (``items`` newest first, ``more``).

        Raises:
            NotConnected, RequestFailed, RequestTimedOut, ServerProtocolError.
        """
        return await self._request(
            lambda rid: History(
                id=rid,
                before_seq=before_seq,
                limit=limit,
                category=category,
                unread_only=unread_only,
            ),
            HistoryOk,
        )

    async def mark_read(
        self, *, ids: list[str] | None = None, conversation_id: str | None = None
    ) -> Unread:
        """Mark notifications read, by ids or by conversation; return the new counts.

        Raises:
            ValueError: neither or both of ``ids`` and ``conversation_id``.
            NotConnected, RequestFailed, RequestTimedOut, ServerProtocolError.
        """
        if (ids is None) == (conversation_id is None):
            raise ValueError("give either ids or conversation_id")
        reply = await self._request(
            lambda rid: MarkRead(id=rid, ids=ids, conversation_id=conversation_id), UnreadOk
        )
        return reply.unread

    async def mark_all_read(self, category: str | None = None) -> Unread:
        """Mark every notification (of one category, or all) read; return the new counts.

        Raises:
            NotConnected, RequestFailed, RequestTimedOut, ServerProtocolError.
        """
        reply = await self._request(lambda rid: MarkAllRead(id=rid, category=category), UnreadOk)
        return reply.unread

    async def conversation(self, conversation_id: str) -> Conversation:
        """Fetch a conversation (and subscribe to its live ``message`` pushes).

        Raises:
            RequestFailed: ``not_found`` outside the agent's inboxes.
            NotConnected, RequestTimedOut, ServerProtocolError.
        """
        reply = await self._request(
            lambda rid: GetConversation(id=rid, conversation_id=conversation_id), ConversationOk
        )
        return reply.conversation

    async def reply(self, conversation_id: str, body: str, client_msg_id: str) -> Message:
        """Send a reply; a retry with the same ``client_msg_id`` stores nothing new.

        Raises:
            NotConnected, RequestFailed, RequestTimedOut, ServerProtocolError.
        """
        reply = await self._request(
            lambda rid: Reply(
                id=rid, conversation_id=conversation_id, body=body, client_msg_id=client_msg_id
            ),
            MessageOk,
        )
        return reply.message

    async def assign(self, conversation_id: str, agent_id: str) -> None:
        """Assign a conversation to an agent.

        Raises:
            NotConnected, RequestFailed, RequestTimedOut, ServerProtocolError.
        """
        await self._request(
            lambda rid: Assign(id=rid, conversation_id=conversation_id, agent_id=agent_id), Ok
        )

    # ------------------------------------------------ v1.1: waiting visitors

    async def queue(self) -> list[QueueEntry]:
        """The waiting conversations of my inboxes, longest wait first; from now on this
        connection also gets ``queue_changed`` pushes (``queueChanged``).

        Raises:
            NotConnected, RequestFailed, RequestTimedOut, ServerProtocolError.
        """
        reply = await self._request(lambda rid: Queue(id=rid), QueueOk)
        return reply.conversations

    async def claim(self, conversation_id: str) -> Conversation:
        """Take an unassigned conversation (Accept); the conversation, now mine.

        Raises:
            RequestFailed: ``conflict`` when another agent has it (its message names
                them), ``not_found`` outside my inboxes.
            NotConnected, RequestTimedOut, ServerProtocolError.
        """
        reply = await self._request(
            lambda rid: Claim(id=rid, conversation_id=conversation_id), ConversationOk
        )
        return reply.conversation

    async def seen(self, ids: list[str], how: SeenHow) -> None:
        """Report toasts shown or clicked (no reply is awaited).

        Raises:
            NotConnected: no live connection (a receipt is worth nothing later).
        """
        ws = self._ws
        if ws is None or self._state != CONNECTED:
            raise NotConnected()
        try:
            await ws.send(encode(Seen(ids=ids, how=how)), text=True)
        except ConnectionClosed:
            raise ConnectionLost() from None

    async def presence(self, status: PresenceStatus) -> None:
        """Tell the server the agent's presence; no reply is awaited.

        Raises:
            NotConnected: no live connection (presence is sent again on the next change).
        """
        ws = self._ws
        if ws is None or self._state != CONNECTED:
            raise NotConnected()
        try:
            await ws.send(encode(Presence(status=status)), text=True)
        except ConnectionClosed:
            raise ConnectionLost() from None


def _decode(raw: bytes | str, frame_type: type[T]) -> T:
    """Decode a server frame as ``frame_type``, its text made safe to show (the server
    is not trusted: see core.untrusted).

    Raises:
        ProtocolError: it does not have that shape.
    """
    return shown(decode_as(raw, frame_type))


def _reply(frame: ServerFrame, reply_type: type[T]) -> T:
    try:
        if frame.type == "error":
            error = _decode(frame.raw, Error)
            raise RequestFailed(error.code, error.message)
        return _decode(frame.raw, reply_type)
    except ProtocolError as exc:
        raise ServerProtocolError(f"The server's reply could not be read: {exc.message}") from None


# ---------------------------------------------------------------------- sign-in


async def _auth_request(
    server_url: str,
    make: Callable[[int], Any],
    reply_type: type[T],
    *,
    answer_within: float,
    network: NetworkAccess | None = None,
) -> T:
    try:
        url = channel_url(server_url, "auth")
    except ValueError as exc:
        raise ServerUnreachable(f"The server address cannot be used: {exc}.") from None
    network = network or NetworkAccess()
    try:
        network_options = await network.connect_options(url)
        async with connect(
            url,
            subprotocols=[_SUBPROTOCOL],
            open_timeout=answer_within,
            max_size=MAX_SERVER_FRAME_BYTES,
            close_timeout=2,
            **network_options,
        ) as ws:
            await ws.send(encode(make(1)), text=True)
            async with asyncio.timeout(answer_within):
                while True:
                    try:
                        frame = peek(await ws.recv())
                    except ProtocolError as exc:
                        raise ServerProtocolError(
                            f"The server's reply could not be read: {exc.message}"
                        ) from None
                    if frame.id == 1 and frame.type in ("ok", "error"):
                        return _reply(frame, reply_type)
    except DeskbellError:
        raise
    except InvalidStatus as exc:
        raise ServerUnreachable(
            f"{url} answered with HTTP {exc.response.status_code} instead of a Deskbell "
            "sign-in. Check the server address."
        ) from None
    except TimeoutError:
        raise RequestTimedOut(
            f"The Deskbell server at {server_url} did not answer in time. "
            "Check the address and your network, then try again."
        ) from None
    except ConnectionClosed:
        raise ServerUnreachable(
            f"The Deskbell server at {server_url} closed the connection before answering. "
            "Try again in a moment."
        ) from None
    except (ssl.SSLError, ProxyError) as exc:
        raise ServerUnreachable(network.describe_failure(exc, url)) from None
    except (OSError, InvalidHandshake) as exc:
        raise ServerUnreachable(
            f"Could not reach the Deskbell server at {server_url} ({exc}). "
            "Check the address and your network, then try again."
        ) from None


async def sign_in(
    server_url: str,
    email: str,
    password: str,
    device: str | None = None,
    *,
    answer_within: float = 30.0,
    network: NetworkAccess | None = None,
) -> tuple[str, AgentInfo]:
    """Exchange email and password for an agent token over ``<server>/auth``.

    Returns:
        The token and the agent it belongs to.

    Raises:
        AuthRejected: wrong email or password.
        RequestFailed: any other refusal (``rate_limited`` after too many tries, ...).
        ServerUnreachable, RequestTimedOut, ServerProtocolError.
    """
    try:
        reply = await _auth_request(
            server_url,
            lambda rid: Login(id=rid, email=email, password=password, device=device),
            LoginOk,
            answer_within=answer_within,
            network=network,
        )
    except RequestFailed as exc:
        if exc.code == "unauthorized":
            raise AuthRejected(
                "The email or password is not right. Check both and try again."
            ) from None
        if exc.code == "rate_limited":  # the server's words say how long to wait
            message = exc.message.strip().rstrip(".")
            raise RequestFailed(exc.code, f"{message[:1].upper()}{message[1:]}.") from None
        raise
    return reply.token, reply.agent


async def sign_out(
    server_url: str,
    token: str,
    *,
    answer_within: float = 30.0,
    network: NetworkAccess | None = None,
) -> None:
    """Revoke ``token`` on the server (``logout`` over ``<server>/auth``).

    Raises:
        RequestFailed, ServerUnreachable, RequestTimedOut, ServerProtocolError.
    """
    await _auth_request(
        server_url,
        lambda rid: Logout(id=rid, token=token),
        Ok,
        answer_within=answer_within,
        network=network,
    )


async def sign_in_options(
    server_url: str, *, answer_within: float = 10.0, network: NetworkAccess | None = None
) -> SignInOptionsOk:
    """Ask the server how agents sign in: password, single sign-on, or both.

    Raises:
        ServerUnreachable, RequestTimedOut, ServerProtocolError, RequestFailed.
    """
    return await _auth_request(
        server_url,
        lambda rid: SignInOptions(id=rid),
        SignInOptionsOk,
        answer_within=answer_within,
        network=network,
    )


async def sso_sign_in(
    server_url: str,
    id_token: str,
    nonce_secret: str,
    device: str | None = None,
    *,
    answer_within: float = 30.0,
    network: NetworkAccess | None = None,
) -> tuple[str, AgentInfo]:
    """Exchange an ID token from the server's OpenID provider for an agent token.

    Raises:
        AuthRejected: the server did not accept the ID token (the text says why).
        RequestFailed, ServerUnreachable, RequestTimedOut, ServerProtocolError.
    """
    try:
        reply = await _auth_request(
            server_url,
            lambda rid: SsoLogin(id=rid, id_token=id_token, nonce=nonce_secret, device=device),
            LoginOk,
            answer_within=answer_within,
            network=network,
        )
    except RequestFailed as exc:
        if exc.code == "unauthorized":
            raise AuthRejected(exc.message) from None
        raise
    return reply.token, reply.agent
