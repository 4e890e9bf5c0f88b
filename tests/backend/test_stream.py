"""The stream core (backend/stream.py) driven directly, with no socket or store.

A hypothesis state machine plays one agent's world: commits that become readable
before or after their bus message, bus messages out of order, late, twice or never,
store reads that see the store when they start or when they end, reads that fail,
resumes at any moment (also during a catch-up), resyncs and ticks. Whatever happens,
what the connection sends since its last resume is exactly after_seq+1, +2, ... with
nothing skipped or repeated; and once the store and the bus settle, it reaches the
newest seq unless it was closed.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
)

from backend import protocol
from backend.stream import (
    Action,
    Close,
    Frame,
    Phase,
    ReadResult,
    ReadStore,
    Resumed,
    ResumeFailed,
    Stream,
)


def frame(seq: int) -> bytes:
    return b"n%d" % seq


@dataclass
class PendingRead:
    read: ReadStore
    snapshot: int | None
    """The readable prefix when the read started, if it reads then (else at its end)."""


class StreamWorld(RuleBasedStateMachine):
    @initialize(held_limit=st.integers(2, 40))
    def start(self, held_limit: int) -> None:
        self.stream = Stream(held_limit=held_limit)
        self.committed = 0
        self.readable = 0
        """Seqs 1..readable can be read; commits above it are not visible yet."""
        self.bus: list[int] = []
        """Bus messages on their way (any order; a seq may be there twice)."""
        self.reads: list[PendingRead] = []
        self.sent: list[int] = []
        """Seqs sent since the last resume that was answered."""
        self.expect_from: int | None = None
        """The resume's after_seq + 1, once answered; None before any resume."""
        self.pending_resume: tuple[int, int] | None = None
        self.replay: list[int] = []
        self.closed = False
        self.next_id = 0

    # -- carrying out decisions ------------------------------------------------------
    def apply(self, actions: list[Action]) -> None:
        for action in actions:
            assert not self.closed, f"{action} after close"
            match action:
                case Frame(seq=seq, data=data):
                    assert data == frame(seq)
                    if self.pending_resume is not None:
                        self.replay.append(seq)
                    else:
                        assert self.expect_from is not None, "sent before any resume"
                        self.sent.append(seq)
                case Resumed(last_seq=last_seq, truncated=truncated):
                    assert self.pending_resume is not None
                    after, _limit = self.pending_resume
                    replay, self.replay, self.pending_resume = self.replay, [], None
                    if replay:
                        start = replay[0]
                        assert truncated or start == after + 1, (after, replay)
                        assert last_seq == replay[-1]
                    else:
                        start = last_seq + 1
                        assert last_seq <= after
                    assert replay == list(range(start, start + len(replay))), replay
                    self.expect_from = start
                    self.sent = replay
                case ResumeFailed():
                    assert self.pending_resume is not None
                    assert not self.replay, "frames sent before a failed resume's answer"
                    self.pending_resume = None
                    self.expect_from = None
                    self.sent = []
                case ReadStore():
                    self.reads = [r for r in self.reads if r.read.generation != action.generation]
                    snapshot = self.readable if self._reads_at_start else None
                    self.reads.append(PendingRead(action, snapshot))
                case Close(code=code):
                    assert code == protocol.CLOSE_TRY_AGAIN_LATER
                    self.closed = True

    _reads_at_start = True

    # -- the world --------------------------------------------------------------------
    @rule(visible=st.booleans())
    def commit(self, visible: bool) -> None:
        self.committed += 1
        if visible:
            self.readable = self.committed
        self.bus.append(self.committed)

    @rule()
    def become_readable(self) -> None:
        self.readable = self.committed

    @precondition(lambda self: self.bus)
    @rule(data=st.data(), twice=st.booleans(), lose=st.booleans(), fast=st.booleans())
    def bus_message(self, data: st.DataObject, twice: bool, lose: bool, fast: bool) -> None:
        index = data.draw(st.integers(0, len(self.bus) - 1))
        seq = self.bus[index] if twice else self.bus.pop(index)
        if lose:
            return
        if fast and self.stream.take_next(seq):
            # What the gateway does: the next seq of a live stream, without actions.
            self.apply([Frame(seq, frame(seq), bulk=False)])
            return
        self.apply(self.stream.notification(seq, frame(seq)))

    @rule(data=st.data(), limit=st.sampled_from([3, 500]))
    def resume(self, data: st.DataObject, limit: int) -> None:
        if self.closed or self.pending_resume is not None:
            return
        after = data.draw(st.integers(0, self.committed + 2))
        self.next_id += 1
        self.pending_resume = (after, limit)
        self.replay = []
        self.apply(self.stream.resume(self.next_id, after, limit))

    @precondition(lambda self: self.reads)
    @rule(data=st.data(), at_start=st.booleans(), fail=st.booleans())
    def finish_read(self, data: st.DataObject, at_start: bool, fail: bool) -> None:
        pending = self.reads.pop(data.draw(st.integers(0, len(self.reads) - 1)))
        read = pending.read
        self._reads_at_start = at_start
        if fail:
            self.apply(self.stream.read_failed(read.generation, "store down"))
            return
        upto = pending.snapshot if pending.snapshot is not None else self.readable
        seqs = list(range(read.after_seq + 1, upto + 1))
        truncated = len(seqs) > read.limit
        seqs = seqs[-read.limit :]
        result = ReadResult([(s, frame(s)) for s in seqs], truncated, upto)
        self.apply(self.stream.read_done(read.generation, result))

    @rule()
    def resync(self) -> None:
        self.apply(self.stream.resync())

    @rule()
    def tick(self) -> None:
        self.apply(self.stream.tick())

    @precondition(lambda self: not self.closed and self.pending_resume is None)
    @rule()
    def settle(self) -> None:
        """Everything becomes readable, no read fails, nothing new is committed: a
        resumed stream then reaches the newest seq (the resync stands for the bus
        noticing what it lost, or the next event)."""
        self.readable = self.committed
        self._reads_at_start = True
        self.apply(self.stream.resync())
        for _ in range(self.committed + 5):
            if not self.reads or self.closed:
                break
            pending = self.reads.pop(0)
            read = pending.read
            seqs = list(range(read.after_seq + 1, self.readable + 1))
            truncated = len(seqs) > read.limit
            seqs = seqs[-read.limit :]
            result = ReadResult([(s, frame(s)) for s in seqs], truncated, self.readable)
            self.apply(self.stream.read_done(read.generation, result))
            self.apply(self.stream.tick())
        if self.closed or self.expect_from is None:
            return
        assert self.stream.phase is Phase.LIVE, self.stream.phase
        assert self.stream.cursor == self.committed
        assert (self.sent[-1] if self.sent else self.expect_from - 1) == self.committed

    # -- the promise ----------------------------------------------------------------
    @invariant()
    def one_ordered_stream(self) -> None:
        if self.expect_from is None or not hasattr(self, "sent"):
            return
        start = self.expect_from
        assert self.sent == list(range(start, start + len(self.sent))), (
            f"sent {self.sent} after resuming from {start - 1}"
        )

    @invariant()
    def bounded(self) -> None:
        if hasattr(self, "stream"):
            assert len(self.stream.held) <= self.stream.held_limit


