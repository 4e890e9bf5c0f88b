import itertools
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_agent.core.backoff import quick_reconnect_delay, reconnect_delays


def test_delays_start_at_half_a_second_and_double_up_to_thirty_without_jitter() -> None:
    delays = list(itertools.islice(reconnect_delays(jitter=0.0), 9))
    assert delays == [0.5, 1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0, 30.0]


@given(
    seed=st.integers(min_value=0, max_value=2**32),
    jitter=st.floats(min_value=0.0, max_value=0.99),
    count=st.integers(min_value=1, max_value=60),
)
def test_every_delay_stays_within_its_jittered_base_and_the_cap(
    seed: int, jitter: float, count: int
) -> None:
    delays = itertools.islice(reconnect_delays(jitter=jitter, rng=random.Random(seed)), count)
    for n, delay in enumerate(delays):
        base = min(30.0, 0.5 * 2**n)
        assert base * (1 - jitter) - 1e-9 <= delay <= base
        assert 0 < delay <= 30.0


def test_jitter_spreads_clients_apart() -> None:
    first = [next(reconnect_delays(rng=random.Random(seed))) for seed in range(20)]
    assert len(set(first)) > 1


def test_the_same_seed_gives_the_same_delays() -> None:
    a = list(itertools.islice(reconnect_delays(rng=random.Random(7)), 10))
    b = list(itertools.islice(reconnect_delays(rng=random.Random(7)), 10))
    assert a == b


@pytest.mark.parametrize(
    "kwargs",
    [{"initial": 0}, {"initial": 2, "maximum": 1}, {"factor": 0.5}, {"jitter": 1.0}],
)
def test_nonsense_arguments_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        next(reconnect_delays(**kwargs))


@given(seed=st.integers(min_value=0, max_value=2**32))
def test_a_quick_reconnect_waits_at_most_its_spread(seed: int) -> None:
    assert 0 <= quick_reconnect_delay(random.Random(seed), spread=1.0) < 1.0
