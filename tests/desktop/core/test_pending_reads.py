"""PendingReads: reads made offline wait, go out on reconnect, and leave the badge."""

from __future__ import annotations

from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from desktop_agent.core.pending_reads import (
    PendingReads,
    ReadAll,
    ReadConversation,
    ReadIds,
    Ticket,
)

COUNTS = {"total": 5, "chat": 3, "ticket": 2}


def test_a_read_made_offline_waits_and_is_sent_once_connected() -> None:
    pending = PendingReads()
    pending.read(ReadConversation("c1"), [("n1", "chat"), ("n2", "chat")])
    assert pending.waiting == [ReadConversation("c1")]
    (ticket,) = pending.take()
    assert ticket.request == ReadConversation("c1")
    assert pending.waiting == []
    pending.confirmed(ticket)
    assert len(pending) == 0


def test_the_badge_does_not_count_reads_made_here_until_the_server_confirms() -> None:
    pending = PendingReads()
    pending.read(ReadIds(("n1",)), [("n1", "chat")])
    pending.read(ReadConversation("c2"), [("n1", "chat"), ("n4", "ticket")])
    assert pending.adjust(COUNTS) == {"total": 3, "chat": 2, "ticket": 1}
    tickets = pending.take()
    assert pending.adjust(COUNTS) == {"total": 3, "chat": 2, "ticket": 1}
    for ticket in tickets:
        pending.confirmed(ticket)
    assert pending.adjust(COUNTS) == COUNTS


def test_mark_all_read_zeroes_its_category_and_rows_in_it_are_not_taken_twice() -> None:
    pending = PendingReads()
    pending.read(ReadAll("chat"))
    pending.read(ReadIds(("n1",)), [("n1", "chat")])
    assert pending.adjust(COUNTS) == {"total": 2, "chat": 0, "ticket": 2}
    pending.read(ReadAll(None))
    assert pending.adjust(COUNTS) == {"total": 0, "chat": 0, "ticket": 0}


def test_a_lost_read_goes_back_in_order_before_newer_ones() -> None:
    pending = PendingReads()
    pending.read(ReadIds(("n1",)))
    (first,) = pending.take()
    pending.read(ReadIds(("n2",)))
    pending.lost(first)
    assert pending.waiting == [ReadIds(("n1",)), ReadIds(("n2",))]


def test_a_read_push_from_elsewhere_stops_the_adjustment_for_those_rows() -> None:
    pending = PendingReads()
    pending.read(ReadIds(("n1", "n2")), [("n1", "chat"), ("n2", "chat")])
    pending.read_elsewhere(["n1"])
    assert pending.adjust(COUNTS)["chat"] == 2


class ReadsOverFlakyLinks(RuleBasedStateMachine):
    """Whatever the order of reads, sends and losses, every read reaches the server
    exactly once confirmed, in the order made, and counts are never raised."""

    def __init__(self) -> None:
        super().__init__()
        self.pending = PendingReads()
        self.made: list[int] = []
        self.confirmed: list[int] = []
        self.in_flight: list[Ticket] = []

    @rule(n=st.integers(0, 4), category=st.sampled_from(["chat", "ticket"]))
    def read(self, n: int, category: str) -> None:
        self.pending.read(ReadIds((f"n{n}",)), [(f"n{n}", category)])
        self.made.append(len(self.made))

    @rule()
    def connect_and_send(self) -> None:
        self.in_flight += self.pending.take()

    @precondition(lambda self: bool(self.in_flight))
    @rule(data=st.data())
    def answer(self, data: st.DataObject) -> None:
        ticket = self.in_flight.pop(0)  # one socket: answers come in order
        if data.draw(st.booleans()):
            self.pending.confirmed(ticket)
            self.confirmed.append(ticket.number)
        else:
            self.pending.lost(ticket)
            for later in self.in_flight:  # the link is down: the rest are lost too
                self.pending.lost(later)
            self.in_flight.clear()

    @invariant()
    def counts_never_go_up_or_below_zero(self) -> None:
        adjusted = self.pending.adjust(COUNTS)
        assert all(0 <= adjusted[key] <= COUNTS[key] for key in COUNTS)

    @invariant()
    def confirmed_in_order_and_nothing_lost(self) -> None:
        assert self.confirmed == sorted(self.confirmed)
        assert len(self.confirmed) + len(self.pending) == len(self.made)


TestReadsOverFlakyLinks = ReadsOverFlakyLinks.TestCase
