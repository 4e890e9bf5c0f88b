"""Presence across nodes: the pure core (every report order, silence, warm-up) and the
reporter on a real event loop (what it publishes, and when)."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from backend.presence import (
    NODE_TTL,
    WARM_UP,
    ClusterPresence,
    PresenceReport,
    PresenceReporter,
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def _warm(node: str = "here") -> tuple[ClusterPresence, Clock]:
    clock = Clock()
    presence = ClusterPresence(node, clock)
    clock.now += WARM_UP
    return presence, clock


def test_nothing_is_known_until_every_node_has_had_time_to_report() -> None:
    clock = Clock()
    presence = ClusterPresence("here", clock)
    presence.heard(PresenceReport("there", 1, [7]))
    assert presence.online([8]) is None  # not "nobody": a node may not have reported yet
    clock.now += WARM_UP
    assert presence.online([8]) is False
    assert presence.online([7, 8]) is True


def test_a_new_subscription_waits_again_for_reports_it_may_have_missed() -> None:
    presence, clock = _warm()
    presence.heard(PresenceReport("there", 1, []))
    assert presence.online([7]) is False
    presence.resubscribed()
    assert presence.online([7]) is None
    clock.now += WARM_UP
    assert presence.online([7]) is False


def test_its_own_reports_are_ignored() -> None:
    presence, _ = _warm("here")
    presence.heard(PresenceReport("here", 1, [7]))
    assert presence.online([7]) is False


def test_a_silent_node_is_forgotten_and_its_sessions_count_as_closed() -> None:
    presence, clock = _warm()
    presence.heard(PresenceReport("there", 1, [7]))
    clock.now += NODE_TTL
    assert presence.online([7]) is True
    clock.now += 0.001
    assert presence.online([7]) is False
    presence.heard(PresenceReport("there", 2, [7]))  # it speaks again: back
    assert presence.online([7]) is True


def test_a_leaving_node_is_forgotten_at_once_and_a_late_report_does_not_revive_it() -> None:
    presence, _ = _warm()
    presence.heard(PresenceReport("there", 4, [7]))
    presence.heard(PresenceReport("there", 5, [], leaving=True))
    assert presence.online([7]) is False
    presence.heard(PresenceReport("there", 3, [7]))
    assert presence.online([7]) is False


reports = st.lists(
    st.tuples(
        st.sampled_from(["n1", "n2", "n3"]),
        st.frozensets(st.integers(1, 6), max_size=4),
        st.booleans(),
    ),
    max_size=12,
)


@given(reports, st.randoms(use_true_random=False))
def test_reports_in_any_order_leave_each_nodes_newest(
    sent: list[tuple[str, frozenset[int], bool]], rng: object
) -> None:
    # Each node numbers its reports 1, 2, …; the bus may deliver them in any order.
    serials: dict[str, int] = {}
    numbered = []
    for node, online, leaving in sent:
        serials[node] = serials.get(node, 0) + 1
        numbered.append(PresenceReport(node, serials[node], sorted(online), leaving))
    shuffled = list(numbered)
    rng.shuffle(shuffled)  # type: ignore[attr-defined]
    presence, _ = _warm()
    for report in shuffled:
        presence.heard(report)
    newest = {r.node: r for r in numbered}  # the last of each node wins
    for agent in range(1, 7):
        expected = any(agent in r.online and not r.leaving for r in newest.values())
        assert presence.online([agent]) is expected


async def test_the_reporter_reports_a_change_soon_and_says_goodbye_on_stop() -> None:
    online: list[int] = []
    sent: list[PresenceReport] = []
    arrived = asyncio.Event()

    async def publish(report: PresenceReport) -> None:
        sent.append(report)
        arrived.set()

    reporter = PresenceReporter(lambda: online, publish, node="n1")
    reporter.start()
    online.extend([3, 1])
    reporter.changed()
    await asyncio.wait_for(arrived.wait(), 5)
    assert sent[-1] == PresenceReport("n1", 1, [1, 3])

    arrived.clear()
    online.remove(3)
    reporter.changed()
    reporter.changed()  # two changes close together: one report
    await asyncio.wait_for(arrived.wait(), 5)
    assert sent[-1] == PresenceReport("n1", 2, [1])

    await reporter.stop()
    assert sent[-1] == PresenceReport("n1", 3, [], leaving=True)
    assert len(sent) == 3


def test_the_counts_say_when_they_cannot_know_and_leave_out_leaving_nodes() -> None:
    clock = Clock()
    presence = ClusterPresence("here", clock)
    presence.heard(PresenceReport("n2", 1, [7]))
    presence.heard(PresenceReport("n3", 1, []))
    presence.heard(PresenceReport("n4", 1, [7, 8]))
    assert (presence.nodes(), presence.agents_online()) == (-1, -1)
    clock.now += WARM_UP
    assert (presence.nodes(), presence.agents_online()) == (3, 2)
    presence.heard(PresenceReport("n3", 2, [], leaving=True))
    presence.heard(PresenceReport("n4", 2, [9]))
    assert (presence.nodes(), presence.agents_online()) == (2, 2)
    clock.now += NODE_TTL + 1
    assert (presence.nodes(), presence.agents_online()) == (0, 0)
