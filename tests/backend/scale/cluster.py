"""Several real ``deskbell-server serve`` processes on one PostgreSQL and one Redis,
and the clients that tests run against them.

- :class:`Cluster` starts, kills and stops node processes (each on its own port, named
  ``n1``, ``n2``… through a config file so logs and ``welcome`` tell them apart).
- :class:`Follower` is an agent's tray app reduced to what matters here: it keeps one
  ``/agent`` session, records every notification seq in arrival order, and when its node
  goes away it reconnects to another live node and resumes after the last seq it saw.
- :class:`Publisher` is an integration on ``/service``: one connection per node, each
  publish sent to a node of the caller's choosing, acknowledged titles recorded.

Nothing here sleeps for time to pass: waits are for a frame, a closed socket or a
condition (``wait_until``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import random
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
from websockets.exceptions import InvalidHandshake, WebSocketException

from tests.backend.bus.redis_server import wait_until
from tests.support.backend import BackendHarness, ServerProcess, WsClient, seed_db, service_token

INBOX = "support"
CONNECT_ERRORS = (OSError, InvalidHandshake, WebSocketException, TimeoutError)


def ticket(title: str, recipients: list[str] | None = None) -> dict[str, Any]:
    """An integration event for every agent of the inbox (or ``recipients``)."""
    return {
        "kind": "ticket.assigned",
        "recipients": recipients or [f"inbox:{INBOX}"],
        "title": title,
        "body": "scale test",
        "url": None,
    }


class Node:
    """One ``deskbell-server serve`` process of a cluster."""

    def __init__(self, name: str, process: ServerProcess):
        self.name = name
        self.process = process
        self.harness = BackendHarness(None, process.port, process.db)

    @property
    def port(self) -> int:
        return self.process.port

    @property
    def alive(self) -> bool:
        proc = self.process.proc
        return proc is not None and proc.poll() is None

    def http(self, path: str) -> tuple[int, dict[str, Any]]:
        """GET ``path`` on this node: (status, JSON body or {})."""
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}{path}", timeout=5
            ) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            body = exc.read()
            try:
                return exc.code, json.loads(body or b"{}")
            except json.JSONDecodeError:
                return exc.code, {}

    async def health(self) -> tuple[int, str]:
        status, body = await asyncio.to_thread(self.http, "/healthz")
        return status, str(body.get("status"))


class Cluster:
    """Node processes sharing ``db`` and ``bus``; every one is stopped on exit."""

    def __init__(self, db: str, bus: str, folder: Path, settings: str = ""):
        self.db = db
        self.bus = bus
        self.folder = folder
        self.settings = settings
        """More TOML lines for every node's configuration file."""
        self.nodes: list[Node] = []

    async def start(self, count: int) -> list[Node]:
        """Start ``count`` more nodes at once; return them when all are listening."""
        fresh = []
        for _ in range(count):
            name = f"n{len(self.nodes) + 1}"
            config = self.folder / f"{name}.toml"
            config.write_text(f'node = "{name}"\n{self.settings}')
            process = ServerProcess(self.db, extra=["--bus", self.bus, "--config", str(config)])
            node = Node(name, process)
            self.nodes.append(node)
            fresh.append(node)
        # In threads: ServerProcess.start blocks, and the loop may be serving a proxy
        # that the nodes connect through.
        await asyncio.gather(*(asyncio.to_thread(n.process.start) for n in fresh))
        return fresh

    def live(self) -> list[Node]:
        return [n for n in self.nodes if n.alive]

    def stop(self) -> None:
        for node in self.nodes:
            node.process.stop()

    def logs(self) -> str:
        return "".join(f"[{n.name}] {line}" for n in self.nodes for line in n.process.log)


@contextlib.asynccontextmanager
async def cluster(
    db: str, bus: str, folder: Path, count: int, settings: str = ""
) -> AsyncIterator[Cluster]:
    nodes = Cluster(db, bus, folder, settings)
    try:
        await nodes.start(count)
        yield nodes
    finally:
        nodes.stop()


