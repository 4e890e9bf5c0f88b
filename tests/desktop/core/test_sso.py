"""The authorization request and the browser's answer, without a browser or a network.

The whole flow against a real provider is tests/backend/sso; here each rule of the
pure part is pinned down on its own.
"""

from __future__ import annotations

import base64
import hashlib
from itertools import count
from urllib.parse import parse_qs, urlsplit

import pytest

from desktop_agent.core.sso import AuthorizationRequest, new_request
from desktop_agent.errors import SsoFailed

ISSUER = "https://login.example.org"


def request() -> AuthorizationRequest:
    numbers = count(1)
    return new_request(
        ISSUER,
        "deskbell-desktop",
        "http://127.0.0.1:49152/callback",
        ["openid", "email"],
        random_text=lambda n: f"secret-{next(numbers)}-{'x' * n}",
    )


def s256(text: str) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=").decode()


def test_the_authorization_url_asks_for_a_code_with_pkce_s256_and_a_hashed_nonce() -> None:
    req = request()
    url = urlsplit(req.authorization_url(ISSUER + "/authorize?prompt=login"))
    params = {k: v[0] for k, v in parse_qs(url.query).items()}
    assert params == {
        "prompt": "login",
        "response_type": "code",
        "client_id": "deskbell-desktop",
        "redirect_uri": "http://127.0.0.1:49152/callback",
        "scope": "openid email",
        "state": req.state,
        "nonce": s256(req.nonce_secret),
        "code_challenge": s256(req.code_verifier),
        "code_challenge_method": "S256",
    }
    # Neither secret itself ever goes to the browser.
    assert req.code_verifier not in url.query and req.nonce_secret not in url.query


def test_each_attempt_has_its_own_state_verifier_and_nonce_secret() -> None:
    req = request()
    assert len({req.state, req.code_verifier, req.nonce_secret}) == 3
    real = new_request(ISSUER, "c", "http://127.0.0.1:1/callback", ["openid"])
    assert len(real.code_verifier) >= 43  # RFC 7636: 43 to 128 characters


def test_openid_is_always_among_the_scopes() -> None:
    req = new_request(ISSUER, "c", "http://127.0.0.1:1/callback", ["email"])
    assert "scope=openid+email" in req.authorization_url(ISSUER + "/auth")


def test_the_code_comes_back_with_the_right_state() -> None:
    req = request()
    assert req.code_from_callback(f"code=abc&state={req.state}&iss={ISSUER}") == "abc"
    assert req.code_from_callback(f"code=abc&state={req.state}") == "abc"


@pytest.mark.parametrize(
    ("query", "says"),
    [
        ("code=abc&state=someone-else", "different sign-in attempt"),
        ("code=abc", "different sign-in attempt"),
        ("code=abc&state={state}&iss=https://evil.example", "another sign-in service"),
        ("error=access_denied&state={state}", "cancelled in the browser"),
        ("error=server_error&error_description=down&state={state}", "refused the sign-in (down)"),
        ("state={state}", "without a sign-in"),
    ],
)
def test_a_wrong_or_refused_answer_says_what_happened(query: str, says: str) -> None:
    req = request()
    with pytest.raises(SsoFailed, match=says.replace("(", r"\(").replace(")", r"\)")):
        req.code_from_callback(query.format(state=req.state))


def test_the_token_request_proves_the_code_with_the_verifier_and_no_secret() -> None:
    req = request()
    assert req.token_form("abc") == {
        "grant_type": "authorization_code",
        "code": "abc",
        "redirect_uri": "http://127.0.0.1:49152/callback",
        "client_id": "deskbell-desktop",
        "code_verifier": req.code_verifier,
    }
