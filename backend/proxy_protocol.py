"""The PROXY protocol header (versions 1 and 2), as HAProxy documents it
(https://www.haproxy.org/download/2.6/doc/proxy-protocol.txt).

A layer-4 balancer that cannot add HTTP headers (or one that should not touch the
stream) sends this header first on every connection: the client's address and port,
then the client's own bytes. Only connections from ``trusted_proxy`` networks are read
this way, and from them the header is required.

Pure parsing, no I/O: :func:`parse` is given the bytes received so far.
"""

from __future__ import annotations

import ipaddress
import struct

V2_SIGNATURE = b"\r\n\r\n\x00\r\nQUIT\n"
V1_PREFIX = b"PROXY "
V1_MAX = 107
"""Longest version 1 line, CRLF included (section 2.1)."""
MAX_HEADER = 4096
"""Longest version 2 header accepted (its TLVs included); longer ones are refused."""


class ProxyProtocolError(ValueError):
    """The bytes are not a PROXY protocol header this server accepts."""


def parse(data: bytes) -> tuple[str | None, int] | None:
    """Read the header at the start of ``data``.

    Returns:
        None when more bytes are needed; else (the client's address, or None when the
        proxy speaks for itself: ``LOCAL``, ``UNKNOWN``, a non-IP family), and the
        header's length in bytes (what follows is the client's stream).

    Raises:
        ProxyProtocolError: ``data`` does not start with a valid header.
    """
    if data[:1] == V1_PREFIX[:1]:
        return _parse_v1(data)
    if data[:1] == V2_SIGNATURE[:1]:
        return _parse_v2(data)
    if not data:
        return None
    raise ProxyProtocolError("the connection did not start with a PROXY protocol header")


def _parse_v1(data: bytes) -> tuple[str | None, int] | None:
    if not data.startswith(V1_PREFIX[: len(data)]):
        raise ProxyProtocolError("not a PROXY protocol header")
    end = data.find(b"\r\n", 0, V1_MAX)
    if end < 0:
        if len(data) >= V1_MAX:
            raise ProxyProtocolError("PROXY protocol v1 line too long")
        return None
    fields = data[:end].decode("ascii", "replace").split(" ")
    size = end + 2
    if len(fields) >= 2 and fields[1] == "UNKNOWN":
        return None, size
    if len(fields) != 6 or fields[1] not in ("TCP4", "TCP6"):
        raise ProxyProtocolError("malformed PROXY protocol v1 line")
    try:
        address = ipaddress.ip_address(fields[2])
    except ValueError:
        raise ProxyProtocolError("malformed PROXY protocol v1 address") from None
    if (address.version == 4) != (fields[1] == "TCP4"):
        raise ProxyProtocolError("PROXY protocol v1 family and address disagree")
    return str(address), size


def _parse_v2(data: bytes) -> tuple[str | None, int] | None:
    if len(data) < 16:
        if not V2_SIGNATURE.startswith(data[:12]):
            raise ProxyProtocolError("not a PROXY protocol header")
        return None
    if not data.startswith(V2_SIGNATURE):
        raise ProxyProtocolError("not a PROXY protocol header")
    version_command, family, length = struct.unpack("!BBH", data[12:16])
    if version_command >> 4 != 2 or version_command & 0x0F > 1:
        raise ProxyProtocolError("unsupported PROXY protocol v2 version or command")
    size = 16 + length
    if size > MAX_HEADER:
        raise ProxyProtocolError("PROXY protocol v2 header too long")
    if len(data) < size:
        return None
    if version_command & 0x0F == 0:  # LOCAL: the proxy's own connection (a health check)
        return None, size
    block = data[16:size]
    if family >> 4 == 1 and len(block) >= 12:  # AF_INET
        return str(ipaddress.IPv4Address(block[:4])), size
    if family >> 4 == 2 and len(block) >= 36:  # AF_INET6
        address = ipaddress.IPv6Address(block[:16])
        return str(address.ipv4_mapped or address), size
    if family >> 4 in (1, 2):
        raise ProxyProtocolError("PROXY protocol v2 address block too short")
    return None, size  # AF_UNSPEC or AF_UNIX: no IP to name
