"""Guarantee 4: one slow client never slows the rest."""

from __future__ import annotations

import asyncio
import secrets
import socket
from pathlib import Path

from websockets.asyncio.client import connect

from tests.support.backend import SUBPROTOCOL, in_process_backend


async def test_client_that_stops_reading_is_dropped_and_others_get_everything(
    tmp_path: Path,
) -> None:
    async with in_process_backend(tmp_path, send_buffer_limit=1024 * 1024) as server:
        tokens = await server.seed({"fast@x.org": ["Support"], "slow@x.org": ["Support"]})
        fast = await server.agent(tokens["fast@x.org"])
        # The slow client reads the welcome and its resume reply, then never reads again:
        # websockets stops reading the socket once its small queue is full.
        # A small receive buffer keeps the kernel from soaking up the backlog.
        raw = socket.socket()
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 8192)
        raw.connect(("127.0.0.1", server.port))
        slow = await connect(
            f"{server.url}/agent",
            sock=raw,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Bearer {tokens['slow@x.org']}"},
            max_queue=1,
            max_size=None,
        )
        await slow.recv()
        await slow.send('{"type":"resume","id":1,"after_seq":0}')
        await slow.recv()
        body = secrets.token_urlsafe(5000)  # incompressible, in case deflate is on
        count = 1200  # about 8 MB: far past the socket buffers and the 1 MiB bound
        publishing = asyncio.create_task(_publish(server, count, body))
        received = await fast.notifications(count, timeout=60)
        await publishing
        assert [n["seq"] for n in received] == list(range(1, count + 1))
        metrics = server.backend.metrics  # type: ignore[union-attr]
        assert metrics.slow_disconnects._value.get() == 1
        # Back on its feet, the slow agent resumes and misses nothing.
        again = await server.agent(tokens["slow@x.org"], resume=False)
        reply = await again.request({"type": "resume", "after_seq": 0, "limit": 1000})
        replayed = await again.notifications(1000, timeout=60)
        assert reply["truncated"] is True and reply["last_seq"] == count
        older = await again.request(
            {"type": "history", "before_seq": replayed[0]["seq"], "limit": 200}
        )
        seqs = sorted(n["seq"] for n in older["items"]) + [n["seq"] for n in replayed]
        assert seqs == list(range(1, count + 1))
        slow.transport.abort()


async def _publish(server, count: int, body: str) -> None:  # type: ignore[no-untyped-def]
    from backend import protocol

    event = protocol.GenericEvent(
        kind="ticket.updated", recipients=["inbox:Support"], title="t", body=body
    )
    # A few in flight at a time, like a steady integration: each committed batch stays
    # small enough for a client that keeps reading.
    slots = asyncio.Semaphore(4)

    async def one() -> None:
        async with slots:
            await server.service.publish(1, event, None)

    await asyncio.gather(*(one() for _ in range(count)))
