"""Choosing the proxy: PAC answers, the OS view through Qt (real here, faked for what
Windows and macOS answer), policy settings, credentials kept out of sight."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pytest

from desktop_agent.core.settings import Settings, StaticPolicy
from desktop_agent.platform.network import NetworkAccess, NetworkSettings
from desktop_agent.platform.proxies import (
    EnvironmentProxies,
    FixedProxy,
    PacProxies,
    ProxyUnusable,
    QtSystemProxies,
    choose_entry,
    entry_to_url,
    qt_system_lookup,
    resolver_for,
)

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SERVER = "wss://deskbell.example.org/agent"


@pytest.fixture(autouse=True)
def no_proxy_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("http_proxy", "https_proxy", "all_proxy", "no_proxy", "wss_proxy", "ws_proxy"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)


@pytest.mark.parametrize(
    ("entry", "url"),
    [
        ("PROXY proxy.example.org:3128", "http://proxy.example.org:3128"),
        ("HTTPS proxy.example.org:443", "https://proxy.example.org:443"),
        ("SOCKS socks.example.org:1080", "socks5h://socks.example.org:1080"),
        ("SOCKS5 socks.example.org:1080", "socks5h://socks.example.org:1080"),
        ("SOCKS4 socks.example.org:1080", "socks4a://socks.example.org:1080"),
        ("DIRECT", None),
        ("direct", None),
    ],
)
def test_pac_entries_become_proxy_addresses(entry: str, url: str | None) -> None:
    assert entry_to_url(entry) == url


def test_first_usable_pac_entry_wins() -> None:
    assert choose_entry("FTP x:21; PROXY a:3128; DIRECT") == "http://a:3128"
    assert choose_entry("DIRECT; PROXY a:3128") is None
    assert choose_entry("") is None
    with pytest.raises(ValueError):
        choose_entry("QUIC q:443")


class FakeOs:
    """Stands in for Qt's query of the Windows or macOS proxy settings."""

    def __init__(self, answer: Sequence[str]) -> None:
        self.answer = list(answer)
        self.asked: list[str] = []

    def __call__(self, url: str) -> list[str]:
        self.asked.append(url)
        return self.answer


async def test_system_proxy_on_windows_and_macos_comes_from_the_os_query() -> None:
    os_settings = FakeOs(["PROXY corp-proxy.example.org:8080", "DIRECT"])
    resolver = resolver_for("system", platform="win32", system_lookup=os_settings)

    assert await resolver.proxy_for(SERVER) == "http://corp-proxy.example.org:8080"
    # PAC scripts and OS settings are asked about https, the scheme they know.
    assert os_settings.asked == ["https://deskbell.example.org:443/agent"]
    assert resolver.description == "system settings"


async def test_system_answer_direct_means_no_proxy() -> None:
    resolver = QtSystemProxies(FakeOs(["DIRECT"]))
    assert await resolver.proxy_for("ws://10.0.0.5:8765/agent") is None


async def test_system_answer_with_only_unusable_proxies_is_explained() -> None:
    resolver = QtSystemProxies(FakeOs(["UNSUPPORTED ftp-gw:21"]))
    with pytest.raises(ProxyUnusable, match="Ask IT for an HTTP or SOCKS proxy"):
        await resolver.proxy_for(SERVER)


async def test_qt_reports_the_proxy_it_finds_here(monkeypatch: pytest.MonkeyPatch) -> None:
    """The real Qt query (on Linux Qt reads the same environment variables)."""
    monkeypatch.setenv("https_proxy", "http://alice:secret@127.0.0.1:3128")
    monkeypatch.setenv("http_proxy", "socks5://127.0.0.1:1080")

    assert qt_system_lookup("https://deskbell.example.org:443/") == [
        "PROXY alice:secret@127.0.0.1:3128"
    ]
    assert await QtSystemProxies().proxy_for("ws://deskbell.example.org:80/") == (
        "socks5h://127.0.0.1:1080"
    )


async def test_linux_system_proxy_is_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    resolver = resolver_for("system", platform="linux")
    assert isinstance(resolver, EnvironmentProxies)
    assert await resolver.proxy_for(SERVER) is None
    monkeypatch.setenv("https_proxy", "http://proxy.example.org:3128")
    assert await resolver.proxy_for(SERVER) == "http://proxy.example.org:3128"
    monkeypatch.setenv("no_proxy", "deskbell.example.org")
    assert await resolver.proxy_for(SERVER) is None


