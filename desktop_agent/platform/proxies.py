"""Which proxy, if any, the tray app goes through to reach its server.

One interface, :class:`ProxyResolver`: given the server's WebSocket address, return a
proxy URL in the form the websockets library takes (``http://[user:pass@]host:port``,
``socks5h://host:port``, ...) or None for a direct connection. Implementations:

- :class:`EnvironmentProxies`: ``https_proxy``/``http_proxy``/``socks_proxy``/``no_proxy``
  (the Linux convention; websockets reads them the same way);
- :class:`QtSystemProxies`: what Qt reports for the OS (Windows: WinHTTP/Internet
  Options including their PAC script; macOS: System Settings, PAC included); the Qt call
  is a constructor argument, so tests give a fake;
- :class:`PacProxies`: a PAC script named by policy (``ProxyPacUrl``), fetched and run
  with pypac;
- :class:`FixedProxy`: a proxy named by policy (``ProxyServer``), or None for direct.

:func:`choose_entry` turns a PAC-style list (``PROXY a:3128; SOCKS b:1080; DIRECT``)
into the one to use; it is pure and shared by the PAC and Qt resolvers.
"""

from __future__ import annotations

import asyncio
import logging
import ssl
import sys
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, Final, Protocol

from websockets.exceptions import InvalidProxy
from websockets.proxy import get_proxy, parse_proxy
from websockets.uri import parse_uri

from desktop_agent.errors import DeskbellError

log = logging.getLogger(__name__)

DIRECT: Final = "DIRECT"
PAC_REFRESH_SECONDS: Final = 600.0
"""A PAC script is fetched again after this long (IT may change it during the day)."""
PAC_FETCH_TIMEOUT: Final = 10.0

_SUPPORTED_SCHEMES: Final = ("http", "https", "socks5h", "socks5", "socks4a", "socks4")


class ProxyMode(StrEnum):
    """How the proxy is chosen (the ``ProxyMode`` policy)."""

    SYSTEM = "system"
    DIRECT = "direct"
    MANUAL = "manual"
    PAC = "pac"


class ProxyUnusable(DeskbellError):
    """The proxy configuration cannot be used right now; the message says why and what to do."""


class ProxyResolver(Protocol):
    """Chooses the proxy for one server address."""

    @property
    def description(self) -> str:
        """Where the proxy comes from, for the status view (``"system settings"``, ...)."""
        ...

    async def proxy_for(self, url: str) -> str | None:
        """The proxy URL to reach ``url`` (a ``ws://``/``wss://`` address), None for direct.

        Raises:
            ProxyUnusable: the configuration cannot be read or names no usable proxy.
        """
        ...


def checked_proxy_url(url: str, origin: str) -> str:
    """``url`` if the websockets library can use it as a proxy address.

    Raises:
        ProxyUnusable: the address is malformed or of an unsupported kind.
    """
    try:
        parse_proxy(url)
    except InvalidProxy as exc:
        raise ProxyUnusable(
            f"The proxy {hide_password(url)} from {origin} cannot be used ({exc.msg}). "
            "Ask IT for the right proxy address (http://host:port or socks5://host:port)."
        ) from None
    return url


