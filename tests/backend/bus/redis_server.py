"""A private redis-server for fault tests: stopped and restarted at will, never the
machine's shared Redis."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Awaitable, Callable

import redis.asyncio as redis

from tests.support.backend import free_port

SHARED_URL = "redis://127.0.0.1:6379/0"


class RedisServer:
    """``redis-server`` on a free port, without persistence."""

    def __init__(self) -> None:
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    @staticmethod
    def available() -> bool:
        return shutil.which("redis-server") is not None

    async def start(self) -> None:
        self._process = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--loglevel",
                "warning",
            ],
            stdout=subprocess.DEVNULL,
        )
        await wait_until(self._answers, what=f"redis-server on port {self.port} to answer")

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None:
            process.kill()
            await asyncio.to_thread(process.wait)

    async def _answers(self) -> bool:
        client = redis.Redis.from_url(self.url, socket_connect_timeout=0.5)
        try:
            return bool(await client.ping())
        except (OSError, redis.RedisError):
            return False
        finally:
            await client.aclose()

    async def command(self, *args: str) -> object:
        client = redis.Redis.from_url(self.url)
        try:
            return await client.execute_command(*args)
        finally:
            await client.aclose()


async def wait_until(
    condition: Callable[[], bool | Awaitable[bool]], *, what: str, timeout: float = 15.0
) -> None:
    """Wait until ``condition`` holds (checked every 10 ms), or fail saying ``what``."""
    deadline = time.monotonic() + timeout
    while True:
        result = condition()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.01)
