"""Password hashing off the event loop, on a bounded pool.

scrypt costs tens of milliseconds and 16 MiB a call. asyncio's default executor would
run as many at once as it has threads and queue the rest without bound; here a few
threads do the work and at most ``queue`` checks wait for one, so a burst of sign-ins
(from many addresses, each within its limits) costs bounded memory and CPU, and the
excess is refused at once instead of waiting minutes.
"""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor

from backend.errors import RateLimited
from backend.security import hash_password, verify_password


class PasswordPool:
    """Runs :func:`verify_password` and :func:`hash_password` on ``workers`` threads.

    Args:
        workers: hashes computed at once.
        queue: checks that may wait for a thread; one more is refused.
    """

    def __init__(self, workers: int = 2, queue: int = 64):
        self._executor = ThreadPoolExecutor(workers, thread_name_prefix="deskbell-scrypt")
        self._capacity = workers + queue
        self._taken = 0
        self.checks = 0
        """Passwords checked so far (each one a full scrypt)."""

    async def verify(self, password: str, encoded: str | None) -> bool:
        """:func:`verify_password` on the pool.

        Raises:
            RateLimited: the pool and its queue are full.
        """
        self._take()
        try:
            self.checks += 1
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(self._executor, verify_password, password, encoded)
        finally:
            self._taken -= 1

    async def hash(self, password: str) -> str:
        """:func:`hash_password` on the pool (waits for a thread; never refused: only
        operators add passwords)."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, hash_password, password)

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    def _take(self) -> None:
        if self._taken >= self._capacity:
            raise RateLimited("the server is busy with other sign-ins; try again in a few seconds")
        self._taken += 1
