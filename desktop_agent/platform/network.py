"""How the tray app reaches its server on a company network: proxy and TLS trust.

:class:`NetworkAccess` is what the connection code asks before every connection
attempt: it returns the keyword arguments for ``websockets.asyncio.client.connect``
(``proxy=`` and, for ``wss://``, ``ssl=``). The proxy comes from a
:class:`~desktop_agent.platform.proxies.ProxyResolver`; TLS verifies the server
against the operating system's trust store (``truststore``: the Windows certificate
store, the macOS keychain, OpenSSL's store on Linux, which honours ``SSL_CERT_FILE``
and ``SSL_CERT_DIR``), so a CA that IT installed there just works, plus an optional CA
file named by policy (``CaFile``).

:func:`describe_failure` turns what went wrong into a sentence for a person, with what
to tell IT when the network (proxy, certificate) is the cause.
"""

from __future__ import annotations

import asyncio
import ssl
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from websockets.exceptions import InvalidProxyMessage, InvalidProxyStatus, ProxyError
from websockets.uri import parse_uri

from desktop_agent.errors import DeskbellError
from desktop_agent.platform.proxies import (
    EnvironmentProxies,
    ProxyResolver,
    ProxyUnusable,
    fetch_pac,
    hide_password,
    resolver_for,
    with_credentials,
)

CredentialLookup = Callable[[str], "tuple[str, str] | None"]
"""Returns the (user, password) kept for a proxy ``host:port``, or None."""


class TlsSetupError(DeskbellError):
    """The CA file named by policy cannot be used; the message says what to tell IT."""


def tls_context(ca_file: Path | None = None) -> ssl.SSLContext:
    """A client TLS context that trusts the OS trust store, and ``ca_file`` as well.

    Raises:
        TlsSetupError: ``ca_file`` cannot be read or holds no certificate.
    """
    import truststore

    context: ssl.SSLContext = truststore.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    if ca_file is not None:
        try:
            context.load_verify_locations(cafile=str(ca_file))
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise TlsSetupError(
                f"The CA certificate file {ca_file} set by your organisation could not be "
                f"used ({getattr(exc, 'strerror', None) or exc}). Tell IT: the CaFile policy "
                "must name a readable PEM file with the company's CA certificate."
            ) from None
    return context


SETTING_KEYS: tuple[str, ...] = ("proxy_mode", "proxy_server", "proxy_pac_url", "ca_file")
"""The settings (core/settings.py keys) that :class:`NetworkSettings` is made of."""


@dataclass(frozen=True)
class NetworkSettings:
    """The network settings (see ``ProxyMode``, ``ProxyServer``, ``ProxyPacUrl``,
    ``CaFile`` in docs/deployment.md)."""

    proxy_mode: str = "system"
    proxy_server: str = ""
    proxy_pac_url: str = ""
    ca_file: str = ""

    @classmethod
    def from_values(cls, values: Mapping[str, Any]) -> NetworkSettings:
        """From a mapping of setting keys (``proxy_mode``, ...) to values."""
        return cls(
            proxy_mode=str(values.get("proxy_mode") or "system"),
            proxy_server=str(values.get("proxy_server") or ""),
            proxy_pac_url=str(values.get("proxy_pac_url") or ""),
            ca_file=str(values.get("ca_file") or ""),
        )


