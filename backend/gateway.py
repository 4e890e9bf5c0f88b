"""The gateway: this node's open sockets, and fan-out of bus events to them.

Writes to sockets never await. Frames go straight into the connection's transport (as
``websockets.broadcast`` does), which is what makes one event to thousands of agents
cheap; a connection whose unsent bytes pass ``buffer_limit`` is closed with 1013 and
resumes later, so one slow client never holds up the rest (DESIGN.md guarantee 4).
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from websockets.asyncio.server import ServerConnection
from websockets.protocol import State

from backend import ids, protocol
from backend.bus import (
    BusEvent,
    MessageAdded,
    NotificationsStored,
    QueueChanged,
    ReadChanged,
    TokensRevoked,
    Withdrawn,
)
from backend.metrics import Metrics
from backend.store.base import Agent, Store

log = logging.getLogger(__name__)

DEFAULT_BUFFER_LIMIT = 4 * 1024 * 1024
REFILL_LIMIT = 1000
"""Most notifications one catch-up from the store sends (the protocol's resume cap)."""
REFILL_CONCURRENCY = 8
K = TypeVar("K")
V = TypeVar("V")


class ReplayState(enum.Enum):
    WAITING = "waiting"
    """Welcomed, no resume yet: nothing is pushed."""
    REPLAYING = "replaying"
    """A resume is reading the store: live notifications are held back."""
    LIVE = "live"


class Socket:
    """One WebSocket connection, with non-blocking, bounded writes."""

    def __init__(self, connection: ServerConnection, buffer_limit: int, metrics: Metrics):
        self.connection = connection
        self.buffer_limit = buffer_limit
        self.metrics = metrics
        self.closing = False
        self.conversations: set[str] = set()

    def send(self, frame: bytes) -> bool:
        """Write one text frame now. Returns False when the connection is gone or was
        closed for being too slow."""
        connection = self.connection
        if self.closing or connection.protocol.state is not State.OPEN:
            return False
        try:
            connection.protocol.send_text(frame)
            connection.send_data()
        except Exception as exc:  # the transport died under us
            log.debug("write failed: %s", exc)
            return False
        transport = connection.transport
        if transport.get_write_buffer_size() > self.buffer_limit:
            self.close_slow()
            return False
        return True

    async def send_paced(self, frame: bytes) -> None:
        """Write one text frame, waiting while the peer's backlog is large. For bulk
        sends (a resume's replay) that must not trip the slow-client bound.

        Raises:
            ConnectionClosed: the connection is gone.
        """
        await self.connection.send(frame, text=True)

    def close_slow(self) -> None:
        if self.closing:
            return
        self.closing = True
        self.metrics.slow_disconnects.inc()
        log.warning(
            "event=slow_consumer remote=%s buffered=%d",
            self.connection.remote_address,
            self.connection.transport.get_write_buffer_size(),
        )
        # The close frame would queue behind the unread backlog, so drop the link; the
        # client sees an abnormal close, reconnects and resumes from its last seq.
        self.connection.transport.abort()


class AgentSocket(Socket):
    """An agent's connection on ``/agent`` and its place in the notification stream."""

    def __init__(
        self,
        connection: ServerConnection,
        agent: Agent,
        token_hash: str,
        buffer_limit: int,
        metrics: Metrics,
    ):
        super().__init__(connection, buffer_limit, metrics)
        self.agent = agent
        self.token_hash = token_hash
        self.state = ReplayState.WAITING
        self.sent_seq = 0
        self.held: list[tuple[int, bytes]] = []
        self.replays = 0
        """Counts replays begun; a catch-up that finds it changed gives way."""
        self.on_gap: Callable[[AgentSocket, list[tuple[int, bytes]]], None] | None = None
        self.resync_pending = False
        """A bus resync arrived while this socket was replaying: read the store again
        once the replay is done, or events lost meanwhile would be skipped."""
        self.queue_inboxes: frozenset[int] = frozenset()
        """v1.1: inboxes whose ``queue_changed`` this session asked for (``queue``)."""
        self.presence: protocol.PresenceStatus = "online"

    def push(self, seq: int, frame: bytes) -> bool:
        """Deliver a live notification frame unless this session already has it."""
        if self.state is ReplayState.LIVE:
            if seq <= self.sent_seq:
                return False
            if self.send(frame):
                self.sent_seq = seq
                return True
            return False
        if self.state is ReplayState.REPLAYING:
            self.held.append((seq, frame))
        return False

    def begin_replay(self, after_seq: int) -> None:
        self.state = ReplayState.REPLAYING
        self.sent_seq = after_seq
        self.held = []
        self.replays += 1

    def finish_replay(self, *, allow_gap: bool = False) -> None:
        """Send what arrived during the replay and was not in it, then go live.

        A held notification beyond the next seq means one in between is missing
        (another node's, still on the bus or lost): unless ``allow_gap``, the rest is
        handed to ``on_gap`` to be filled from the store first.
        """
        held, self.held = self.held, []
        self.state = ReplayState.LIVE
        held.sort(key=lambda item: item[0])
        if self.resync_pending and self.on_gap is not None and not allow_gap:
            self.resync_pending = False
            self.on_gap(self, held)
            return
        for index, (seq, frame) in enumerate(held):
            if seq > self.sent_seq + 1 and self.on_gap is not None and not allow_gap:
                self.on_gap(self, held[index:])
                return
            self.push(seq, frame)


class Gateway:
    """Maps agents and conversations to this node's sockets and fans events out."""

    def __init__(self, metrics: Metrics, store: Store | None = None):
        """``store``: where live sockets catch up after a seq gap or a bus resync;
        without it a gap is left for the client to notice (it asks again)."""
        self.metrics = metrics
        self._store = store
        self._agents: dict[int, set[AgentSocket]] = {}
        self._conversations: dict[str, set[Socket]] = {}
        self._by_token: dict[str, set[AgentSocket]] = {}
        self._refills: set[asyncio.Task[None]] = set()
        self._queue_watchers: dict[int, set[AgentSocket]] = {}
        self._refill_slots = asyncio.Semaphore(REFILL_CONCURRENCY)

    # -- membership -----------------------------------------------------------------
    def add_agent(self, sock: AgentSocket) -> None:
        if self._store is not None:
            sock.on_gap = self._catch_up
        self._agents.setdefault(sock.agent.id, set()).add(sock)
        self._by_token.setdefault(sock.token_hash, set()).add(sock)

    def remove(self, sock: Socket) -> None:
        if isinstance(sock, AgentSocket):
            _discard(self._agents, sock.agent.id, sock)
            _discard(self._by_token, sock.token_hash, sock)
            self.watch_queue(sock, frozenset())
        for conversation in sock.conversations:
            _discard(self._conversations, conversation, sock)
        sock.conversations.clear()

    def watch_conversation(self, sock: Socket, conversation_id: str) -> None:
        sock.conversations.add(conversation_id)
        self._conversations.setdefault(conversation_id, set()).add(sock)

    def agent_sockets(self) -> Iterable[AgentSocket]:
        for socks in self._agents.values():
            yield from socks

    def live_tokens(self) -> list[str]:
        return list(self._by_token)

    @property
    def agent_count(self) -> int:
        return len(self._agents)

    # -- fan-out --------------------------------------------------------------------
    def deliver(self, event: BusEvent) -> None:
        """Hand one bus event to the sockets it concerns. Never raises."""
        try:
            match event:
                case NotificationsStored():
                    self._notifications(event)
                case ReadChanged():
                    self._read(event)
                case MessageAdded():
                    self._message(event)
                case TokensRevoked():
                    self.revoke(event.token_hashes)
                case QueueChanged():
                    self._queue_changed(event)
                case Withdrawn():
                    self._withdrawn(event)
        except Exception:
            log.exception("delivering a %s event failed", type(event).__name__)

    def _notifications(self, event: NotificationsStored) -> None:
        agents = self._agents
        encode = protocol.encode
        delivered = 0
        for agent_id, agent_public_id, seq, unread in event.deliveries:
            socks = agents.get(agent_id)
            if not socks:
                continue
            # Each recipient's frame differs (id, seq, counts): encoded once per recipient.
            frame = encode(
                protocol.NotificationPush(
                    notification=protocol.Notification(
                        id=ids.notification_id(agent_public_id, seq),
                        seq=seq,
                        kind=event.kind,
                        category=event.category,
                        title=event.title,
                        body=event.body,
                        conversation_id=event.conversation_id,
                        url=event.url,
                        created_at=event.created_at,
                        read=False,
                        data=event.data,
                    ),
                    unread=unread,
                )
            )
            for sock in socks:
                if sock.state is ReplayState.LIVE and seq > sock.sent_seq + 1:
                    # Several nodes commit for one agent and their bus messages may
                    # cross (or one was lost): hold this one and read the gap from the
                    # store, where every seq below a committed one is already visible.
                    self._catch_up(sock, [(seq, frame)])
                elif sock.push(seq, frame):
                    delivered += 1
        if delivered:
            self.metrics.notifications_delivered.inc(delivered)
            self.metrics.delivery_latency.observe(max(0.0, time.time() - event.accepted_at))

    def _read(self, event: ReadChanged) -> None:
        socks = self._agents.get(event.agent_id)
        if not socks:
            return
        read_frame = protocol.encode(protocol.ReadPush(ids=event.ids))
        unread_frame = protocol.encode(protocol.UnreadPush(unread=event.unread))
        for sock in socks:
            if event.ids:
                sock.send(read_frame)
            sock.send(unread_frame)

    def _message(self, event: MessageAdded) -> None:
        socks = self._conversations.get(event.conversation_id)
        if not socks:
            return
        frame = protocol.encode(
            protocol.MessagePush(conversation_id=event.conversation_id, message=event.message)
        )
        for sock in socks:
            sock.send(frame)

    # -- v1.1: waiting visitors ---------------------------------------------------------
    def watch_queue(self, sock: AgentSocket, inbox_ids: frozenset[int]) -> None:
        """Send ``sock`` the ``queue_changed`` of ``inbox_ids`` from now on (only those)."""
        for inbox_id in sock.queue_inboxes - inbox_ids:
            _discard(self._queue_watchers, inbox_id, sock)
        for inbox_id in inbox_ids:
            self._queue_watchers.setdefault(inbox_id, set()).add(sock)
        sock.queue_inboxes = inbox_ids

    def presence_of(self, agent_id: int) -> list[protocol.PresenceStatus]:
        """The presence of each of the agent's sessions on this node."""
        return [sock.presence for sock in self._agents.get(agent_id, ())]

    def _queue_changed(self, event: QueueChanged) -> None:
        socks = self._queue_watchers.get(event.inbox_id)
        if not socks:
            return
        frame = protocol.encode(
            protocol.QueueChangedPush(conversation=event.conversation, waiting=event.waiting)
        )
        for sock in list(socks):
            sock.send(frame)

    def _withdrawn(self, event: Withdrawn) -> None:
        socks = self._agents.get(event.agent_id)
        if not socks:
            return
        frame = protocol.encode(
            protocol.WithdrawPush(ids=event.ids, reason=event.reason, by=event.by)
        )
        for sock in socks:
            sock.send(frame)

    # -- catching up from the store ------------------------------------------------------
    def resync(self) -> None:
        """Catch every live agent socket up from the store: the bus may have lost
        events (see :data:`backend.bus.Resync`)."""
        for sock in list(self.agent_sockets()):
            if sock.state is ReplayState.LIVE:
                self._catch_up(sock, [])
            else:
                # Its replay may already have read the store: read again after it.
                sock.resync_pending = True

    def _catch_up(self, sock: AgentSocket, held: list[tuple[int, bytes]]) -> None:
        """Hold ``held`` (and what arrives next), read the gap from the store, send it,
        then the held frames, then go live again."""
        if self._store is None:
            for seq, frame in held:
                sock.push(seq, frame)
            return
        sock.state = ReplayState.REPLAYING
        sock.held = list(held)
        sock.replays += 1
        task = asyncio.get_running_loop().create_task(self._refill(sock, sock.replays))
        self._refills.add(task)
        task.add_done_callback(self._refills.discard)

    async def _refill(self, sock: AgentSocket, replay: int) -> None:
        assert self._store is not None
        unread: dict[str, int] | None = None
        items: list[protocol.Notification] = []
        try:
            async with self._refill_slots:
                if sock.replays != replay or sock.closing:
                    return
                items, _ = await self._store.notifications_after(
                    sock.agent, sock.sent_seq, REFILL_LIMIT
                )
                _, counts = await self._store.agent_state(sock.agent.id)
                unread = protocol.unread_object(counts)
        except Exception as exc:
            # The held frames still go out: the client sees the gap and asks again.
            log.warning("event=catch_up_failed agent=%s reason=%r", sock.agent.public_id, exc)
        if sock.replays != replay:
            return  # the client resumed meanwhile; its replay covers all of this
        for item in items:
            if item.seq > sock.sent_seq and sock.send(
                protocol.encode(protocol.NotificationPush(notification=item))
            ):
                sock.sent_seq = item.seq
        if unread is not None:
            sock.send(protocol.encode(protocol.UnreadPush(unread=unread)))
        if sock.resync_pending:
            # A resync came while this catch-up ran: events lost since its read are in
            # the store now, so read again (the held frames wait once more).
            sock.resync_pending = False
            held, sock.held = sock.held, []
            self._catch_up(sock, held)
            return
        # Whatever is still missing is not in the store: leave it to the client.
        sock.finish_replay(allow_gap=True)

    def revoke(self, token_hashes: Iterable[str]) -> None:
        """Close every connection of these tokens with 4001."""
        for token_hash in token_hashes:
            for sock in list(self._by_token.get(token_hash, ())):
                sock.closing = True
                asyncio.get_running_loop().create_task(
                    sock.connection.close(
                        protocol.CLOSE_TOKEN_REVOKED, "token revoked: sign in again"
                    )
                )


def _discard(index: dict[K, set[V]], key: K, item: V) -> None:
    members = index.get(key)
    if members is not None:
        members.discard(item)
        if not members:
            del index[key]
