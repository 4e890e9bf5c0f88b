"""The gateway's catch-up logic, driven directly (no sockets): a resync that arrives
while a socket is already replaying must not leave a gap."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.protocol import State

from backend import protocol
from backend.bus import NotificationsStored
from backend.gateway import AgentSocket, Gateway
from backend.metrics import Metrics
from backend.store.base import Agent
from backend.stream import Phase

AGENT = Agent(1, "a_TEST", "ann@x.org", "Ann")


class FakeConnection:
    """What AgentSocket touches of a websockets connection, recording sent frames."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.protocol = self
        self.state = State.OPEN
        self.transport = self
        self.remote_address = ("127.0.0.1", 1)
        self.extensions: list[object] = []
        self.writes = 0

    def write(self, data: bytes) -> None:
        """The transport: unmasked text frames (see backend.push.text_frame)."""
        self.writes += 1
        while data:
            assert data[0] == 0x81
            n = data[1]
            start = 2 if n < 126 else 4 if n == 126 else 10
            if n >= 126:
                n = int.from_bytes(data[2:start], "big")
            self.sent.append(json.loads(data[start : start + n]))
            data = data[start + n :]

    def send_text(self, data: bytes) -> None:
        self.sent.append(json.loads(data))

    def send_data(self) -> None:
        pass

    async def send(self, data: bytes, text: bool = True) -> None:
        self.sent.append(json.loads(data))

    def get_write_buffer_size(self) -> int:
        return 0

    def seqs(self) -> list[int]:
        return [f["notification"]["seq"] for f in self.sent if f["type"] == "notification"]


def note(seq: int) -> protocol.Notification:
    return protocol.Notification(
        id=f"n_TEST_{seq}",
        seq=seq,
        kind="ticket.new",
        category="ticket",
        title="t",
        body="",
        conversation_id=None,
        url=None,
        created_at="2026-12-01T00:00:00.000Z",
        read=False,
    )


class SlowStore:
    """notifications_after waits until released, then returns what is stored by then."""

    def __init__(self) -> None:
        self.stored: list[int] = []
        self.release = asyncio.Event()
        self.reads = 0

    async def notifications_after(self, agent: Agent, after: int, limit: int) -> Any:
        self.reads += 1
        snapshot = [s for s in self.stored if s > after]
        await self.release.wait()
        return [note(s) for s in snapshot], False

    async def agent_state(self, agent_id: int) -> tuple[int, dict[str, int]]:
        return (max(self.stored, default=0), {})


async def test_resync_during_a_catch_up_reads_the_store_again() -> None:
    store = SlowStore()
    gateway = Gateway(Metrics(), store)  # type: ignore[arg-type]
    connection = FakeConnection()
    sock = AgentSocket(connection, AGENT, "hash", 1 << 20, Metrics())  # type: ignore[arg-type]
    gateway.add_agent(sock)
    store.stored = [1, 2]
    store.release.set()
    await gateway.resume(sock, "r", 2, 500)  # the client has 1 and 2
    assert sock.stream.phase is Phase.LIVE
    store.release.clear()
    store.reads = 0
    store.stored = [1, 2, 3]
    gateway.resync()  # the bus reconnected: catch up from seq 2; the read takes a while
    await asyncio.sleep(0)  # let the catch-up task take its snapshot of the store
    assert sock.stream.phase is Phase.READING and store.reads == 1
    store.stored.append(4)  # lost on the bus while the first read was under way
    gateway.resync()  # another node's resync request arrives meanwhile
    store.release.set()
    while sock.stream.phase is not Phase.LIVE or store.reads < 2:
        await asyncio.sleep(0)
    await sock.drained()
    assert connection.seqs() == [3, 4]
    assert store.reads == 2


def stored(seqs: range) -> list[NotificationsStored]:
    return [
        NotificationsStored(
            kind="ticket.new",
            category="ticket",
            title="t",
            body="",
            conversation_id=None,
            url=None,
            data={},
            created_at="2026-12-01T00:00:00.000Z",
            deliveries=[(AGENT.id, AGENT.public_id, seq, {"total": seq, "chat": 0})],
            accepted_at=0.0,
        )
        for seq in seqs
    ]


async def test_more_events_in_one_loop_turn_go_out_in_one_write_per_socket() -> None:
    store = SlowStore()
    store.release.set()
    gateway = Gateway(Metrics(), store)  # type: ignore[arg-type]
    connection = FakeConnection()
    sock = AgentSocket(connection, AGENT, "hash", 1 << 20, Metrics())  # type: ignore[arg-type]
    gateway.add_agent(sock)
    await gateway.resume(sock, "r", 0, 500)
    await asyncio.sleep(0)
    before = connection.writes
    for event in stored(range(1, 6)):  # one commit batch: delivered in one turn
        gateway.deliver(event)
    await sock.reply(protocol.encode(protocol.UnreadPush(unread={"total": 5, "chat": 0})))
    assert connection.writes == before + 1  # the first at once, the rest wait
    assert connection.seqs() == [1]
    await asyncio.sleep(0)
    assert connection.writes == before + 2  # ... for the end of the turn
    assert connection.seqs() == [1, 2, 3, 4, 5]
    assert connection.sent[-1]["type"] == "unread"  # the reply kept its place
    for event in stored(range(6, 8)):
        gateway.deliver(event)
        assert connection.seqs()[-1] == event.deliveries[0][2]  # one a turn: at once
        await asyncio.sleep(0)
    assert connection.writes == before + 4
    assert connection.seqs() == [1, 2, 3, 4, 5, 6, 7]
