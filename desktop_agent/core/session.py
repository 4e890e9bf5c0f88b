"""SessionCursor: where this client is in its agent's notification stream.

The server numbers each agent's notifications 1, 2, 3, … with no gaps (PROTOCOL.md). The
cursor decides, for each ``notification`` frame, whether it is the next one (accept),
one already seen (duplicate), or one that skips ahead (gap: ask again with ``resume``).

Replay bookkeeping: between sending ``resume`` and reading its ``ok``, every
``notification`` frame is buffered, because live frames already in flight when the
resume was sent cannot be told from replayed ones. The ``ok`` says the server's last
seq and whether it truncated the replay to the newest ``limit``; only then does the
cursor know which seqs the replay must hold, and it releases them in order, each once.

:class:`AgentStream` wraps the cursor for one connection: it sends ``resume`` on
connect and after a gap, tells which ``ok`` answers it, keeps the newest unread counts,
and gives up (reconnect) when resumes keep leaving a gap. It is the one home of the
client's stream rules; the connection service only carries out its effects.

No I/O here; the connection service feeds frames in and persists :attr:`last_seq`.
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass, field

from backend.protocol import Error, Notification, NotificationPush, Resume, ResumeOk, Welcome


class Decision(enum.Enum):
    """What to do with one live ``notification`` frame."""

    ACCEPT = "accept"
    """The next one in order: deliver it; :attr:`SessionCursor.last_seq` moved on."""
    DUPLICATE = "duplicate"
    """Already delivered (or older): drop it."""
    GAP = "gap"
    """It skips seqs: drop it and send ``resume`` after :attr:`SessionCursor.last_seq`."""
    BUFFERED = "buffered"
    """A resume is in progress: held until its ``ok`` (see :meth:`SessionCursor.finish_resume`)."""


@dataclass(frozen=True)
class ResumeOutcome:
    """What a finished resume delivered.

    Attributes:
        notifications: the missed notifications, in seq order, none seen before.
        truncated: the server sent only the newest ``limit`` (older ones via ``history``).
        gap: the replay did not reach the server's last seq: resume again.
    """

    notifications: list[Notification]
    truncated: bool
    gap: bool


@dataclass
class _Replay:
    after_seq: int
    limit: int
    buffered: dict[int, Notification] = field(default_factory=dict)


class SessionCursor:
    """The client's position in one agent's stream and its accept/duplicate/gap rules.

    Args:
        last_seq: the last seq delivered before (persisted), or None for a first start.
    """

    def __init__(self, last_seq: int | None = None) -> None:
        if last_seq is not None and last_seq < 0:
            raise ValueError("last_seq cannot be negative")
        self._last_seq: int | None = last_seq
        self._replay: _Replay | None = None

    @property
    def last_seq(self) -> int:
        """The seq of the last notification delivered (0 before any)."""
        return self._last_seq or 0

    @property
    def resuming(self) -> bool:
        """True between :meth:`start_resume` and :meth:`finish_resume`."""
        return self._replay is not None

    def on_welcome(self, server_last_seq: int) -> int:
        """Align with a new connection's ``welcome`` and return the ``after_seq`` to resume.

        A first start (no persisted seq) resumes after the server's last seq: only new
        notifications toast, and the window loads older ones from ``history``. A
        persisted seq above the server's means the server's store was reset; the old
        numbers mean nothing there, so the cursor starts again at the server's last seq
        (otherwise every new notification would look like a duplicate and be lost).
        """
        if self._last_seq is None or self._last_seq > server_last_seq:
            self._last_seq = server_last_seq
        self._replay = None
        return self._last_seq

    def start_resume(self, limit: int) -> int:
        """Enter replay mode for a ``resume`` about to be sent; return its ``after_seq``.

        Starting again while a resume is in progress keeps what was buffered.
        """
        if limit < 1:
            raise ValueError("limit must be at least 1")
        previous = self._replay
        self._replay = _Replay(after_seq=self.last_seq, limit=limit)
        if previous is not None:
            self._replay.buffered.update(previous.buffered)
        return self.last_seq

    def accept(self, notification: Notification) -> Decision:
        """Decide on one ``notification`` frame (live or replayed)."""
        seq = notification.seq
        if self._replay is not None:
            if seq > self._replay.after_seq:
                self._replay.buffered.setdefault(seq, notification)
            return Decision.BUFFERED
        if seq <= self.last_seq:
            return Decision.DUPLICATE
        if seq > self.last_seq + 1:
            return Decision.GAP
        self._last_seq = seq
        return Decision.ACCEPT

    def finish_resume(self, server_last_seq: int, truncated: bool) -> ResumeOutcome:
        """Close replay mode with the ``resume`` reply's ``last_seq`` and ``truncated``.

        Releases the buffered notifications the replay had to contain, in order, and
        moves :attr:`last_seq` past them. ``gap`` is true when they do not reach
        ``server_last_seq`` (a frame went missing): the caller resumes again.

        Raises:
            RuntimeError: no resume is in progress.
        """
        replay = self._replay
        if replay is None:
            raise RuntimeError("finish_resume() without start_resume()")
        self._replay = None
        first = replay.after_seq + 1
        if truncated:
            # The server sent only the newest `limit`: the replay starts there, and the
            # seqs before it are not a gap (they are reachable through `history`).
            first = max(first, server_last_seq - replay.limit + 1)
        delivered: list[Notification] = []
        seq = first
        while seq <= server_last_seq and seq in replay.buffered:
            delivered.append(replay.buffered[seq])
            seq += 1
        if delivered:
            self._last_seq = delivered[-1].seq
        gap = seq <= server_last_seq
        return ResumeOutcome(notifications=delivered, truncated=truncated, gap=gap)


@dataclass(frozen=True)
class ResumeResult:
    """What one ``resume`` brought: the notifications missed, in seq order, each once.

    Attributes:
        notifications: missed notifications, oldest first.
        truncated: only the newest ones were sent; older ones are reachable via ``history``.
        after_gap: this resume repaired a gap in the live stream (not a reconnect).
    """

    notifications: list[Notification]
    truncated: bool
    after_gap: bool = False


@dataclass(frozen=True)
class Deliver:
    """Show this notification: the next one of the stream."""

    notification: Notification


@dataclass(frozen=True)
class Counts:
    """The agent's unread counts are now these."""

    unread: dict[str, int]


