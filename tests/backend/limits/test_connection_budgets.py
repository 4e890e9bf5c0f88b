"""Issue 11, finding 4: what a stranger's connections may hold, and what stays free.

1,010 idle /visitor sockets from one address (never started, pings answered) made
every agent sign-on and /healthz time out under a 1,024 file limit, and each held
~23 KiB for ever.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from pathlib import Path

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from tests.backend.bus.redis_server import wait_until
from tests.support.backend import (
    SUBPROTOCOL,
    BackendHarness,
    ServerProcess,
    WsClient,
    in_process_backend,
    seed_db,
)


async def _try_visitor(url: str, **kwargs: object) -> WsClient | int:
    """A /visitor connection, or the HTTP status that refused it."""
    try:
        ws = await connect(f"{url}/visitor", subprotocols=[SUBPROTOCOL], **kwargs)  # type: ignore[list-item, arg-type]
    except InvalidStatus as exc:
        return exc.response.status_code
    return WsClient(ws)


def _healthz(port: int) -> int:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as response:
        assert json.loads(response.read())["status"] == "ok"
        return int(response.status)


async def test_a_thousand_idle_visitor_sockets_leave_agents_and_healthz_working(
    tmp_path: Path,
) -> None:
    db = str(tmp_path / "deskbell.sqlite3")
    tokens = await seed_db(db, {f"agent{n}@x.org": ["Support"] for n in range(20)})
    server = ServerProcess(db, file_limit=(1024, 1024))
    server.start()
    held: list[WsClient] = []
    try:
        attempts = await asyncio.gather(*(_try_visitor(server.url) for _ in range(1000)))
        held = [a for a in attempts if isinstance(a, WsClient)]
        # Every agent signs on, and /healthz answers, while the stranger holds its share.
        harness = BackendHarness(None, server.port, db)
        agents = await asyncio.wait_for(
            asyncio.gather(*(harness.agent(token) for token in tokens.values())), 20
        )
        assert await asyncio.to_thread(_healthz, server.port) == 200
        assert len(held) == 100  # the default share of one address
        assert {a for a in attempts if not isinstance(a, WsClient)} == {429}
        assert all(not c.closed.is_set() for c in held)
        await asyncio.gather(*(a.close() for a in agents))
    finally:
        await asyncio.gather(*(c.close() for c in held), return_exceptions=True)
        server.stop()


async def test_serve_raises_its_file_limit_to_the_hard_limit_and_says_so(
    tmp_path: Path,
) -> None:
    server = ServerProcess(str(tmp_path / "deskbell.sqlite3"), file_limit=(256, 2048))
    server.start()
    try:
        line = next(line for line in server.log if "event=budgets" in line)
        assert "file_limit=2048" in line
        assert "anonymous_connections=1024" in line
    finally:
        server.stop()


@pytest.fixture
async def strict(tmp_path: Path) -> BackendHarness:
    async with in_process_backend(
        tmp_path, anonymous_idle_timeout=0.3, anonymous_connections_per_address=3
    ) as harness:
        yield harness  # type: ignore[misc]


async def test_anonymous_sockets_that_stay_idle_are_closed_with_4008(
    strict: BackendHarness,
) -> None:
    await strict.seed({"ann@x.org": ["Support"]})
    chatting, _ = await strict.visitor_start("Support", "Dana", "Hello")
    idle_visitor = await strict.channel("/visitor")
    idle_auth = await strict.channel("/auth")
    for client in (idle_visitor, idle_auth):
        await asyncio.wait_for(client.closed.wait(), 10)
        assert client.ws.close_code == 4008
    # Opened before both, the visitor with a conversation was not idle: still open.
    assert not chatting.closed.is_set()
    reply = await chatting.request({"type": "send", "text": "still here", "client_msg_id": "1"})
    assert reply["type"] == "ok"
    await chatting.close()


async def test_one_address_holds_its_share_of_anonymous_connections_and_no_more(
    strict: BackendHarness,
) -> None:
    tokens = await strict.seed({"ann@x.org": ["Support"]})
    held = [await strict.channel("/visitor") for _ in range(2)] + [await strict.channel("/auth")]
    assert await _try_visitor(strict.url) == 429
    # Another address, and agents from this one, are not affected.
    other = await _try_visitor(strict.url, local_addr=("127.0.0.2", 0))
    assert isinstance(other, WsClient)
    ann = await strict.agent(tokens["ann@x.org"])
    # A closed connection gives its place back.
    await held.pop().close()

    async def room() -> bool:
        again = await _try_visitor(strict.url)
        if isinstance(again, WsClient):
            held.append(again)
            return True
        return False

    await wait_until(room, what="a place to be given back")
    for client in [*held, other, ann]:
        await client.close()


async def test_when_strangers_hold_the_whole_budget_the_next_one_is_told_to_come_back(
    tmp_path: Path,
) -> None:
    async with in_process_backend(tmp_path, anonymous_connections=2) as server:
        tokens = await server.seed({"ann@x.org": ["Support"]})
        held = [await _try_visitor(server.url, local_addr=(f"127.0.0.{n}", 0)) for n in (2, 3)]
        with pytest.raises(InvalidStatus) as refused:
            await server.channel("/auth", local_addr=("127.0.0.4", 0))
        assert refused.value.response.status_code == 503
        assert refused.value.response.headers["Retry-After"] == "60"
        ann = await server.agent(tokens["ann@x.org"])  # agents are outside the budget
        for client in [*held, ann]:
            assert isinstance(client, WsClient)
            await client.close()
