"""The client's real address: the TCP peer, or what trusted proxies say it was.

Only a peer inside one of the ``trusted_proxy`` networks is believed, and only in the
one header the operator named (``X-Forwarded-For``, RFC 7239 ``Forwarded``, or the
PROXY protocol's, read by :mod:`backend.proxy_protocol` before HTTP starts): a proxy
that appends to one header passes the other through from the client unchanged, so
believing both would let anyone choose their address. The header's list is read from
the right (the entry the nearest proxy added) and the first address that is not itself
a trusted proxy is the client; a client's own entries further left are never reached.

Limits and connection budgets are keyed by :func:`limit_key`: the address itself for
IPv4, its /64 network for IPv6 (one host usually holds a whole /64, so per-address
keys would be free to multiply).

Pure functions, no I/O.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

from backend.errors import ConfigError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
ProxyHeader = Literal["x-forwarded-for", "forwarded", "proxy-protocol"]
PROXY_HEADERS: tuple[ProxyHeader, ...] = ("x-forwarded-for", "forwarded", "proxy-protocol")


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose word on the client's address is believed."""

    networks: tuple[Network, ...] = ()
    header: ProxyHeader = "x-forwarded-for"

    @classmethod
    def parse(cls, cidrs: Iterable[str], header: str = "x-forwarded-for") -> TrustedProxies:
        """From configuration: CIDRs (``10.0.0.0/8``, ``::1``) and a header name.

        Raises:
            ConfigError: a value that is not a network, or an unknown header.
        """
        networks = []
        for text in cidrs:
            try:
                networks.append(ipaddress.ip_network(text.strip(), strict=False))
            except ValueError:
                raise ConfigError(
                    f"trusted_proxy: {text!r} is not an address or network (10.0.0.0/8, ::1)"
                ) from None
        name = header.strip().lower()
        if name not in PROXY_HEADERS:
            raise ConfigError(f"proxy_header: {header!r} is not one of {', '.join(PROXY_HEADERS)}")
        return cls(tuple(networks), name)  # type: ignore[arg-type]

    def trusts(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def sends_proxy_protocol(self, peer: str) -> bool:
        """True when a connection from ``peer`` must start with a PROXY header."""
        if self.header != "proxy-protocol":
            return False
        address = _parse_ip(peer)
        return address is not None and self.trusts(address)

    @property
    def http_header(self) -> str | None:
        """The HTTP header to read, None with the PROXY protocol."""
        return None if self.header == "proxy-protocol" else self.header

    def client(self, peer: str, header_values: Sequence[str]) -> str:
        """The client's address for a connection from ``peer`` that carried
        ``header_values`` (every line of the configured header, in order)."""
        address = _parse_ip(peer)
        if address is None:
            return peer
        if not self.trusts(address) or not header_values or self.http_header is None:
            return str(address)
        entries = _entries(header_values, self.header)
        for entry in reversed(entries):
            said = _parse_ip(entry)
            if said is None:
                # "unknown", an obfuscated name, garbage: the hop that wrote it is the
                # last one known, so the connection counts as that proxy's own.
                break
            address = said
            if not self.trusts(address):
                break
        return str(address)


def limit_key(address: str) -> str:
    """The key that limits count ``address`` under (IPv6: its /64)."""
    parsed = _parse_ip(address)
    if isinstance(parsed, ipaddress.IPv6Address):
        return str(ipaddress.IPv6Network((parsed, 64), strict=False))
    return address


def _entries(values: Sequence[str], header: ProxyHeader) -> list[str]:
    """Every hop's address text in the header lines, left to right."""
    # Several lines of one header mean one list, in order (RFC 9110 section 5.3).
    items = [item.strip() for value in values for item in value.split(",")]
    if header == "x-forwarded-for":
        return items
    found = []
    for element in items:
        node = ""
        for pair in element.split(";"):
            name, _, value = pair.partition("=")
            if name.strip().lower() == "for":
                node = value.strip().strip('"')
        found.append(node)
    return found


def _parse_ip(text: str) -> IPAddress | None:
    """An address from ``1.2.3.4``, ``1.2.3.4:80``, ``::1``, ``[::1]`` or
    ``[::1]:80``; None for anything else."""
    text = text.strip()
    if text.startswith("["):
        text = text[1:].partition("]")[0]
    elif text.count(":") == 1:
        text = text.partition(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return address.ipv4_mapped
        if address.scope_id:
            address = ipaddress.IPv6Address(text.partition("%")[0])
    return address