@dataclass(frozen=True)
class Ask:
    """Send this ``resume`` (on connect, or to fill a gap)."""

    resume: Resume


@dataclass(frozen=True)
class Replayed:
    """A resume finished: hand its result on."""

    result: ResumeResult


@dataclass(frozen=True)
class GiveUp:
    """The stream cannot be repaired on this connection: drop it and reconnect."""

    reason: str


Effect = Deliver | Counts | Ask | Replayed | GiveUp

MAX_GAP_RESUMES = 3
"""Resumes in a row that still leave a gap before the connection is dropped and redone."""


@dataclass
class _Asked:
    request_id: int
    after_gap: bool
    unread_by_seq: dict[int, dict[str, int]] = field(default_factory=dict)


class AgentStream:
    """The client's side of one agent's stream on one connection: the cursor, the
    resume in flight, gap repair, and which unread counts are newest.

    No I/O: the connection service feeds it ``welcome``, ``notification`` frames and
    the ``resume`` replies, and carries out the returned effects in order.

    Args:
        cursor: the agent's cursor (kept across connections of the same agent).
        resume_limit: ``limit`` of every ``resume``.
        next_id: a fresh request id for each ``resume``.
    """

    def __init__(
        self, cursor: SessionCursor, resume_limit: int, next_id: Callable[[], int]
    ) -> None:
        self.cursor = cursor
        self._limit = resume_limit
        self._next_id = next_id
        self._asked: _Asked | None = None
        self._unread_seq = 0
        """The seq whose unread counts were handed out last (newer counts win)."""
        self._gap_resumes = 0

    def welcome(self, welcome: Welcome) -> list[Effect]:
        """A new connection's ``welcome``: align the cursor and resume."""
        self.cursor.on_welcome(welcome.last_seq)
        # Counts in `welcome` are as of its last_seq; a notification after it brings newer.
        self._unread_seq = welcome.last_seq
        self._gap_resumes = 0
        self._asked = None
        return [Counts(dict(welcome.unread)), self._ask(after_gap=False)]

    def owns(self, request_id: object) -> bool:
        """True when ``request_id`` is the resume in flight (its reply comes here)."""
        return self._asked is not None and request_id == self._asked.request_id

    def notification(self, push: NotificationPush) -> list[Effect]:
        notification = push.notification
        decision = self.cursor.accept(notification)
        if decision is Decision.ACCEPT:
            out: list[Effect] = [Deliver(notification)]
            if push.unread is not None:
                self._unread_seq = notification.seq
                out.append(Counts(dict(push.unread)))
            return out
        if decision is Decision.BUFFERED:
            if push.unread is not None and self._asked is not None:
                self._asked.unread_by_seq[notification.seq] = dict(push.unread)
            return []
        if decision is Decision.GAP:
            return [self._ask(after_gap=True)]
        return []

    def resumed(self, ok: ResumeOk) -> list[Effect]:
        """The ``ok`` of the resume in flight."""
        asked, self._asked = self._asked, None
        if asked is None:
            return []
        outcome = self.cursor.finish_resume(ok.last_seq, ok.truncated)
        out: list[Effect] = [
            Replayed(ResumeResult(outcome.notifications, outcome.truncated, asked.after_gap))
        ]
        delivered_to = self.cursor.last_seq
        fresh = [
            (seq, unread)
            for seq, unread in asked.unread_by_seq.items()
            if self._unread_seq < seq <= delivered_to
        ]
        if fresh:
            seq, unread = max(fresh, key=lambda item: item[0])
            self._unread_seq = seq
            out.append(Counts(unread))
        if not outcome.gap:
            self._gap_resumes = 0
            return out
        self._gap_resumes += 1
        if self._gap_resumes > MAX_GAP_RESUMES:
            out.append(GiveUp("the server's replay keeps missing notifications"))
        else:
            out.append(self._ask(after_gap=True))
        return out

    def refused(self, error: Error) -> list[Effect]:
        """The resume in flight was answered with an error."""
        self._asked = None
        return [GiveUp(f"the server refused to resume: {error.message}")]

    def ended(self) -> None:
        """The connection ended: a resume in flight will not be answered (the next
        ``welcome`` starts the cursor's replay afresh)."""
        self._asked = None

    def _ask(self, *, after_gap: bool) -> Ask:
        request_id = self._next_id()
        after = self.cursor.start_resume(self._limit)
        self._asked = _Asked(request_id, after_gap)
        return Ask(Resume(id=request_id, after_seq=after, limit=self._limit))
