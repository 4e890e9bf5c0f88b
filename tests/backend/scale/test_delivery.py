"""Every notification exactly once, in order, on every session, without asking.

Real ``deskbell-server serve`` processes, as an operator runs them: three nodes on one
PostgreSQL database and one Redis, and one node on SQLite. Agents of three inboxes hold
sessions spread over the nodes (some agents two, on different nodes); integrations
publish to random nodes with many publishes in flight; meanwhile one node is killed
(SIGKILL) and another stopped (SIGTERM). Each session resumes once per connection and
never asks again: what it receives over all its connections must be exactly 1..N.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import subprocess
import time
from pathlib import Path

import pytest

from tests.backend.bus.redis_server import wait_until
from tests.backend.scale.cluster import Node, Publisher, cluster, last_seqs
from tests.backend.scale.streams import Nodes, Session
from tests.support.backend import ServerProcess, seed_db, service_token

pytestmark = pytest.mark.slow

INBOXES = ("sales", "billing", "support")
AGENTS = 30
TWICE = 12
"""Agents with a second session, on another node."""
EVENTS = 240
IN_FLIGHT = 12
DRAIN_SECONDS = 10.0


def agents() -> dict[str, list[str]]:
    return {f"agent{i}@x.org": [INBOXES[i % len(INBOXES)]] for i in range(AGENTS)}


def event(title: str, inbox: str) -> dict[str, object]:
    return {
        "kind": "ticket.assigned",
        "recipients": [f"inbox:{inbox}"],
        "title": title,
        "body": "delivery test",
        "url": None,
    }


async def publish(
    publisher: Publisher,
    pool: Nodes,
    count: int,
    rng: random.Random,
    until: asyncio.Event | None = None,
) -> None:
    """``IN_FLIGHT`` concurrent publishes, each of one event for a random inbox to a
    random live node: ``count`` of them, or on until ``until`` is set."""
    numbers = itertools.count()

    async def worker() -> None:
        while len(publisher.acked) < count or (until is not None and not until.is_set()):
            number = next(numbers)
            nodes = pool.live()
            if not nodes:
                await pool.changed.wait()  # a restart is under way
                continue
            inbox = rng.choice(INBOXES)
            await publish_one(publisher, rng.choice(nodes), f"e{number}", inbox)

    await asyncio.gather(*(worker() for _ in range(IN_FLIGHT)))


async def publish_one(publisher: Publisher, node: Node, title: str, inbox: str) -> bool:
    try:
        client = await publisher.link(node)
        request = asyncio.create_task(
            client.request({"type": "publish", "event": event(title, inbox)}, timeout=30)
        )
        closed = asyncio.create_task(client.closed.wait())
        await asyncio.wait({request, closed}, return_when=asyncio.FIRST_COMPLETED)
        closed.cancel()
        if not request.done():
            request.cancel()
            return False
        reply = request.result()
    except Exception:
        return False
    if reply["type"] != "ok":
        publisher.errors.append(reply)
        return False
    publisher.acked.append(title)
    return True


def stream_problems(sessions: list[Session], expected: dict[str, int]) -> list[str]:
    found = []
    for session in sessions:
        problem = session.problems(expected.get(session.label.split("#")[0], 0))
        if problem:
            found.append(problem)
    return found


async def wait_for_sessions(sessions: list[Session], expected: dict[str, int]) -> None:
    def caught_up() -> bool:
        return all(s.last_seq >= expected.get(s.label.split("#")[0], 0) for s in sessions)

    try:
        await wait_until(caught_up, what="every session at its last seq", timeout=30)
    except AssertionError:
        raise AssertionError("\n".join(stream_problems(sessions, expected))) from None


def timed_terminate(process: ServerProcess) -> tuple[int | None, float]:
    """SIGTERM, then wait for the exit: (exit status or None if still running, seconds)."""
    began = time.monotonic()
    try:
        code: int | None = process.terminate(timeout=DRAIN_SECONDS + 5)
    except subprocess.TimeoutExpired:
        code = None
    return code, time.monotonic() - began


async def test_three_nodes_kill_and_stop_under_load_every_session_gets_1_to_n_unasked(
    pg_url: str, bus_url: str, tmp_path: Path
) -> None:
    tokens = await seed_db(pg_url, agents())
    service = await service_token(pg_url, "crm")
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    async with cluster(pg_url, bus_url, tmp_path, 3) as nodes:
        n1, n2, _ = nodes.nodes
        pool = Nodes(nodes.live)
        sessions = []
        for i, (email, token) in enumerate(sorted(tokens.items())):
            home = nodes.nodes[i % 3]
            sessions.append(Session(pool, token, home, email))
            if i < TWICE:
                sessions.append(Session(pool, token, nodes.nodes[(i + 1) % 3], f"{email}#2"))
        await asyncio.gather(*(s.start() for s in sessions))
        publisher = Publisher(service)
        try:
            load = asyncio.create_task(publish(publisher, pool, EVENTS, rng))
            await wait_until(lambda: len(publisher.acked) >= 70, what="load before the kill")
            n1.process.kill()
            pool.poke()
            await wait_until(lambda: len(publisher.acked) >= 140, what="load before SIGTERM")
            code, took = await asyncio.to_thread(timed_terminate, n2.process)
            pool.poke()
            await load
            # Nothing more is published: what the killed node committed but never put
            # on the bus must still reach the open sessions (the nodes' stream sweep).
            expected = await last_seqs(pg_url)
            await wait_for_sessions(sessions, expected)
        finally:
            await publisher.close()
            await asyncio.gather(*(s.stop() for s in sessions))
    assert code == 0 and took < DRAIN_SECONDS, (
        f"SIGTERM: exit {code} after {took:.1f} s\n" + "".join(n2.process.log[-60:])
    )
    problems = stream_problems(sessions, expected)
    assert not problems, f"seed {seed}:\n" + "\n".join(problems)
    moved = [s for s in sessions if s.visited[0] == n2.name]
    assert moved and all(s.close_codes[0] == 1001 for s in moved), [
        (s.label, s.close_codes) for s in moved
    ]


class RestartableNode:
    """One SQLite node process that a test kills and starts again on the same port."""

    def __init__(self, db: str, name: str = "solo"):
        self.name = name
        self.process = ServerProcess(db)
        from tests.backend.scale.cluster import Node as _Node

        self._node = _Node(name, self.process)
        self.harness = self._node.harness
        self.up = False

    def start(self) -> None:
        self.process.start()
        self.up = True

    def kill(self) -> None:
        self.up = False
        self.process.kill()

    def terminate(self) -> tuple[int | None, float]:
        self.up = False
        return timed_terminate(self.process)

    @property
    def alive(self) -> bool:
        return self.up and self._node.alive


async def test_one_sqlite_node_killed_and_stopped_under_load_every_session_gets_1_to_n(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "deskbell.sqlite3")
    tokens = await seed_db(db, agents())
    service = await service_token(db, "crm")
    rng = random.Random()
    seed = rng.randrange(1 << 30)
    rng.seed(seed)
    node = RestartableNode(db)
    await asyncio.to_thread(node.start)
    pool = Nodes(lambda: [node] if node.alive else [])
    sessions = []
    for i, (email, token) in enumerate(sorted(tokens.items())):
        sessions.append(Session(pool, token, node, email))
        if i < TWICE:
            sessions.append(Session(pool, token, node, f"{email}#2"))
    publisher = Publisher(service)
    try:
        await asyncio.gather(*(s.start() for s in sessions))
        load = asyncio.create_task(publish(publisher, pool, EVENTS, rng))
        await wait_until(lambda: len(publisher.acked) >= 70, what="load before the kill")
        node.kill()
        await asyncio.to_thread(node.start)
        pool.poke()
        await wait_until(lambda: len(publisher.acked) >= 140, what="load before SIGTERM")
        code, took = await asyncio.to_thread(node.terminate)
        await asyncio.to_thread(node.start)
        pool.poke()
        await load
        expected = await welcome_last_seqs(node, tokens)
        await wait_for_sessions(sessions, expected)
    finally:
        await publisher.close()
        await asyncio.gather(*(s.stop() for s in sessions))
        node.process.stop()
    assert code == 0 and took < DRAIN_SECONDS, (
        f"SIGTERM: exit {code} after {took:.1f} s\n" + "".join(node.process.log[-60:])
    )
    problems = stream_problems(sessions, expected)
    assert not problems, f"seed {seed}:\n" + "\n".join(problems)


async def welcome_last_seqs(node: RestartableNode, tokens: dict[str, str]) -> dict[str, int]:
    """Each agent's last stored seq, as the node's ``welcome`` tells it."""
    out = {}
    for email, token in tokens.items():
        client = await node.harness.agent(token, resume=False)
        out[email] = int(client.welcome["last_seq"])  # type: ignore[attr-defined]
        await client.close()
    return out
