"""The waiting queue core: order, live changes, escalation marks."""

from __future__ import annotations

from datetime import UTC, datetime

from core_factories import notification
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule

from backend.protocol import Notification, QueueEntry
from desktop_agent.core.waiting_queue import (
    Changed,
    Inserted,
    Removed,
    WaitingEntry,
    WaitingQueue,
    waited_text,
)
from tests.support.factories import escalation_notification, queue_entry

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def wire(
    cid: str, since_s: int | None, *, assignee: str | None = None, text: str = "Hello"
) -> QueueEntry:
    return queue_entry(cid, since_s, assignee=assignee, text=text)


def entry(cid: str, since_s: int) -> WaitingEntry:
    parsed = WaitingEntry.from_wire(wire(cid, since_s))
    assert parsed is not None
    return parsed


def waiting_note(cid: str, since_s: int, step: int, seq: int = 1) -> Notification:
    return escalation_notification(seq, cid, since_s, step)


def ids(queue: WaitingQueue) -> list[str]:
    return [e.conversation_id for e in queue]


def test_the_queue_reply_is_shown_longest_wait_first() -> None:
    queue = WaitingQueue()
    queue.reset([entry("c_new", 50), entry("c_old", 10), entry("c_mid", 30)])
    assert ids(queue) == ["c_old", "c_mid", "c_new"]


def test_a_conversation_that_starts_waiting_is_inserted_at_its_place() -> None:
    queue = WaitingQueue()
    queue.reset([entry("c_1", 10), entry("c_3", 30)])
    assert queue.apply(wire("c_2", 20), True) == [Inserted(1)]
    assert ids(queue) == ["c_1", "c_2", "c_3"]


def test_a_conversation_that_stops_waiting_is_removed() -> None:
    queue = WaitingQueue()
    queue.reset([entry("c_1", 10), entry("c_2", 20)])
    assert queue.apply(wire("c_1", None), False) == [Removed(0)]
    assert ids(queue) == ["c_2"]
    assert queue.apply(wire("c_1", None), False) == []


def test_a_new_assignee_changes_the_row_in_place() -> None:
    queue = WaitingQueue()
    queue.reset([entry("c_1", 10), entry("c_2", 20)])
    assert queue.apply(wire("c_2", 20, assignee="sam"), True) == [Changed(1)]
    assert queue.at(1).assignee_name == "Sam"
    assert queue.apply(wire("c_2", 20, assignee="sam"), True) == []


def test_a_new_wait_moves_the_row_and_forgets_the_old_escalation() -> None:
    queue = WaitingQueue()
    queue.reset([entry("c_1", 10), entry("c_2", 20)])
    queue.note_notification(waiting_note("c_1", 10, 2))
    assert queue.get("c_1").escalation_step == 2  # type: ignore[union-attr]
    assert queue.apply(wire("c_1", 40), True) == [Removed(0), Inserted(1)]
    assert ids(queue) == ["c_2", "c_1"]
    assert queue.get("c_1").escalation_step == 0  # type: ignore[union-attr]


def test_an_escalation_marks_the_row_and_counts_for_the_tray() -> None:
    queue = WaitingQueue()
    queue.reset([entry("c_1", 10), entry("c_2", 20)])
    assert queue.escalated() == []
    changes = queue.note_notification(waiting_note("c_2", 20, 1))
    assert changes == [Changed(1)]
    assert [e.conversation_id for e in queue.escalated()] == ["c_2"]
    assert queue.escalated(min_step=2) == []


def test_an_escalation_of_an_old_wait_does_not_mark_the_new_one() -> None:
    queue = WaitingQueue()
    queue.reset([entry("c_1", 30)])
    assert queue.note_notification(waiting_note("c_1", 10, 1)) == []
    assert queue.escalated() == []


def test_an_escalation_before_the_queue_reply_is_kept_for_it() -> None:
    queue = WaitingQueue()
    queue.note_notification(waiting_note("c_1", 10, 1))
    queue.reset([entry("c_1", 10)])
    assert queue.at(0).escalation_step == 1


def test_other_notifications_change_nothing() -> None:
    queue = WaitingQueue()
    queue.reset([entry("c_1", 10)])
    assert queue.note_notification(notification(1, conversation_id="c_1")) == []


def test_waiting_times_read_naturally() -> None:
    assert waited_text(45) == "45 s"
    assert waited_text(185) == "3 min"
    assert waited_text(3900) == "1 h 05 min"
    assert entry("c_1", 10).waited_seconds(T0) == 0


class QueueMachine(RuleBasedStateMachine):
    """Any sequence of pushes keeps the rows sorted, unique, and the ops replayable."""

    def __init__(self) -> None:
        super().__init__()
        self.queue = WaitingQueue()
        self.mirror: list[str] = []  # what a view applying the ops would hold

    def _replay(self, changes: list[Inserted | Removed | Changed]) -> None:
        for change in changes:
            if isinstance(change, Inserted):
                self.mirror.insert(change.row, self.queue.at(change.row).conversation_id)
            elif isinstance(change, Removed):
                del self.mirror[change.row]

    @rule(
        cid=st.sampled_from(["a", "b", "c", "d"]),
        since=st.integers(0, 5),
        assignee=st.sampled_from([None, "sam", "ann"]),
    )
    def starts_or_changes(self, cid: str, since: int, assignee: str | None) -> None:
        self._replay(self.queue.apply(wire(cid, since, assignee=assignee), True))

    @rule(cid=st.sampled_from(["a", "b", "c", "d"]))
    def stops(self, cid: str) -> None:
        self._replay(self.queue.apply(wire(cid, None), False))

    @rule(
        cid=st.sampled_from(["a", "b", "c", "d"]), since=st.integers(0, 5), step=st.integers(1, 3)
    )
    def escalates(self, cid: str, since: int, step: int) -> None:
        self._replay(self.queue.note_notification(waiting_note(cid, since, step)))

    @invariant()
    def sorted_unique_and_mirrored(self) -> None:
        keys = [e.sort_key for e in self.queue]
        assert keys == sorted(keys)
        assert len(set(ids(self.queue))) == len(self.queue)
        assert self.mirror == ids(self.queue)
        for row, e in enumerate(self.queue):
            assert self.queue.row_of(e.conversation_id) == row


TestQueueMachine = QueueMachine.TestCase


@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.integers(0, 100))))
def test_reset_is_always_sorted(items: list[tuple[str, int]]) -> None:
    queue = WaitingQueue()
    queue.reset([entry(c, s) for c, s in items])
    keys = [e.sort_key for e in queue]
    assert keys == sorted(keys)
