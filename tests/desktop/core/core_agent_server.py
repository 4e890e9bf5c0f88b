"""A small real agent-channel server for the connection tests.

It speaks the frames of PROTOCOL.md over a real WebSocket on a free loopback port and
lets a test script what the real backend would do: store and push notifications,
replay on ``resume``, lose a frame (a gap), close with a code, refuse a token.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from core_factories import notification
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from backend.protocol import (
    SUBPROTOCOL,
    AgentInfo,
    Error,
    Login,
    LoginOk,
    Logout,
    Notification,
    NotificationPush,
    Ok,
    Resume,
    ResumeOk,
    ServerInfo,
    Welcome,
    agent_decoder,
    auth_decoder,
    encode,
    unread_object,
)

GOOD_TOKEN = "dbat_good"
AGENT = AgentInfo(id="a_1", name="Ada Agent", email="ada@example.org")

Handler = Callable[[Any], Awaitable[bytes | None]]


@dataclass
class AgentSession:
    """One open agent connection as the server sees it."""

    ws: ServerConnection
    live: bool = False
    received: list[Any] = field(default_factory=list)


class AgentServer:
    """Scriptable agent (and auth) channel. Use as ``async with AgentServer() as server``."""

    def __init__(self) -> None:
        self.stored: list[Notification] = []
        self.sessions: list[AgentSession] = []
        self.handshakes = 0
        self.rejected_handshakes = 0
        self.resumes: list[Resume] = []
        self.handlers: dict[str, Handler] = {}
        self.drop_from_replay: set[int] = set()
        self.before_replay: Callable[[], None] | None = None
        self.unavailable = False
        self.unread_in_replay = False
        self.passwords = {"ada@example.org": "right"}
        self.logged_out: list[str] = []
        self.changed = asyncio.Event()
        self._server: Server | None = None
        self.port = 0

    # -- lifecycle

    async def __aenter__(self) -> AgentServer:
        self._server = await serve(
            self._handle,
            "127.0.0.1",
            0,
            subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
            process_request=self._check_token,
            ping_interval=None,
        )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def _notify(self) -> None:
        self.changed.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 5.0) -> None:
        """Wait (without sleeping) until ``predicate()`` holds after some server event."""
        async with asyncio.timeout(timeout):
            while not predicate():
                self.changed.clear()
                await self.changed.wait()

    # -- handshake

    def _check_token(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/auth":
            return None
        self.handshakes += 1
        self._notify()
        if self.unavailable:
            return connection.respond(HTTPStatus.SERVICE_UNAVAILABLE, "starting up\n")
        if request.headers.get("Authorization") != f"Bearer {GOOD_TOKEN}":
            self.rejected_handshakes += 1
            return connection.respond(HTTPStatus.UNAUTHORIZED, "unknown token\n")
        return None

    # -- scripting

    def unread(self) -> dict[str, int]:
        return unread_object({"chat": sum(1 for n in self.stored if not n.read)})

    def store(self, count: int = 1, **fields: Any) -> list[Notification]:
        """Store notifications without pushing them (they arrive while the agent is away)."""
        made = [notification(len(self.stored) + 1 + i, **fields) for i in range(count)]
        self.stored.extend(made)
        return made

    async def publish(self, count: int = 1, *, lose: bool = False, **fields: Any) -> None:
        """Store notifications and push them live; ``lose`` stores without pushing (a gap)."""
        for made in self.store(count, **fields):
            if lose:
                continue
            frame = encode(NotificationPush(notification=made, unread=self.unread()))
            for session in self.sessions:
                if session.live:
                    await session.ws.send(frame, text=True)

    async def push(self, frame: Any) -> None:
        """Send any frame to every live session."""
        for session in self.sessions:
            if session.live:
                await session.ws.send(encode(frame), text=True)

    async def close_all(self, code: int, reason: str = "") -> None:
        for session in list(self.sessions):
            await session.ws.close(code, reason)

    def live_sessions(self) -> int:
        return sum(1 for s in self.sessions if s.live)

    # -- connection handling

    async def _handle(self, ws: ServerConnection) -> None:
        if ws.request is not None and ws.request.path == "/auth":
            await self._handle_auth(ws)
            return
        session = AgentSession(ws)
        self.sessions.append(session)
        self._notify()
        try:
            last = self.stored[-1].seq if self.stored else 0
            await ws.send(
                encode(
                    Welcome(
                        agent=AGENT,
                        last_seq=last,
                        unread=self.unread(),
                        server=ServerInfo(version="test", node="n1"),
                    )
                ),
                text=True,
            )
            async for raw in ws:
                request = agent_decoder.decode(raw)
                session.received.append(request)
                self._notify()
                if isinstance(request, Resume):
                    await self._replay(session, request)
                    continue
                handler = self.handlers.get(request.__struct_config__.tag)
                reply = await handler(request) if handler else encode(Ok(id=request.id))
                if reply is not None:
                    await ws.send(reply, text=True)
        except ConnectionClosed:
            pass  # the test looks at what the client did about it
        finally:
            self.sessions.remove(session)
            self._notify()

    async def _replay(self, session: AgentSession, request: Resume) -> None:
        self.resumes.append(request)
        if self.before_replay is not None:
            self.before_replay()
        missed = [n for n in self.stored if n.seq > request.after_seq]
        truncated = len(missed) > request.limit
        missed = missed[-request.limit :]
        for n in missed:
            if n.seq in self.drop_from_replay:
                self.drop_from_replay.discard(n.seq)
                continue
            unread = self.unread() if self.unread_in_replay else None
            push = NotificationPush(notification=n, unread=unread)
            await session.ws.send(encode(push), text=True)
        last = self.stored[-1].seq if self.stored else 0
        ok = ResumeOk(id=request.id, last_seq=last, truncated=truncated)
        await session.ws.send(encode(ok), text=True)
        session.live = True
        self._notify()

    async def _handle_auth(self, ws: ServerConnection) -> None:
        with contextlib.suppress(Exception):
            async for raw in ws:
                request = auth_decoder.decode(raw)
                if isinstance(request, Login):
                    if self.passwords.get(request.email) == request.password:
                        ok = LoginOk(id=request.id, token=GOOD_TOKEN, agent=AGENT)
                        await ws.send(encode(ok), text=True)
                    else:
                        reply = Error(id=request.id, code="unauthorized", message="no")
                        await ws.send(encode(reply), text=True)
                elif isinstance(request, Logout):
                    self.logged_out.append(request.token)
                    self._notify()
                    await ws.send(encode(Ok(id=request.id)), text=True)


def headers_of(ws: ServerConnection) -> Headers:
    assert ws.request is not None
    return ws.request.headers


class FreezableProxy:
    """A TCP proxy in front of a server whose open links can be frozen: bytes stop
    flowing both ways but the sockets stay open, as on a link that died in sleep."""

    def __init__(self, target_port: int) -> None:
        self._target_port = target_port
        self._server: asyncio.Server | None = None
        self._links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter, list[bool]]] = []
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    async def __aenter__(self) -> FreezableProxy:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        self._server.close()
        for a, b, _ in self._links:
            a.close()
            b.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}"

    def freeze_open_links(self) -> None:
        for _, _, frozen in self._links:
            frozen[0] = True

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self._target_port)
        frozen = [False]
        self._links.append((writer, up_writer, frozen))
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(source, sink, frozen))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _pump(
        source: asyncio.StreamReader, sink: asyncio.StreamWriter, frozen: list[bool]
    ) -> None:
        with contextlib.suppress(OSError):
            while data := await source.read(65536):
                if not frozen[0]:
                    sink.write(data)
                    await sink.drain()
            if not frozen[0]:
                sink.close()
