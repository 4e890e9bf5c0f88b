"""Fixtures of the abuse-limit suite: room for a thousand client sockets, and clients
that open many connections first and then send one frame on each at the same moment."""

from __future__ import annotations

import asyncio
import resource
from typing import Any

import pytest
from websockets.asyncio.client import connect

from tests.support.backend import SUBPROTOCOL, WsClient


@pytest.fixture(autouse=True)
def many_descriptors() -> None:
    """Raise this test process's descriptor limit: it holds a thousand sockets (and,
    for in-process servers, their other ends)."""
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