async def test_pac_script_is_fetched_once_then_again_after_a_while() -> None:
    fetched: list[str] = []
    now = [0.0]

    def fetch(url: str) -> str:
        fetched.append(url)
        port = 3128 if len(fetched) == 1 else 8080
        return f'function FindProxyForURL(url, host) {{ return "PROXY p:{port}"; }}'

    resolver = PacProxies(
        "http://wpad/proxy.pac", fetch=fetch, refresh_after=600, clock=lambda: now[0]
    )
    assert await resolver.proxy_for(SERVER) == "http://p:3128"
    now[0] = 599
    assert await resolver.proxy_for(SERVER) == "http://p:3128"
    now[0] = 601
    assert await resolver.proxy_for(SERVER) == "http://p:8080"
    assert fetched == ["http://wpad/proxy.pac"] * 2


async def test_pac_script_from_a_file(tmp_path: Path) -> None:
    script = tmp_path / "proxy.pac"
    script.write_text(
        "function FindProxyForURL(url, host) {\n"
        '  return dnsDomainIs(host, ".example.org") ? "SOCKS5 s:1080" : "DIRECT";\n'
        "}\n"
    )
    resolver = resolver_for("pac", pac_url=script.as_uri())
    assert await resolver.proxy_for(SERVER) == "socks5h://s:1080"
    assert await resolver.proxy_for("wss://elsewhere.test/agent") is None


async def test_broken_pac_script_is_explained() -> None:
    resolver = PacProxies("http://wpad/proxy.pac", fetch=lambda _url: "this is not javascript(")
    with pytest.raises(ProxyUnusable, match="is not a valid PAC file"):
        await resolver.proxy_for(SERVER)


def test_manual_mode_needs_a_server_and_pac_mode_a_script() -> None:
    with pytest.raises(ProxyUnusable, match="ProxyServer"):
        resolver_for("manual")
    with pytest.raises(ProxyUnusable, match="ProxyPacUrl"):
        resolver_for("pac")


async def test_a_misconfigured_forced_proxy_never_falls_back_to_direct() -> None:
    network = NetworkAccess.from_settings(NetworkSettings(proxy_mode="manual"))
    assert network.proxy_description.startswith("not usable: The proxy mode is manual")
    with pytest.raises(ProxyUnusable):
        await network.connect_options(SERVER)


async def test_direct_mode_ignores_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("https_proxy", "http://proxy.example.org:3128")
    network = NetworkAccess.from_settings(NetworkSettings(proxy_mode="direct"))
    options = await network.connect_options(SERVER)
    assert options["proxy"] is None
    assert options["ssl"] is network.ssl_context()


def test_fixed_proxy_hides_its_password() -> None:
    proxy = FixedProxy("http://alice:secret@proxy.example.org:3128")
    assert "secret" not in proxy.description
    assert "alice:***@proxy.example.org:3128" in proxy.description


def test_fixed_proxy_of_an_unknown_kind_is_refused() -> None:
    with pytest.raises(ProxyUnusable, match="cannot be used"):
        FixedProxy("ftp://proxy.example.org:21")


def test_policy_proxy_settings_are_checked_and_locked(tmp_path: Path) -> None:
    policy = StaticPolicy(
        {
            "ProxyMode": "PAC",
            "ProxyPacUrl": "http://wpad.example.org/proxy.pac",
            "ProxyServer": "gopher://nope",
        },
        "policy",
    )
    settings = Settings(tmp_path / "s.toml", policy_sources=[policy])
    assert settings.get("proxy_mode") == "pac"
    assert settings.is_locked("proxy_mode")
    assert settings.get("proxy_pac_url") == "http://wpad.example.org/proxy.pac"
    assert settings.get("proxy_server") == ""
    (problem,) = settings.problems
    assert problem.key == "ProxyServer"


async def test_tls_to_an_https_proxy_trusts_the_same_stores() -> None:
    network = NetworkAccess(FixedProxy("https://proxy.example.org:443"))
    options = await network.connect_options("ws://deskbell.example.org/agent")
    assert options == {
        "proxy": "https://proxy.example.org:443",
        "proxy_ssl": network.ssl_context(),
    }
    plain = NetworkAccess(FixedProxy("http://proxy.example.org:3128"))
    assert "proxy_ssl" not in await plain.connect_options(SERVER)
