"""Issue 11, acceptance: behind a real reverse proxy on loopback (haproxy and nginx
adding X-Forwarded-For; haproxy as a layer-4 balancer sending the PROXY protocol,
versions 1 and 2), limits apply per real client, and a client that is not a trusted
proxy cannot choose its address with a header.

Clients connect from different loopback addresses (127.0.0.2 is the attacker, .3 an
agent, .4 a client that goes around the proxy); the proxy reaches the server from
127.0.0.1, the only trusted proxy.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidMessage

from tests.support.backend import BackendHarness, WsClient, in_process_backend
from tests.support.reverse_proxy import ReverseProxy, binary

ATTACKER, AGENT, AROUND = "127.0.0.2", "127.0.0.3", "127.0.0.4"
SPOOFS = [
    {"X-Forwarded-For": AGENT},
    {"X-Forwarded-For": "203.0.113.9, 198.51.100.4"},
    {"Forwarded": f"for={AGENT}"},
    {"X-Real-IP": AGENT},
]
"""Headers a client adds to pass for someone else."""


SETUPS = {
    "haproxy": ("haproxy", None),
    "nginx": ("nginx", None),
    "haproxy-proxy-v1": ("haproxy", "send-proxy"),
    "haproxy-proxy-v2": ("haproxy", "send-proxy-v2"),
}
DEBIAN_PACKAGE = {"haproxy": "haproxy", "nginx": "nginx-light"}


@pytest.fixture(params=sorted(SETUPS))
async def proxied(
    request: pytest.FixtureRequest, tmp_path: Path
) -> AsyncIterator[tuple[BackendHarness, str]]:
    """A server that trusts 127.0.0.1, and the URL of a proxy in front of it."""
    name, send_proxy = SETUPS[request.param]
    if binary(name) is None:
        pytest.skip(f"{name} is not installed (Debian package {DEBIAN_PACKAGE[name]})")
    async with in_process_backend(
        tmp_path,
        trusted_proxy=("127.0.0.1/32",),
        proxy_header="proxy-protocol" if send_proxy else "x-forwarded-for",
        login_attempts_per_address=5,
        visitor_starts_per_address=3,
    ) as server:
        proxy = ReverseProxy(name, server.port, tmp_path / name, send_proxy)
        proxy.start()
        try:
            yield server, proxy.url
        finally:
            proxy.stop()


async def _open(
    url: str, path: str, source: str, headers: dict[str, str] | None = None
) -> WsClient:
    ws = await connect(
        f"{url}{path}",
        subprotocols=["deskbell.v1"],  # type: ignore[list-item]
        additional_headers=headers or {},
        local_addr=(source, 0),
    )
    return WsClient(ws)


async def _request(
    url: str, path: str, source: str, frame: dict[str, Any], headers: dict[str, str] | None = None
) -> dict[str, Any]:
    client = await _open(url, path, source, headers)
    try:
        return await client.request(frame)
    finally:
        await client.close()


async def test_failed_sign_ins_by_one_client_do_not_lock_out_the_others(
    proxied: tuple[BackendHarness, str],
) -> None:
    server, url = proxied
    await server.seed({"ann@x.org": ["Support"]}, password="right")
    guess = {"type": "login", "password": "guess"}
    replies = [
        await _request(url, "/auth", ATTACKER, {**guess, "email": f"x{n}@x.org"}) for n in range(5)
    ]
    assert {r["code"] for r in replies} == {"unauthorized"}
    # Whatever it claims to be, the attacker is still itself.
    for headers in SPOOFS:
        refused = await _request(url, "/auth", ATTACKER, {**guess, "email": "y@x.org"}, headers)
        assert refused["code"] == "rate_limited", headers
    ann = await _request(
        url, "/auth", AGENT, {"type": "login", "email": "ann@x.org", "password": "right"}
    )
    assert ann["type"] == "ok"


async def test_visitor_starts_are_counted_per_real_client(
    proxied: tuple[BackendHarness, str],
) -> None:
    server, url = proxied
    await server.seed({"ann@x.org": ["Support"]})
    start = {"type": "start", "inbox": "Support", "name": "Dana", "text": "Hello"}
    for headers in [{}, *SPOOFS[:2]]:
        assert (await _request(url, "/visitor", ATTACKER, dict(start), headers))["type"] == "ok"
    for headers in [{}, *SPOOFS]:
        refused = await _request(url, "/visitor", ATTACKER, dict(start), headers)
        assert refused["code"] == "rate_limited", headers
    assert (await _request(url, "/visitor", AGENT, dict(start)))["type"] == "ok"


async def test_a_client_going_around_the_proxy_cannot_choose_its_address(
    proxied: tuple[BackendHarness, str],
) -> None:
    server, _ = proxied
    await server.seed({"ann@x.org": ["Support"]})
    start = {"type": "start", "inbox": "Support", "name": "Dana", "text": "Hello"}
    # Straight to the server from 127.0.0.4, each time claiming another address.
    replies = [
        await _request(
            server.url, "/visitor", AROUND, dict(start), {"X-Forwarded-For": f"198.51.100.{n}"}
        )
        for n in range(4)
    ]
    assert [r["type"] for r in replies] == ["ok", "ok", "ok", "error"]
    assert replies[-1]["code"] == "rate_limited"
    # Its claims spent nobody else's budget: the client it named still starts (through
    # the proxy's address, as the proxy would say it).
    if server.backend.server.options.trusted_proxies.header == "proxy-protocol":
        # From a trusted proxy's address, a connection without the PROXY header is cut.
        with pytest.raises((InvalidMessage, OSError)):
            await _open(server.url, "/visitor", "127.0.0.1")
        return
    named = await _request(
        server.url, "/visitor", "127.0.0.1", dict(start), {"X-Forwarded-For": "198.51.100.0"}
    )
    assert named["type"] == "ok"