class Roaming:
    """An agent session that keeps one ``/agent`` connection, resuming after the last
    seq it holds, and moves to another live node when its node goes away. What it does
    with each notification (:meth:`_take`) and where it goes next (:meth:`_next_node`)
    are its subclass's."""

    connect_errors: tuple[type[BaseException], ...] = CONNECT_ERRORS

    def __init__(self, token: str, home: Any, seed: str):
        self.token = token
        self.home = home
        self.visited: list[str] = []
        """The node of each session, in order (reconnects add one)."""
        self.close_codes: list[int | None] = []
        self.client: WsClient | None = None
        self.connected = asyncio.Event()
        self._rotation = random.Random(seed)
        self._task: asyncio.Task[None] | None = None
        self._stopping = False

    @property
    def last_seq(self) -> int:
        raise NotImplementedError

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self.connected.wait(), 20)

    async def stop(self) -> None:
        self._stopping = True
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self.client is not None:
            await self.client.close()

    async def _run(self) -> None:
        node = self.home
        while not self._stopping:
            try:
                client = await node.harness.agent(self.token, after_seq=self.last_seq)
            except self.connect_errors:
                node = await self._next_node(node, refused=True)
                continue
            self.client = client
            self.visited.append(node.name)
            self.connected.set()
            await self._consume(client)
            self.close_codes.append(client.ws.close_code)
            node = await self._next_node(node, refused=False)

    async def _next_node(self, gone: Any, *, refused: bool) -> Any:
        """The node to connect to after ``gone`` closed (or ``refused`` to connect)."""
        raise NotImplementedError

    async def _consume(self, client: WsClient) -> None:
        """Hand every push on to :meth:`_take` until the connection closes (and its
        queue is drained)."""
        closed = asyncio.create_task(client.closed.wait())
        try:
            while True:
                if client.pushes.empty():
                    if closed.done():
                        return
                    getter = asyncio.create_task(client.pushes.get())
                    await asyncio.wait({getter, closed}, return_when=asyncio.FIRST_COMPLETED)
                    if not getter.done():
                        getter.cancel()
                        continue
                    frame = getter.result()
                else:
                    frame = client.pushes.get_nowait()
                if frame["type"] == "notification":
                    self._take(client, frame["notification"])
        finally:
            closed.cancel()
            self._session_ended()

    def _take(self, client: WsClient, notification: dict[str, Any]) -> None:
        raise NotImplementedError

    def _session_ended(self) -> None:
        """After a connection's last push: what the subclass must let go of."""