class NetworkAccess:
    """The proxy and TLS trust for every connection to the server.

    Args:
        proxies: chooses the proxy per address; the environment by default.
        ca_file: a CA certificate file trusted besides the OS trust store.
        setup_problem: a configuration problem found when this was built; every
            connection attempt then fails with it (a misconfigured forced proxy must
            not silently become a direct connection).
        credentials: the (user, password) kept for a proxy ``host:port`` that asked for
            them (the keyring); used when the proxy's address carries none.
    """

    def __init__(
        self,
        proxies: ProxyResolver | None = None,
        *,
        ca_file: Path | None = None,
        setup_problem: DeskbellError | None = None,
        credentials: CredentialLookup | None = None,
    ) -> None:
        self.proxies: ProxyResolver = proxies if proxies is not None else EnvironmentProxies()
        self.ca_file = ca_file
        self._setup_problem = setup_problem
        self._credentials = credentials
        self._ssl: ssl.SSLContext | None = None
        self._last_proxy: str | None = None
        self.proxy_needing_credentials: str | None = None
        """``host:port`` of the proxy whose last answer was 407, else None."""

    @classmethod
    def from_settings(
        cls,
        settings: NetworkSettings,
        *,
        credentials: CredentialLookup | None = None,
        **resolver_options: Any,
    ) -> NetworkAccess:
        """Build from settings; a bad setting becomes the ``setup_problem`` (never raises).

        Args:
            credentials: see the class.
            resolver_options: passed to :func:`~desktop_agent.platform.proxies.resolver_for`
                (``platform``, ``system_lookup``, ``pac_fetch``).
        """
        ca_file = Path(settings.ca_file).expanduser() if settings.ca_file else None
        holder: list[NetworkAccess] = []

        def fetch_pac_trusted(url: str) -> str:
            # An https PAC address is verified like the server (OS store + CaFile).
            context = holder[0].ssl_context() if holder else None
            return fetch_pac(url, context)

        resolver_options.setdefault("pac_fetch", fetch_pac_trusted)
        try:
            proxies = resolver_for(
                settings.proxy_mode,
                server=settings.proxy_server,
                pac_url=settings.proxy_pac_url,
                **resolver_options,
            )
        except ProxyUnusable as exc:
            return cls(ca_file=ca_file, setup_problem=exc)
        network = cls(proxies, ca_file=ca_file, credentials=credentials)
        holder.append(network)
        return network

    @property
    def proxy_description(self) -> str:
        """Where the proxy comes from, for the status view."""
        if self._setup_problem is not None:
            return f"not usable: {self._setup_problem}"
        return self.proxies.description

    def ssl_context(self) -> ssl.SSLContext:
        """The TLS context (built once).

        Raises:
            TlsSetupError: the CA file cannot be used.
        """
        if self._ssl is None:
            self._ssl = tls_context(self.ca_file)
        return self._ssl

    async def connect_options(self, url: str) -> dict[str, Any]:
        """Keyword arguments for ``websockets.asyncio.client.connect(url, ...)``.

        Raises:
            ProxyUnusable: the proxy configuration cannot be used now.
            TlsSetupError: the CA file cannot be used.
        """
        if self._setup_problem is not None:
            raise self._setup_problem
        proxy = await self.proxies.proxy_for(url)
        if proxy is not None and self._credentials is not None:
            from desktop_agent.platform.proxy_credentials import proxy_address

            proxy = with_credentials(proxy, self._credentials(proxy_address(proxy)))
        self._last_proxy = proxy
        options: dict[str, Any] = {"proxy": proxy}
        if parse_uri(url).secure:
            options["ssl"] = self.ssl_context()
        if proxy is not None and proxy.lower().startswith("https://"):
            # TLS to the proxy itself trusts the same stores as TLS to the server.
            options["proxy_ssl"] = self.ssl_context()
        return options

    def https_opener(self, url: str) -> urllib.request.OpenerDirector:
        """A urllib opener for an ``http(s)://`` ``url`` with the same proxy and TLS trust
        as the server connection (single sign-on's requests to the identity provider).
        Call it from a worker thread: it may run a PAC script or ask the OS.

        Raises:
            ProxyUnusable: the proxy configuration cannot be used, or names a SOCKS
                proxy (urllib speaks HTTP proxies only).
            TlsSetupError: the CA file cannot be used.
        """
        if self._setup_problem is not None:
            raise self._setup_problem
        parts = urllib.parse.urlsplit(url)
        scheme = "wss" if parts.scheme == "https" else "ws"
        port = f":{parts.port}" if parts.port else ""
        proxy = asyncio.run(self.proxies.proxy_for(f"{scheme}://{parts.hostname}{port}/"))
        if proxy is not None and self._credentials is not None:
            from desktop_agent.platform.proxy_credentials import proxy_address

            proxy = with_credentials(proxy, self._credentials(proxy_address(proxy)))
        if proxy is not None and not proxy.lower().startswith(("http://", "https://")):
            raise ProxyUnusable(
                f"The proxy {hide_password(proxy)} is a SOCKS proxy, which the sign-in with "
                "your company account cannot use. Tell IT: the identity provider must be "
                "reachable directly or through an HTTP proxy."
            )
        proxies = {"http": proxy, "https": proxy} if proxy is not None else {}
        return urllib.request.build_opener(
            urllib.request.ProxyHandler(proxies),
            urllib.request.HTTPSHandler(context=self.ssl_context()),
        )

    def describe_failure(self, exc: BaseException, url: str) -> str:
        """:func:`describe_failure`, remembering a proxy that asked for credentials
        (:attr:`proxy_needing_credentials`) so the app can ask the person for them."""
        self.proxy_needing_credentials = None
        # 407 asks for credentials; some proxies (tinyproxy) answer wrong ones with 401.
        if (
            isinstance(exc, InvalidProxyStatus)
            and exc.response.status_code in (401, 407)
            and self._last_proxy is not None
        ):
            from desktop_agent.platform.proxy_credentials import proxy_address

            self.proxy_needing_credentials = proxy_address(self._last_proxy)
            if "@" in self._last_proxy.split("://", 1)[-1]:
                return (
                    f"The proxy {hide_password(self._last_proxy)} refused the user name and "
                    "password. Check them, or tell IT."
                )
        return describe_failure(exc, url)


