"""Keepalive pings for every connection of a server, from one sweep.

websockets' own keepalive runs a task per connection (a task, its coroutine, a sleep
timer and a future: about 1.5 KiB each, held for as long as the connection is open).
One sweep every ``interval`` seconds does the same for all of them with no state per
connection but the ping that is out: a connection whose ping from the previous sweep
is still unanswered is failed with 1011, as websockets does after ``ping_timeout``
(RFC 6455 section 5.5.2: a Pong answers a Ping; a peer that does not answer is gone).
So a dead peer is found within two intervals of its last answer, as before with
``ping_timeout`` equal to ``ping_interval`` (how the server configured websockets).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable

from websockets.asyncio.connection import Connection
from websockets.frames import CloseCode
from websockets.protocol import State

log = logging.getLogger("deskbell.server")

PING = b"kplv"
"""The payload of the sweep's pings. websockets acknowledges a pong for it and every
ping sent before it (``Connection.acknowledge_pings``), so it does not collide with
pings the application sends."""


def sweep(connections: Iterable[Connection], close_timeout: float) -> int:
    """Fail every open connection whose keepalive ping (from the previous sweep) is
    still unanswered; ping the others. Returns how many were failed. Never awaits."""
    failed = 0
    for connection in connections:
        if connection.protocol.state is not State.OPEN:
            continue
        if PING in connection.pending_pings:
            _fail(connection, close_timeout)
            failed += 1
            continue
        loop = connection.loop
        try:
            # Where websockets' ping() keeps it: the pong completes it, sets the
            # connection's latency and removes it (acknowledge_pings).
            connection.pending_pings[PING] = (loop.create_future(), loop.time())
            connection.protocol.send_ping(PING)
            connection.send_data()
        except Exception as exc:  # the transport died under us; connection_lost follows
            log.debug("keepalive ping failed: %s", exc)
    return failed


def _fail(connection: Connection, close_timeout: float) -> None:
    """What websockets' keepalive does on a timeout: close with 1011 at once (no
    waiting for the peer's close frame), and drop the link if it has not closed
    within ``close_timeout``."""
    try:
        connection.protocol.fail(CloseCode.INTERNAL_ERROR, "keepalive ping timeout")
        connection.send_data()
    except Exception as exc:
        log.debug("keepalive close failed: %s", exc)
    transport = connection.transport
    connection.loop.call_later(close_timeout, transport.abort)


SLICES = 10
"""A sweep goes by tenths of the connections, a tenth every ``interval / 10`` seconds:
pinging 5,000 connections in one loop turn would hold every delivery back for it."""


async def run(
    connections: Callable[[], Iterable[Connection]], interval: float, close_timeout: float
) -> None:
    """Sweep ``connections()`` until cancelled: each connection once every ``interval``
    seconds, a slice of them (by hash, stable for a connection's life) at a time."""
    turn = 0
    while True:
        await asyncio.sleep(interval / SLICES)
        part, turn = turn, (turn + 1) % SLICES
        try:
            due = [c for c in connections() if hash(c) % SLICES == part]
            failed = sweep(due, close_timeout)
        except Exception:
            log.exception("keepalive sweep failed")
            continue
        if failed:
            log.info("event=keepalive_timeout connections=%d", failed)
