"""The Redis bus: every node's committed changes reach every other node over pub/sub.

How it behaves (the rest of the backend relies on it):

- An event published on this node goes to this node's gateway at once, on the loop,
  exactly as :class:`~backend.bus.LocalBus` does; Redis only carries it to the *other*
  nodes. This node's own agents therefore never wait for, or depend on, Redis.
- Events travel msgspec-encoded (MessagePack) in an envelope naming the sending node;
  a node ignores its own envelopes when they come back.
- Redis pub/sub keeps no backlog: whatever is published while a node is not
  subscribed is gone. So every time the subscription is (re)established the bus calls
  ``resync``, and the gateway re-reads its agents' streams from the store, where
  nothing is ever lost. A node that could not send (Redis down for it, or its send
  queue overflowed) sends a *resync request* as soon as it can send again, so nodes
  that kept their own subscription catch up too.
- ``healthy`` is False from the first failure until both the subscription and the
  sending side work again; it is logged once per outage (``event=bus_down``) and once
  on recovery (``event=bus_up``). Reconnect attempts follow ``reconnect_delays``, an
  exponential backoff with jitter that tests replace.

Pub/sub channels ignore Redis's database number, so two deployments sharing one Redis
must use different channels: ``redis://host:6379/0?channel=deskbell-eu``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import secrets
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import msgspec
import redis.asyncio as redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

from backend.bus import Bus, BusEvent, Deliver, Resync
from backend.errors import DeskbellError
from backend.protocol import ErrorCode
from backend.redact import redact_url

log = logging.getLogger(__name__)

DEFAULT_CHANNEL = "deskbell:bus"
_SEND_QUEUE_LIMIT = 100_000
_SEND_BATCH = 512
_IDLE_PING_SECONDS = 5.0
_CONNECT_TIMEOUT = 2.0
_CLOSE_SECONDS = 2.0
"""On close: at most this long to send what is queued, and as long again to stop."""


def backoff(first: float = 0.1, factor: float = 2.0, cap: float = 5.0) -> Iterator[float]:
    """Reconnect delays: ``first``, then ``factor`` times longer up to ``cap``, each
    with ±20 % jitter so that nodes do not reconnect in lockstep after a restart."""
    delay = first
    while True:
        yield delay * random.uniform(0.8, 1.2)
        delay = min(cap, delay * factor)


class BusUnreachable(DeskbellError):
    """Redis does not answer (reported by ``check``; a running node degrades instead)."""

    code: ErrorCode = "unavailable"


class _Envelope(msgspec.Struct, array_like=True):
    node: str
    event: BusEvent | None
    """None: a resync request (the sender lost events it should have sent)."""


_encoder = msgspec.msgpack.Encoder()
_decoder = msgspec.msgpack.Decoder(_Envelope)


class RedisBus(Bus):
    """A :class:`Bus` over Redis pub/sub. ``url`` is a ``redis://`` URL."""

    def __init__(
        self,
        url: str,
        *,
        channel: str | None = None,
        reconnect_delays: Callable[[], Iterator[float]] = backoff,
        send_queue_limit: int = _SEND_QUEUE_LIMIT,
        idle_ping_seconds: float = _IDLE_PING_SECONDS,
        connect_timeout: float = _CONNECT_TIMEOUT,
    ):
        self.url, url_channel = split_channel(url)
        self.channel = channel or url_channel or DEFAULT_CHANNEL
        self.node_id = secrets.token_hex(8)
        self._delays = reconnect_delays
        self._queue_limit = send_queue_limit
        self._idle_ping = idle_ping_seconds
        self._connect_timeout = connect_timeout
        self._deliver: Deliver | None = None
        self._resync: Resync | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._outbox: deque[bytes] = deque()
        self._outbox_ready = asyncio.Event()
        self._idle = asyncio.Event()
        """Set while the sender has nothing queued or in flight."""
        self._subscribed = False
        self._sending = True
        self._lost = False
        self._down_logged = False
        self._first_attempt = asyncio.Event()
        self._closed = False
        self.subscriptions = 0
        """How many times the subscription was established (1 + reconnects)."""

    # -- the Bus interface ------------------------------------------------------------
    async def start(self, deliver: Deliver, resync: Resync | None = None) -> None:
        """Subscribe, then return; if Redis does not answer within the connect timeout
        the node runs degraded and keeps trying in the background."""
        self._deliver = deliver
        self._resync = resync
        self._tasks = [
            asyncio.create_task(self._listen(), name="deskbell-bus-listen"),
            asyncio.create_task(self._send(), name="deskbell-bus-send"),
        ]
        await self._first_attempt.wait()

    async def publish(self, event: BusEvent) -> None:
        if self._closed:
            return
        if self._deliver is not None:
            self._deliver(event)
        if not self._sending or len(self._outbox) >= self._queue_limit:
            # Dropped: the other nodes catch up from the store on our resync request.
            if not self._lost and self._sending:
                log.warning("event=bus_overflow queued=%d", len(self._outbox))
            self._lost = True
            return
        self._outbox.append(_encoder.encode(_Envelope(self.node_id, event)))
        self._idle.clear()
        self._outbox_ready.set()

    async def close(self) -> None:
        """Send what is queued (committed changes the other nodes' sessions are
        waiting for), then stop; each step bounded, so a stuck Redis cannot hold up a
        node's shutdown."""
        self._closed = True
        self._deliver = None
        self._resync = None
        if self._sending and self._outbox and self._tasks:
            try:
                await asyncio.wait_for(self._idle.wait(), _CLOSE_SECONDS)
            except TimeoutError:
                log.warning("event=bus_close_unsent queued=%d", len(self._outbox))
        tasks, self._tasks = self._tasks, []
        for task in tasks:
            task.cancel()
        if tasks:
            _, stuck = await asyncio.wait(tasks, timeout=_CLOSE_SECONDS)
            if stuck:
                log.warning("event=bus_close_timeout tasks=%d", len(stuck))

    @property
    def healthy(self) -> bool:
        return self._subscribed and self._sending

    async def probe(self) -> None:
        """Check that Redis answers (for ``deskbell-server check``), without starting.

        Raises:
            BusUnreachable: saying why, for a person.
        """
        client = self._client(read_timeout=self._connect_timeout)
        try:
            await client.ping()
        except (RedisError, OSError) as exc:
            raise BusUnreachable(
                f"Redis at {redact_url(self.url)} cannot be reached "
                f"({str(exc) or type(exc).__name__}); check that it is running"
            ) from exc
        finally:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    # -- receiving --------------------------------------------------------------------
    def _client(self, *, read_timeout: float | None) -> redis.Redis:
        # No retries inside redis-py: it would resubscribe silently and we would not
        # know that messages were missed. Every failure comes back here instead.
        client: redis.Redis = redis.Redis.from_url(
            self.url,
            socket_connect_timeout=self._connect_timeout,
            socket_timeout=read_timeout,
            socket_keepalive=True,
            retry=Retry(NoBackoff(), 0),
        )
        return client

    async def _listen(self) -> None:
        delays = self._delays()
        while True:
            client = self._client(read_timeout=None)
            pubsub = client.pubsub()
            try:
                await pubsub.subscribe(self.channel)
                while True:
                    message = await pubsub.get_message(timeout=self._idle_ping)
                    if message is None:
                        await pubsub.ping()  # a dead link shows up as an error here
                    elif message["type"] == "subscribe":
                        delays = self._delays()
                        self._on_subscribed()
                    elif message["type"] == "message":
                        self._receive(message["data"])
            except (RedisError, OSError) as exc:
                self._subscribed = False
                self._went_down("subscribe", exc)
            finally:
                self._first_attempt.set()
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]
                with contextlib.suppress(RedisError, OSError):
                    await client.aclose()
            await asyncio.sleep(next(delays))

    def _on_subscribed(self) -> None:
        self._subscribed = True
        self.subscriptions += 1
        self._first_attempt.set()
        self._maybe_up()
        # Anything published while we were not subscribed is lost to us: catch up from
        # the store. On the first subscription there is nobody to catch up yet.
        self._call_resync("subscribed")

    def _receive(self, data: Any) -> None:
        try:
            envelope = _decoder.decode(data)
        except (msgspec.DecodeError, TypeError) as exc:
            log.error("event=bus_bad_message reason=%r", str(exc))
            return
        if envelope.node == self.node_id:
            return  # delivered locally when it was published
        if envelope.event is None:
            self._call_resync(f"request from node {envelope.node}")
        elif self._deliver is not None:
            self._deliver(envelope.event)

    def _call_resync(self, reason: str) -> None:
        if self._resync is None:
            return
        log.info("event=bus_resync reason=%r", reason)
        try:
            self._resync()
        except Exception:
            log.exception("the resync callback failed")

    # -- sending ----------------------------------------------------------------------
    async def _send(self) -> None:
        delays = self._delays()
        client = self._client(read_timeout=self._connect_timeout)
        try:
            while True:
                if self._lost:
                    # Tell every node to catch up before anything newer goes out.
                    self._outbox.appendleft(_encoder.encode(_Envelope(self.node_id, None)))
                    self._lost = False
                if not self._outbox:
                    self._outbox_ready.clear()
                    self._idle.set()
                    await self._outbox_ready.wait()
                    continue
                self._idle.clear()
                batch = [self._outbox.popleft() for _ in range(min(_SEND_BATCH, len(self._outbox)))]
                try:
                    async with client.pipeline(transaction=False) as pipe:
                        for data in batch:
                            pipe.publish(self.channel, data)
                        await pipe.execute()
                except (RedisError, OSError) as exc:
                    self._sending = False
                    self._lost = True
                    self._outbox.clear()
                    self._went_down("publish", exc)
                    await self._wait_until_sendable(client, delays)
                    delays = self._delays()
                    self._sending = True
                    self._maybe_up()
        finally:
            with contextlib.suppress(RedisError, OSError):
                await client.aclose()

    async def _wait_until_sendable(self, client: redis.Redis, delays: Iterator[float]) -> None:
        while True:
            await asyncio.sleep(next(delays))
            try:
                await client.ping()
                return
            except (RedisError, OSError):
                continue

    # -- health -----------------------------------------------------------------------
    def _went_down(self, part: str, exc: BaseException) -> None:
        if not self._down_logged:
            self._down_logged = True
            log.warning(
                "event=bus_down part=%s url=%s reason=%r: live events from other nodes "
                "are caught up from the store when Redis is back",
                part,
                redact_url(self.url),
                str(exc) or type(exc).__name__,
            )

    def _maybe_up(self) -> None:
        if self.healthy and self._down_logged:
            self._down_logged = False
            log.info("event=bus_up url=%s", redact_url(self.url))


def split_channel(url: str) -> tuple[str, str | None]:
    """Return (URL for redis-py, the ``channel`` query parameter or None)."""
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    channel = next((v for k, v in query if k == "channel"), None)
    rest = urlencode([(k, v) for k, v in query if k != "channel"])
    return urlunsplit(parts._replace(query=rest)), channel or None


__all__ = ["DEFAULT_CHANNEL", "BusUnreachable", "RedisBus", "backoff", "split_channel"]