StreamWorld.TestCase.settings = settings(
    max_examples=300,
    stateful_step_count=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_stream_sends_one_ordered_stream = StreamWorld.TestCase


def test_a_gap_is_held_until_the_store_shows_it() -> None:
    stream = Stream()
    assert stream.resume("r", 0, 500) == [ReadStore(1, 0, 500, "r")]
    assert stream.read_done(1, ReadResult([], False, 0)) == [Resumed("r", 0, False)]
    # seq 2 arrives before seq 1: nothing is sent, the store is read.
    assert stream.notification(2, b"n2") == [ReadStore(2, 0, 1000, None)]
    # the read could not see seq 1 yet: still nothing sent; a tick reads again.
    assert stream.read_done(2, ReadResult([], False, 0)) == []
    assert stream.phase is Phase.STALLED
    assert stream.tick() == [ReadStore(3, 0, 1000, None)]
    assert stream.read_done(3, ReadResult([(1, b"n1"), (2, b"n2")], False, 2)) == [
        Frame(1, b"n1", bulk=True),
        Frame(2, b"n2", bulk=True),
    ]
    assert stream.notification(1, b"n1") == []  # late, already sent
    assert stream.notification(3, b"n3") == [Frame(3, b"n3", bulk=False)]


def test_a_resume_whose_read_fails_is_answered_and_can_be_asked_again() -> None:
    stream = Stream()
    stream.resume("a", 0, 500)
    assert stream.notification(1, b"n1") == []
    assert stream.read_failed(1, "disk") == [ResumeFailed("a", "disk")]
    assert stream.phase is Phase.WAITING and not stream.held
    assert stream.resume("b", 0, 500) == [ReadStore(2, 0, 500, "b")]


def test_past_the_held_limit_the_connection_is_closed_1013() -> None:
    stream = Stream(held_limit=3)
    stream.resume("a", 0, 500)
    actions: list[Action] = []
    for seq in range(1, 5):
        actions = stream.notification(seq, frame(seq))
    assert actions == [Close(1013, "too many notifications waiting: resume")]
    assert stream.notification(5, frame(5)) == []


@pytest.mark.parametrize("seq", [1, 2])
def test_nothing_is_sent_before_a_resume(seq: int) -> None:
    assert Stream().notification(seq, frame(seq)) == []
