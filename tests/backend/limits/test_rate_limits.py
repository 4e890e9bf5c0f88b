"""Moving-window reservations (backend.rate_limits): in memory and shared in Redis."""

from __future__ import annotations

import asyncio
import logging
import secrets
import time

import pytest

from backend.rate_limits import RateLimiter, Rule, wait_text
from tests.backend.bus.redis_server import RedisServer

RULE = Rule("test", 10, 600)


async def _admitted(limiters: list[RateLimiter], attempts: int, key: str = "k") -> int:
    results = await asyncio.gather(
        *(limiters[n % len(limiters)].reserve(RULE, key) for n in range(attempts))
    )
    return sum(1 for r in results if r is None)


async def test_simultaneous_reservations_in_memory_admit_exactly_the_limit() -> None:
    assert await _admitted([RateLimiter()], 1000) == 10


async def test_a_refusal_says_how_long_until_the_oldest_attempt_expires() -> None:
    limiter = RateLimiter()
    await _admitted([limiter], 10)
    wait = await limiter.reserve(RULE, "k")
    assert wait is not None and 590 < wait <= 600
    assert await limiter.reserve(RULE, "other") is None


async def test_forget_gives_a_key_its_whole_window_back() -> None:
    limiter = RateLimiter()
    await _admitted([limiter], 10)
    await limiter.forget(RULE, "k")
    assert await _admitted([limiter], 20) == 10


async def test_two_nodes_on_one_redis_share_the_limit(private_redis: RedisServer) -> None:
    prefix = f"t{secrets.token_hex(4)}"
    nodes = [RateLimiter(private_redis.url, key_prefix=prefix) for _ in range(2)]
    assert await _admitted(nodes, 1000) == 10


async def test_deployments_on_one_redis_count_apart(private_redis: RedisServer) -> None:
    eu = RateLimiter(private_redis.url, key_prefix="eu")
    us = RateLimiter(private_redis.url, key_prefix="us")
    assert await _admitted([eu], 20) == 10
    assert await _admitted([us], 20) == 10


async def test_without_redis_each_node_limits_on_its_own_then_shares_again(
    private_redis: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "backend.rate_limits")
    now = [0.0]
    limiter = RateLimiter(private_redis.url, key_prefix="p", clock=lambda: now[0])
    assert await _admitted([limiter], 5) == 5
    await private_redis.stop()
    # Still limited (never unlimited), now by this node's own window.
    assert await _admitted([limiter], 20, key="down") == 10
    assert "event=limits_local" in caplog.text
    await private_redis.start()
    now[0] += 60  # past the retry delay: Redis is asked again
    assert await limiter.reserve(RULE, "back") is None
    assert "event=limits_shared" in caplog.text


@pytest.mark.parametrize(
    ("seconds", "text"),
    [(0.2, "1 second"), (41.5, "42 seconds"), (599.0, "10 minutes")],
)
def test_waits_are_written_for_people(seconds: float, text: str) -> None:
    assert wait_text(seconds) == text


async def test_expired_attempts_are_swept_in_one_pass_at_most_every_few_seconds(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    short = Rule("short", 1, 1)
    limiter = RateLimiter()
    for n in range(100):
        assert await limiter.reserve(short, f"k{n}") is None
    # The first reservation swept (nothing to drop); the 99 after it did not.
    assert limiter.memory.sweeps == 1
    assert len(limiter.memory.events) == 100
    real = time.time
    monkeypatch.setattr(time, "time", lambda: real() + 5)  # every window is over
    limiter.memory.sweep_every = 0
    assert await limiter.reserve(short, "k0") is None
    assert limiter.memory.sweeps == 2
    assert len(limiter.memory.events) == 1  # only the attempt just counted
