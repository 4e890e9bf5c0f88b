"""Abuse limits: one moving window per rule and key, reserved before the work it guards.

Every guarded action calls :meth:`RateLimiter.reserve` first, before any other await:
the attempt counts the moment it starts, in one atomic hit-and-test (a Lua script in
Redis, a per-key lock in memory), so attempts that arrive together cannot all pass a
check made before any of them was recorded (DESIGN.md guarantee 8). The windows are the
``limits`` library's moving windows.

With a Redis bus the windows live in that Redis, so every node counts against the same
limit. While Redis cannot be reached each node falls back to its own in-memory windows
(each node then admits up to the limit on its own: weaker, but never unlimited, and
sign-in keeps working), and tries Redis again a few seconds later.
"""

from __future__ import annotations

import bisect
import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

log = logging.getLogger(__name__)

SHARED_RETRY_SECONDS = 5.0
"""After a Redis failure, how long a node uses its own windows before trying again."""
_REDIS_TIMEOUT = 2.0
"""Seconds a Redis command (or connecting) may take before Redis counts as down."""
_REDIS_CONNECTIONS = 32
_POOL_WAIT = 30.0
"""Seconds a reservation may wait for a free connection: a burst waits its turn (each
command is bounded by the timeout above, so a dead Redis does not hold them for long);
only Redis's own failures switch a node to its local windows, never a queue."""


class _MemoryWindows(MemoryStorage):
    """``limits``' in-memory storage, with expired attempts swept at most every
    ``sweep_every`` seconds, in one pass on the loop.

    The library starts a sweep again after every reservation and hops to a thread for
    each key: with 10,000 keys and 100 reservations a second that took three quarters
    of a core here. Reservations themselves are the library's (a sweep only drops
    entries that have expired, which no reservation counts anyway).
    """

    sweep_every = 10.0

    def __init__(self) -> None:
        super().__init__()
        self.sweeps = 0
        self._last_sweep: float | None = None

    # Replaces MemoryStorage.__schedule_expiry (name-mangled), which every reservation
    # calls; tests/backend/limits/test_rate_limits.py fails if it stops being called.
    async def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if self._last_sweep is not None and now - self._last_sweep < self.sweep_every:
            return
        self._last_sweep = now
        self._sweep()

    def _sweep(self) -> None:
        # No await inside, and none inside the library's critical sections either: no
        # reservation can be half-way through a key while this runs.
        self.sweeps += 1
        now = time.time()
        for key, events in list(self.events.items()):
            live = bisect.bisect_left(events, -now, key=lambda event: -event.expiry)
            if live:
                self.events[key] = events[:live]
            else:
                del self.events[key]
                self.locks.pop(key, None)
        for key, expires in list(self.expirations.items()):
            if expires <= now:
                self.storage.pop(key, None)
                self.expirations.pop(key, None)
                self.locks.pop(key, None)


@dataclass(frozen=True)
class Rule:
    """At most ``amount`` attempts per key within any ``window`` seconds."""

    name: str
    amount: int
    window: int

    def item(self) -> RateLimitItem:
        return RateLimitItemPerSecond(self.amount, self.window, namespace=self.name)


class RateLimiter:
    """Moving-window limits in memory, or shared in Redis.

    Args:
        redis_url: a ``redis://`` (or ``rediss://``, ``unix://``) URL for limits shared
            by every node; None keeps them in this process.
        key_prefix: prefix of every Redis key (deployments sharing one Redis each use
            their own).
        clock: monotonic seconds, for the fall-back timing only.
    """

    def __init__(
        self,
        redis_url: str | None = None,
        *,
        key_prefix: str = "deskbell:limits",
        clock: Callable[[], float] = time.monotonic,
    ):
        self.memory = _MemoryWindows()
        self._local = MovingWindowRateLimiter(self.memory)
        self._shared: MovingWindowRateLimiter | None = None
        if redis_url is not None:
            import redis.asyncio as redis  # the scale extra, as for the Redis bus

            # A burst of attempts waits its turn for one of a few connections (each
            # reservation is one short script) rather than opening one each.
            pool = redis.BlockingConnectionPool.from_url(
                redis_url,
                max_connections=_REDIS_CONNECTIONS,
                timeout=_POOL_WAIT,
                socket_timeout=_REDIS_TIMEOUT,
                socket_connect_timeout=_REDIS_TIMEOUT,
            )
            storage: Storage = RedisStorage(
                _storage_uri(redis_url),
                implementation="redispy",
                key_prefix=key_prefix,
                wrap_exceptions=True,
                # Passed on to redis-py (limits types its options as scalars only).
                connection_pool=pool,  # type: ignore[arg-type]
            )
            self._shared = MovingWindowRateLimiter(storage)
        self._clock = clock
        self._shared_down_until: float | None = None

    @property
    def shared(self) -> bool:
        """True when limits are kept in Redis (whether or not it answers right now)."""
        return self._shared is not None

    async def reserve(self, rule: Rule, key: str) -> float | None:
        """Count one attempt for ``key`` under ``rule``, if the window has room.

        Returns:
            None when the attempt is admitted (and counted); otherwise the seconds
            until the oldest attempt in the window expires (nothing is counted).
        """
        item = rule.item()
        limiter = self._limiter()
        try:
            admitted = await limiter.hit(item, key)
            stats = None if admitted else await limiter.get_window_stats(item, key)
        except StorageError as exc:
            self._shared_failed(exc)
            return await self.reserve(rule, key)
        self._shared_answered(limiter)
        return None if stats is None else max(0.0, stats.reset_time - time.time())

    async def forget(self, rule: Rule, key: str) -> None:
        """Drop every attempt counted for ``key`` under ``rule`` (a sign-in succeeded)."""
        limiter = self._limiter()
        try:
            await limiter.clear(rule.item(), key)
        except StorageError as exc:
            self._shared_failed(exc)
            await self._local.clear(rule.item(), key)

    def _limiter(self) -> MovingWindowRateLimiter:
        if self._shared is None:
            return self._local
        if self._shared_down_until is not None and self._clock() < self._shared_down_until:
            return self._local
        return self._shared

    def _shared_failed(self, exc: StorageError) -> None:
        if self._shared_down_until is None:
            log.warning(
                "event=limits_local reason=%r detail=%r",
                "Redis does not answer; each node counts limits on its own",
                f"{type(exc.storage_error).__name__}: {exc.storage_error}",
            )
        self._shared_down_until = self._clock() + SHARED_RETRY_SECONDS

    def _shared_answered(self, limiter: MovingWindowRateLimiter) -> None:
        if limiter is self._shared and self._shared_down_until is not None:
            self._shared_down_until = None
            log.info("event=limits_shared")


def _storage_uri(url: str) -> str:
    """The ``limits`` storage URI for a Redis URL (its own scheme names the client)."""
    if url.startswith("unix://"):
        return "async+redis+unix://" + url.removeprefix("unix://")
    return "async+" + url


def wait_text(seconds: float) -> str:
    """``seconds`` for a person: "1 second", "42 seconds", "10 minutes"."""
    whole = max(1, math.ceil(seconds))
    if whole >= 120:
        minutes = math.ceil(whole / 60)
        return f"{minutes} minutes"
    return "1 second" if whole == 1 else f"{whole} seconds"
