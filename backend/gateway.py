"""The gateway: this node's open sockets, and fan-out of bus events to them.

Writes to sockets never await. Frames go straight into the connection's transport (as
``websockets.broadcast`` does), which is what makes one event to thousands of agents
cheap; a connection whose unsent bytes pass ``buffer_limit`` is closed with 1013 and
resumes later, so one slow client never holds up the rest (DESIGN.md guarantee 4).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import time
from collections.abc import Callable, Iterable
from typing import TypeVar

from websockets.asyncio.server import ServerConnection
from websockets.exceptions import ConnectionClosed
from websockets.protocol import State

from backend import protocol, push, stream
from backend.bus import (
    BusEvent,
    MessageAdded,
    NotificationsStored,
    QueueChanged,
    ReadChanged,
    TokensRevoked,
    VisitorStatus,
    Withdrawn,
)
from backend.metrics import Metrics
from backend.presence import ClusterPresence, PresenceReport
from backend.store.base import Agent, Store

log = logging.getLogger(__name__)

DEFAULT_BUFFER_LIMIT = 4 * 1024 * 1024
READ_CONCURRENCY = 8
"""Catch-up reads from the store under way at once on this node."""
K = TypeVar("K")
V = TypeVar("V")


_NO_CONVERSATIONS: frozenset[str] = frozenset()
_NO_INBOXES: frozenset[int] = frozenset()
"""Shared by the sockets that watch none (since 3.10 every ``frozenset()`` is new)."""

PACE_ABOVE = 64 * 1024
"""Replies larger than this go out at the peer's pace (see :meth:`Socket.reply`)."""
TICK_SECONDS = 1.0
"""How often a stalled stream (a gap the store did not show yet) reads again."""


