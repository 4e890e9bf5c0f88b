"""Single sign-on, the I/O part: browser, loopback listener, provider, Deskbell server.

:class:`SsoFlow` runs one sign-in (docs/protocol.md, "Single sign-on"):

1. fetch the provider's discovery document (its issuer must be the one the server named);
2. listen on ``127.0.0.1`` on a free port (RFC 8252 section 7.3) and open the
   authorization page in the system browser;
3. wait for the browser to come back with the code;
4. redeem the code at the provider's token endpoint with the PKCE verifier;
5. hand the ID token and the nonce secret to the Deskbell server, which answers with an
   agent token.

The provider's HTTP is plain ``urllib`` in a worker thread: two requests per sign-in do
not warrant an HTTP client library.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from backend.protocol import AgentInfo, SsoInfo
from desktop_agent.core.sso import CALLBACK_PATH, AuthorizationRequest, new_request
from desktop_agent.errors import SsoFailed

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
BROWSER_TIMEOUT = 300.0
"""How long the app waits for the person to finish in the browser (seconds)."""
HTTP_TIMEOUT = 15.0
MAX_REQUEST_BYTES = 16 * 1024

DONE_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>Deskbell</title>"
    b"<body style='font-family:sans-serif;margin:3em'>"
    b"<h1>You can close this tab</h1><p>Deskbell is finishing your sign-in.</p>"
)

STRAY_PAGE = (
    b"<!doctype html><meta charset=utf-8><title>Deskbell</title>"
    b"<body style='font-family:sans-serif;margin:3em'>"
    b"<h1>This is not the sign-in Deskbell is waiting for</h1>"
    b"<p>Start the sign-in again from Deskbell's sign-in window.</p>"
)

SignIn = Callable[[str, str], Any]
"""(id_token, nonce_secret) -> awaitable of (agent token, AgentInfo)."""


def _unreachable(what: str, exc: BaseException) -> SsoFailed:
    return SsoFailed(
        f"Could not reach your company's sign-in service ({what}: {exc}). "
        "Check your network and try again; if it keeps happening, tell your IT team."
    )


def fetch_json(
    url: str,
    form: dict[str, str] | None = None,
    opener: urllib.request.OpenerDirector | None = None,
) -> dict[str, Any]:
    """GET (or POST ``form`` to) ``url`` and return its JSON object.

    Args:
        opener: how to reach it (the app's proxy and TLS trust); urllib's default
            (environment proxies, the default trust store) when None.
    """
    data = urlencode(form).encode() if form is not None else None
    request = urllib.request.Request(url, data=data, headers={"Accept": "application/json"})  # noqa: S310
    open_url = opener.open if opener is not None else urllib.request.urlopen
    try:
        with open_url(request, timeout=HTTP_TIMEOUT) as response:
            body = response.read()
    except urllib.error.HTTPError as exc:
        # OAuth errors come as JSON with a 400: read them, the caller explains.
        body = exc.read()
        with contextlib.suppress(ValueError):
            answer = json.loads(body)
            if isinstance(answer, dict) and "error" in answer:
                return answer
        raise _unreachable(url, exc) from None
    except (OSError, ValueError) as exc:
        raise _unreachable(url, exc) from None
    try:
        answer = json.loads(body)
    except ValueError as exc:
        raise _unreachable(url, exc) from None
    if not isinstance(answer, dict):
        raise _unreachable(url, ValueError("not a JSON object"))
    return answer


class LoopbackListener:
    """Waits on ``127.0.0.1:<free port>`` for the browser's redirect.

    Use as an async context manager; :attr:`redirect_uri` is known once entered. Once
    :attr:`expected_state` is set, only a redirect carrying that ``state`` ends the
    wait: any other local program that finds the port gets a 400 and changes nothing.
    """

    def __init__(self) -> None:
        self._server: asyncio.Server | None = None
        self._query: asyncio.Future[str] | None = None
        self.redirect_uri = ""
        self.expected_state: str | None = None

    async def __aenter__(self) -> LoopbackListener:
        self._query = asyncio.get_running_loop().create_future()
        # 127.0.0.1 rather than "localhost": no name lookup, no IPv6 surprise, and the
        # port is the system's choice (RFC 8252 section 7.3).
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.redirect_uri = f"http://127.0.0.1:{port}{CALLBACK_PATH}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), 2.0)
        if self._query is not None and not self._query.done():
            self._query.cancel()

    async def query(self) -> str:
        """The query string of the first request to the callback path."""
        assert self._query is not None, "use LoopbackListener as a context manager"
        return await asyncio.shield(self._query)

    def _is_expected(self, query: str) -> bool:
        if self.expected_state is None:
            return True
        states = parse_qs(query).get("state", [""])
        return hmac.compare_digest(states[0], self.expected_state)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            async with asyncio.timeout(10):
                line = await reader.readline()
                size = len(line)
                while size < MAX_REQUEST_BYTES:
                    header = await reader.readline()
                    size += len(header)
                    if header in (b"\r\n", b"\n", b""):
                        break
            method, _, rest = line.decode("latin-1").partition(" ")
            target = rest.rsplit(" ", 1)[0]
            parts = urlsplit(target)
            if method != "GET" or parts.path != CALLBACK_PATH:
                status, body = b"404 Not Found", b"not found"
            elif not self._is_expected(parts.query):
                status, body = b"400 Bad Request", STRAY_PAGE
            else:
                if self._query is not None and not self._query.done():
                    self._query.set_result(parts.query)
                status, body = b"200 OK", DONE_PAGE
            writer.write(
                b"HTTP/1.1 " + status + b"\r\nContent-Type: text/html; charset=utf-8\r\n"
                b"Content-Length: " + str(len(body)).encode() + b"\r\n"
                b"Cache-Control: no-store\r\nConnection: close\r\n\r\n" + body
            )
            await writer.drain()
        except (OSError, TimeoutError, UnicodeError):
            pass
        finally:
            writer.close()


class SsoFlow:
    """One single sign-on attempt.

    Args:
        info: the provider as the Deskbell server advertised it (``sign_in_options``).
        open_browser: shows a URL in the system browser (returns at once).
        sign_in: exchanges (ID token, nonce secret) at the Deskbell server.
        browser_timeout: how long to wait for the browser to come back.
        fetch_json: GET (``form`` None) or POST a form, return the JSON object (blocking).
    """

    def __init__(
        self,
        info: SsoInfo,
        open_browser: Callable[[str], None],
        sign_in: SignIn,
        *,
        browser_timeout: float = BROWSER_TIMEOUT,
        fetch_json: Callable[[str, dict[str, str] | None], dict[str, Any]] = fetch_json,
    ) -> None:
        self.info = info
        self._open_browser = open_browser
        self._sign_in = sign_in
        self._browser_timeout = browser_timeout
        self._fetch_json = fetch_json
        self.request: AuthorizationRequest | None = None
        self._token_endpoint = ""

    async def run(self) -> tuple[str, AgentInfo]:
        """Sign in; returns the agent token and the agent.

        Raises:
            SsoFailed: the provider or the browser step failed (the text says how).
            AuthRejected, RequestFailed, ServerUnreachable, RequestTimedOut: the
                Deskbell server's answer (from ``sign_in``).
        """
        code = await self.authorize()
        id_token = await self.redeem(code)
        result: tuple[str, AgentInfo] = await self._sign_in(id_token, self.nonce_secret)
        return result

    @property
    def nonce_secret(self) -> str:
        assert self.request is not None, "authorize() first"
        return self.request.nonce_secret

    async def authorize(self) -> str:
        """Open the browser and return the authorization code it comes back with."""
        issuer = self.info.issuer.rstrip("/")
        discovery = await asyncio.to_thread(self._fetch_json, issuer + DISCOVERY_PATH, None)
        if str(discovery.get("issuer", "")).rstrip("/") != issuer:
            raise SsoFailed(
                f"The sign-in service at {issuer} names itself differently "
                f"({discovery.get('issuer')!r}). Tell your IT team: the server's sso_issuer "
                "must be the provider's issuer exactly."
            )
        try:
            authorization_endpoint = str(discovery["authorization_endpoint"])
            self._token_endpoint = str(discovery["token_endpoint"])
        except KeyError as exc:
            raise _unreachable(issuer, ValueError(f"no {exc.args[0]} in its discovery")) from None
        async with LoopbackListener() as listener:
            self.request = new_request(
                issuer, self.info.client_id, listener.redirect_uri, self.info.scopes
            )
            listener.expected_state = self.request.state
            self._open_browser(self.request.authorization_url(authorization_endpoint))
            try:
                query = await asyncio.wait_for(listener.query(), self._browser_timeout)
            except TimeoutError:
                raise SsoFailed(
                    "The sign-in in the browser was not finished in time. Try again."
                ) from None
        return self.request.code_from_callback(query)

    async def redeem(self, code: str) -> str:
        """Exchange the code (with the PKCE verifier) for an ID token at the provider.

        Raises:
            SsoFailed: the provider refused (a code used before, expired or not ours).
        """
        assert self.request is not None, "authorize() first"
        answer = await asyncio.to_thread(
            self._fetch_json, self._token_endpoint, self.request.token_form(code)
        )
        if "error" in answer:
            log.info("token endpoint refused the code: %s", answer.get("error"))
            detail = answer.get("error_description") or answer["error"]
            raise SsoFailed(
                f"Your company's sign-in service did not accept the sign-in ({detail}). "
                "Sign in again."
            )
        id_token = answer.get("id_token")
        if not isinstance(id_token, str) or not id_token:
            raise SsoFailed(
                "Your company's sign-in service gave no ID token. Tell your IT team that "
                "Deskbell needs the openid scope."
            )
        return id_token
