"""The server side of one connection, as websockets' ``create_connection`` builds it.

Two additions to :class:`~websockets.asyncio.server.ServerConnection`: a hook that runs
when the transport is gone (so connection budgets are released exactly when the file
descriptor is, however the connection ended), and the PROXY protocol header read from
trusted proxies before any HTTP (:mod:`backend.proxy_protocol`).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection

from backend import proxy_protocol
from backend.client_address import TrustedProxies

log = logging.getLogger("deskbell.server")


class DeskbellConnection(ServerConnection):
    """A server connection that runs ``on_lost`` once its transport is gone, whatever
    ended it (a handshake that never finished included): budgets are released exactly
    when the descriptor is. From a trusted proxy that speaks the PROXY protocol it
    reads that header first and keeps the address it names."""

    proxies: TrustedProxies = TrustedProxies()
    """Set on a per-server subclass (:meth:`behind`)."""
    on_lost: Callable[[], None] | None = None
    proxied_address: str | None = None
    _proxy_header: bytearray | None = None

    @classmethod
    def behind(cls, proxies: TrustedProxies) -> type[DeskbellConnection]:
        """This class for a server whose trusted proxies are ``proxies``."""
        return type(cls.__name__, (cls,), {"proxies": proxies})

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(transport)
        if self.proxies.sends_proxy_protocol(peer_address(self)):
            self._proxy_header = bytearray()

    def data_received(self, data: bytes) -> None:
        if self._proxy_header is None:
            super().data_received(data)
            return
        self._proxy_header += data
        try:
            parsed = proxy_protocol.parse(bytes(self._proxy_header))
        except proxy_protocol.ProxyProtocolError as exc:
            peer = peer_address(self)
            log.warning("event=proxy_protocol_refused remote=%s reason=%r", peer, str(exc))
            self.transport.abort()
            return
        if parsed is None:
            return  # more to come; a proxy that never finishes meets open_timeout
        self.proxied_address, size = parsed
        rest = bytes(self._proxy_header[size:])
        self._proxy_header = None
        if rest:
            super().data_received(rest)

    def connection_lost(self, exc: Exception | None) -> None:
        try:
            super().connection_lost(exc)
        finally:
            if self.on_lost is not None:
                self.on_lost()


def peer_address(connection: ServerConnection) -> str:
    """The TCP peer's address, or the one a trusted proxy's PROXY header named."""
    if isinstance(connection, DeskbellConnection) and connection.proxied_address is not None:
        return connection.proxied_address
    remote = connection.remote_address
    return str(remote[0]) if remote else "unknown"