class Follower(Roaming):
    """One agent session that follows the stream across node failures, filling gaps as
    the desktop client does."""

    def __init__(self, cluster: Cluster, token: str, home: Node):
        super().__init__(token, home, seed=token)
        self.cluster = cluster
        self.seqs: list[int] = []
        self.titles: list[str] = []
        self.gaps: list[tuple[int, int]] = []
        """(last seq seen, seq that arrived) for each gap the server left to the client."""
        self.repeats: list[int] = []
        """Seqs that arrived again although the client never asked twice."""
        self._reasking: asyncio.Task[dict[str, Any]] | None = None

    @property
    def nodes(self) -> list[str]:
        """The node of each session, in order (reconnects add one)."""
        return self.visited

    @property
    def last_seq(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    async def _next_node(self, gone: Any, *, refused: bool) -> Any:
        # A real client waits a backoff delay first; here the next node answers at once.
        live = [n for n in self.cluster.live() if n is not gone] or self.cluster.live()
        if refused and not live:
            raise ConnectionError("no live node to reconnect to")
        return self._rotation.choice(live or [gone])

    def _session_ended(self) -> None:
        reasking, self._reasking = self._reasking, None
        if reasking is not None and not reasking.done():
            reasking.cancel()
            reasking.add_done_callback(_retrieve)

    def _take(self, client: WsClient, notification: dict[str, Any]) -> None:
        """Keep the stream in order as the desktop client does: the next seq is taken,
        a gap is asked for again (``resume`` after the last seq seen), and what the
        answer repeats is dropped."""
        seq = notification["seq"]
        if seq == self.last_seq + 1:
            self.seqs.append(seq)
            self.titles.append(notification["title"])
        elif seq > self.last_seq + 1:
            if self._reasking is None or self._reasking.done():
                self.gaps.append((self.last_seq, seq))
                self._reasking = asyncio.create_task(
                    client.request({"type": "resume", "after_seq": self.last_seq})
                )
            # else: the answer to the resume in flight brings it in order
        elif self._reasking is None:
            self.repeats.append(seq)  # a repeat nobody asked for: a server bug

    def assert_stream(self, last_seq: int) -> None:
        """Every seq from 1 to ``last_seq`` arrived once, in order, and the server
        never repeated one unasked."""
        assert self.seqs == list(range(1, last_seq + 1)), (
            f"agent stream is not 1..{last_seq}: {self.seqs}"
        )
        assert not self.repeats, f"seqs repeated unasked: {self.repeats}"


def _retrieve(task: asyncio.Task[Any]) -> None:
    """Mark a cancelled request's outcome as seen (no "never retrieved" noise)."""
    if not task.cancelled():
        task.exception()


class Publisher:
    """An integration publishing to several nodes, one ``/service`` link per node."""

    def __init__(self, token: str):
        self.token = token
        self.links: dict[str, WsClient] = {}
        self.acked: list[str] = []
        self.failed: list[str] = []
        self.errors: list[dict[str, Any]] = []

    async def link(self, node: Node) -> WsClient:
        client = self.links.get(node.name)
        if client is None or client.closed.is_set():
            client = await node.harness.channel("/service", self.token)
            self.links[node.name] = client
        return client

    async def publish(self, node: Node, title: str, recipients: list[str] | None = None) -> bool:
        """Publish one event on ``node``; True once it is acknowledged. False when the
        node went away first (it may or may not have been stored) or said no."""
        try:
            client = await self.link(node)
            request = asyncio.create_task(
                client.request({"type": "publish", "event": ticket(title, recipients)})
            )
            closed = asyncio.create_task(client.closed.wait())
            await asyncio.wait({request, closed}, return_when=asyncio.FIRST_COMPLETED)
            closed.cancel()
            if not request.done():
                request.cancel()
                raise ConnectionError("the node closed the link")
            reply = request.result()
        except (*CONNECT_ERRORS, ConnectionError):
            self.failed.append(title)
            return False
        if reply["type"] != "ok":
            self.errors.append(reply)
            self.failed.append(title)
            return False
        self.acked.append(title)
        return True

    async def close(self) -> None:
        for client in self.links.values():
            await client.close()


async def publish_load(
    publisher: Publisher,
    cluster: Cluster,
    count: int,
    *,
    workers: int = 4,
    prefix: str = "e",
    choose: random.Random | None = None,
    recipients: list[str] | None = None,
    nodes: list[Node] | None = None,
    until: asyncio.Event | None = None,
) -> None:
    """Publish from ``workers`` concurrent publishers, each event to a random live node
    (of ``nodes`` if given): ``count`` events, or with ``until`` at least ``count`` and
    then on until it is set. Titles are ``prefix`` and a running number."""
    rng = choose or random.Random(0)
    numbers = itertools.count()

    async def worker() -> None:
        for number in numbers:
            if number >= count and (until is None or until.is_set()):
                return
            live = [n for n in (nodes or cluster.nodes) if n.alive]
            if not live:
                raise AssertionError("no node left to publish to")
            await publisher.publish(rng.choice(live), f"{prefix}{number}", recipients)

    await asyncio.gather(*(worker() for _ in range(workers)))


async def last_seqs(db: str) -> dict[str, int]:
    """Each agent's last stored seq, by email, read straight from the database."""
    conn = await asyncpg.connect(db, timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT a.email, s.last_seq FROM agent_seq s JOIN agents a ON a.id = s.agent_id"
        )
    finally:
        await conn.close()
    return {row[0]: row[1] for row in rows}


async def wait_for_streams(
    followers: dict[str, Follower], expected: dict[str, int], timeout: float = 30.0
) -> None:
    """Wait until every follower has reached its agent's last stored seq."""

    def caught_up() -> bool:
        return all(f.last_seq >= expected.get(email, 0) for email, f in followers.items())

    try:
        await wait_until(caught_up, what="every agent to reach its last seq", timeout=timeout)
    except AssertionError:
        behind = {
            email: (f.last_seq, expected.get(email, 0))
            for email, f in followers.items()
            if f.last_seq < expected.get(email, 0)
        }
        raise AssertionError(f"agents behind (seen, stored): {behind}") from None


async def seed_agents(db: str, count: int) -> dict[str, str]:
    """``count`` agents in one inbox; returns email -> agent token."""
    return await seed_db(db, {f"agent{i}@x.org": [INBOX] for i in range(count)})


async def integration_token(db: str) -> str:
    return await service_token(db, "crm")