def _host(url: str) -> str:
    try:
        return parse_uri(url).host
    except Exception:
        return urllib.parse.urlsplit(url).hostname or url


def describe_failure(exc: BaseException, url: str) -> str:
    """A sentence for a person about a failed connection to ``url``: what happened and
    what to do (with what to tell IT when it is the network's doing)."""
    host = _host(url)
    if isinstance(exc, DeskbellError):
        return str(exc)
    if isinstance(exc, ssl.SSLCertVerificationError):
        reason = exc.verify_message or exc.reason or str(exc)
        return (
            f"Deskbell could not verify the security certificate of {host} ({reason}), so it "
            "did not connect. If your company inspects encrypted traffic, its CA certificate "
            f'is not trusted on this computer. Tell IT: "Deskbell cannot verify the '
            f"certificate of {host}: {reason}. Please install the company CA in the system "
            'trust store or set the Deskbell CaFile policy."'
        )
    if isinstance(exc, ssl.SSLError):
        return (
            f"The secure connection to {host} failed ({exc.reason or exc}). If this keeps "
            "happening, tell IT: a proxy or firewall may be interfering with TLS to this "
            "server."
        )
    if isinstance(exc, InvalidProxyStatus):
        status = exc.response.status_code
        if status == 407:
            return (
                "The proxy asks for a user name and password that Deskbell does not have. "
                "Enter them when Deskbell asks (they are kept in the system keyring), or "
                "tell IT: Deskbell supports proxy Basic authentication."
            )
        return (
            f"The proxy refused the connection to {host} (HTTP {status}). Tell IT: the "
            f"proxy must allow WebSocket connections (CONNECT) to {host}."
        )
    if isinstance(exc, InvalidProxyMessage | ProxyError):
        return (
            f"The proxy did not let Deskbell through to {host} ({exc}). Check the proxy "
            "settings, or tell IT."
        )
    if isinstance(exc, TimeoutError):
        return f"The Deskbell server at {host} did not answer in time. Check your network."
    if isinstance(exc, OSError):
        detail = exc.strerror or str(exc)
        return f"Could not reach the Deskbell server at {host} ({detail}). Check your network."
    return f"Could not connect to the Deskbell server at {host} ({exc})."
