"""The demo's visitor schedule: calm by default, a flood on request, never the same
line twice in a row. Read from the pure schedule, so no test waits for the clock."""

from __future__ import annotations

import itertools
import random
from collections import defaultdict

import pytest

from desktop_agent.demo import Plan, Step, parse_args, schedule


def first_minutes(plan: Plan, seed: int, minutes: float = 3) -> list[Step]:
    steps = schedule(plan, random.Random(seed))
    return list(itertools.takewhile(lambda s: s.at < minutes * 60, steps))


@pytest.mark.parametrize("seed", range(20))
def test_the_default_is_a_message_every_few_seconds(seed: int) -> None:
    steps = first_minutes(Plan(), seed)
    # Three minutes: 15 to 45 messages, one every 4 to 12 seconds on average.
    assert 15 <= len(steps) <= 45, len(steps)
    assert [s.at for s in steps] == sorted(s.at for s in steps)
    visitors = {s.visitor for s in steps if s.opens}
    assert 6 <= len(visitors) <= 20


@pytest.mark.parametrize("seed", range(20))
def test_no_line_follows_the_same_line_and_no_visitor_repeats_one(seed: int) -> None:
    steps = list(itertools.islice(schedule(Plan.flood(), random.Random(seed)), 2000))
    texts = [s.text for s in steps]
    assert all(a != b for a, b in itertools.pairwise(texts))
    said: dict[int, list[str]] = defaultdict(list)
    for step in steps:
        said[step.visitor].append(step.text)
    assert all(len(lines) == len(set(lines)) for lines in said.values())


def test_the_flood_is_many_times_busier() -> None:
    assert len(first_minutes(Plan.flood(), seed=1)) > 10 * len(first_minutes(Plan(), seed=1))


def test_a_counted_run_ends_after_its_visitors_have_written() -> None:
    steps = list(schedule(Plan(), random.Random(3), count=2))
    assert [(s.visitor, s.name) for s in steps if s.opens] == [(0, "Dana Smith"), (1, "Lee Wong")]
    assert all(s.at < 2 * Plan().every * 1.5 + Plan().stay for s in steps)


def test_flags_choose_the_plan() -> None:
    def plan_of(*argv: str) -> tuple[bool, float | None]:
        args = parse_args(argv)
        return args.flood, args.every

    assert plan_of() == (False, None)
    assert plan_of("--flood") == (True, None)
    assert plan_of("--flood", "--every", "2") == (True, 2.0)


def test_every_plan_has_lines_enough_for_its_visitors() -> None:
    from desktop_agent.demo import FOLLOW_UPS

    for plan in (Plan(), Plan.flood()):
        assert plan.max_follow_ups < len(FOLLOW_UPS)