def hide_password(url: str) -> str:
    """``url`` with its password (if any) shown as ``***``."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{parts.username}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return urllib.parse.urlunsplit(parts._replace(netloc=netloc))


def entry_to_url(entry: str) -> str | None:
    """One PAC result entry as a proxy URL: ``PROXY h:p`` → ``http://h:p``,
    ``HTTPS h:p`` → ``https://h:p``, ``SOCKS``/``SOCKS5 h:p`` → ``socks5h://h:p``
    (names resolved by the proxy, as PAC intends), ``SOCKS4 h:p`` → ``socks4a://h:p``,
    ``DIRECT`` → None.

    Raises:
        ValueError: not a PAC entry.
    """
    words = entry.split()
    if len(words) == 1 and words[0].upper() == DIRECT:
        return None
    if len(words) != 2:
        raise ValueError(f"{entry!r} is not a PAC entry")
    keyword, address = words[0].upper(), words[1]
    scheme = {
        "PROXY": "http",
        "HTTP": "http",
        "HTTPS": "https",
        "SOCKS": "socks5h",
        "SOCKS5": "socks5h",
        "SOCKS4": "socks4a",
    }.get(keyword)
    if scheme is None:
        raise ValueError(f"{keyword} in {entry!r} is not a PAC proxy type")
    return f"{scheme}://{address}"


def choose_entry(result: str) -> str | None:
    """The proxy to use from a PAC result such as ``"PROXY a:3128; DIRECT"``: the first
    entry this client can use (None for ``DIRECT`` or an empty result).

    Raises:
        ValueError: no entry can be used.
    """
    entries = [e.strip() for e in result.split(";") if e.strip()]
    if not entries:
        return None
    for entry in entries:
        try:
            return entry_to_url(entry)
        except ValueError:
            log.info("skipping proxy entry %r this client cannot use", entry)
    raise ValueError(f"no usable entry in {result!r}")


def with_credentials(proxy: str | None, credentials: tuple[str, str] | None) -> str | None:
    """``proxy`` with ``credentials`` (user, password) added unless it has some already."""
    if proxy is None or credentials is None:
        return proxy
    parts = urllib.parse.urlsplit(proxy)
    if parts.username is not None:
        return proxy
    user, password = (urllib.parse.quote(part, safe="") for part in credentials)
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:{password}@{parts.netloc}"))


def _query_url(url: str) -> str:
    """The http(s) address a proxy configuration is asked about for a WebSocket address
    (PAC scripts and OS settings know http and https, not ws and wss)."""
    uri = parse_uri(url)
    scheme = "https" if uri.secure else "http"
    return f"{scheme}://{uri.host}:{uri.port}{uri.path}"


# ---------------------------------------------------------------------------- resolvers


class FixedProxy:
    """Always the same proxy (``ProxyServer`` policy), or always direct (``proxy=None``)."""

    def __init__(self, proxy: str | None, origin: str = "policy") -> None:
        self._proxy = checked_proxy_url(proxy, origin) if proxy else None
        self._origin = origin

    @property
    def description(self) -> str:
        if self._proxy is None:
            return "direct connection (set by policy)"
        return f"{hide_password(self._proxy)} (set by {self._origin})"

    async def proxy_for(self, url: str) -> str | None:
        return self._proxy


class EnvironmentProxies:
    """The proxy environment variables, as websockets and most Linux programs read them.

    For ``wss://`` the first set of ``wss_proxy``, ``socks_proxy``, ``https_proxy``; for
    ``ws://`` of ``ws_proxy``, ``socks_proxy``, ``https_proxy``, ``http_proxy``
    (``all_proxy`` is not read); ``no_proxy`` lists hosts reached directly. Credentials
    go in the URL (``http://user:password@proxy:3128``).
    """

    description = "environment (https_proxy, http_proxy, socks_proxy, no_proxy)"

    async def proxy_for(self, url: str) -> str | None:
        proxy = get_proxy(parse_uri(url))
        return checked_proxy_url(proxy, "the proxy environment variables") if proxy else None


SystemLookup = Callable[[str], Sequence[str]]
"""Asks the OS which proxies to use for an http(s) URL; returns PAC-style entries."""


def qt_system_lookup(url: str) -> list[str]:
    """Qt's answer for ``url`` as PAC-style entries (``PROXY h:p``, ``SOCKS5 h:p``,
    ``DIRECT``). Qt asks WinHTTP on Windows and CFNetwork on macOS, PAC scripts included.
    Credentials Qt reports (rare) are kept as ``user:password@`` in the address."""
    from PySide6.QtCore import QUrl
    from PySide6.QtNetwork import QNetworkProxy, QNetworkProxyFactory, QNetworkProxyQuery

    kinds = {
        QNetworkProxy.ProxyType.HttpProxy: "PROXY",
        QNetworkProxy.ProxyType.Socks5Proxy: "SOCKS5",
    }
    entries: list[str] = []
    for proxy in QNetworkProxyFactory.systemProxyForQuery(QNetworkProxyQuery(QUrl(url))):
        kind = proxy.type()
        if kind in (QNetworkProxy.ProxyType.NoProxy, QNetworkProxy.ProxyType.DefaultProxy):
            entries.append(DIRECT)
        elif kind in kinds:
            auth = ""
            if proxy.user():
                user = urllib.parse.quote(proxy.user(), safe="")
                auth = f"{user}:{urllib.parse.quote(proxy.password(), safe='')}@"
            entries.append(f"{kinds[kind]} {auth}{proxy.hostName()}:{proxy.port()}")
        else:
            entries.append(f"UNSUPPORTED {proxy.hostName()}:{proxy.port()}")
    return entries


class QtSystemProxies:
    """The operating system's proxy settings as Qt reports them (Windows, macOS).

    Args:
        lookup: the OS query; :func:`qt_system_lookup` by default, a fake in tests.
    """

    description = "system settings"

    def __init__(self, lookup: SystemLookup = qt_system_lookup) -> None:
        self._lookup = lookup

    async def proxy_for(self, url: str) -> str | None:
        # WinHTTP may fetch and run a PAC script: never on the GUI thread.
        entries = await asyncio.to_thread(self._lookup, _query_url(url))
        try:
            proxy = choose_entry("; ".join(entries))
        except ValueError:
            raise ProxyUnusable(
                "The system's proxy settings name only proxies Deskbell cannot use "
                f"({'; '.join(entries)}). Ask IT for an HTTP or SOCKS proxy."
            ) from None
        return checked_proxy_url(proxy, "the system settings") if proxy else None


PacFetch = Callable[[str], str]
"""Returns the JavaScript of a PAC script at a URL (or raises OSError/ValueError)."""


def fetch_pac(url: str, context: ssl.SSLContext | None = None) -> str:
    """The PAC script at ``url``: ``http(s)://`` (any content type) or ``file://``/a path.

    Args:
        context: TLS trust for an ``https://`` address (the app passes the same context
            as for its server: the OS trust store plus ``CaFile``).

    Raises:
        OSError: it could not be read (an HTTP error status included).
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme in ("", "file"):
        path = urllib.parse.unquote(parts.path) if parts.scheme == "file" else url
        return Path(path).read_text(encoding="utf-8")
    # Fetched directly, never through a proxy: the script is what says which proxy.
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context)
    )
    with opener.open(url, timeout=PAC_FETCH_TIMEOUT) as response:
        data: bytes = response.read()
        charset = response.headers.get_content_charset() or "utf-8"
    return data.decode(charset, errors="replace")