class Socket:
    """One WebSocket connection, with non-blocking, bounded, ordered writes.

    Frames go out in the order they are handed over. Live frames are written at the
    end of the event loop's turn (:meth:`send`): every frame a socket gets in one turn
    (all the events of one commit batch, say) goes out in one write, one system call.
    Bulk frames (a replay, a large reply) are queued and written at the peer's pace
    (:meth:`send_bulk`), and while that queue drains, live frames queue behind it so
    the order holds; they count against ``buffer_limit`` as if they were in the
    transport.
    """

    # Thousands of these live as long as their connections: no __dict__ each.
    __slots__ = (
        "_corked",
        "_outbox",
        "_pacer",
        "_plain",
        "_queued_live",
        "_turn",
        "buffer_limit",
        "closing",
        "connection",
        "conversations",
        "metrics",
    )

    def __init__(self, connection: ServerConnection, buffer_limit: int, metrics: Metrics):
        self.connection = connection
        self.buffer_limit = buffer_limit
        self.metrics = metrics
        self.closing = False
        self.conversations: frozenset[str] = _NO_CONVERSATIONS
        """Conversations whose pushes this socket gets (replaced, not changed: most
        sockets watch none, and the empty frozenset is shared)."""
        self._outbox: collections.deque[tuple[bytes, bool]] | None = None
        """Frames waiting for the pacer: there while it runs (a deque is 600 bytes)."""
        self._queued_live = 0
        """Bytes of live frames waiting in ``_outbox``."""
        self._pacer: asyncio.Task[None] | None = None
        self._plain = not getattr(connection.protocol, "extensions", ())
        """No extension (compression) negotiated: frames are written without websockets'
        framing machinery (:func:`backend.push.text_frame`)."""
        self._corked: list[bytes] | None = None
        """Live frames of this loop turn after its first, written together by :meth:`flush`."""
        self._turn = -1
        """The loop turn (see :class:`_Turns`) of this socket's last immediate write."""

    @property
    def open(self) -> bool:
        return not self.closing and self.connection.protocol.state is State.OPEN

    def send(self, frame: bytes) -> bool:
        """Write one text frame now (or queue it behind a paced send). Returns False
        when the connection is gone or was closed for being too slow."""
        if not self.open:
            return False
        if self._pacer is not None:
            assert self._outbox is not None
            self._outbox.append((frame, True))
            self._queued_live += len(frame)
            if self._queued_live > self.buffer_limit:
                self.close_slow()
                return False
            return True
        if self._plain:
            corked = self._corked
            if corked is not None:
                corked.append(frame)
                return True
            if self._turn != _turns.current:
                # The first frame of this turn goes at once (no delay when the events
                # come one at a time); more in the same turn wait for the flush.
                self._turn = _turns.current
                if not _turns.ending:
                    _turns.ending = True
                    get_running_loop().call_soon(_turns.end)
                transport = self.connection.transport
                try:
                    # What send_text and send_data do for an unfragmented frame without
                    # extensions, with one object per frame instead of several.
                    transport.write(push.text_frame(frame))
                except Exception as exc:  # the transport died under us
                    log.debug("write failed: %s", exc)
                    return False
                if transport.get_write_buffer_size() > self.buffer_limit:
                    self.close_slow()
                    return False
                return True
            self._corked = [frame]
            loop = get_running_loop()
            waiting = _corked_sockets.get(loop)
            if waiting is None:
                _corked_sockets[loop] = waiting = []
                loop.call_soon(_flush_all, loop)
            waiting.append(self)
            return True
        connection = self.connection
        try:
            connection.protocol.send_text(frame)
            connection.send_data()
        except Exception as exc:  # the transport died under us
            log.debug("write failed: %s", exc)
            return False
        return self._within_limit()

    def flush(self) -> None:
        """Write the live frames of this turn now, in one write."""
        corked = self._corked
        if corked is None:
            return
        self._corked = None
        connection = self.connection
        if self.closing or connection.protocol.state is not State.OPEN:
            return  # closed meanwhile (by the peer, say): the client resumes
        transport = connection.transport
        try:
            # What send_text and send_data do for unfragmented frames without
            # extensions, with one object per frame instead of several.
            if len(corked) == 1:
                transport.write(push.text_frame(corked[0]))
            else:
                transport.write(push.text_frames(corked))
        except Exception as exc:  # the transport died under us
            log.debug("write failed: %s", exc)
            return
        if transport.get_write_buffer_size() > self.buffer_limit:
            self.close_slow()

    def _within_limit(self) -> bool:
        if self.connection.transport.get_write_buffer_size() > self.buffer_limit:
            self.close_slow()
            return False
        return True

    def send_bulk(self, frames: Iterable[bytes]) -> None:
        """Queue ``frames`` to be written at the peer's pace, after what is queued."""
        if not self.open:
            return
        self.flush()
        outbox = self._outbox
        if outbox is None:
            outbox = collections.deque()
        outbox.extend((frame, False) for frame in frames)
        if self._pacer is None and outbox:
            self._outbox = outbox
            self._pacer = asyncio.get_running_loop().create_task(self._pace(outbox))

    async def _pace(self, outbox: collections.deque[tuple[bytes, bool]]) -> None:
        try:
            while outbox:
                frame, live = outbox.popleft()
                if live:
                    self._queued_live -= len(frame)
                # Waits while the peer's backlog is above websockets' write limit.
                await self.connection.send(frame, text=True)
        except ConnectionClosed:
            pass
        except Exception as exc:  # the transport died under us
            log.debug("paced write failed: %s", exc)
        finally:
            outbox.clear()
            self._outbox = None
            self._queued_live = 0
            self._pacer = None

    async def drained(self) -> None:
        """Return once every queued frame was handed to the transport (or dropped)."""
        self.flush()
        pacer = self._pacer
        if pacer is not None:
            await asyncio.shield(pacer)

    async def reply(self, frame: bytes) -> None:
        """Answer a request: a large answer (a long conversation, a page of history)
        is written at the peer's pace, like a replay, not as a burst that would trip
        the slow-client bound; the next request waits until it is out."""
        if len(frame) <= PACE_ABOVE and self._pacer is None:
            self.send(frame)
            return
        self.send_bulk([frame])
        await self.drained()

    def close_with(self, code: int, reason: str) -> None:
        """Close with ``code`` (after what is queued); nothing more is sent."""
        if self.closing:
            return
        self.flush()
        self.closing = True
        pending = self._pacer
        connection = self.connection

        async def close() -> None:
            if pending is not None:
                with contextlib.suppress(Exception):
                    await asyncio.shield(pending)
            await connection.close(code, reason)

        task = asyncio.get_running_loop().create_task(close())
        _background.add(task)
        task.add_done_callback(_background.discard)

    def close_slow(self) -> None:
        if self.closing:
            return
        self.closing = True
        self._corked = None
        self.metrics.slow_disconnects.inc()
        log.warning(
            "event=slow_consumer remote=%s buffered=%d",
            self.connection.remote_address,
            self.connection.transport.get_write_buffer_size(),
        )
        # The close frame would queue behind the unread backlog, so drop the link; the
        # client sees an abnormal close, reconnects and resumes from its last seq.
        self.connection.transport.abort()


