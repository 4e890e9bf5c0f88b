"""Composition root of ``deskbell-server``: builds the parts and wires them.

Nothing else in the backend constructs a store, bus or server; tests use the same
functions, so what they run is what operators run.
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import logging
import resource
import signal
import socket
import sys
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from backend import __version__, escalation
from backend.bus import Bus, open_bus
from backend.client_address import TrustedProxies
from backend.config import Config, default_db
from backend.errors import CannotListen, ConfigError, DeskbellError
from backend.gateway import Gateway
from backend.metrics import Metrics
from backend.password_pool import PasswordPool
from backend.presence import ClusterPresence, PresenceReporter
from backend.rate_limits import RateLimiter
from backend.redact import redact_url
from backend.server import DeskbellServer, ServerOptions
from backend.service import Limits, Service, SomeoneOnline
from backend.sso import IdTokenVerifier, SsoSettings
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


def store_for(config: Config) -> Store:
    """The configured store, unopened. Only the default location gets every missing
    folder made; a path someone typed gets at most its own folder (see open_store)."""
    return open_store(config.db, make_folders=config.db == default_db())


async def open_store_of(config: Config) -> Store:
    """Open the configured store; say on stderr when a folder was made for it."""
    store = store_for(config)
    await store.open()
    created = getattr(store, "created_folder", None)
    if created is not None:
        print(f"deskbell-server: created the folder {created} for the database", file=sys.stderr)
    return store


@contextlib.asynccontextmanager
async def open_service(config: Config) -> AsyncIterator[Service]:
    """A service on an opened store and a local bus, for CLI commands."""
    store = await open_store_of(config)
    bus = open_bus("local")
    passwords = PasswordPool()
    try:
        yield Service(
            store, bus, Metrics(), limits=_limits(config), passwords=passwords, **_sign_in(config)
        )
    finally:
        await store.close()
        passwords.close()


def _sign_in(config: Config) -> dict[str, Any]:
    """The service's sign-in options: the ID token verifier when SSO is configured."""
    settings = SsoSettings.from_config(config)
    return {
        "sso": IdTokenVerifier(settings) if settings is not None else None,
        "password_sign_in": config.password_sign_in,
    }


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
    store = await open_store_of(config)
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
        store,
        bus,
        metrics,
        limits=_limits(config),
        limiter=limiter,
        passwords=passwords,
        **_sign_in(config),
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
        drain_seconds=config.drain_seconds,
        trusted_proxies=trusted,
        anonymous_idle_timeout=config.anonymous_idle_timeout,
        anonymous_connections_per_address=config.anonymous_connections_per_address,
        anonymous_connections=_anonymous_budget(config),
    )
    server = DeskbellServer(service, gateway, metrics, options)
    watcher: asyncio.Task[None] | None = None
    escalator: asyncio.Task[None] | None = None
    sweeper: asyncio.Task[None] | None = None
    reporter: PresenceReporter | None = None
    if config.bus not in ("", "local"):
        # Other nodes hold sessions too: tell them who is online here, hear theirs.
        reporter = PresenceReporter(gateway.online_agents, bus.publish)
        gateway.cluster = ClusterPresence(reporter.node)
        metrics.presence_nodes.set_function(gateway.cluster.nodes)
        metrics.presence_agents_online.set_function(gateway.cluster.agents_online)
        gateway.presence_changed = reporter.changed
    service.someone_online = _someone_online(gateway, bus)
    try:
        await bus.start(gateway.deliver, gateway.resync)
        try:
            await server.start()
        except OSError as exc:
            raise cannot_listen(config.host, config.port, exc) from exc
        watcher = asyncio.create_task(_watch_revocations(store, gateway))
        if reporter is not None:
            reporter.start()
        escalator = asyncio.create_task(
            escalation.run(service, available=_availability(gateway, bus))
        )
        if config.bus not in ("", "local") and config.stream_sweep_seconds > 0:
            # In-process delivery cannot lose an event; a bus between nodes can.
            sweeper = asyncio.create_task(gateway.sweep_forever(config.stream_sweep_seconds))
        yield Backend(config, store, bus, metrics, gateway, service, server)
    finally:
        for task in (watcher, escalator, sweeper):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await server.stop()
        if reporter is not None:
            await reporter.stop()
        await bus.close()
        await store.close()
        passwords.close()


def _someone_online(gateway: Gateway, bus: Bus) -> SomeoneOnline:
    """Whether any of some agents has an online session: on this node, or, as their
    last presence reports say, on another (:mod:`backend.presence`). None when the
    other nodes' sessions cannot be known (the bus is down, or was just (re)joined)."""
    cluster = gateway.cluster

    def someone_online(agent_ids: frozenset[int]) -> bool | None:
        if gateway.any_online(agent_ids):
            return True
        if cluster is None:
            return False  # one node: it holds every session
        return cluster.online(agent_ids) if bus.healthy else None

    return someone_online


def _availability(gateway: Gateway, bus: Bus) -> escalation.Available:
    """Who can see a toast, as early escalation asks (PROTOCOL.md v1.1, seen receipts):
    any agent with an online session. When that cannot be known, the agents count as
    able to see, so that only seen receipts decide."""
    someone_online = _someone_online(gateway, bus)
    return lambda agent_ids: someone_online(agent_ids) is not False


def cannot_listen(host: str, port: int, exc: OSError) -> CannotListen:
    """Why the server could not listen on ``host:port``, and what to do about it."""
    where = f"port {port} on {host}"
    if exc.errno == errno.EADDRINUSE:
        return CannotListen(
            f"{where} is already in use (by another deskbell-server, or another program: "
            f"`ss -ltnp 'sport = :{port}'` shows which); stop it, or choose another port "
            "with --port"
        )
    if exc.errno == errno.EACCES:
        return CannotListen(
            f"no permission to listen on {where}: ports below 1024 need root or "
            "CAP_NET_BIND_SERVICE; choose a port above 1023 with --port"
        )
    if exc.errno in (errno.EADDRNOTAVAIL, errno.EAFNOSUPPORT) or isinstance(exc, socket.gaierror):
        return CannotListen(
            f"cannot listen on {where}: {host} is not an address of this machine; "
            "check --host (127.0.0.1 for this machine only, 0.0.0.0 for every interface)"
        )
    return CannotListen(f"cannot listen on {where}: {exc.strerror or exc}")


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
