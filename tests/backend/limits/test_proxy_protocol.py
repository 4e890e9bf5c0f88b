"""The PROXY protocol header parser (backend.proxy_protocol)."""

from __future__ import annotations

import ipaddress
import struct

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backend.proxy_protocol import V2_SIGNATURE, ProxyProtocolError, parse

REQUEST = b"GET /visitor HTTP/1.1\r\n"


def v2(command: int, family: int, block: bytes) -> bytes:
    return V2_SIGNATURE + struct.pack("!BBH", 0x20 | command, family, len(block)) + block


def v2_tcp4(source: str) -> bytes:
    block = ipaddress.IPv4Address(source).packed + bytes(4) + struct.pack("!HH", 5555, 443)
    return v2(1, 0x11, block)


def v2_tcp6(source: str) -> bytes:
    block = ipaddress.IPv6Address(source).packed + bytes(16) + struct.pack("!HH", 5555, 443)
    return v2(1, 0x21, block)


HEADERS = [
    (b"PROXY TCP4 198.51.100.7 10.0.0.1 5555 443\r\n", "198.51.100.7"),
    (b"PROXY TCP6 2001:db8::7 2001:db8::1 5555 443\r\n", "2001:db8::7"),
    (b"PROXY UNKNOWN\r\n", None),
    (v2_tcp4("198.51.100.7"), "198.51.100.7"),
    (v2_tcp6("2001:db8::7"), "2001:db8::7"),
    (v2_tcp6("::ffff:198.51.100.7"), "198.51.100.7"),
    (v2(0, 0x00, b""), None),  # LOCAL: the proxy's own health check
    (v2(1, 0x11, v2_tcp4("198.51.100.7")[16:] + b"\x04\x00\x01x"), "198.51.100.7"),  # a TLV
]


@pytest.mark.parametrize(("header", "client"), HEADERS)
def test_headers_name_the_client_and_end_where_the_stream_begins(
    header: bytes, client: str | None
) -> None:
    assert parse(header + REQUEST) == (client, len(header))


@given(data=st.data())
def test_a_header_split_anywhere_waits_for_the_rest(data: st.DataObject) -> None:
    header, client = data.draw(st.sampled_from(HEADERS))
    cut = data.draw(st.integers(min_value=0, max_value=len(header) - 1))
    assert parse(header[:cut]) is None
    assert parse(header) == (client, len(header))


@pytest.mark.parametrize(
    "data",
    [
        REQUEST,
        b"PROXY TCP4 not-an-address 10.0.0.1 1 2\r\n",
        b"PROXY TCP4 2001:db8::7 10.0.0.1 1 2\r\n",
        b"PROXY " + b"x" * 120,
        V2_SIGNATURE + b"\x31\x11\x00\x0c" + bytes(12),  # version 3
        v2(1, 0x11, bytes(4)),  # address block too short
        V2_SIGNATURE[:6] + b"nope!!",
    ],
)
def test_anything_else_is_refused(data: bytes) -> None:
    with pytest.raises(ProxyProtocolError):
        parse(data)
