"""The network face of the backend: one ``websockets`` server for every channel.

``/agent``, ``/auth``, ``/service`` and ``/visitor`` are WebSocket channels; ``/healthz``,
``/metrics`` and ``/widget/`` are plain HTTP GETs answered from the handshake hook.
Each channel handler decodes frames with :mod:`backend.protocol`, calls the service,
and answers; a bad frame gets an ``error`` frame and the connection stays open.
"""

from __future__ import annotations

import asyncio
import functools
import http
import logging
import math
import mimetypes
import ssl
import time
import weakref
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from websockets.asyncio.server import Server as WsServer
from websockets.asyncio.server import ServerConnection, serve
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed, ConnectionClosedOK
from websockets.http11 import Request, Response

from backend import ids, keepalive, protocol
from backend.client_address import TrustedProxies, limit_key
from backend.connection_budget import ConnectionBudget, Refusal
from backend.errors import DeskbellError, StoreUnavailable, Unauthorized
from backend.gateway import DEFAULT_BUFFER_LIMIT, AgentSocket, Gateway, Socket
from backend.metrics import Metrics
from backend.server_connection import DeskbellConnection, peer_address
from backend.service import Service
from backend.store.base import Agent, ConversationFacts, Token

log = logging.getLogger("deskbell.server")

CHANNELS = ("/agent", "/auth", "/service", "/visitor")
_STOP_RESERVE_SECONDS = 5.0
"""Of the drain time, what closing the bus and the store after the server may take."""
ANONYMOUS_CHANNELS = ("/auth", "/visitor")
"""Channels anyone may open without a token: their connections are budgeted."""
CLOSE_IDLE = 4008
"""Close code for an anonymous connection that stayed idle (docs/protocol.md)."""
HTTP_PATHS = ("/healthz", "/metrics", "/widget")
SINGLE_HEADERS = ("Host", "Origin", "Authorization")
"""Headers the server reads one value of: a request that repeats one is refused (400),
since two parts of a chain (a proxy, the server) could each believe a different one."""


@dataclass(frozen=True)
class ServerOptions:
    host: str = "127.0.0.1"
    port: int = protocol.DEFAULT_PORT
    max_message_bytes: int = protocol.MAX_MESSAGE_BYTES
    ping_interval: float = 20.0
    buffer_limit: int = DEFAULT_BUFFER_LIMIT
    visitor_origins: tuple[str, ...] = ()
    """Origins allowed on /visitor besides the server's own; "*" allows any."""
    tls_cert: str | None = None
    tls_key: str | None = None
    node: str = "local"
    version: str = "0"
    service_concurrency: int = 1000
    compression: bool = False
    drain_seconds: float = 10.0
    """How long a stop may take in all (see :meth:`DeskbellServer.stop`)."""
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    anonymous_idle_timeout: float = 60.0
    """Seconds an ``/auth`` connection may wait between frames, and a ``/visitor``
    connection before its ``start`` or ``attach``."""
    anonymous_connections_per_address: int = 100
    anonymous_connections: int = 10_000


@dataclass(slots=True)
class _Handshake:
    channel: str
    agent: Agent | None = None
    token_hash: str | None = None
    service: Token | None = None
    address: str = ""
    """The client's real address (behind trusted proxies, what they say it is)."""
    limit_key: str = ""
    """What limits count this client under (:func:`backend.client_address.limit_key`)."""
    client: tuple[str, str] | None = None
    """(app version, OS) from the /agent handshake headers, when the app sent them."""
    welcome: protocol.Welcome | None = None
    """/agent: the ``welcome`` frame, read before the upgrade; dropped once sent."""


