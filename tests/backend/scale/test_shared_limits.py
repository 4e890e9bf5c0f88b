"""Issue 11, acceptance: 1,000 simultaneous sign-in attempts and 1,000 simultaneous
visitor starts admit exactly the configured limit, on one node (SQLite, limits in the
process) and on two real node processes (PostgreSQL, limits shared in Redis), the
attempts spread evenly over both nodes."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from backend.app import open_service
from backend.config import Config
from tests.backend.scale.cluster import INBOX, cluster
from tests.support.backend import ServerProcess
from tests.support.crowd import all_at_once, close_all, open_clients, raise_descriptor_limit

pytestmark = pytest.mark.slow

ATTEMPTS = 1000
SETTINGS = "anonymous_connections_per_address = 5000\n"
"""Room for the crowd on one address: the limits under test decide, not the budget."""
EMAIL = "ann@x.org"


async def _seed(db: str) -> None:
    async with open_service(Config(db=db)) as service:
        await service.store.add_inbox(INBOX)
        await service.add_agent(EMAIL, "Ann", [INBOX], "right")


@pytest.fixture
async def one_node(tmp_path: Path) -> AsyncIterator[list[str]]:
    """One node process on SQLite, limits in its memory."""
    raise_descriptor_limit()
    db = str(tmp_path / "deskbell.sqlite3")
    await _seed(db)
    config = tmp_path / "node.toml"
    config.write_text(SETTINGS)
    server = ServerProcess(db, extra=["--config", str(config)])
    server.start()
    try:
        yield [server.url]
    finally:
        server.stop()


@pytest.fixture
async def two_nodes(pg_url: str, bus_url: str, tmp_path: Path) -> AsyncIterator[list[str]]:
    """Two node processes on PostgreSQL and Redis, limits shared in Redis."""
    raise_descriptor_limit()
    await _seed(pg_url)
    async with cluster(pg_url, bus_url, tmp_path, 2, settings=SETTINGS) as nodes:
        yield [f"ws://127.0.0.1:{n.port}" for n in nodes.nodes]


async def _sign_ins(node_urls: list[str]) -> Counter[str | None]:
    clients = await open_clients(node_urls, ATTEMPTS, "/auth")
    try:
        replies = await all_at_once(clients, {"type": "login", "email": EMAIL, "password": "wrong"})
    finally:
        await close_all(clients)
    return Counter(r.get("code") for r in replies)


async def _starts(node_urls: list[str]) -> Counter[str]:
    clients = await open_clients(node_urls, ATTEMPTS, "/visitor")
    try:
        replies = await all_at_once(
            clients, {"type": "start", "inbox": INBOX, "name": "Dana", "text": "Hello"}
        )
    finally:
        await close_all(clients)
    return Counter(r["type"] if r["type"] == "ok" else r["code"] for r in replies)


SIGN_INS = {"unauthorized": 10, "rate_limited": ATTEMPTS - 10}
STARTS = {"ok": 10, "rate_limited": ATTEMPTS - 10}


async def test_one_node_admits_ten_of_a_thousand_simultaneous_sign_ins(
    one_node: list[str],
) -> None:
    assert await _sign_ins(one_node) == SIGN_INS


async def test_two_nodes_admit_ten_of_a_thousand_simultaneous_sign_ins(
    two_nodes: list[str],
) -> None:
    assert await _sign_ins(two_nodes) == SIGN_INS


async def test_one_node_admits_ten_of_a_thousand_simultaneous_visitor_starts(
    one_node: list[str],
) -> None:
    assert await _starts(one_node) == STARTS


async def test_two_nodes_admit_ten_of_a_thousand_simultaneous_visitor_starts(
    two_nodes: list[str],
) -> None:
    assert await _starts(two_nodes) == STARTS
