"""Two deskbell-server nodes in one process, sharing PostgreSQL and a private Redis:
what one node stores reaches an agent connected to the other, in seq order, without
gap or repeat, also when both store for that agent at once and when Redis restarts
while the agent stays connected."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import pytest
from websockets.asyncio.client import ClientConnection, connect

from backend import protocol
from backend.app import Backend, running_backend
from backend.config import Config
from backend.errors import StoreUnavailable
from backend.store.base import Change
from tests.backend.bus.redis_server import RedisServer, wait_until
from tests.backend.store.postgres_server import fresh_database, server_reachable
from tests.backend.store.tcp_proxy import TcpProxy
from tests.backend.store.test_store_contract import event

AGENT = "ann@x.org"


@pytest.fixture
async def pg_url() -> AsyncIterator[str]:
    problem = await server_reachable()
    if problem:
        pytest.skip(problem)
    async with fresh_database() as url:
        yield url


@contextlib.asynccontextmanager
async def two_nodes(pg_url: str, redis_url: str) -> AsyncIterator[tuple[Backend, Backend]]:
    def config(node: str) -> Config:
        return Config(db=pg_url, bus=redis_url, host="127.0.0.1", port=0, node=node)

    async with running_backend(config("a")) as a, running_backend(config("b")) as b:
        yield a, b


async def agent_token(node: Backend) -> str:
    await node.store.add_inbox("support")
    await node.store.add_agent(AGENT, "Ann", ["support"], None)
    token, _ = await node.service.issue_agent_token(AGENT)
    return token


class AgentClient:
    """A minimal /agent client that records every notification seq in arrival order."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.seqs: list[int] = []
        self.unread: dict[str, int] | None = None
        self._reader: asyncio.Task[None] | None = None

    @classmethod
    @contextlib.asynccontextmanager
    async def connected(cls, node: Backend, token: str) -> AsyncIterator[AgentClient]:
        async with connect(
            f"ws://127.0.0.1:{node.server.port}/agent",
            subprotocols=[protocol.SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Bearer {token}"},
        ) as ws:
            client = cls(ws)
            welcome = json.loads(await ws.recv())
            assert welcome["type"] == "welcome"
            await ws.send(json.dumps({"type": "resume", "id": 1, "after_seq": 0}))
            while (frame := json.loads(await ws.recv()))["type"] != "ok":
                client._take(frame)
            client._reader = asyncio.create_task(client._read())
            try:
                yield client
            finally:
                client._reader.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await client._reader

    async def _read(self) -> None:
        async for data in self.ws:
            self._take(json.loads(data))

    def _take(self, frame: dict[str, Any]) -> None:
        if frame["type"] == "notification":
            self.seqs.append(frame["notification"]["seq"])
        elif frame["type"] == "unread":
            self.unread = frame["unread"]


async def publish(node: Backend, n: int) -> None:
    event = protocol.GenericEvent(kind="ticket.assigned", recipients=[AGENT], title=f"t{n}")
    assert await node.service.publish(1, event, f"k{n}") == 1


async def healthz(node: Backend) -> str:
    reader, writer = await asyncio.open_connection("127.0.0.1", node.server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    response = await reader.read()
    writer.close()
    head, body = response.split(b"\r\n\r\n", 1)
    status: str = json.loads(body)["status"]
    code = int(head.split()[1])
    assert code == (503 if status == "unavailable" else 200)
    return status


async def test_an_agent_on_one_node_gets_both_nodes_notifications_in_order(
    pg_url: str, private_redis: RedisServer
) -> None:
    async with two_nodes(pg_url, private_redis.url) as (a, b):
        token = await agent_token(a)
        async with AgentClient.connected(b, token) as client:
            # Both nodes store for the agent at once: their bus messages cross.
            await asyncio.gather(*(publish(a if n % 2 else b, n) for n in range(1, 81)))
            await wait_until(lambda: len(client.seqs) >= 80, what="80 notifications")
            assert client.seqs == list(range(1, 81))


async def test_an_agent_resuming_while_both_nodes_store_sees_one_ordered_stream(
    pg_url: str, private_redis: RedisServer
) -> None:
    async with two_nodes(pg_url, private_redis.url) as (a, b):
        token = await agent_token(a)
        publishing = asyncio.gather(*(publish(a if n % 2 else b, n) for n in range(1, 121)))
        async with AgentClient.connected(b, token) as client:  # resumes mid-stream
            await publishing
            await wait_until(lambda: len(client.seqs) >= 120, what="120 notifications")
            assert client.seqs == list(range(1, 121))


async def test_an_agent_catches_up_after_redis_restarts_without_reconnecting(
    pg_url: str, private_redis: RedisServer
) -> None:
    async with two_nodes(pg_url, private_redis.url) as (a, b):
        token = await agent_token(a)
        async with AgentClient.connected(b, token) as client:
            await publish(a, 1)
            await wait_until(lambda: client.seqs == [1], what="the first notification")
            assert await healthz(b) == "ok"

            await private_redis.stop()
            await wait_until(lambda: not a.bus.healthy and not b.bus.healthy, what="bus down")
            assert await healthz(b) == "degraded"
            for n in range(2, 12):
                await publish(a, n)  # accepted and stored while Redis is down

            await private_redis.start()
            await wait_until(lambda: client.seqs[-1:] == [11], what="the catch-up")
            assert await healthz(b) == "ok"
            assert client.unread is not None and client.unread["total"] == 11
            await publish(a, 12)
            await wait_until(lambda: client.seqs[-1:] == [12], what="live again")
            assert client.seqs == list(range(1, 13))


async def test_a_node_that_loses_postgresql_answers_unavailable_and_recovers(
    pg_url: str, private_redis: RedisServer
) -> None:
    target = urlsplit(pg_url)
    async with TcpProxy(target.hostname or "127.0.0.1", target.port or 5432) as proxy:
        via_proxy = urlunsplit(target._replace(netloc=f"{target.username}@127.0.0.1:{proxy.port}"))
        config = Config(db=via_proxy, bus=private_redis.url, host="127.0.0.1", port=0, node="a")
        async with running_backend(config) as node:
            token = await agent_token(node)
            async with AgentClient.connected(node, token) as client:
                await publish(node, 1)
                await wait_until(lambda: client.seqs == [1], what="the first notification")
                await proxy.stop()
                assert await healthz(node) == "unavailable"
                with pytest.raises(StoreUnavailable, match="cannot be reached"):
                    await publish(node, 2)
                await proxy.start()
                assert await healthz(node) == "ok"
                await publish(node, 3)
                await wait_until(lambda: client.seqs == [1, 2], what="the next notification")


async def test_a_gap_behind_a_resume_is_filled_from_the_store(
    pg_url: str, private_redis: RedisServer
) -> None:
    async with two_nodes(pg_url, private_redis.url) as (a, b):
        token = await agent_token(a)
        ann = await a.store.agent_by_email(AGENT)
        assert ann is not None
        # Pause node b's resume right after it read the store (empty at that moment).
        read_done, release = asyncio.Event(), asyncio.Event()
        original = b.store.notifications_after

        async def paused(*args: Any) -> Any:
            result = await original(*args)
            if not release.is_set():
                read_done.set()
                await release.wait()
            return result

        b.store.notifications_after = paused  # type: ignore[method-assign]
        clients: list[AgentClient] = []
        finished = asyncio.Event()

        async def agent_session() -> None:
            async with AgentClient.connected(b, token) as client:
                clients.append(client)
                await finished.wait()

        session = asyncio.create_task(agent_session())
        await read_done.wait()
        await a.store.commit(Change(event=event(ann.id)))  # seq 1: its bus message is lost
        await publish(a, 2)  # seq 2 reaches b during the replay and is held
        sock = next(iter(b.gateway.agent_sockets()))
        await wait_until(lambda: len(sock.stream.held) == 1, what="seq 2 to be held")
        release.set()
        await wait_until(lambda: bool(clients) and clients[0].seqs == [1, 2], what="1 then 2")
        finished.set()
        await session


async def test_a_commit_whose_bus_message_never_came_reaches_open_sessions_by_itself(
    pg_url: str, private_redis: RedisServer
) -> None:
    """A node that commits and dies before publishing: nothing else happens for that
    agent, yet her open session on another node gets the notification (the nodes
    compare their streams with the store every ``stream_sweep_seconds``)."""

    def config(node: str) -> Config:
        return Config(
            db=pg_url,
            bus=private_redis.url,
            host="127.0.0.1",
            port=0,
            node=node,
            stream_sweep_seconds=0.2,
        )

    async with running_backend(config("a")) as a, running_backend(config("b")) as b:
        token = await agent_token(a)
        ann = await a.store.agent_by_email(AGENT)
        assert ann is not None
        async with AgentClient.connected(b, token) as client:
            await publish(a, 1)
            await wait_until(lambda: client.seqs == [1], what="the first notification")
            await a.store.commit(Change(event=event(ann.id)))  # seq 2: never on the bus
            await wait_until(lambda: client.seqs == [1, 2], what="seq 2 without a bus message")