class DeskbellServer:
    """Runs the channels on one port until :meth:`stop`."""

    def __init__(
        self, service: Service, gateway: Gateway, metrics: Metrics, options: ServerOptions
    ):
        self.service = service
        self.gateway = gateway
        self.metrics = metrics
        self.options = options
        self._ws: WsServer | None = None
        self._handshakes: weakref.WeakKeyDictionary[ServerConnection, _Handshake] = (
            weakref.WeakKeyDictionary()
        )
        self._widget = resources.files("backend") / "widget"
        self._background: set[asyncio.Task[None]] = set()
        self._keepalive: asyncio.Task[None] | None = None
        self.port = options.port
        self.anonymous = ConnectionBudget(
            options.anonymous_connections_per_address, options.anonymous_connections
        )
        self._total_warned = -math.inf

    # -- life cycle ------------------------------------------------------------------
    async def start(self) -> None:
        ssl_context = None
        if self.options.tls_cert:
            ssl_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ssl_context.load_cert_chain(self.options.tls_cert, self.options.tls_key)
        self._ws = await serve(
            self._handle,
            self.options.host,
            self.options.port,
            process_request=self._process_request,
            subprotocols=[protocol.SUBPROTOCOL],  # type: ignore[list-item]
            max_size=self.options.max_message_bytes,
            # One sweep pings every connection (backend/keepalive.py), not a task each.
            ping_interval=None,
            ping_timeout=None,
            ssl=ssl_context,
            server_header=f"deskbell/{self.options.version}",
            # Frames are written directly to transports (gateway.Socket.send), so
            # websockets' own write-limit backpressure does not apply; ours does.
            max_queue=64,
            # asyncio's default accept backlog (100) drops SYNs when thousands of
            # agents reconnect at once after a restart; their retries then wait 1-15 s.
            backlog=4096,
            compression="deflate" if self.options.compression else None,
            close_timeout=self._close_timeout,
            create_connection=DeskbellConnection.behind(self.options.trusted_proxies),
        )
        sockets = self._ws.sockets
        if sockets:
            self.port = sockets[0].getsockname()[1]
        if self.options.ping_interval > 0:
            ws = self._ws
            self._keepalive = asyncio.create_task(
                keepalive.run(
                    lambda: ws.all_connections, self.options.ping_interval, self._close_timeout
                )
            )

    @property
    def _close_timeout(self) -> float:
        """How long a peer may take to answer a close frame: it must not hold up a stop."""
        return min(5.0, max(1.0, self.options.drain_seconds / 4))

    async def stop(self) -> None:
        """Stop accepting, close every connection with 1001, wait for handlers (the
        commits they started finish). Connections still open when the drain time is
        nearly over are dropped, so the whole stop, with the bus and the store closed
        after it (a few seconds at most), fits in ``drain_seconds``."""
        if self._ws is None:
            return
        if self._keepalive is not None:
            self._keepalive.cancel()
        # One call does both: websockets stops listening and closes every open
        # connection with 1001 (a second close() would be ignored).
        self._ws.close(close_connections=True)
        closed = asyncio.ensure_future(self._ws.wait_closed())
        budget = max(1.0, self.options.drain_seconds - _STOP_RESERVE_SECONDS)
        done, _ = await asyncio.wait({closed}, timeout=budget)
        if done:
            return
        left = list(self._ws.all_connections)
        log.warning("event=drain_timeout connections=%d", len(left))
        for connection in left:
            connection.transport.abort()
        await asyncio.wait({closed}, timeout=1.0)

    # -- handshake hook: HTTP endpoints and channel authorization ---------------------
    async def _process_request(
        self, connection: ServerConnection, request: Request
    ) -> Response | None:
        path = request.path.split("?", 1)[0]
        refused = _refuse_request(connection, request, path)
        if refused is not None:
            return refused
        if path == "/healthz":
            return await self._healthz(connection)
        if path == "/metrics":
            return _response(connection, 200, self.metrics.render(), "text/plain; version=0.0.4")
        if path == "/widget":
            response = _response(connection, 301, b"", "text/plain")
            response.headers["Location"] = "/widget/"
            return response
        if path.startswith("/widget/"):
            return self._static(connection, path.removeprefix("/widget/") or "index.html")
        if path not in CHANNELS:
            return _response(connection, 404, b"not found\n", "text/plain")
        offered = ",".join(request.headers.get_all("Sec-WebSocket-Protocol"))
        if protocol.SUBPROTOCOL not in [p.strip() for p in offered.split(",")]:
            return _response(
                connection,
                400,
                f"offer the {protocol.SUBPROTOCOL} subprotocol\n".encode(),
                "text/plain",
            )
        proxies = self.options.trusted_proxies
        forwarded = request.headers.get_all(proxies.http_header) if proxies.http_header else []
        address = proxies.client(peer_address(connection), forwarded)
        handshake = _Handshake(channel=path, address=address, limit_key=limit_key(address))
        if path in ("/agent", "/service"):
            token = _bearer(request.headers)
            try:
                if token is None:
                    raise Unauthorized("missing Authorization: Bearer token")
                if path == "/agent":
                    handshake.agent, handshake.token_hash = await self.service.agent_for_token(
                        token
                    )
                    # Read before the upgrade: a store that cannot answer gets an HTTP 503
                    # with the reason, not an upgrade and then a 1011 close.
                    handshake.welcome = await self.service.welcome(
                        handshake.agent, self.options.node, self.options.version
                    )
                else:
                    handshake.service = await self.service.service_for_token(token)
                    handshake.token_hash = ids.token_hash(token)
            except Unauthorized as exc:
                log.info("event=auth_failed channel=%s remote=%s", path, handshake.address)
                return _response(connection, 401, f"{exc.message}\n".encode(), "text/plain")
            except StoreUnavailable as exc:
                log.warning(
                    "event=store_unavailable channel=%s remote=%s reason=%r",
                    path,
                    handshake.address,
                    exc.message,
                )
                return _response(connection, 503, f"{exc.message}\n".encode(), "text/plain")
            if path == "/agent":
                handshake.client = client_headers(request.headers)
        if path == "/visitor" and not self._origin_allowed(request.headers):
            log.info(
                "event=origin_refused remote=%s origin=%s",
                handshake.address,
                request.headers.get("Origin"),
            )
            return _response(connection, 403, b"this website may not use the chat\n", "text/plain")
        if path in ANONYMOUS_CHANNELS:
            refused = self._hold_anonymous(connection, handshake)
            if refused is not None:
                return refused
        self._handshakes[connection] = handshake
        return None

    def _hold_anonymous(
        self, connection: ServerConnection, handshake: _Handshake
    ) -> Response | None:
        """Count an anonymous connection against the budgets until its transport is
        gone; the refusal to send when there is no room."""
        held = self.anonymous.take(handshake.limit_key)
        if isinstance(held, Refusal):
            self.metrics.connections_refused.labels(held.value).inc()
            if held is Refusal.ADDRESS:
                log.info("event=connection_refused reason=address remote=%s", handshake.address)
                body = b"too many open connections from your address; close some and try again\n"
                return _response(connection, 429, body, "text/plain")
            now = time.monotonic()
            if now - self._total_warned >= 10.0:  # one line per 10 s, not one per stranger
                self._total_warned = now
                log.warning(
                    "event=connection_refused reason=total remote=%s held=%d",
                    handshake.address,
                    self.anonymous.held,
                )
            body = b"the server is busy; try again in a minute\n"
            response = _response(connection, 503, body, "text/plain")
            response.headers["Retry-After"] = "60"
            return response
        if isinstance(connection, DeskbellConnection):
            connection.on_lost = held
        return None

    def _origin_allowed(self, headers: Headers) -> bool:
        origin = headers.get("Origin")
        allowed = self.options.visitor_origins
        if "*" in allowed or origin is None:
            # No Origin header: not a browser, so no cross-site risk to guard against.
            return True
        host = headers.get("Host", "")
        if origin.split("://", 1)[-1] == host:
            return True
        return origin in allowed

    async def _healthz(self, connection: ServerConnection) -> Response:
        store = self.service.store
        problem: str | None
        try:
            await asyncio.wait_for(store.ping(), timeout=2.0)
            problem = await asyncio.wait_for(store.write_problem(), timeout=2.0)
        except StoreUnavailable as exc:
            problem = exc.message
        except TimeoutError:
            problem = "the database does not answer within 2 s"
        if problem is not None:
            body = protocol.encode(
                {"status": "unavailable", "version": self.options.version, "reason": problem}
            )
            return _response(connection, 503, body, "application/json")
        status = "ok" if self.service.bus.healthy else "degraded"
        body = protocol.encode({"status": status, "version": self.options.version})
        return _response(connection, 200, body, "application/json")

    def _static(self, connection: ServerConnection, name: str) -> Response:
        if "/" in name or name.startswith("."):
            return _response(connection, 404, b"not found\n", "text/plain")
        entry = self._widget / name
        if not entry.is_file():
            return _response(connection, 404, b"not found\n", "text/plain")
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if kind.startswith("text/") or kind.endswith("javascript"):
            kind += "; charset=utf-8"
        response = _response(connection, 200, entry.read_bytes(), kind)
        response.headers["Cache-Control"] = "no-cache"
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Content-Security-Policy"] = (
            "default-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
            f"style-src 'self'; script-src 'self'; {self._frame_ancestors}"
        )
        return response

    @property
    def _frame_ancestors(self) -> str:
        """Only the sites allowed on /visitor may embed the widget (and the server's own
        pages): another site could otherwise frame it and chat as its visitors."""
        allowed = self.options.visitor_origins
        if "*" in allowed:
            return "frame-ancestors *"
        return " ".join(("frame-ancestors 'self'", *allowed))

    # -- channels ---------------------------------------------------------------------
    async def _handle(self, connection: ServerConnection) -> None:
        handshake = self._handshakes.pop(connection, None)
        if handshake is None:  # cannot happen: process_request ran first
            await connection.close(1011, "no handshake state")
            return
        # What the handshake needed is in ``handshake``: the HTTP headers (most of an
        # idle connection's memory) can go. The request itself stays: websockets reads
        # it to know that the handshake is done, and its parser's frame holds it.
        if connection.request is not None:
            connection.request.headers.clear()
        connection.response = None
        channel = handshake.channel.lstrip("/")
        gauge = self.metrics.connections.labels(channel)
        gauge.inc()
        who = handshake.agent.public_id if handshake.agent else "-"
        if handshake.service is not None:
            who = f"{handshake.service.name}#{handshake.service.id}"
        _log_open(channel, who, handshake.address)
        try:
            if handshake.channel == "/agent":
                await self._agent_channel(connection, handshake)
            elif handshake.channel == "/service":
                await self._service_channel(connection, handshake)
            elif handshake.channel == "/auth":
                await self._auth_channel(connection, handshake)
            else:
                await self._visitor_channel(connection, handshake)
        except ConnectionClosed:
            pass
        finally:
            gauge.dec()
            log.info(
                "event=close channel=%s who=%s remote=%s code=%s",
                channel,
                who,
                handshake.address,
                connection.close_code,
            )

    async def _serve_frames(
        self,
        connection: ServerConnection,
        sock: Socket,
        decoder: protocol.FrameDecoder,
        handle: Callable[[Any], Awaitable[bytes | None]],
        idle_timeout: Callable[[], float | None] = lambda: None,
    ) -> None:
        """Read frames one by one; answer each with its reply or an error frame.

        While ``idle_timeout()`` gives a number, a connection that sends no frame for
        that many seconds is closed with :data:`CLOSE_IDLE` (pings do not count: an
        anonymous socket that only answers pings is holding a descriptor for nothing).
        """
        while True:
            try:
                async with asyncio.timeout(idle_timeout()):
                    data = await connection.recv()
            except TimeoutError:
                self.metrics.connections_refused.labels("idle").inc()
                await connection.close(CLOSE_IDLE, "idle")
                return
            except ConnectionClosedOK:
                return
            if not sock.open:
                break  # closed by the server (revoked, shutting down): serve nothing more
            reply = await self._answer(decoder, data, handle)
            if reply:
                await sock.reply(reply)

    async def _answer(
        self,
        decoder: protocol.FrameDecoder,
        data: str | bytes,
        handle: Callable[[Any], Awaitable[bytes | None]],
    ) -> bytes:
        request_id: protocol.RequestId | None = None
        try:
            frame = decoder.decode(data)
            request_id = getattr(frame, "id", None)
            reply = await handle(frame)
            return reply if reply is not None else b""
        except protocol.ProtocolError as exc:
            error = exc
        except DeskbellError as exc:
            error = protocol.ProtocolError(exc.code, exc.message, request_id)
        except Exception:
            log.exception("request failed")
            error = protocol.ProtocolError(
                "internal", "the server failed to handle this request; try again", request_id
            )
        self.metrics.errors.labels(error.code).inc()
        return protocol.error_frame(error)

    async def _agent_channel(self, connection: ServerConnection, handshake: _Handshake) -> None:
        agent = handshake.agent
        assert agent is not None and handshake.token_hash is not None
        sock = AgentSocket(
            connection, agent, handshake.token_hash, self.options.buffer_limit, self.metrics
        )
        self.gateway.add_agent(sock)
        if handshake.client is not None:
            # Off the handshake's path: a reconnect storm must not wait on these writes.
            note = asyncio.create_task(self.service.note_client(agent, *handshake.client))
            self._background.add(note)
            note.add_done_callback(self._background.discard)
        try:
            welcome, handshake.welcome = handshake.welcome, None
            sock.send(protocol.encode(welcome))

            # A partial, not a closure, and recv() in a loop, not ``async for`` (an
            # async generator): held for the connection's life, they are smaller.
            handle = functools.partial(self._agent_request, sock)
            while True:
                try:
                    data = await connection.recv()
                except ConnectionClosedOK:
                    break
                if not sock.open:
                    break  # closed by the server (revoked, shutting down): serve nothing more
                reply = await self._answer(protocol.agent_decoder, data, handle)
                if reply:
                    await sock.reply(reply)
        finally:
            self.gateway.remove(sock)

    async def _agent_request(self, sock: AgentSocket, frame: protocol.AgentRequest) -> bytes | None:
        service = self.service
        agent = sock.agent
        encode = protocol.encode
        match frame:
            case protocol.Resume(id=rid, after_seq=after, limit=limit):
                await self.gateway.resume(sock, rid, after, limit)
                return None
            case protocol.History(id=rid):
                items, more = await service.store.history(
                    agent, frame.before_seq, frame.limit, frame.category, frame.unread_only
                )
                return encode(protocol.HistoryOk(id=rid, items=items, more=more))
            case protocol.MarkRead(id=rid):
                unread = await service.mark_read(
                    agent, notification_ids=frame.ids, conversation_id=frame.conversation_id
                )
                return encode(protocol.UnreadOk(id=rid, unread=unread))
            case protocol.MarkAllRead(id=rid, category=category):
                unread = await service.mark_read(agent, all_in=category)
                return encode(protocol.UnreadOk(id=rid, unread=unread))
            case protocol.GetConversation(id=rid, conversation_id=conversation_id):
                conversation = await service.conversation(agent, conversation_id)
                self.gateway.watch_conversation(sock, conversation.id)
                return encode(protocol.ConversationOk(id=rid, conversation=conversation))
            case protocol.Reply(id=rid):
                message = await service.reply(
                    agent, frame.conversation_id, frame.body, frame.client_msg_id
                )
                return encode(protocol.MessageOk(id=rid, message=message))
            case protocol.Assign(id=rid):
                await service.assign(agent, frame.conversation_id, frame.agent_id)
                return encode(protocol.Ok(id=rid))
            case protocol.Presence(id=rid, status=status):
                log.debug("event=presence agent=%s status=%s", agent.public_id, status)
                self.gateway.set_presence(sock, status)
                return encode(protocol.Ok(id=rid)) if rid is not None else None
            case protocol.Queue() | protocol.Claim() | protocol.Resolve() | protocol.Seen():
                return await self._waiting_request(sock, frame)
        raise AssertionError(f"unhandled frame {frame!r}")  # pragma: no cover

    async def _waiting_request(
        self,
        sock: AgentSocket,
        frame: protocol.Queue | protocol.Claim | protocol.Resolve | protocol.Seen,
    ) -> bytes | None:
        """The v1.1 requests (PROTOCOL.md, "waiting visitors")."""
        service, agent, encode = self.service, sock.agent, protocol.encode
        match frame:
            case protocol.Queue(id=rid):
                # Watch first, then read: a change committed in between is pushed, and
                # the client applies pushes on top of the list by conversation id.
                inboxes = await service.store.agent_inbox_ids(agent.id)
                self.gateway.watch_queue(sock, inboxes)
                conversations = await service.waiting.queue(agent)
                return encode(protocol.QueueOk(id=rid, conversations=conversations))
            case protocol.Claim(id=rid, conversation_id=conversation_id):
                conversation = await service.claim(agent, conversation_id)
                self.gateway.watch_conversation(sock, conversation.id)
                return encode(protocol.ConversationOk(id=rid, conversation=conversation))
            case protocol.Resolve(id=rid, conversation_id=conversation_id):
                await service.resolve(agent, conversation_id)
                return encode(protocol.Ok(id=rid))
            case protocol.Seen(ids=seen_ids, how=how):
                await service.waiting.seen(agent, seen_ids, how)
                return None
        raise AssertionError(f"unhandled frame {frame!r}")  # pragma: no cover

    async def _service_channel(self, connection: ServerConnection, handshake: _Handshake) -> None:
        service_token = handshake.service
        assert service_token is not None and handshake.token_hash is not None
        sock = Socket(connection, self.options.buffer_limit, self.metrics)
        self.gateway.add_token(sock, handshake.token_hash)
        # Publishes are handled concurrently so the store can batch their commits;
        # replies carry the request id, so they may come back in any order.
        slots = asyncio.Semaphore(self.options.service_concurrency)
        tasks: set[asyncio.Task[None]] = set()

        async def handle(frame: protocol.Publish) -> bytes:
            if not sock.open:
                raise protocol.ProtocolError(
                    "unauthorized", "this connection was closed: nothing more is served", frame.id
                )
            event = protocol.decode_event(frame.event, frame.id)
            count = await self.service.publish(service_token.id, event, frame.key)
            return protocol.encode(protocol.PublishOk(id=frame.id, notifications=count))

        async def answer(data: str | bytes) -> None:
            try:
                sock.send(await self._answer(protocol.service_decoder, data, handle))
            finally:
                slots.release()

        try:
            async for data in connection:
                if not sock.open:
                    break  # closed by the server (revoked, shutting down): serve nothing more
                await slots.acquire()
                task = asyncio.create_task(answer(data))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
        finally:
            if tasks:
                # Commits already under way finish; their replies may have nowhere to go.
                await asyncio.gather(*tasks, return_exceptions=True)
            self.gateway.remove(sock)

    async def _auth_channel(self, connection: ServerConnection, handshake: _Handshake) -> None:
        sock = Socket(connection, self.options.buffer_limit, self.metrics)

        async def handle(frame: protocol.AuthRequest) -> bytes:
            match frame:
                case protocol.Login():
                    try:
                        token, agent = await self.service.login(
                            frame.email, frame.password, frame.device, handshake.limit_key
                        )
                    except DeskbellError:
                        log.info("event=auth_failed channel=auth remote=%s", handshake.address)
                        raise
                    log.info("event=login agent=%s remote=%s", agent.public_id, handshake.address)
                    return protocol.encode(
                        protocol.LoginOk(id=frame.id, token=token, agent=agent.info())
                    )
                case protocol.Logout():
                    await self.service.logout(frame.token, handshake.limit_key)
                    return protocol.encode(protocol.Ok(id=frame.id))
                case protocol.SignInOptions():
                    return protocol.encode(self.service.sign_in_options(frame.id))
                case protocol.SsoLogin():
                    try:
                        token, agent = await self.service.sso_login(
                            frame.id_token, frame.nonce, frame.device, handshake.limit_key
                        )
                    except DeskbellError:
                        log.info("event=auth_failed channel=auth remote=%s", handshake.address)
                        raise
                    log.info(
                        "event=login agent=%s remote=%s method=sso",
                        agent.public_id,
                        handshake.address,
                    )
                    return protocol.encode(
                        protocol.LoginOk(id=frame.id, token=token, agent=agent.info())
                    )
            raise AssertionError(f"unhandled frame {frame!r}")  # pragma: no cover

        timeout = self.options.anonymous_idle_timeout
        await self._serve_frames(
            connection, sock, protocol.auth_decoder, handle, idle_timeout=lambda: timeout
        )

    async def _visitor_channel(self, connection: ServerConnection, handshake: _Handshake) -> None:
        sock = Socket(connection, self.options.buffer_limit, self.metrics)
        current: list[ConversationFacts] = []

        async def handle(frame: protocol.VisitorRequest) -> bytes:
            match frame:
                case protocol.VisitorStart():
                    session = await self.service.visitor_start(
                        frame.inbox, frame.name, frame.text, handshake.limit_key
                    )
                case protocol.VisitorAttach():

                    def watch(facts: ConversationFacts) -> None:
                        self.gateway.remove(sock)
                        self.gateway.watch_conversation(sock, facts.public_id)

                    session = await self.service.visitor_attach(
                        frame.token, handshake.limit_key, watch
                    )
                case protocol.VisitorSend():
                    if not current:
                        raise protocol.ProtocolError(
                            "bad_request", "start or attach to a conversation first", frame.id
                        )
                    message = await self.service.visitor_send(
                        current[0], frame.text, frame.client_msg_id
                    )
                    return protocol.encode(protocol.MessageOk(id=frame.id, message=message))
            current[:] = [session.facts]
            self.gateway.remove(sock)
            self.gateway.watch_conversation(sock, session.facts.public_id)
            token = session.token if session.token is not None else frame.token  # type: ignore[union-attr]
            return protocol.encode(
                protocol.VisitorSessionOk(id=frame.id, token=token, conversation=session.view())
            )

        def idle_timeout() -> float | None:
            # Until it has a conversation, a visitor's socket is anonymous and idle.
            return None if current else self.options.anonymous_idle_timeout

        try:
            await self._serve_frames(
                connection, sock, protocol.visitor_decoder, handle, idle_timeout=idle_timeout
            )
        finally:
            self.gateway.remove(sock)


