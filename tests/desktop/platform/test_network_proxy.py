"""The tray app reaches its server through a real proxy: Debian's tinyproxy on loopback,
with and without Basic authentication, chosen by the environment, by policy, or by a
PAC file served over HTTP. Each test checks the proxy's own log for the CONNECT tunnel,
so a direct connection cannot pass for one through the proxy."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from desktop_agent.connection import ConnectionService, sign_in
from desktop_agent.core.settings import Settings, StaticPolicy
from desktop_agent.core.state import CursorStore
from desktop_agent.errors import ServerUnreachable
from desktop_agent.platform.network import SETTING_KEYS, NetworkAccess, NetworkSettings
from desktop_agent.platform.proxies import ProxyUnusable
from tests.support.backend import BackendHarness, in_process_backend
from tests.support.network import Tinyproxy, file_server, microsocks, tinyproxy

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

AGENT = "ann@example.org"
PASSWORD = "correct horse battery"
PROXY_USER = ("deskbell", "pr0xy-pass")
PROXY_VARIABLES = (
    "http_proxy",
    "https_proxy",
    "all_proxy",
    "ws_proxy",
    "wss_proxy",
    "socks_proxy",
    "no_proxy",
)


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Start every test with no proxy variables (the machine's own must not leak in)."""
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[tuple[BackendHarness, str]]:
    async with in_process_backend(tmp_path / "server") as harness:
        tokens = await harness.seed({AGENT: ["Support"]}, password=PASSWORD)
        yield harness, tokens[AGENT]


@pytest.fixture
def open_proxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    with tinyproxy(tmp_path / "open-proxy") as proxy:
        yield proxy


@pytest.fixture
def auth_proxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    with tinyproxy(tmp_path / "auth-proxy", credentials=PROXY_USER) as proxy:
        yield proxy


@dataclass
class Attempt:
    states: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    changed: asyncio.Event = field(default_factory=asyncio.Event)


async def connect_once(
    url: str, token: str, tmp_path: Path, network: NetworkAccess | None
) -> Attempt:
    """Start a ConnectionService; return once it is connected or an attempt failed."""
    service = ConnectionService(
        url,
        token,
        CursorStore(tmp_path / "cursors"),
        network=network,
        delays=lambda: itertools.repeat(30.0),
    )
    attempt = Attempt()

    def record(target: list[str], item: str) -> None:
        target.append(item)
        attempt.changed.set()

    service.stateChanged.connect(lambda state: record(attempt.states, state))
    service.connectFailed.connect(lambda message: record(attempt.failures, message))
    service.start()
    try:
        async with asyncio.timeout(15):
            while "connected" not in attempt.states and not attempt.failures:
                attempt.changed.clear()
                await attempt.changed.wait()
    finally:
        await service.stop()
    return attempt


