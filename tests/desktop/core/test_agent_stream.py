"""The tray's stream rules (core/session.py ``AgentStream``), driven without a socket.

A hypothesis state machine plays the server side of one connection, ordered like TCP
but otherwise unkind: live frames out of order, twice, or never; replays answered late,
truncated or with a hole; the connection dropped and welcomed again. Whatever happens,
what the tray shows is one stream: each notification handed on (live or in a replay)
is the next seq after the last one shown (a truncated replay may jump ahead, as the
protocol allows), nothing twice; and once the server behaves, it catches up.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

from core_factories import notification
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from backend.protocol import (
    AgentInfo,
    Error,
    NotificationPush,
    Resume,
    ResumeOk,
    ServerInfo,
    Welcome,
)
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

AGENT = AgentInfo(id="a_1", name="Ann", email="ann@x.org")


@dataclass
class Reply:
    request_id: int
    ok: ResumeOk | None


class TrayWorld(RuleBasedStateMachine):
    @initialize(persisted=st.none() | st.integers(0, 5), stored=st.integers(0, 8))
    def start(self, persisted: int | None, stored: int) -> None:
        self.ids = iter(range(1, 1_000_000))
        self.stream = AgentStream(SessionCursor(persisted), 4, lambda: next(self.ids))
        self.stored = stored
        self.wire: deque[NotificationPush | Reply] = deque()
        self.asked: list[Resume] = []
        self.shown: list[int] = []
        self.shown_from: int | None = None
        self.gave_up = False
        self.welcome()

    # -- the client's side effects ---------------------------------------------------
    def apply(self, effects: list[Effect]) -> None:
        for effect in effects:
            match effect:
                case Deliver(notification=n):
                    self.show(n.seq, jump=False)
                case Replayed(result=result):
                    for index, n in enumerate(result.notifications):
                        self.show(n.seq, jump=result.truncated and index == 0)
                case Ask(resume=resume):
                    assert resume.after_seq == self.stream.cursor.last_seq
                    self.asked.append(resume)
                case Counts():
                    pass
                case GiveUp():
                    self.gave_up = True

    def show(self, seq: int, *, jump: bool) -> None:
        last = self.shown[-1] if self.shown else self.shown_from
        assert last is not None
        if jump:
            assert seq > last, (last, seq)
        else:
            assert seq == last + 1, f"showed {seq} after {last}"
        self.shown.append(seq)

    def welcome(self) -> None:
        """A (re)connection: the server says where it is, the tray resumes."""
        self.wire.clear()
        self.asked.clear()
        self.gave_up = False
        self.stream.ended()
        welcome = Welcome(
            agent=AGENT,
            last_seq=self.stored,
            unread={"total": 0, "chat": 0},
            server=ServerInfo(version="1", node="n"),
        )
        effects = self.stream.welcome(welcome)
        if self.shown_from is None or self.shown:
            self.shown_from = self.stream.cursor.last_seq
            self.shown = []
        self.apply(effects)

    # -- the server ------------------------------------------------------------------
    @rule()
    def commit(self) -> None:
        self.stored += 1

    @precondition(lambda self: self.stored > 0)
    @rule(data=st.data())
    def push_live(self, data: st.DataObject) -> None:
        seq = data.draw(st.integers(1, self.stored))
        self.wire.append(NotificationPush(notification=notification(seq)))

    @precondition(lambda self: self.asked)
    @rule(hole=st.booleans(), refuse=st.booleans())
    def answer_resume(self, hole: bool, refuse: bool) -> None:
        resume = self.asked.pop(0)
        assert isinstance(resume.id, int)
        if refuse:
            self.wire.append(Reply(resume.id, None))
            return
        seqs = list(range(resume.after_seq + 1, self.stored + 1))
        truncated = resume.limit is not None and len(seqs) > resume.limit
        if truncated:
            assert resume.limit is not None
            seqs = seqs[-resume.limit :]
        if hole and len(seqs) > 1:
            seqs.pop(len(seqs) // 2)
        for seq in seqs:
            self.wire.append(NotificationPush(notification=notification(seq)))
        ok = ResumeOk(id=resume.id, last_seq=self.stored, truncated=truncated)
        self.wire.append(Reply(resume.id, ok))

    @precondition(lambda self: self.wire)
    @rule()
    def receive(self) -> None:
        frame = self.wire.popleft()
        if isinstance(frame, NotificationPush):
            self.apply(self.stream.notification(frame))
        elif self.stream.owns(frame.request_id):
            if frame.ok is None:
                error = Error(id=frame.request_id, code="unavailable", message="down")
                self.apply(self.stream.refused(error))
            else:
                self.apply(self.stream.resumed(frame.ok))
        if self.gave_up:
            self.welcome()

    @rule()
    def reconnect(self) -> None:
        self.welcome()

    @rule()
    def settle(self) -> None:
        """The server answers every resume in full and sends nothing else."""
        self.wire.clear()
        for _ in range(10):
            if not self.asked:
                break
            resume = self.asked.pop(0)
            seqs = list(range(resume.after_seq + 1, self.stored + 1))
            assert resume.limit is not None
            truncated = len(seqs) > resume.limit
            for seq in seqs[-resume.limit :]:
                self.apply(self.stream.notification(NotificationPush(notification(seq))))
            ok = ResumeOk(id=resume.id, last_seq=self.stored, truncated=truncated)
            self.apply(self.stream.resumed(ok))
        if self.asked or self.stream.cursor.resuming:
            return
        if self.stream.cursor.last_seq < self.stored:
            # Nothing more comes live: the next connection's resume brings the rest.
            self.welcome()
            self.settle()
            return
        assert self.stream.cursor.last_seq == self.stored

    @invariant()
    def cursor_is_what_was_shown(self) -> None:
        if self.shown:
            assert self.stream.cursor.last_seq == self.shown[-1]


TrayWorld.TestCase.settings = settings(
    max_examples=200,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
test_the_tray_shows_one_stream_whatever_the_server_does = TrayWorld.TestCase


def test_a_gap_in_the_live_stream_asks_again_after_the_last_seq_shown() -> None:
    stream = AgentStream(SessionCursor(5), 500, iter(range(1, 9)).__next__)
    welcome = Welcome(
        agent=AGENT, last_seq=5, unread={"total": 0, "chat": 0}, server=ServerInfo("1", "n")
    )
    effects = stream.welcome(welcome)
    assert effects[-1] == Ask(Resume(id=1, after_seq=5, limit=500))
    stream.resumed(ResumeOk(id=1, last_seq=5, truncated=False))
    assert stream.notification(NotificationPush(notification(6))) == [Deliver(notification(6))]
    assert stream.notification(NotificationPush(notification(8))) == [
        Ask(Resume(id=2, after_seq=6, limit=500))
    ]
    assert stream.owns(2) and not stream.owns(1)
