"""The tray app trusts what the OS trusts, plus a CA file named by policy, and explains a
certificate it cannot verify. A private CA is made for the test; the real
``deskbell-server`` serves a certificate it signed (``--tls-cert``/``--tls-key``).

On Linux the OS trust store is OpenSSL's, which reads ``SSL_CERT_FILE`` and
``SSL_CERT_DIR``; truststore uses it as it is, so pointing those at the private CA is
installing it "in the system store" of this test's environment."""

from __future__ import annotations

import asyncio
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from desktop_agent.connection import ConnectionService, sign_in
from desktop_agent.core.settings import Settings, StaticPolicy
from desktop_agent.core.state import CursorStore
from desktop_agent.errors import ServerUnreachable
from desktop_agent.platform.network import NetworkAccess, NetworkSettings
from tests.support.backend import ServerProcess, seed_db
from tests.support.network import PrivateCa, file_server, make_private_ca

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

AGENT = "ann@example.org"
PASSWORD = "correct horse battery"


@dataclass(frozen=True)
class TlsServer:
    url: str
    token: str
    ca: PrivateCa


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TlsServer]:
    base = tmp_path_factory.mktemp("tls")
    ca = make_private_ca(base / "pki")
    db = str(base / "deskbell.sqlite3")

    async def seed() -> dict[str, str]:
        return await seed_db(db, {AGENT: ["Support"]})

    tokens = asyncio.run(seed())
    server = ServerProcess(
        db, extra=["--tls-cert", str(ca.server_cert), "--tls-key", str(ca.server_key)]
    )
    server.start()
    try:
        yield TlsServer(f"wss://127.0.0.1:{server.port}", tokens[AGENT], ca)
    finally:
        server.stop()


@pytest.fixture
def system_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An OS trust store of this test's own, empty until a test adds a CA to it."""
    store = tmp_path / "system-store.pem"
    store.write_text("")
    monkeypatch.setenv("SSL_CERT_FILE", str(store))
    monkeypatch.setenv("SSL_CERT_DIR", str(tmp_path / "no-cert-dir"))
    return store


async def connect_once(
    url: str, token: str, tmp_path: Path, network: NetworkAccess
) -> tuple[list[str], list[str]]:
    """(states, failure messages) once connected or after the first failed attempt."""
    service = ConnectionService(
        url,
        token,
        CursorStore(tmp_path / "cursors"),
        network=network,
        delays=lambda: itertools.repeat(30.0),
    )
    states: list[str] = []
    failures: list[str] = []
    changed = asyncio.Event()
    service.stateChanged.connect(lambda state: (states.append(state), changed.set()))
    service.connectFailed.connect(lambda message: (failures.append(message), changed.set()))
    service.start()
    try:
        async with asyncio.timeout(15):
            while "connected" not in states and not failures:
                changed.clear()
                await changed.wait()
    finally:
        await service.stop()
    return states, failures


async def test_ca_installed_in_the_system_store_just_works(
    tls_server: TlsServer, system_store: Path, tmp_path: Path
) -> None:
    system_store.write_bytes(tls_server.ca.ca_cert.read_bytes())

    states, failures = await connect_once(
        tls_server.url, tls_server.token, tmp_path, NetworkAccess()
    )

    assert failures == []
    assert "connected" in states


async def test_ca_file_from_policy_is_trusted_besides_the_system_store(
    tls_server: TlsServer, system_store: Path, tmp_path: Path
) -> None:
    policy = StaticPolicy({"CaFile": str(tls_server.ca.ca_cert)}, "policy")
    settings = Settings(tmp_path / "settings.toml", policy_sources=[policy])
    assert settings.is_locked("ca_file")
    network = NetworkAccess.from_settings(
        NetworkSettings.from_values({"ca_file": settings.get("ca_file")})
    )

    states, failures = await connect_once(tls_server.url, tls_server.token, tmp_path, network)

    assert failures == []
    assert "connected" in states


async def test_certificate_of_an_unknown_ca_gets_a_plain_message_for_it(
    tls_server: TlsServer, system_store: Path, tmp_path: Path
) -> None:
    states, failures = await connect_once(
        tls_server.url, tls_server.token, tmp_path, NetworkAccess()
    )

    assert "connected" not in states
    (message,) = failures
    assert message.startswith(
        "Deskbell could not verify the security certificate of 127.0.0.1 "
        "(unable to get local issuer certificate)"
    )
    assert "Tell IT:" in message
    assert "CaFile" in message
    assert "Traceback" not in message


async def test_sign_in_explains_an_untrusted_certificate(
    tls_server: TlsServer, system_store: Path
) -> None:
    with pytest.raises(ServerUnreachable, match="could not verify the security certificate"):
        await sign_in(tls_server.url, AGENT, PASSWORD, network=NetworkAccess())


async def test_unreadable_ca_file_from_policy_is_explained(
    tls_server: TlsServer, system_store: Path, tmp_path: Path
) -> None:
    missing = tmp_path / "company-ca.pem"
    network = NetworkAccess.from_settings(NetworkSettings(ca_file=str(missing)))

    _states, failures = await connect_once(tls_server.url, tls_server.token, tmp_path, network)

    (message,) = failures
    assert f"The CA certificate file {missing} set by your organisation could not be used" in (
        message
    )
    assert "Tell IT" in message


async def test_pac_file_over_https_is_trusted_like_the_server(
    tls_server: TlsServer, system_store: Path, tmp_path: Path
) -> None:
    """A PAC address on an internal https server signed by the company CA: fetched with
    the same trust (here the policy's CA file), refused without it."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "proxy.pac").write_text('function FindProxyForURL(url, host) { return "DIRECT"; }\n')
    with file_server(site, tls=tls_server.ca) as pac_host:
        pac_url = pac_host.url("proxy.pac")
        trusted = NetworkAccess.from_settings(
            NetworkSettings(
                proxy_mode="pac", proxy_pac_url=pac_url, ca_file=str(tls_server.ca.ca_cert)
            )
        )
        states, failures = await connect_once(tls_server.url, tls_server.token, tmp_path, trusted)
        assert failures == [] and "connected" in states
        assert pac_host.requests == ["/proxy.pac"]

        untrusted = NetworkAccess.from_settings(
            NetworkSettings(proxy_mode="pac", proxy_pac_url=pac_url)
        )
        _states, failures = await connect_once(
            tls_server.url, tls_server.token, tmp_path, untrusted
        )
        (message,) = failures
        assert f"The proxy script {pac_url} could not be fetched" in message
        assert "CERTIFICATE_VERIFY_FAILED" in message
