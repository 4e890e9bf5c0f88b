"""Keepalive: the server pings every connection and drops the peers that stop answering.

The client here is a raw socket, so the test decides whether each ping is answered.
"""

from __future__ import annotations

import asyncio
import base64
import os
import struct
from pathlib import Path

from tests.support.backend import SUBPROTOCOL, in_process_backend

PING, PONG, CLOSE = 0x9, 0xA, 0x8


class RawAgent:
    """An /agent connection spoken by hand: frames in, pongs out only when asked."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader = reader
        self.writer = writer

    @classmethod
    async def connect(cls, port: int, token: str) -> RawAgent:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        key = base64.b64encode(os.urandom(16)).decode()
        writer.write(
            (
                f"GET /agent HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
                f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
                f"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: {SUBPROTOCOL}\r\n"
                f"Authorization: Bearer {token}\r\n\r\n"
            ).encode()
        )
        head = await reader.readuntil(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 101"), head
        return cls(reader, writer)

    async def frame(self) -> tuple[int, bytes]:
        """The next frame from the server: (opcode, payload)."""
        b0, b1 = await self.reader.readexactly(2)
        size = b1 & 0x7F
        if size == 126:
            (size,) = struct.unpack("!H", await self.reader.readexactly(2))
        elif size == 127:
            (size,) = struct.unpack("!Q", await self.reader.readexactly(8))
        return b0 & 0x0F, await self.reader.readexactly(size)

    def pong(self, payload: bytes) -> None:
        # Client frames are masked (RFC 6455 section 5.3); the zero key leaves the
        # payload as it is.
        self.writer.write(bytes((0x80 | PONG, 0x80 | len(payload))) + bytes(4) + payload)

    def close(self) -> None:
        self.writer.transport.abort()


async def test_agent_that_answers_pings_stays_connected(tmp_path: Path) -> None:
    async with in_process_backend(tmp_path, ping_interval=0.1) as server:
        tokens = await server.seed({"ann@x.org": ["Support"]})
        agent = await RawAgent.connect(server.port, tokens["ann@x.org"])
        pings = 0
        while pings < 5:  # several sweeps: each would fail an unanswered ping
            opcode, payload = await asyncio.wait_for(agent.frame(), 10)
            assert opcode != CLOSE, payload
            if opcode == PING:
                pings += 1
                agent.pong(payload)
        agent.close()


async def test_agent_that_stops_answering_is_closed_with_1011(tmp_path: Path) -> None:
    async with in_process_backend(tmp_path, ping_interval=0.1) as server:
        tokens = await server.seed({"ann@x.org": ["Support"], "bob@x.org": ["Support"]})
        silent = await RawAgent.connect(server.port, tokens["ann@x.org"])
        lively = await RawAgent.connect(server.port, tokens["bob@x.org"])
        pings = 0
        while True:
            opcode, payload = await asyncio.wait_for(silent.frame(), 10)
            if opcode == PING:
                pings += 1
            if opcode == CLOSE:
                break
        assert pings == 1  # the first one unanswered at the next sweep closes it
        assert struct.unpack("!H", payload[:2])[0] == 1011
        assert payload[2:] == b"keepalive ping timeout"
        # The other agent, which answers, is still served.
        while True:
            opcode, payload = await asyncio.wait_for(lively.frame(), 10)
            assert opcode != CLOSE, payload
            if opcode == PING:
                lively.pong(payload)
                break
        silent.close()
        lively.close()


async def test_pings_are_spread_over_the_interval_not_sent_all_at_once(tmp_path: Path) -> None:
    """With thousands of connections, pinging all of them in one loop turn would hold
    every delivery back; each connection is still pinged once an interval."""
    async with in_process_backend(tmp_path, ping_interval=1.0) as server:
        emails = [f"agent{n}@x.org" for n in range(20)]
        tokens = await server.seed({email: ["Support"] for email in emails})
        agents = [await RawAgent.connect(server.port, tokens[email]) for email in emails]
        loop = asyncio.get_running_loop()

        async def first_ping(agent: RawAgent) -> float:
            while True:
                opcode, payload = await asyncio.wait_for(agent.frame(), 10)
                if opcode == PING:
                    agent.pong(payload)
                    return loop.time()

        times = await asyncio.gather(*(first_ping(agent) for agent in agents))
        assert max(times) - min(times) >= 0.3, "every connection was pinged in one go"
        for agent in agents:
            agent.close()
