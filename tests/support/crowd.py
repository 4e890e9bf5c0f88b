"""Crowds of clients: many connections opened first, then one frame sent on each at the
same moment, as an attacker's simultaneous attempts arrive."""

from __future__ import annotations

import asyncio
import resource
from typing import Any

from websockets.asyncio.client import connect

from tests.support.backend import SUBPROTOCOL, WsClient


def raise_descriptor_limit() -> None:
    """Let this process hold thousands of sockets (soft limit up to the hard one)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


async def open_clients(urls: list[str], count: int, path: str, **kwargs: Any) -> list[WsClient]:
    """``count`` connections on ``path``, spread over ``urls`` in turn."""

    async def one(n: int) -> WsClient:
        ws = await connect(
            f"{urls[n % len(urls)]}{path}",
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            open_timeout=60,
            **kwargs,
        )
        return WsClient(ws)

    # Opened in batches so the test measures the limits, not the accept backlog.
    clients: list[WsClient] = []
    for start in range(0, count, 200):
        clients += await asyncio.gather(*(one(n) for n in range(start, min(count, start + 200))))
    return clients


async def all_at_once(clients: list[WsClient], frame: dict[str, Any]) -> list[dict[str, Any]]:
    """Send ``frame`` on every client at the same moment; their replies in order."""
    return list(await asyncio.gather(*(c.request(dict(frame), timeout=60) for c in clients)))


async def close_all(clients: list[WsClient]) -> None:
    await asyncio.gather(*(c.close() for c in clients), return_exceptions=True)
