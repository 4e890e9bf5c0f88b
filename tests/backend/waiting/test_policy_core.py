"""The pure policy and step arithmetic (backend.waiting), property by property."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend import protocol, waiting

seconds = st.integers(min_value=1, max_value=protocol.MAX_STEP_SECONDS)
targets = st.sampled_from(["inbox", "inbox:Leads", "inbox:Night shift", "lead@example.org"])


@given(seconds, targets)
def test_a_step_reads_back_what_was_written(after: int, to: str) -> None:
    assert waiting.parse_step(f"{after}:{to}") == protocol.EscalationStep(after, to)
    assert waiting.parse_step(str(after)) == protocol.EscalationStep(after, "inbox")


@given(st.text(max_size=12))
def test_anything_not_whole_positive_seconds_is_refused(text: str) -> None:
    head = text.partition(":")[0]
    if head and head.strip("0123456789") == "" and int(head) >= 1:
        return
    with pytest.raises(waiting.PolicyError):
        waiting.parse_step(text)


@pytest.mark.parametrize(
    "text", ["60:team", "60:", f"{protocol.MAX_STEP_SECONDS + 1}", "-5", "²", "٣:inbox"]
)
def test_unknown_targets_and_out_of_range_waits_are_refused(text: str) -> None:
    with pytest.raises(waiting.PolicyError):
        waiting.parse_step(text)


@given(st.lists(st.builds(protocol.EscalationStep, seconds, targets), max_size=8))
def test_steps_are_numbered_in_order_of_their_wait(steps: list[protocol.EscalationStep]) -> None:
    ordered = waiting.ordered_steps(steps)
    assert sorted(ordered, key=lambda s: s[0]) == ordered
    assert sorted(ordered) == sorted((s.after_s, s.to) for s in steps)


@given(
    st.integers(min_value=0, max_value=4_000_000_000_000),
    st.lists(st.tuples(seconds, targets), max_size=8).map(sorted),
)
def test_each_step_falls_due_its_wait_after_the_start_in_order(
    start: int, steps: list[tuple[int, str]]
) -> None:
    scheduled = waiting.schedule(start, steps)
    assert [k for k, _, _ in scheduled] == list(range(1, len(steps) + 1))
    assert [due for _, due, _ in scheduled] == sorted(due for _, due, _ in scheduled)
    for (_, due, to), (after, target) in zip(scheduled, steps, strict=True):
        assert due - start == after * 1000 and to == target


@given(st.integers(0, 10**13), st.integers(-(10**6), 10**9), st.integers(0, 10**6))
def test_waited_seconds_are_whole_never_negative_and_grow_with_time(
    start: int, offset: int, more: int
) -> None:
    now = start + offset
    waited = waiting.waited_seconds(start, now)
    assert waited == max(0, offset) // 1000
    assert waiting.waited_seconds(start, now + more) >= waited


@given(st.integers(0, 10**7))
def test_a_duration_is_said_in_its_largest_unit(seconds_waited: int) -> None:
    text = waiting.duration_text(seconds_waited)
    unit = "s" if seconds_waited < 60 else "min" if seconds_waited < 3600 else "h"
    assert text.split(" ")[1] == unit
