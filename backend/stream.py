"""One agent connection's place in its notification stream, as a pure state machine.

PROTOCOL.md promises each connection, after ``resume`` with ``after_seq`` K, the seqs
K+1, K+2, ... exactly once each, in order, with no gap. Notifications reach a node in
two ways that can disagree: bus messages (fast, but from several nodes they can cross,
repeat or be lost) and store reads (slow, but complete up to what is committed). This
class reconciles the two. It does no I/O and knows nothing of asyncio or sockets: the
gateway feeds it what happened (:meth:`Stream.resume`, :meth:`Stream.notification`,
:meth:`Stream.read_done`, :meth:`Stream.read_failed`, :meth:`Stream.resync`,
:meth:`Stream.tick`) and carries out the decisions it returns, in order:

- :class:`Frame`: write this notification frame;
- :class:`Resumed`: answer the resume request (``ok`` with ``last_seq``, ``truncated``);
- :class:`ResumeFailed`: answer the resume request with ``unavailable``;
- :class:`ReadStore`: read the agent's notifications after a seq, then call back;
- :class:`Close`: close the connection with this code (the client resumes elsewhere).

Why holding until readable is enough: a seq and its notification row are written in
one transaction, and per agent seqs commit in seq order (the agent's counter row is
locked until commit). So once seq N is seen on the bus, every seq below N is committed
and a read started after that sees them. A seq that was allocated but never committed
does not exist: a rolled-back transaction takes its seq back with it. Hence a hole in
a connection's stream is never permanent, and the stream never needs to skip one.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

from backend import protocol

HELD_LIMIT = 1000
"""Most live frames one connection holds while it reads the store; past it: close 1013."""
CATCH_UP_LIMIT = 1000
"""Most notifications one catch-up read asks for (the protocol's resume cap)."""


class Phase(enum.Enum):
    WAITING = "waiting"
    """Welcomed, no resume yet: nothing is sent and live frames are not kept (the
    resume's read will find them in the store)."""
    READING = "reading"
    """A store read is under way (a resume's replay or a catch-up): live frames wait."""
    STALLED = "stalled"
    """A gap remained after a read and nothing new came: wait for a tick to read again."""
    LIVE = "live"
    CLOSED = "closed"


@dataclass(frozen=True, slots=True)
class Frame:
    seq: int
    data: bytes
    bulk: bool
    """Part of a store read's answer (send paced), not a single live frame."""


@dataclass(frozen=True, slots=True)
class Resumed:
    request_id: protocol.RequestId
    last_seq: int
    truncated: bool


@dataclass(frozen=True, slots=True)
class ResumeFailed:
    request_id: protocol.RequestId
    reason: str


@dataclass(frozen=True, slots=True)
class ReadStore:
    generation: int
    after_seq: int
    limit: int
    request_id: protocol.RequestId | None
    """Set for a resume's read: its answer goes to this request."""


@dataclass(frozen=True, slots=True)
class Close:
    code: int
    reason: str


Action = Frame | Resumed | ResumeFailed | ReadStore | Close


@dataclass(frozen=True, slots=True)
class ReadResult:
    """What a :class:`ReadStore` found: ``items`` are ``(seq, frame)`` in seq order;
    ``last_seq`` the agent's newest stored seq at the time of the read."""

    items: list[tuple[int, bytes]]
    truncated: bool
    last_seq: int


class Stream:
    """The notification stream of one agent connection (see the module doc)."""

    __slots__ = (
        "_generation",
        "_news",
        "_reading",
        "_reread",
        "cursor",
        "held",
        "held_limit",
        "phase",
    )

    def __init__(self, held_limit: int = HELD_LIMIT) -> None:
        self.held_limit = held_limit
        self.phase = Phase.WAITING
        self.cursor = 0
        """The last seq handed out to be sent (or the resume's ``after_seq``)."""
        self.held: dict[int, bytes] = {}
        """Live frames past ``cursor + 1``, waiting for the seqs before them."""
        self._generation = 0
        self._reading: ReadStore | None = None
        self._news = False
        """A live frame was held during the read: the read may not reflect it."""
        self._reread = False
        """A resync came during the read: read again once it is done."""

    # -- inputs ---------------------------------------------------------------------
    def resume(self, request_id: protocol.RequestId, after_seq: int, limit: int) -> list[Action]:
        """The client asked for everything after ``after_seq``: read it from the store.
        A read under way (a catch-up, an earlier resume) is superseded."""
        if self.phase is Phase.CLOSED:
            return []
        self.cursor = max(0, after_seq)
        self.held = {s: f for s, f in self.held.items() if s > self.cursor}
        return [self._read(limit, request_id)]

    def take_next(self, seq: int) -> bool:
        """The common case of :meth:`notification`, decided without building actions:
        True when ``seq`` is the next seq of a live stream (the cursor moves to it; the
        caller sends its frame, as for a :class:`Frame` that is not bulk); False: nothing
        changed, call :meth:`notification`."""
        if self.phase is Phase.LIVE and seq == self.cursor + 1:
            self.cursor = seq
            return True
        return False

    def notification(self, seq: int, frame: bytes) -> list[Action]:
        """A live notification arrived from the bus (maybe late, maybe twice)."""
        phase = self.phase
        if phase is Phase.WAITING or phase is Phase.CLOSED or seq <= self.cursor:
            return []
        if phase is Phase.LIVE and seq == self.cursor + 1:
            self.cursor = seq
            return [Frame(seq, frame, bulk=False)]
        if seq in self.held:
            return []
        self._hold(seq, frame)
        if len(self.held) > self.held_limit:
            return self._close(
                protocol.CLOSE_TRY_AGAIN_LATER, "too many notifications waiting: resume"
            )
        if phase is Phase.READING:
            self._news = True
            return []
        # LIVE with a gap, or STALLED with news: the missing seqs are committed (this
        # one is), so a read started now sees them.
        return [self._read(CATCH_UP_LIMIT, None)]

    def read_done(self, generation: int, result: ReadResult) -> list[Action]:
        """A :class:`ReadStore` of this stream finished with ``result``."""
        read = self._reading
        if read is None or generation != read.generation or self.phase is not Phase.READING:
            return []  # superseded by a later resume or read
        self._reading = None
        out: list[Action] = []
        if read.request_id is not None:
            # A client ahead of the store (restored from a backup, say) restarts at the
            # store's last seq, as the protocol says.
            self.cursor = min(self.cursor, result.last_seq)
        elif result.truncated:
            # A catch-up that did not get the oldest missing seqs: the client's resume
            # handles that (it is told about truncation).
            return self._close(protocol.CLOSE_TRY_AGAIN_LATER, "too far behind: resume")
        items = iter(result.items)
        for seq, frame in items:
            if seq <= self.cursor:
                continue
            if seq != self.cursor + 1 and not (result.truncated and not out):
                # A hole in what the store showed: never send past it. What lies
                # beyond waits with the live frames for the next read.
                self._hold(seq, frame)
                for later, data in items:
                    self._hold(later, data)
                break
            self.cursor = seq
            out.append(Frame(seq, frame, bulk=True))
        if read.request_id is not None:
            out.append(Resumed(read.request_id, self.cursor, result.truncated))
        out.extend(self._drain_held())
        if self.held and not self._news and not self._reread:
            # The gap was there before the read began, yet the read could not fill
            # it: wait for a tick (or news) rather than read in a tight loop.
            self.phase = Phase.STALLED
        elif self.held or self._reread:
            out.append(self._read(CATCH_UP_LIMIT, None))
        else:
            self.phase = Phase.LIVE
        if len(self.held) > self.held_limit:
            return self._close(
                protocol.CLOSE_TRY_AGAIN_LATER, "too many notifications waiting: resume"
            )
        return out

    def read_failed(self, generation: int, reason: str) -> list[Action]:
        """A :class:`ReadStore` of this stream failed (the store is unreadable)."""
        read = self._reading
        if read is None or generation != read.generation or self.phase is not Phase.READING:
            return []
        self._reading = None
        if read.request_id is not None:
            # Back to where a client can simply ask again; nothing was sent.
            self.phase = Phase.WAITING
            self.held = {}
            self._news = False
            return [ResumeFailed(read.request_id, reason)]
        # A catch-up cannot send past the gap it was to fill, and holding for an
        # unknown time would stall the stream: the client reconnects and resumes.
        return self._close(protocol.CLOSE_TRY_AGAIN_LATER, "the store is unavailable: resume")

    def resync(self) -> list[Action]:
        """The bus may have lost messages: read the store again."""
        if self.phase is Phase.READING:
            self._reread = True
            return []
        if self.phase in (Phase.LIVE, Phase.STALLED):
            return [self._read(CATCH_UP_LIMIT, None)]
        return []

    def tick(self) -> list[Action]:
        """Time passed: a stalled stream reads again."""
        if self.phase is Phase.STALLED:
            return [self._read(CATCH_UP_LIMIT, None)]
        return []

    def close(self) -> None:
        """The connection is closing: nothing more is decided for it."""
        self.phase = Phase.CLOSED
        self.held = {}
        self._reading = None

    # -- internals ------------------------------------------------------------------

    def _read(self, limit: int, request_id: protocol.RequestId | None) -> ReadStore:
        self._generation += 1
        self.phase = Phase.READING
        self._news = False
        self._reread = False
        self._reading = ReadStore(self._generation, self.cursor, limit, request_id)
        return self._reading

    def _hold(self, seq: int, frame: bytes) -> None:
        if seq > self.cursor:
            self.held.setdefault(seq, frame)

    def _drain_held(self) -> list[Action]:
        out: list[Action] = []
        held = self.held
        for seq in [s for s in held if s <= self.cursor]:
            del held[seq]
        while self.cursor + 1 in held:
            self.cursor += 1
            out.append(Frame(self.cursor, held.pop(self.cursor), bulk=False))
        return out

    def _close(self, code: int, reason: str) -> list[Action]:
        self.close()
        return [Close(code, reason)]
