"""SessionCursor: where this client is in its agent's notification stream.

The server numbers each agent's notifications 1, 2, 3, … with no gaps (PROTOCOL.md). The
cursor decides, for each ``notification`` frame, whether it is the next one (accept),
one already seen (duplicate), or one that skips ahead (gap: ask again with ``resume``).

Replay bookkeeping: between sending ``resume`` and reading its ``ok``, every
``notification`` frame is buffered, because live frames already in flight when the
resume was sent cannot be told from replayed ones. The ``ok`` says the server's last
seq and whether it truncated the replay to the newest ``limit``; only then does the
cursor know which seqs the replay must hold, and it releases them in order, each once.

No I/O here; the connection service feeds frames in and persists :attr:`last_seq`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from backend.protocol import Notification


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