def _log_open(channel: str, who: str, address: str) -> None:
    # Logged from here, not from the handler: logging walks its caller's frames
    # (findCaller), which gives a coroutine's frame an object of its own for as long
    # as the coroutine lives (256 bytes per open connection).
    log.info("event=open channel=%s who=%s remote=%s", channel, who, address)


def _refuse_request(connection: ServerConnection, request: Request, path: str) -> Response | None:
    """The answer to a request no endpoint should see: an unknown path (404), a method
    other than GET (405), a header repeated that must come once (400). None otherwise."""
    known = path in CHANNELS or path in HTTP_PATHS or path.startswith("/widget/")
    if not known:
        return _response(connection, 404, b"not found\n", "text/plain")
    if request.method != "GET":
        refusal = f"{request.method} is not allowed here; use GET\n"
        response = _response(connection, 405, refusal.encode(), "text/plain")
        response.headers["Allow"] = "GET"
        return response
    for name in SINGLE_HEADERS:
        if len(request.headers.get_all(name)) > 1:
            return _response(
                connection, 400, f"the {name} header must be sent once\n".encode(), "text/plain"
            )
    return None


def client_headers(headers: Headers) -> tuple[str, str] | None:
    """The app version and OS an /agent handshake names (docs/protocol.md), or None.

    Values are cut to a bounded length and stripped of anything but printable ASCII:
    they end up in `agent list` output that IT reads and scripts parse.
    """
    version = _header_text(headers.get(protocol.CLIENT_VERSION_HEADER))
    if not version:
        return None
    return version, _header_text(headers.get(protocol.CLIENT_OS_HEADER)) or "unknown"


def _header_text(value: str | None) -> str:
    if value is None:
        return ""
    printable = "".join(ch for ch in value if " " <= ch <= "~")
    return " ".join(printable.split())[: protocol.MAX_CLIENT_HEADER_CHARS]


def _bearer(headers: Headers) -> str | None:
    value = headers.get("Authorization", "")
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def _response(
    connection: ServerConnection, status: int, body: bytes, content_type: str
) -> Response:
    response = connection.respond(http.HTTPStatus(status), "")
    response.body = body
    # Headers is a multi-dict: assignment would add a second value.
    del response.headers["Content-Type"]
    del response.headers["Content-Length"]
    response.headers["Content-Type"] = content_type
    response.headers["Content-Length"] = str(len(body))
    return response
