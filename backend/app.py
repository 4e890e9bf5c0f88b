"""Composition root of ``deskbell-server``: builds the parts and wires them.

Nothing else in the backend constructs a store, bus or server; tests use the same
functions, so what they run is what operators run.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import resource
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from backend import __version__
from backend.bus import Bus, open_bus
from backend.client_address import TrustedProxies
from backend.config import Config
from backend.errors import ConfigError, DeskbellError
from backend.gateway import Gateway
from backend.metrics import Metrics
from backend.password_pool import PasswordPool
from backend.rate_limits import RateLimiter
from backend.redact import redact_url
from backend.server import DeskbellServer, ServerOptions
from backend.service import Limits, Service
from backend.store import Store, open_store

log = logging.getLogger("deskbell")

REVOCATION_POLL_SECONDS = 2.0


@dataclass
class Backend:
    """A running backend's parts."""

    config: Config
    store: Store
    bus: Bus
    metrics: Metrics
    gateway: Gateway
    service: Service
    server: DeskbellServer


@contextlib.asynccontextmanager
async def open_service(config: Config) -> AsyncIterator[Service]:
    """A service on an opened store and a local bus, for CLI commands."""
    store = open_store(config.db)
    await store.open()
    bus = open_bus("local")
    passwords = PasswordPool()
    try:
        yield Service(store, bus, Metrics(), limits=_limits(config), passwords=passwords)
    finally:
        await store.close()
        passwords.close()


def _limits(config: Config) -> Limits:
    return Limits(
        visitor_messages_per_minute=config.visitor_messages_per_minute,
        visitor_starts_per_address=config.visitor_starts_per_address,
        login_attempts_per_email=config.login_attempts_per_email,
        login_attempts_per_address=config.login_attempts_per_address,
        token_checks_per_minute=config.token_checks_per_minute,
    )


def _rate_limiter(bus_url: str) -> RateLimiter:
    """Limits in this process for a local bus; in the bus's Redis (shared by every
    node, under the bus channel's name) for a Redis bus."""
    if bus_url in ("", "local"):
        return RateLimiter()
    from backend.redis_bus import DEFAULT_CHANNEL, split_channel

    url, channel = split_channel(bus_url)
    return RateLimiter(url, key_prefix=f"{channel or DEFAULT_CHANNEL}:limits")


def raise_file_limit() -> int:
    """Raise this process's soft descriptor limit to its hard limit (each connection
    holds one); return the soft limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or hard > soft:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1_048_576)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError) as exc:
            log.warning("event=file_limit_unchanged soft=%d hard=%d reason=%r", soft, hard, exc)
    return soft


def _anonymous_budget(config: Config) -> int:
    """Anonymous connections one node may hold: as configured, or half the file limit
    (the other half stays for agents, integrations and the database)."""
    if config.anonymous_connections > 0:
        return config.anonymous_connections
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return 100_000
    return max(16, soft // 2)


@contextlib.asynccontextmanager
async def running_backend(config: Config) -> AsyncIterator[Backend]:
    """Start the whole backend; on exit stop it gracefully (1001 to every client,
    in-flight commits finished, store closed)."""
    store = open_store(config.db)
    await store.open()
    metrics = Metrics()
    gateway = Gateway(metrics, store)
    bus = open_bus(config.bus)
    trusted = TrustedProxies.parse(config.trusted_proxy, config.proxy_header)
    if trusted.header == "proxy-protocol" and config.tls_cert:
        # The proxy's header would reach the TLS layer before any HTTP.
        raise ConfigError(
            "proxy_header = proxy-protocol needs TLS to end at the proxy: "
            "remove tls_cert and tls_key, or use the x-forwarded-for header"
        )
    limiter = _rate_limiter(config.bus)
    passwords = PasswordPool()
    service = Service(
        store, bus, metrics, limits=_limits(config), limiter=limiter, passwords=passwords
    )
    options = ServerOptions(
        host=config.host,
        port=config.port,
        max_message_bytes=config.max_message_bytes,
        ping_interval=config.ping_interval,
        buffer_limit=config.send_buffer_limit,
        compression=config.compression == "deflate",
        visitor_origins=config.visitor_origins,
        tls_cert=config.tls_cert,
        tls_key=config.tls_key,
        node=config.node or socket.gethostname(),
        version=__version__,
        trusted_proxies=trusted,
        anonymous_idle_timeout=config.anonymous_idle_timeout,
        anonymous_connections_per_address=config.anonymous_connections_per_address,
        anonymous_connections=_anonymous_budget(config),
    )
    server = DeskbellServer(service, gateway, metrics, options)
    watcher: asyncio.Task[None] | None = None
    try:
        await bus.start(gateway.deliver, gateway.resync)
        await server.start()
        watcher = asyncio.create_task(_watch_revocations(store, gateway))
        yield Backend(config, store, bus, metrics, gateway, service, server)
    finally:
        if watcher is not None:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        await server.stop()
        await bus.close()
        await store.close()
        passwords.close()


async def _watch_revocations(store: Store, gateway: Gateway) -> None:
    """Close connections of tokens revoked by any process (the CLI, another node)."""
    since = (datetime.now(UTC) - timedelta(seconds=5)).isoformat(timespec="microseconds")
    since = since.replace("+00:00", "Z")
    while True:
        await asyncio.sleep(REVOCATION_POLL_SECONDS)
        try:
            hashes, since = await store.revoked_since(since)
        except DeskbellError as exc:
            log.warning("event=revocation_check_failed reason=%r", exc.message)
            continue
        except Exception:
            log.exception("revocation check failed")
            continue
        if hashes:
            gateway.revoke(hashes)


async def serve_forever(config: Config, on_ready: Callable[[Backend], None] | None = None) -> None:
    """Run until SIGTERM or SIGINT, then stop gracefully."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    files = raise_file_limit()
    async with running_backend(config) as backend:
        _tune_gc()
        scheme = "wss" if config.tls_cert else "ws"
        http_scheme = "https" if config.tls_cert else "http"
        host = config.host if ":" not in config.host else f"[{config.host}]"
        base = f"{host}:{backend.server.port}"
        log.info(
            "event=listening url=%s://%s db=%s bus=%s",
            scheme,
            base,
            redact_url(config.db),
            redact_url(config.bus),
        )
        log.info(
            "event=budgets file_limit=%d anonymous_connections=%d per_address=%d "
            "trusted_proxies=%d limits=%s",
            files,
            backend.server.options.anonymous_connections,
            backend.server.options.anonymous_connections_per_address,
            len(backend.server.options.trusted_proxies.networks),
            "shared" if backend.service.limiter.shared else "local",
        )
        print(
            f"deskbell-server {__version__}: listening on {scheme}://{base} "
            f"(widget: {http_scheme}://{base}/widget/)",
            file=sys.stderr,
            flush=True,
        )
        if on_ready is not None:
            on_ready(backend)
        await stop.wait()
        log.info("event=stopping reason=signal")
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.remove_signal_handler(signum)


def _tune_gc() -> None:
    """Keep the cyclic collector out of the fan-out path.

    A fan-out allocates many short-lived containers that reference counting frees;
    with thousands of connections' objects alive, each full collection walked them all
    (about 110 ms, every 2-3 s under load, finding almost nothing). Objects that exist
    once the server is up are moved out of the collector's view, and young collections
    run less often.
    """
    gc.collect()
    gc.freeze()
    gc.set_threshold(100_000, 50, 1000)