async def test_environment_proxy_carries_the_connection(
    server: tuple[BackendHarness, str],
    open_proxy: Tinyproxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness, token = server
    monkeypatch.setenv("http_proxy", open_proxy.url())

    attempt = await connect_once(harness.url, token, tmp_path, NetworkAccess())

    assert attempt.failures == []
    assert "connected" in attempt.states
    assert open_proxy.tunnels_to(harness.port) == 1
    assert open_proxy.established() == 1


async def test_environment_proxy_with_basic_authentication(
    server: tuple[BackendHarness, str],
    auth_proxy: Tinyproxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness, token = server
    monkeypatch.setenv("https_proxy", auth_proxy.url(with_credentials=True))

    attempt = await connect_once(harness.url, token, tmp_path, NetworkAccess())

    assert attempt.failures == []
    assert "connected" in attempt.states
    assert auth_proxy.tunnels_to(harness.port) == 1
    assert auth_proxy.established() == 1


async def test_proxy_asking_for_credentials_gives_a_plain_message(
    server: tuple[BackendHarness, str],
    auth_proxy: Tinyproxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness, token = server
    monkeypatch.setenv("http_proxy", auth_proxy.url(with_credentials=False))

    attempt = await connect_once(harness.url, token, tmp_path, NetworkAccess())

    assert "connected" not in attempt.states
    (message,) = attempt.failures
    assert "proxy asks for a user name and password" in message
    assert "they are kept in the system keyring" in message
    assert "Traceback" not in message
    assert auth_proxy.tunnels_to(harness.port) == 1
    assert auth_proxy.established() == 0


async def test_policy_forces_its_proxy_over_the_environment(
    server: tuple[BackendHarness, str],
    auth_proxy: Tinyproxy,
    open_proxy: Tinyproxy,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    harness, token = server
    monkeypatch.setenv("http_proxy", open_proxy.url())
    policy = StaticPolicy(
        {"ProxyMode": "manual", "ProxyServer": auth_proxy.url(with_credentials=True)}, "policy"
    )
    settings = Settings(tmp_path / "settings.toml", policy_sources=[policy])
    assert settings.is_locked("proxy_mode") and settings.is_locked("proxy_server")
    network = NetworkAccess.from_settings(
        NetworkSettings.from_values({key: settings.get(key) for key in SETTING_KEYS})
    )

    attempt = await connect_once(harness.url, token, tmp_path, network)

    assert "connected" in attempt.states
    assert auth_proxy.tunnels_to(harness.port) == 1
    assert open_proxy.tunnels_to(harness.port) == 0
    assert "***" in network.proxy_description  # the password never reaches the status view


async def test_pac_file_served_over_http_sends_the_connection_through_the_proxy(
    server: tuple[BackendHarness, str],
    open_proxy: Tinyproxy,
    tmp_path: Path,
) -> None:
    harness, token = server
    site = tmp_path / "site"
    site.mkdir()
    (site / "proxy.pac").write_text(
        "function FindProxyForURL(url, host) {\n"
        f'  if (host == "127.0.0.1" && url.indexOf(":{harness.port}/") > 0)\n'
        f'    return "PROXY 127.0.0.1:{open_proxy.port}; DIRECT";\n'
        '  return "DIRECT";\n'
        "}\n"
    )
    with file_server(site) as pac_host:
        network = NetworkAccess.from_settings(
            NetworkSettings(proxy_mode="pac", proxy_pac_url=pac_host.url("proxy.pac"))
        )
        attempt = await connect_once(harness.url, token, tmp_path, network)

    assert attempt.failures == []
    assert "connected" in attempt.states
    assert pac_host.requests == ["/proxy.pac"]
    assert open_proxy.tunnels_to(harness.port) == 1


async def test_pac_file_that_cannot_be_fetched_is_explained(
    server: tuple[BackendHarness, str], tmp_path: Path
) -> None:
    harness, token = server
    with file_server(tmp_path) as pac_host:
        missing = pac_host.url("missing.pac")
        network = NetworkAccess.from_settings(
            NetworkSettings(proxy_mode="pac", proxy_pac_url=missing)
        )
        attempt = await connect_once(harness.url, token, tmp_path, network)

    (message,) = attempt.failures
    assert f"The proxy script {missing} could not be fetched" in message
    assert "tell IT" in message


async def test_sign_in_goes_through_the_proxy_too(
    server: tuple[BackendHarness, str], auth_proxy: Tinyproxy
) -> None:
    harness, _token = server
    network = NetworkAccess.from_settings(
        NetworkSettings(proxy_mode="manual", proxy_server=auth_proxy.url(with_credentials=True))
    )

    token, agent = await sign_in(harness.url, AGENT, PASSWORD, network=network)

    assert agent.email == AGENT and token
    assert auth_proxy.tunnels_to(harness.port) == 1


async def test_sign_in_through_a_proxy_that_refuses_says_so(
    server: tuple[BackendHarness, str], auth_proxy: Tinyproxy
) -> None:
    harness, _token = server
    network = NetworkAccess.from_settings(
        NetworkSettings(proxy_mode="manual", proxy_server=auth_proxy.url(with_credentials=False))
    )

    with pytest.raises(ServerUnreachable, match="proxy asks for a user name and password"):
        await sign_in(harness.url, AGENT, PASSWORD, network=network)


async def test_socks5_proxy_from_the_environment(
    server: tuple[BackendHarness, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    harness, token = server
    with microsocks(tmp_path / "socks") as socks:
        monkeypatch.setenv("socks_proxy", socks.url("socks5h"))
        attempt = await connect_once(harness.url, token, tmp_path, NetworkAccess())
        assert attempt.failures == []
        assert "connected" in attempt.states
        assert socks.connections_to(harness.port) == 1


async def test_socks5_proxy_with_a_password_set_by_policy(
    server: tuple[BackendHarness, str], tmp_path: Path
) -> None:
    harness, token = server
    with microsocks(tmp_path / "socks", credentials=PROXY_USER) as socks:
        network = NetworkAccess.from_settings(
            NetworkSettings(proxy_mode="manual", proxy_server=socks.url("socks5"))
        )
        attempt = await connect_once(harness.url, token, tmp_path, network)
        assert attempt.failures == []
        assert "connected" in attempt.states
        assert socks.connections_to(harness.port) == 1

        wrong = NetworkAccess.from_settings(
            NetworkSettings(
                proxy_mode="manual",
                proxy_server=f"socks5://deskbell:wrong@127.0.0.1:{socks.port}",
            )
        )
        refused = await connect_once(harness.url, token, tmp_path, wrong)
        (message,) = refused.failures
        assert "proxy" in message.lower()
        assert socks.connections_to(harness.port) == 1


def test_identity_provider_is_reached_through_the_same_proxy_and_trust(
    auth_proxy: Tinyproxy, tmp_path: Path
) -> None:
    """Single sign-on's requests to the provider (discovery, token endpoint): through
    the policy's authenticating proxy, to an https server signed by the company CA."""
    from desktop_agent.shell.sso import fetch_json
    from tests.support.network import make_private_ca

    ca = make_private_ca(tmp_path / "pki")
    site = tmp_path / "idp" / ".well-known"
    site.mkdir(parents=True)
    (site / "openid-configuration").write_text('{"issuer": "https://127.0.0.1"}')
    network = NetworkAccess.from_settings(
        NetworkSettings(
            proxy_mode="manual",
            proxy_server=auth_proxy.url(with_credentials=True),
            ca_file=str(ca.ca_cert),
        )
    )
    with file_server(tmp_path / "idp", tls=ca) as idp:
        url = idp.url(".well-known/openid-configuration")
        assert fetch_json(url, None, opener=network.https_opener(url)) == {
            "issuer": "https://127.0.0.1"
        }
        assert auth_proxy.tunnels_to(idp.port) == 1


def test_identity_provider_behind_a_socks_proxy_is_explained() -> None:
    network = NetworkAccess.from_settings(
        NetworkSettings(proxy_mode="manual", proxy_server="socks5://127.0.0.1:1080")
    )
    with pytest.raises(ProxyUnusable, match="SOCKS proxy"):
        network.https_opener("https://login.example.org/token")
