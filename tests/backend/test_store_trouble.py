"""When the store cannot be written (disk full, read-only files), a real
``deskbell-server serve`` on SQLite says so clearly: agent handshakes get HTTP 503 with
the reason (never an upgrade followed by a 1011 close), ``/healthz`` is 503 with the
reason, the log names the cause, and everything recovers by itself once it is fixed.

The trouble is real: the database lives on a small tmpfs of the test's own that is
filled up or remounted read-only (the test is skipped where mounting is not allowed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from websockets.exceptions import InvalidStatus

from tests.backend.bus.redis_server import wait_until
from tests.support.backend import BackendHarness, ServerProcess, seed_db, service_token


@contextlib.contextmanager
def small_disk(folder: Path, size: str = "8m") -> Iterator[Path]:
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=False)


def remount(folder: Path, mode: str) -> None:
    subprocess.run(["mount", "-o", f"remount,{mode}", str(folder)], check=True)


def fill(folder: Path) -> Path:
    filler = folder / "filler"
    with filler.open("wb") as out, contextlib.suppress(OSError):
        while True:
            out.write(b"\0" * 65536)
            out.flush()
    return filler


def healthz(port: int) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


EVENT = {
    "kind": "ticket.assigned",
    "recipients": ["inbox:support"],
    "title": "t",
    "body": "",
    "url": None,
}


async def check_refusals(
    harness: BackendHarness, token: str, service: str, server: ServerProcess, cause: str
) -> None:
    link = await harness.channel("/service", service)
    refused = await link.request({"type": "publish", "event": EVENT})
    assert refused["type"] == "error" and refused["code"] == "unavailable", refused
    assert cause in refused["message"], refused
    await link.close()
    with pytest.raises(InvalidStatus) as answer:
        await harness.agent(token)
    assert answer.value.response.status_code == 503
    assert cause in answer.value.response.body.decode()
    status, body = await asyncio.to_thread(healthz, server.port)
    assert status == 503 and cause in body.get("reason", ""), body
    log = "".join(server.log)
    assert cause in log, log[-2000:]
    assert "Traceback" not in log, log[-4000:]


async def recovers(harness: BackendHarness, token: str, server: ServerProcess) -> None:
    async def healthy() -> bool:
        return (await asyncio.to_thread(healthz, server.port))[0] == 200

    await wait_until(healthy, what="/healthz to be 200 again", timeout=15)
    client = await harness.agent(token)
    await client.close()


async def test_a_full_disk_is_answered_clearly_and_recovers_by_itself(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        db = str(disk / "deskbell.sqlite3")
        tokens = await seed_db(db, {"ann@x.org": ["support"]})
        service = await service_token(db, "crm")
        server = ServerProcess(db)
        await asyncio.to_thread(server.start)
        try:
            harness = BackendHarness(None, server.port, db)
            link = await harness.channel("/service", service)
            assert (await link.request({"type": "publish", "event": EVENT}))["type"] == "ok"
            await link.close()
            filler = fill(disk)
            await check_refusals(harness, tokens["ann@x.org"], service, server, "disk is full")
            filler.unlink()
            await recovers(harness, tokens["ann@x.org"], server)
        finally:
            server.stop()


async def test_a_read_only_store_is_named_as_such_not_as_a_full_disk(tmp_path: Path) -> None:
    with small_disk(tmp_path / "disk") as disk:
        db = str(disk / "deskbell.sqlite3")
        tokens = await seed_db(db, {"ann@x.org": ["support"]})
        remount(disk, "ro")
        server = ServerProcess(db)
        with pytest.raises(RuntimeError) as refused:
            await asyncio.to_thread(server.start)
        (line,) = [entry for entry in server.log if "error" in entry]
        assert "read-only" in line and "disk is full" not in line, line
        assert "exit 1" in str(refused.value)
        remount(disk, "rw")
        server = ServerProcess(db)
        await asyncio.to_thread(server.start)
        try:
            await recovers(BackendHarness(None, server.port, db), tokens["ann@x.org"], server)
        finally:
            server.stop()
