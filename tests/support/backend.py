"""A real backend for tests: in-process on a free port, or as a separate process.

``BackendHarness`` seeds inboxes and agents through the service layer and hands out
tokens; ``WsClient`` speaks the wire protocol the way a client does, keeping pushes
apart from replies so tests can wait for exactly what they expect.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import resource
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from backend.app import Backend, open_service, running_backend
from backend.config import Config

SUBPROTOCOL = "deskbell.v1"
DEFAULT_TIMEOUT = 10.0


def free_port() -> int:
    """A port nothing listens on now, for a server a test starts next.

    Drawn below the kernel's ephemeral range: ``bind(0)`` would hand out a port from
    that range, and any process's next outgoing connection (a test's client, say) may
    take it before the server binds it. Never the same port twice in one test run:
    a cluster asks for its nodes' ports before any of them listens.
    """
    low = _ephemeral_low()
    for _ in range(200):
        port = _ports.randrange(10_000, low)
        if port in _handed_out:
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _handed_out.add(port)
        return port
    raise RuntimeError(f"no free port found between 10000 and {low}")


_ports = random.SystemRandom()  # its own entropy: no test's seeding can repeat it
_handed_out: set[int] = set()


def _ephemeral_low() -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range", encoding="ascii") as ranges:
            return int(ranges.read().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768  # Linux's default


class WsClient:
    """A protocol client: request/reply by id, pushes queued in arrival order."""

    def __init__(self, ws: ClientConnection):
        self.ws = ws
        self.pushes: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.frames: list[dict[str, Any]] = []
        self._waiting: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self._next_id = 0
        self._reader = asyncio.create_task(self._read())
        self.closed = asyncio.Event()

    async def _read(self) -> None:
        try:
            async for raw in self.ws:
                frame = json.loads(raw)
                self.frames.append(frame)
                waiter = (
                    self._waiting.pop(frame.get("id"), None)
                    if frame["type"] in ("ok", "error")
                    else None
                )
                if waiter is not None and not waiter.done():
                    waiter.set_result(frame)
                else:
                    await self.pushes.put(frame)
        except Exception:
            pass
        finally:
            self.closed.set()

    async def request(
        self, frame: dict[str, Any], timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """Send ``frame`` with a fresh id and return its ``ok`` or ``error`` reply."""
        self._next_id += 1
        request_id = frame.setdefault("id", f"r{self._next_id}")
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[request_id] = future
        await self.ws.send(json.dumps(frame))
        return await asyncio.wait_for(future, timeout)

    async def send_raw(self, data: str | bytes) -> None:
        await self.ws.send(data)

    async def push(
        self, kind: str | None = None, timeout: float = DEFAULT_TIMEOUT
    ) -> dict[str, Any]:
        """The next push (of ``kind`` if given; others before it are skipped)."""
        while True:
            frame = await asyncio.wait_for(self.pushes.get(), timeout)
            if kind is None or frame["type"] == kind:
                return frame

    async def notifications(
        self, count: int, timeout: float = DEFAULT_TIMEOUT
    ) -> list[dict[str, Any]]:
        out = []
        while len(out) < count:
            out.append((await self.push("notification", timeout))["notification"])
        return out

    def no_pending_pushes(self, kind: str) -> bool:
        return all(f["type"] != kind for f in list(self.pushes._queue))  # type: ignore[attr-defined]

    async def close(self) -> None:
        await self.ws.close()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


@dataclass
class Seeded:
    agents: dict[str, Any] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)


class BackendHarness:
    """Helpers around a running backend."""

    def __init__(self, backend: Backend | None, port: int, db: str):
        self.backend = backend
        self.port = port
        self.db = db
        self.url = f"ws://127.0.0.1:{port}"

    @property
    def service(self) -> Any:
        assert self.backend is not None, "in-process backends only"
        return self.backend.service

    async def seed(
        self, inboxes: dict[str, list[str]], password: str | None = None
    ) -> dict[str, str]:
        """Create inboxes with agents (email -> inboxes) and return email -> token."""
        store = self.service.store
        for inbox in {i for names in inboxes.values() for i in names}:
            with contextlib.suppress(Exception):
                await store.add_inbox(inbox)
        tokens = {}
        for email, names in inboxes.items():
            if await store.agent_by_email(email) is None:
                await self.service.add_agent(email, email.split("@")[0].title(), names, password)
            tokens[email] = (await self.service.issue_agent_token(email))[0]
        return tokens

    async def agent(
        self, token: str, resume: bool = True, after_seq: int | None = None
    ) -> WsClient:
        """Connect on /agent, read welcome; resume (after ``after_seq`` or welcome's
        last_seq) unless told not to."""
        ws = await connect(
            f"{self.url}/agent",
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers={"Authorization": f"Bearer {token}"},
            max_size=None,
        )
        client = WsClient(ws)
        welcome = await client.push("welcome")
        client.welcome = welcome  # type: ignore[attr-defined]
        if resume:
            start = welcome["last_seq"] if after_seq is None else after_seq
            reply = await client.request({"type": "resume", "after_seq": start})
            assert reply["type"] == "ok", reply
        return client

    async def channel(self, path: str, token: str | None = None, **kwargs: Any) -> WsClient:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        headers.update(kwargs.pop("additional_headers", {}))
        ws = await connect(
            f"{self.url}{path}",
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            additional_headers=headers,
            **kwargs,
        )
        return WsClient(ws)

    async def visitor_start(
        self, inbox: str, name: str, text: str
    ) -> tuple[WsClient, dict[str, Any]]:
        client = await self.channel("/visitor")
        reply = await client.request({"type": "start", "inbox": inbox, "name": name, "text": text})
        assert reply["type"] == "ok", reply
        return client, reply


@contextlib.asynccontextmanager
async def in_process_backend(tmp_path: Path, **config: Any) -> AsyncIterator[BackendHarness]:
    db = str(config.pop("db", tmp_path / "deskbell.sqlite3"))
    cfg = Config(db=db, port=0, **config)
    async with running_backend(cfg) as backend:
        yield BackendHarness(backend, backend.server.port, db)


class ServerProcess:
    """``deskbell-server serve`` as a real child process."""

    def __init__(
        self,
        db: str,
        port: int | None = None,
        extra: list[str] | None = None,
        file_limit: tuple[int, int] | None = None,
    ):
        self.db = db
        self.port = port or free_port()
        self.extra = extra or []
        self.file_limit = file_limit
        """(soft, hard) RLIMIT_NOFILE for the server process; None: inherited."""
        self.proc: subprocess.Popen[str] | None = None
        self.url = f"ws://127.0.0.1:{self.port}"
        self.http_url = f"http://127.0.0.1:{self.port}"
        self.log: list[str] = []
        self._drainer: threading.Thread | None = None

    def start(self, timeout: float = 20.0) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        self.proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "backend",
                "serve",
                "--db",
                self.db,
                "--port",
                str(self.port),
                *self.extra,
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            preexec_fn=self._limit_files if self.file_limit else None,
        )
        assert self.proc.stderr is not None
        # The server prints one "listening on" line on stderr when it accepts connections.
        for line in self.proc.stderr:
            self.log.append(line)
            if "listening on" in line:
                # Keep draining, or a full pipe would stall the server's logging.
                self._drainer = threading.Thread(target=self._drain, daemon=True)
                self._drainer.start()
                return
        raise RuntimeError(f"server did not start: exit {self.proc.wait()}: {''.join(self.log)}")

    def _limit_files(self) -> None:
        assert self.file_limit is not None
        resource.setrlimit(resource.RLIMIT_NOFILE, self.file_limit)

    def _drain(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        for line in self.proc.stderr:
            self.log.append(line)

    def kill(self) -> None:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def terminate(self, timeout: float = 20.0) -> int:
        assert self.proc is not None
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout)
        if self._drainer is not None:
            self._drainer.join(timeout)  # everything the server logged is in self.log
        return code

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


async def seed_db(db: str, inboxes: dict[str, list[str]]) -> dict[str, str]:
    """Seed a database file before a server process opens it; returns email -> token."""
    async with open_service(Config(db=db)) as service:
        harness = BackendHarness(None, 0, db)
        harness.backend = type("B", (), {"service": service})()  # type: ignore[assignment]
        return await harness.seed(inboxes)


async def service_token(db: str, name: str = "tests") -> str:
    async with open_service(Config(db=db)) as service:
        token: str = await service.issue_service_token(name)
        return token
