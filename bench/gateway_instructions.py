"""Instructions the gateway spends per delivery, the store left out, counted by callgrind.

    valgrind --tool=callgrind --instr-atstart=no --callgrind-out-file=/tmp/gw.out \\
        python bench/gateway_instructions.py --agents 1000 --events 20

One process: a websockets server on loopback whose ``/agent`` connections join a
:class:`backend.gateway.Gateway` as live streams, and ``agents`` plain sockets that
complete the handshake and then read nothing until the end. With instrumentation on
(it turns it on and off itself with ``callgrind_control``), it hands the gateway
``events`` bus events, each for every agent (seq 1, 2, ...), as the bus would,
``--batch`` of them per turn of the event loop (as a commit batch's are); then it
reads every socket and checks that each got exactly seqs 1..events, in order.

What it counts is the send path only: building each recipient's frame, the stream's
decision, the WebSocket framing and the transport's write (the kernel's work in the
``send`` system call is not an instruction of this process). Without valgrind it
runs the same and prints nothing about instructions.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import socket
import subprocess
import sys
import time

from websockets.asyncio.server import ServerConnection, serve

from backend import stream
from backend.bus import NotificationsStored
from backend.gateway import AgentSocket, Gateway
from backend.metrics import Metrics
from backend.store.base import Agent

SUBPROTOCOL = "deskbell.v1"


def callgrind(*args: str) -> None:
    """Tell callgrind (if this process runs under it) to do ``args``."""
    if "vgpreload" not in os.environ.get("LD_PRELOAD", ""):
        return
    subprocess.run(["callgrind_control", *args, str(os.getpid())], check=True, capture_output=True)


def handshake(port: int, index: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(
        (
            f"GET /agent/{index} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\nUpgrade: websocket\r\n"
            f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n"
            f"Sec-WebSocket-Protocol: {SUBPROTOCOL}\r\n\r\n"
        ).encode()
    )
    return sock


def read_frames(sock: socket.socket, count: int) -> list[dict[str, object]]:
    """Skip the HTTP response, then read ``count`` unmasked text frames."""
    buf = b""
    while b"\r\n\r\n" not in buf:
        buf += sock.recv(65536)
    buf = buf.split(b"\r\n\r\n", 1)[1]
    out = []
    while len(out) < count:
        while len(buf) < 2:
            buf += sock.recv(65536)
        n = buf[1] & 0x7F
        start = 2 if n < 126 else 4 if n == 126 else 10
        while len(buf) < start:
            buf += sock.recv(65536)
        if n >= 126:
            n = int.from_bytes(buf[2:start], "big")
        while len(buf) < start + n:
            buf += sock.recv(65536)
        out.append(json.loads(buf[start : start + n]))
        buf = buf[start + n :]
    return out


async def run(agents: int, events: int, pad: int, batch: int) -> None:
    gateway = Gateway(Metrics())
    joined = asyncio.Event()
    done = asyncio.Event()

    async def handler(connection: ServerConnection) -> None:
        index = int(connection.request.path.rsplit("/", 1)[1])  # type: ignore[union-attr]
        agent = Agent(index + 1, f"a_BENCH{index:05d}", f"agent{index}@bench.example", "A")
        sock = AgentSocket(connection, agent, f"hash{index}", 64 << 20, gateway.metrics)
        # Live from seq 0: a resume whose read found nothing.
        (read,) = sock.stream.resume("r", 0, 1000)
        assert isinstance(read, stream.ReadStore)
        sock.stream.read_done(read.generation, stream.ReadResult([], False, 0))
        gateway.add_agent(sock)
        if gateway.agent_count == agents:
            joined.set()
        await done.wait()

    async with serve(handler, "127.0.0.1", 0, subprotocols=[SUBPROTOCOL]) as server:  # type: ignore[list-item]
        port = server.sockets[0].getsockname()[1]
        loop = asyncio.get_running_loop()
        clients = []
        for i in range(agents):
            clients.append(await loop.run_in_executor(None, handshake, port, i))
        await asyncio.wait_for(joined.wait(), 300)
        body = "#" + "x" * pad
        bus_events = [
            NotificationsStored(
                kind="ticket.assigned",
                category="ticket",
                title="Ticket assigned",
                body=body,
                conversation_id=None,
                url=None,
                data={},
                created_at="2026-12-07T10:00:00.000Z",
                deliveries=[
                    (i + 1, f"a_BENCH{i:05d}", k + 1, {"total": k + 1, "chat": 0, "ticket": k + 1})
                    for i in range(agents)
                ],
                accepted_at=time.time(),
            )
            for k in range(events)
        ]
        callgrind("--instr=on")
        for k, event in enumerate(bus_events, 1):
            gateway.deliver(event)
            if k % batch == 0:
                await asyncio.sleep(0)  # the end of a loop turn (of a commit batch)
        await asyncio.sleep(0)
        callgrind("--dump")
        callgrind("--instr=off")
        for i, client in enumerate(clients):
            frames = await loop.run_in_executor(None, read_frames, client, events)
            seqs = [f["notification"]["seq"] for f in frames]  # type: ignore[index]
            if seqs != list(range(1, events + 1)):
                raise SystemExit(f"agent {i} got seqs {seqs}")
            client.close()
        done.set()
    print(f"agents {agents}, events {events}: every agent got seqs 1..{events} in order")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--events", type=int, default=20)
    p.add_argument("--pad", type=int, default=330, help="body bytes per event")
    p.add_argument(
        "--batch",
        type=int,
        default=1,
        help="events delivered in one turn of the event loop (the events of one commit "
        "batch are); 1: each in its own turn",
    )
    args = p.parse_args(argv)
    asyncio.run(run(args.agents, args.events, args.pad, args.batch))
    return 0


if __name__ == "__main__":
    sys.exit(main())