_background: set[asyncio.Task[None]] = set()


class _Turns:
    """Counts the event loop's turns in which live frames were written, so that a
    socket knows whether a frame is its first of the turn."""

    current = 0
    ending = False

    @classmethod
    def end(cls) -> None:
        cls.current += 1
        cls.ending = False


_turns = _Turns
_corked_sockets: dict[asyncio.AbstractEventLoop, list[Socket]] = {}
"""By event loop: the sockets with frames to write at the end of the current turn."""


def _flush_all(loop: asyncio.AbstractEventLoop) -> None:
    for sock in _corked_sockets.pop(loop, ()):
        sock.flush()


get_running_loop = asyncio.get_running_loop


class AgentSocket(Socket):
    """An agent's connection on ``/agent`` and its notification stream."""

    __slots__ = ("agent", "id_prefix", "presence", "queue_inboxes", "stream", "token_hash")

    def __init__(
        self,
        connection: ServerConnection,
        agent: Agent,
        token_hash: str,
        buffer_limit: int,
        metrics: Metrics,
        held_limit: int = stream.HELD_LIMIT,
    ):
        super().__init__(connection, buffer_limit, metrics)
        self.agent = agent
        self.token_hash = token_hash
        self.stream = stream.Stream(held_limit)
        self.id_prefix = push.id_prefix(agent.public_id)
        """The start of this agent's notification ids in JSON (see :mod:`backend.push`)."""
        self.queue_inboxes: frozenset[int] = _NO_INBOXES
        """v1.1: inboxes whose ``queue_changed`` this session asked for (``queue``)."""
        self.presence: protocol.PresenceStatus = "online"