class PacProxies:
    """A PAC script (``ProxyPacUrl`` policy), fetched, cached and run with pypac.

    Args:
        pac_url: ``http(s)://…``, ``file://…`` or a local path.
        fetch: reads the script; :func:`fetch_pac` by default.
        refresh_after: seconds before the script is fetched again.
        clock: monotonic seconds.
    """

    def __init__(
        self,
        pac_url: str,
        *,
        fetch: PacFetch = fetch_pac,
        refresh_after: float = PAC_REFRESH_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.pac_url = pac_url
        self._fetch = fetch
        self._refresh_after = refresh_after
        self._clock = clock
        self._pac: Any = None
        self._fetched_at = 0.0

    @property
    def description(self) -> str:
        return f"proxy script {self.pac_url}"

    async def proxy_for(self, url: str) -> str | None:
        return await asyncio.to_thread(self._proxy_for, _query_url(url))

    def _proxy_for(self, query_url: str) -> str | None:
        from pypac.parser import MalformedPacError, PACFile

        if self._pac is None or self._clock() - self._fetched_at > self._refresh_after:
            try:
                script = self._fetch(self.pac_url)
                self._pac = PACFile(script)
            except (OSError, ValueError) as exc:
                raise ProxyUnusable(
                    f"The proxy script {self.pac_url} could not be fetched ({exc}). "
                    "Deskbell keeps trying; if it lasts, tell IT that this address does not "
                    "answer from this computer."
                ) from None
            except MalformedPacError as exc:
                raise ProxyUnusable(
                    f"The proxy script {self.pac_url} is not a valid PAC file ({exc}). "
                    "Tell IT, so they can fix the script."
                ) from None
            self._fetched_at = self._clock()
        host = urllib.parse.urlsplit(query_url).hostname or ""
        result = str(self._pac.find_proxy_for_url(query_url, host))
        try:
            proxy = choose_entry(result)
        except ValueError:
            raise ProxyUnusable(
                f"The proxy script {self.pac_url} answered {result!r}, which names no proxy "
                "Deskbell can use. Tell IT, so they can fix the script."
            ) from None
        return checked_proxy_url(proxy, f"the proxy script {self.pac_url}") if proxy else None


def resolver_for(
    mode: ProxyMode | str,
    *,
    server: str = "",
    pac_url: str = "",
    platform: str = sys.platform,
    system_lookup: SystemLookup | None = None,
    pac_fetch: PacFetch = fetch_pac,
) -> ProxyResolver:
    """The resolver for the settings ``ProxyMode``, ``ProxyServer`` and ``ProxyPacUrl``.

    ``system`` means the environment on Linux and Qt's view of the OS on Windows and
    macOS (``system_lookup`` replaces the Qt call, e.g. in tests).

    Raises:
        ProxyUnusable: ``manual`` without a usable ``ProxyServer``, or ``pac`` without a
            ``ProxyPacUrl``.
    """
    mode = ProxyMode(mode)
    if mode is ProxyMode.DIRECT:
        return FixedProxy(None)
    if mode is ProxyMode.MANUAL:
        if not server:
            raise ProxyUnusable(
                "The proxy mode is manual but no proxy server is set. Ask IT to set "
                "ProxyServer (for example http://proxy.example.org:3128)."
            )
        return FixedProxy(server)
    if mode is ProxyMode.PAC:
        if not pac_url:
            raise ProxyUnusable(
                "The proxy mode is pac but no proxy script is set. Ask IT to set "
                "ProxyPacUrl (for example http://wpad.example.org/proxy.pac)."
            )
        return PacProxies(pac_url, fetch=pac_fetch)
    if system_lookup is not None:
        return QtSystemProxies(system_lookup)
    if platform in ("win32", "darwin"):
        return QtSystemProxies()
    return EnvironmentProxies()


def supported_schemes() -> tuple[str, ...]:
    """Proxy URL schemes accepted in ``ProxyServer``."""
    return _SUPPORTED_SCHEMES
