"""Guarantees that need a real server process: SIGKILL, SIGTERM, a revocation by the
CLI from another process."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from websockets.asyncio.client import connect

from tests.support.backend import (
    SUBPROTOCOL,
    BackendHarness,
    ServerProcess,
    WsClient,
    seed_db,
    service_token,
)

pytestmark = pytest.mark.slow


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "deskbell.sqlite3")


@pytest.fixture
def proc(db: str) -> Iterator[ServerProcess]:
    server = ServerProcess(db)
    yield server
    server.stop()


async def agent(server: ServerProcess, token: str, after_seq: int = 0) -> WsClient:
    harness = BackendHarness(None, server.port, server.db)
    return await harness.agent(token, after_seq=after_seq)


async def test_sigkill_loses_no_acknowledged_or_pushed_notification(
    db: str, proc: ServerProcess
) -> None:
    tokens = await seed_db(db, {"ann@x.org": ["Support"]})
    crm_token = await service_token(db)
    proc.start()
    ann = await agent(proc, tokens["ann@x.org"])
    crm = await BackendHarness(None, proc.port, db).channel("/service", crm_token)
    acknowledged: set[str] = set()
    enough = asyncio.Event()
    # A steady stream, 300 in flight: however fast the server is, publishes are still
    # under way when it is killed (2,000 sent at once were all answered before the kill
    # once the send path got faster).
    in_flight = asyncio.Semaphore(300)
    total = 20_000

    async def publish(n: int) -> None:
        event = {"kind": "ticket.created", "recipients": ["ann@x.org"], "title": f"t{n}"}
        async with in_flight:
            if proc.proc is not None and proc.proc.poll() is not None:
                return  # killed already: not sent
            try:
                reply = await crm.request({"type": "publish", "event": event}, timeout=30)
            except (TimeoutError, Exception):
                return  # the server died before answering: not acknowledged
        if reply.get("type") == "ok":
            acknowledged.add(f"t{n}")
            if len(acknowledged) >= 150:
                enough.set()

    tasks = [asyncio.create_task(publish(n)) for n in range(total)]
    await asyncio.wait_for(enough.wait(), 60)
    proc.kill()  # mid-stream: hundreds of publishes are still in flight
    await asyncio.gather(*tasks)
    pushed = {f["notification"]["title"] for f in ann.frames if f["type"] == "notification"}
    assert len(acknowledged) >= 150 and len(acknowledged) < total

    restarted = ServerProcess(db, port=proc.port)
    restarted.start()
    try:
        reader = await agent(restarted, tokens["ann@x.org"], after_seq=0)
        welcome_last = reader.welcome["last_seq"]  # type: ignore[attr-defined]
        stored = []
        before = None
        while True:
            frame = {"type": "history", "limit": 200}
            if before is not None:
                frame["before_seq"] = before
            page = await reader.request(frame)
            stored += page["items"]
            if not page["more"]:
                break
            before = page["items"][-1]["seq"]
        titles = {n["title"] for n in stored}
        assert acknowledged <= titles, "an acknowledged publish was lost"
        assert pushed <= titles, "a pushed notification was not stored"
        seqs = sorted(n["seq"] for n in stored)
        assert seqs == list(range(1, welcome_last + 1)), "seq has a gap or a repeat"
    finally:
        restarted.stop()


async def test_sigterm_closes_clients_with_1001_and_exits_0(db: str, proc: ServerProcess) -> None:
    tokens = await seed_db(db, {"ann@x.org": ["Support"]})
    proc.start()
    ann = await agent(proc, tokens["ann@x.org"])
    code = await asyncio.to_thread(proc.terminate)
    await asyncio.wait_for(ann.closed.wait(), 10)
    assert ann.ws.close_code == 1001
    assert code == 0


async def test_token_revoked_by_the_cli_closes_its_session_with_4001(
    db: str, proc: ServerProcess
) -> None:
    tokens = await seed_db(db, {"ann@x.org": ["Support"]})
    proc.start()
    ann = await agent(proc, tokens["ann@x.org"])
    result = await asyncio.to_thread(
        subprocess.run,
        [
            sys.executable,
            "-m",
            "backend",
            "token",
            "revoke",
            tokens["ann@x.org"],
            "--db",
            db,
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == {"revoked": True}
    await asyncio.wait_for(ann.closed.wait(), 10)
    assert ann.ws.close_code == 4001


async def test_plain_http_and_websocket_share_the_port(db: str, proc: ServerProcess) -> None:
    await seed_db(db, {"ann@x.org": ["Support"]})
    proc.start()
    visitor = await connect(f"{proc.url}/visitor", subprotocols=[SUBPROTOCOL])  # type: ignore[list-item]
    await visitor.send(
        json.dumps({"type": "start", "id": 1, "inbox": "Support", "name": "D", "text": "x"})
    )
    assert json.loads(await visitor.recv())["type"] == "ok"
    await visitor.close()


async def test_fanouts_acknowledged_just_before_a_sigkill_are_there_after_restart(
    db: str, proc: ServerProcess
) -> None:
    # 40 recipients: the commit goes through the store's fan-out table, whose rows move
    # into place a moment later; the kill comes right after the acks, before that move.
    emails = [f"agent{n}@x.org" for n in range(40)]
    tokens = await seed_db(db, {email: ["Support"] for email in emails})
    crm_token = await service_token(db)
    proc.start()
    crm = await BackendHarness(None, proc.port, db).channel("/service", crm_token)
    for n in range(3):
        event = {"kind": "ticket.created", "recipients": ["inbox:Support"], "title": f"t{n}"}
        reply = await crm.request({"type": "publish", "event": event})
        assert reply["notifications"] == 40
    proc.kill()
    restarted = ServerProcess(db, port=proc.port)
    restarted.start()
    try:
        for email in (emails[0], emails[-1]):
            reader = await agent(restarted, tokens[email], after_seq=0)
            assert reader.welcome["last_seq"] == 3  # type: ignore[attr-defined]
            assert reader.welcome["unread"]["ticket"] == 3  # type: ignore[attr-defined]
            history = await reader.request({"type": "history"})
            assert [n["title"] for n in history["items"]] == ["t2", "t1", "t0"]
    finally:
        restarted.stop()