class Gateway:
    """Maps agents and conversations to this node's sockets and fans events out.

    Each agent socket's place in its stream is a :class:`backend.stream.Stream`; the
    gateway feeds it bus events and store reads and carries out what it decides.
    """

    def __init__(self, metrics: Metrics, store: Store | None = None):
        """``store``: where streams read a resume's replay and fill gaps."""
        self.metrics = metrics
        self._store = store
        # One socket per agent (or token) is the rule: a list of one is a quarter of
        # the memory of a set of one.
        self._agents: dict[int, list[AgentSocket]] = {}
        self._conversations: dict[str, set[Socket]] = {}
        self._by_token: dict[str, list[Socket]] = {}
        """Agent and service connections by the hash of the token they opened with."""
        self._token_of: dict[Socket, str] = {}
        self._reads: set[asyncio.Task[None]] = set()
        self._messages: collections.deque[tuple[str, bytes]] = collections.deque()
        self._checking: asyncio.Task[None] | None = None
        self._read_slots = asyncio.Semaphore(READ_CONCURRENCY)
        self._stalled: set[AgentSocket] = set()
        self._ticking: asyncio.TimerHandle | None = None
        self._queue_watchers: dict[int, set[AgentSocket]] = {}
        self.cluster: ClusterPresence | None = None
        """With a bus to other nodes: their agents' presence (see :mod:`backend.presence`)."""
        self.presence_changed: Callable[[], None] = _nothing
        """Called when this node's online agents may have changed (the reporter)."""

    # -- membership -----------------------------------------------------------------
    def add_agent(self, sock: AgentSocket) -> None:
        _add(self._agents, sock.agent.id, sock)
        self.add_token(sock, sock.token_hash)
        self.presence_changed()

    def add_token(self, sock: Socket, token_hash: str) -> None:
        """Close ``sock`` when this token is revoked (agent and service tokens)."""
        _add(self._by_token, token_hash, sock)
        self._token_of[sock] = token_hash

    def remove(self, sock: Socket) -> None:
        token_hash = self._token_of.pop(sock, None)
        if token_hash is not None:
            _discard(self._by_token, token_hash, sock)
        if isinstance(sock, AgentSocket):
            _discard(self._agents, sock.agent.id, sock)
            sock.stream.close()
            self._stalled.discard(sock)
            self.watch_queue(sock, _NO_INBOXES)
            self.presence_changed()
        for conversation in sock.conversations:
            _discard(self._conversations, conversation, sock)
        sock.conversations = _NO_CONVERSATIONS

    def watch_conversation(self, sock: Socket, conversation_id: str) -> None:
        sock.conversations = sock.conversations | {conversation_id}
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
                case VisitorStatus():
                    self._visitor_status(event)
                case PresenceReport():
                    if self.cluster is not None:
                        self.cluster.heard(event)
        except Exception:
            log.exception("delivering a %s event failed", type(event).__name__)

    def _notifications(self, event: NotificationsStored) -> None:
        agents = self._agents
        template: push.PushTemplate | None = None
        delivered = 0
        for agent_id, _agent_public_id, seq, unread in event.deliveries:
            socks = agents.get(agent_id)
            if not socks:
                continue
            if template is None:
                # What every recipient's frame shares, encoded once per event.
                template = push.PushTemplate(
                    protocol.Notification(
                        id="",  # per recipient, like seq
                        seq=0,
                        kind=event.kind,
                        category=event.category,
                        title=event.title,
                        body=event.body,
                        conversation_id=event.conversation_id,
                        url=event.url,
                        created_at=event.created_at,
                        read=False,
                        data=event.data,
                    )
                )
            frame = b""
            for sock in socks:
                if not frame:  # the agent's sockets share the agent's frame
                    frame = template.frame(sock.id_prefix, seq, unread)
                live = sock.stream
                if live.take_next(seq):
                    # The common case, kept short: the next seq of a live stream.
                    delivered += sock.send(frame)
                    continue
                actions = live.notification(seq, frame)
                if actions:
                    delivered += self._carry_out(sock, actions)
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

    def _visitor_status(self, event: VisitorStatus) -> None:
        """Tell the visitor of the conversation (agents watching it learn the same from
        their own frames)."""
        frames = []
        if event.status is not None:
            frames.append(
                protocol.encode(
                    protocol.ConversationStatusPush(
                        conversation_id=event.conversation_id, status=event.status
                    )
                )
            )
        if event.busy is not None:
            frames.append(
                protocol.encode(
                    protocol.TeamStatusPush(conversation_id=event.conversation_id, busy=event.busy)
                )
            )
        for sock in self._conversations.get(event.conversation_id, ()):
            if not isinstance(sock, AgentSocket):
                for frame in frames:
                    sock.send(frame)

    def _message(self, event: MessageAdded) -> None:
        socks = self._conversations.get(event.conversation_id)
        if not socks:
            return
        frame = protocol.encode(
            protocol.MessagePush(conversation_id=event.conversation_id, message=event.message)
        )
        agents = False
        for sock in socks:
            if isinstance(sock, AgentSocket):
                agents = True
            else:
                sock.send(frame)  # the visitor of this conversation
        if not agents:
            return
        if self._store is None:
            for sock in socks:
                if isinstance(sock, AgentSocket):
                    sock.send(frame)
            return
        # An agent watching may have been removed from the conversation's inbox since
        # she opened it (by the CLI, on any node): ask the store who may see it now.
        # One checker, in bus order, so a conversation's messages keep their order.
        self._messages.append((event.conversation_id, frame))
        if self._checking is None:
            self._checking = asyncio.get_running_loop().create_task(self._check_messages())

    async def _check_messages(self) -> None:
        assert self._store is not None
        try:
            while self._messages:
                conversation_id, frame = self._messages.popleft()
                try:
                    facts = await self._store.conversation_facts(conversation_id)
                    members: frozenset[int] = facts.inbox_members
                except Exception as exc:
                    # Who may see it is unknown: push it to nobody (they can reopen).
                    log.warning(
                        "event=message_push_skipped conversation=%s reason=%r",
                        conversation_id,
                        exc,
                    )
                    members = frozenset()
                for sock in list(self._conversations.get(conversation_id, ())):
                    if not isinstance(sock, AgentSocket):
                        continue
                    if sock.agent.id in members:
                        sock.send(frame)
                    else:
                        _discard(self._conversations, conversation_id, sock)
                        sock.conversations = sock.conversations - {conversation_id}
        finally:
            self._checking = None

    # -- v1.1: waiting visitors ---------------------------------------------------------
    def watch_queue(self, sock: AgentSocket, inbox_ids: frozenset[int]) -> None:
        """Send ``sock`` the ``queue_changed`` of ``inbox_ids`` from now on (only those)."""
        for inbox_id in sock.queue_inboxes - inbox_ids:
            _discard(self._queue_watchers, inbox_id, sock)
        for inbox_id in inbox_ids:
            self._queue_watchers.setdefault(inbox_id, set()).add(sock)
        sock.queue_inboxes = inbox_ids

    def set_presence(self, sock: AgentSocket, status: protocol.PresenceStatus) -> None:
        """The session said it is online, away or dnd (``presence``)."""
        if status != sock.presence:
            sock.presence = status
            self.presence_changed()

    def any_online(self, agent_ids: frozenset[int]) -> bool:
        """True when one of these agents has an online session on this node. Walks the
        smaller side: an inbox of 5,000 against a few connected agents, or the reverse."""
        agents = self._agents
        if len(agent_ids) <= len(agents):
            return any(_online(agents.get(agent_id, ())) for agent_id in agent_ids)
        return any(a in agent_ids and _online(socks) for a, socks in agents.items())

    def online_agents(self) -> list[int]:
        """This node's agents with at least one online session."""
        return [agent_id for agent_id, socks in self._agents.items() if _online(socks)]

    def _queue_changed(self, event: QueueChanged) -> None:
        socks = self._queue_watchers.get(event.inbox_id)
        if not socks:
            return
        frame = protocol.encode(
            protocol.QueueChangedPush(conversation=event.conversation, waiting=event.waiting)
        )
        members = frozenset(event.members)
        for sock in list(socks):
            if sock.agent.id in members:
                sock.send(frame)
            else:  # removed from the inbox since it asked
                _discard(self._queue_watchers, event.inbox_id, sock)
                sock.queue_inboxes = sock.queue_inboxes - {event.inbox_id}

    def _withdrawn(self, event: Withdrawn) -> None:
        socks = self._agents.get(event.agent_id)
        if not socks:
            return
        frame = protocol.encode(
            protocol.WithdrawPush(ids=event.ids, reason=event.reason, by=event.by)
        )
        for sock in socks:
            sock.send(frame)

    # -- the stream's decisions ---------------------------------------------------------
    async def resume(
        self, sock: AgentSocket, request_id: protocol.RequestId, after_seq: int, limit: int
    ) -> None:
        """Answer a ``resume``: the replay, the ``ok``, then the live stream. Returns
        once the replay is written (the next request waits for it)."""
        for action in sock.stream.resume(request_id, after_seq, limit):
            if isinstance(action, stream.ReadStore):
                await self._read_store(sock, action)
        await sock.drained()

    def resync(self) -> None:
        """Catch every agent socket up from the store: the bus may have lost events
        (see :data:`backend.bus.Resync`)."""
        if self.cluster is not None:
            self.cluster.resubscribed()  # presence reports may have been lost too
        for sock in list(self.agent_sockets()):
            self._carry_out(sock, sock.stream.resync())

    async def sweep_forever(self, interval: float) -> None:
        """Every ``interval`` s, compare this node's streams with the store: a seq that
        was stored one sweep ago and is still not sent had its bus message lost (its
        node died between commit and publish, say) and no later notification came to
        show the gap: catch that stream up from the store."""
        if self._store is None:
            return
        stored_before: dict[int, int] = {}
        while True:
            await asyncio.sleep(interval)
            agent_ids = list(self._agents)
            try:
                stored = await self._store.last_seqs(agent_ids) if agent_ids else {}
            except Exception as exc:
                log.warning("event=stream_sweep_failed reason=%r", str(exc))
                continue
            for agent_id, seq in stored_before.items():
                for sock in list(self._agents.get(agent_id, ())):
                    if sock.stream.phase is stream.Phase.LIVE and sock.stream.cursor < seq:
                        log.info(
                            "event=stream_behind agent=%s sent=%d stored=%d",
                            sock.agent.public_id,
                            sock.stream.cursor,
                            seq,
                        )
                        self._carry_out(sock, sock.stream.resync())
            stored_before = stored

    def _carry_out(self, sock: AgentSocket, actions: list[stream.Action]) -> int:
        """Do what the stream decided, in order; return how many notifications went."""
        sent = 0
        for action in actions:
            match action:
                case stream.Frame(data=data, bulk=bulk):
                    if bulk:
                        sock.send_bulk((data,))
                        sent += 1
                    elif sock.send(data):
                        sent += 1
                case stream.Resumed():
                    ok = protocol.ResumeOk(
                        id=action.request_id, last_seq=action.last_seq, truncated=action.truncated
                    )
                    sock.send_bulk((protocol.encode(ok),))
                case stream.ResumeFailed():
                    error = protocol.ProtocolError(
                        "unavailable",
                        "the server cannot read your notifications right now; try again",
                        action.request_id,
                    )
                    self.metrics.errors.labels(error.code).inc()
                    sock.send_bulk((protocol.error_frame(error),))
                case stream.ReadStore(request_id=None):
                    task = asyncio.get_running_loop().create_task(self._catch_up(sock, action))
                    self._reads.add(task)
                    task.add_done_callback(self._reads.discard)
                case stream.ReadStore():
                    pass  # a resume's read: :meth:`resume` does it
                case stream.Close(code=code, reason=reason):
                    log.info(
                        "event=stream_closed agent=%s code=%d reason=%r",
                        sock.agent.public_id,
                        code,
                        reason,
                    )
                    sock.close_with(code, reason)
        if sock.stream.phase is stream.Phase.STALLED:
            self._stalled.add(sock)
            if self._ticking is None:
                loop = asyncio.get_running_loop()
                self._ticking = loop.call_later(TICK_SECONDS, self._tick)
        return sent

    def _tick(self) -> None:
        self._ticking = None
        stalled, self._stalled = self._stalled, set()
        for sock in stalled:
            self._carry_out(sock, sock.stream.tick())

    async def _catch_up(self, sock: AgentSocket, read: stream.ReadStore) -> None:
        async with self._read_slots:
            await self._read_store(sock, read)

    async def _read_store(self, sock: AgentSocket, read: stream.ReadStore) -> None:
        if self._store is None or sock.stream.phase is stream.Phase.CLOSED:
            return
        try:
            items, truncated = await self._store.notifications_after(
                sock.agent, read.after_seq, read.limit
            )
            last_seq, counts = await self._store.agent_state(sock.agent.id)
        except Exception as exc:
            log.warning("event=stream_read_failed agent=%s reason=%r", sock.agent.public_id, exc)
            self._carry_out(sock, sock.stream.read_failed(read.generation, str(exc)))
            return
        encode = protocol.encode
        result = stream.ReadResult(
            [(n.seq, encode(protocol.NotificationPush(notification=n))) for n in items],
            truncated,
            last_seq,
        )
        actions = sock.stream.read_done(read.generation, result)
        sent = self._carry_out(sock, actions)
        if read.request_id is None and sent:
            # Frames read from the store carry no counts: send today's.
            unread = protocol.unread_object(counts)
            sock.send_bulk((encode(protocol.UnreadPush(unread=unread)),))

    def revoke(self, token_hashes: Iterable[str]) -> None:
        """Close every connection of these tokens with 4001; nothing more is served or
        pushed on them (the channel handlers check :attr:`Socket.open`)."""
        for token_hash in token_hashes:
            for sock in list(self._by_token.get(token_hash, ())):
                if isinstance(sock, AgentSocket):
                    sock.stream.close()
                    reason = "token revoked: sign in again"
                else:
                    reason = "token revoked"
                sock.close_with(protocol.CLOSE_TOKEN_REVOKED, reason)


def _nothing() -> None:
    pass


def _online(socks: Iterable[AgentSocket]) -> bool:
    return any(sock.presence == "online" for sock in socks)


def _add(index: dict[K, list[V]], key: K, item: V) -> None:
    members = index.get(key)
    if members is None:
        index[key] = [item]
    elif item not in members:
        members.append(item)


def _discard(index: dict[K, set[V]] | dict[K, list[V]], key: K, item: V) -> None:
    members = index.get(key)
    if members is not None:
        if isinstance(members, list):
            if item in members:
                members.remove(item)
        else:
            members.discard(item)
        if not members:
            del index[key]
