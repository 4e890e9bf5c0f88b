"""Single sign-on, the pure part: one OpenID Connect authorization request and its answer.

The tray app is a native app (RFC 8252): it opens the provider's authorization page in
the system browser, with a redirect to a loopback port it listens on, and proves with
PKCE (RFC 7636, S256) that the code that comes back is for it. The nonce in the request
is the SHA-256 of a secret that only this app knows; the server checks the ID token's
nonce against that secret, so an intercepted ID token alone is worth nothing
(docs/protocol.md, "Single sign-on").

No I/O here: :mod:`desktop_agent.shell.sso` listens, fetches and opens the browser.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from urllib.parse import parse_qs, urlencode

from desktop_agent.errors import SsoFailed

CALLBACK_PATH = "/callback"


def _b64url_sha256(text: str) -> str:
    digest = hashlib.sha256(text.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass(frozen=True)
class AuthorizationRequest:
    """One sign-in attempt: its secrets and the URLs and forms derived from them.

    Attributes:
        issuer: the provider's issuer URL, as the server advertised it.
        client_id: the client id registered for the tray app.
        redirect_uri: the loopback address the app listens on.
        scopes: the scopes to ask for (``openid`` among them).
        state: ties the browser's answer to this attempt (CSRF).
        code_verifier: PKCE secret; its S256 challenge goes in the request.
        nonce_secret: its SHA-256 goes in the request as ``nonce``; the server gets it.
    """

    issuer: str
    client_id: str
    redirect_uri: str
    scopes: tuple[str, ...]
    state: str
    code_verifier: str
    nonce_secret: str

    @property
    def code_challenge(self) -> str:
        return _b64url_sha256(self.code_verifier)

    @property
    def nonce(self) -> str:
        return _b64url_sha256(self.nonce_secret)

    def authorization_url(self, authorization_endpoint: str) -> str:
        """The page to open in the browser."""
        scopes = list(self.scopes)
        if "openid" not in scopes:
            scopes.insert(0, "openid")
        query = urlencode(
            {
                "response_type": "code",
                "client_id": self.client_id,
                "redirect_uri": self.redirect_uri,
                "scope": " ".join(scopes),
                "state": self.state,
                "nonce": self.nonce,
                "code_challenge": self.code_challenge,
                "code_challenge_method": "S256",
            }
        )
        separator = "&" if "?" in authorization_endpoint else "?"
        return f"{authorization_endpoint}{separator}{query}"

    def code_from_callback(self, query: str) -> str:
        """The authorization code in the redirect's query string.

        Raises:
            SsoFailed: the provider answered with an error, the state is not this
                attempt's (a stale or forged redirect), the answer names another
                issuer (RFC 9207), or there is no code.
        """
        params = {k: v[0] for k, v in parse_qs(query, keep_blank_values=True).items()}
        if not hmac.compare_digest(params.get("state", ""), self.state):
            raise SsoFailed(
                "The browser came back from a different sign-in attempt. "
                "Close the browser tab and try again."
            )
        issuer = params.get("iss")
        if issuer is not None and issuer.rstrip("/") != self.issuer.rstrip("/"):
            raise SsoFailed(
                "The browser came back from another sign-in service than the server names. "
                "Try again; if it keeps happening, tell your IT team."
            )
        error = params.get("error")
        if error is not None:
            if error == "access_denied":
                raise SsoFailed("The sign-in was cancelled in the browser. Try again to sign in.")
            detail = params.get("error_description") or error
            raise SsoFailed(
                f"Your company's sign-in service refused the sign-in ({detail}). "
                "Tell your IT team if it keeps happening."
            )
        code = params.get("code")
        if not code:
            raise SsoFailed("The browser came back without a sign-in. Try again.")
        return code

    def token_form(self, code: str) -> dict[str, str]:
        """The form to POST to the token endpoint (a public client: no secret)."""
        return {
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": self.redirect_uri,
            "client_id": self.client_id,
            "code_verifier": self.code_verifier,
        }


def new_request(
    issuer: str,
    client_id: str,
    redirect_uri: str,
    scopes: Sequence[str],
    *,
    random_text: Callable[[int], str] = secrets.token_urlsafe,
) -> AuthorizationRequest:
    """A fresh attempt with new state, PKCE verifier and nonce secret (32 random bytes
    each: a verifier of 43 characters, the least RFC 7636 allows and plenty)."""
    return AuthorizationRequest(
        issuer=issuer,
        client_id=client_id,
        redirect_uri=redirect_uri,
        scopes=tuple(scopes),
        state=random_text(32),
        code_verifier=random_text(32),
        nonce_secret=random_text(32),
    )
