"""Reconnect delays: exponential backoff with jitter.

The connection service takes a *factory* of these generators, so tests replace it with
zeros (or with hours, to prove that a network-change wake-up cuts the wait short).
"""

from __future__ import annotations

import random
from collections.abc import Iterator

INITIAL_DELAY = 0.5
MAX_DELAY = 30.0
FACTOR = 2.0
JITTER = 0.25


def reconnect_delays(
    *,
    initial: float = INITIAL_DELAY,
    maximum: float = MAX_DELAY,
    factor: float = FACTOR,
    jitter: float = JITTER,
    rng: random.Random | None = None,
) -> Iterator[float]:
    """Yield delays (seconds) to wait before each reconnect attempt, forever.

    The n-th base delay is ``min(maximum, initial * factor**n)``; each yielded delay is
    the base shortened by a random fraction of at most ``jitter``, so every delay lies in
    ``[base * (1 - jitter), base]`` and never exceeds ``maximum``. Jitter keeps thousands
    of agents that lost the same server from coming back in the same instant.

    Args:
        initial: the first base delay (> 0).
        maximum: the cap (>= initial).
        factor: growth per attempt (>= 1).
        jitter: largest fraction removed at random, in [0, 1).
        rng: random source; a seeded ``random.Random`` makes the sequence repeatable.

    Raises:
        ValueError: an argument is outside the ranges above.
    """
    if initial <= 0 or maximum < initial or factor < 1 or not 0 <= jitter < 1:
        raise ValueError("need initial > 0, maximum >= initial, factor >= 1, 0 <= jitter < 1")
    source = rng if rng is not None else random.Random()
    base = initial
    while True:
        yield base * (1.0 - jitter * source.random())
        # Once at the cap, stay there (and avoid growing a float towards infinity).
        base = min(maximum, base * factor)


def quick_reconnect_delay(rng: random.Random | None = None, spread: float = 1.0) -> float:
    """A short random delay for a server that said "going away" or "try again later".

    The server closes with 1001 on a clean restart and 1013 when it dropped a slow
    client: coming back at once is right, but spread over ``spread`` seconds so every
    client of a restarting server does not reconnect in the same millisecond.
    """
    source = rng if rng is not None else random.Random()
    return source.random() * spread
