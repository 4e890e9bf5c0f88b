"""Single sign-on: check an OpenID Connect ID token and say whose it is.

The tray app runs the authorization code flow with PKCE against the company's OpenID
provider itself (a native app with a loopback redirect, RFC 8252) and hands the ID
token to ``/auth`` with the secret behind its nonce (docs/protocol.md, "Single
sign-on"). This module checks that token the way OpenID Connect Core 3.1.3.7 says:
signed by a key of the issuer's JWKS (PyJWT fetches and caches it, and fetches again
when the provider rotates its keys), the configured issuer, our client id in ``aud``
(and ``azp`` when there are several audiences), not expired, and a ``nonce`` that is
the SHA-256 of the secret the client sent.

PyJWT is the ``sso`` extra: it is imported only when single sign-on is configured.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
import logging
import time
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from backend import protocol
from backend.config import Config
from backend.errors import SSO_EXTRA_HINT, ConfigError, ProviderUnavailable, Unauthorized

if TYPE_CHECKING:
    import jwt

log = logging.getLogger(__name__)

DISCOVERY_PATH = "/.well-known/openid-configuration"
FETCH_TIMEOUT = 10.0
CLOCK_LEEWAY = 60.0
"""Seconds of clock difference between the provider and this server that are tolerated."""
# Asymmetric algorithms only: a shared-secret (HS*) token would need a client secret,
# which a native app cannot keep, and "none" is never acceptable.
ALLOWED_ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384")
MAX_GROUPS = 100

REFUSED = "Your company sign-in was not accepted by Deskbell"
ASK_IT = "Ask your IT team to check Deskbell's single sign-on settings."


@dataclass(frozen=True)
class SsoSettings:
    """The operator's single sign-on settings (``sso_*`` in the configuration)."""

    issuer: str
    client_id: str
    label: str
    scopes: tuple[str, ...]
    email_claim: str = "email"
    create_agents: bool = False
    groups_claim: str | None = None

    @classmethod
    def from_config(cls, config: Config) -> SsoSettings | None:
        """The settings, or None when single sign-on is not configured."""
        if not config.sso_issuer or not config.sso_client_id:
            return None
        issuer = config.sso_issuer.rstrip("/")
        return cls(
            issuer=issuer,
            client_id=config.sso_client_id,
            label=config.sso_label or (urlsplit(issuer).hostname or issuer),
            scopes=tuple(config.sso_scopes),
            email_claim=config.sso_email_claim,
            create_agents=config.sso_create_agents,
            groups_claim=config.sso_groups_claim,
        )

    def info(self) -> protocol.SsoInfo:
        """What the tray app needs to start the flow (the ``sign_in_options`` reply)."""
        return protocol.SsoInfo(
            issuer=self.issuer, client_id=self.client_id, label=self.label, scopes=list(self.scopes)
        )


@dataclass(frozen=True)
class Identity:
    """Who a verified ID token names.

    Attributes:
        email: the address in the configured email claim.
        name: the ``name`` claim, or the email's local part.
        groups: the configured groups claim (empty when not configured or absent).
        nonce_hash: the token's nonce, to record against replays.
        expires_at: the token's expiry (ISO time): a replay is impossible after it.
    """

    email: str
    name: str
    groups: tuple[str, ...]
    nonce_hash: str
    expires_at: str


def nonce_hash(secret: str) -> str:
    """The ``nonce`` the client puts in its authorization request for ``secret``."""
    digest = hashlib.sha256(secret.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _fetch_json(url: str) -> dict[str, Any]:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310
    with urllib.request.urlopen(request, timeout=FETCH_TIMEOUT) as response:  # noqa: S310
        data = json.loads(response.read())
    if not isinstance(data, dict):
        raise ValueError(f"{url} did not answer with a JSON object")
    return data


class IdTokenVerifier:
    """Checks ID tokens of one issuer for one client.

    Args:
        settings: issuer, client id and claims to read.
        clock: seconds since the epoch (tests move it to see a token expire).
        fetch_json: GETs a URL and returns its JSON object (blocking; run in a thread).
    """

    def __init__(
        self,
        settings: SsoSettings,
        *,
        clock: Callable[[], float] = time.time,
        fetch_json: Callable[[str], dict[str, Any]] = _fetch_json,
    ) -> None:
        try:
            import jwt  # noqa: F401  (the sso extra: fail at start-up, not at sign-in)
        except ImportError:
            raise ConfigError(
                f"single sign-on support is not installed: {SSO_EXTRA_HINT}"
            ) from None
        self.settings = settings
        self._clock = clock
        self._fetch_json = fetch_json
        self._jwks: jwt.PyJWKClient | None = None
        self._algorithms: list[str] = list(ALLOWED_ALGORITHMS)
        self._lock = asyncio.Lock()

    async def _jwks_client(self) -> jwt.PyJWKClient:
        async with self._lock:
            if self._jwks is None:
                import jwt

                url = self.settings.issuer + DISCOVERY_PATH
                try:
                    discovery = await asyncio.to_thread(self._fetch_json, url)
                except (OSError, ValueError) as exc:
                    log.warning("event=sso_discovery_failed url=%s reason=%r", url, str(exc))
                    raise ProviderUnavailable(
                        "Deskbell cannot reach your company's sign-in service right now. "
                        "Try again in a moment; if it keeps happening, tell your IT team."
                    ) from None
                if discovery.get("issuer", "").rstrip("/") != self.settings.issuer:
                    log.error(
                        "event=sso_misconfigured issuer=%s discovered=%r",
                        self.settings.issuer,
                        discovery.get("issuer"),
                    )
                    raise Unauthorized(f"{REFUSED}: the sign-in service is misconfigured. {ASK_IT}")
                offered = discovery.get("id_token_signing_alg_values_supported") or []
                self._algorithms = [a for a in ALLOWED_ALGORITHMS if a in offered] or list(
                    ALLOWED_ALGORITHMS
                )
                self._jwks = jwt.PyJWKClient(str(discovery["jwks_uri"]), timeout=int(FETCH_TIMEOUT))
            return self._jwks

    async def verify(self, id_token: str, nonce_secret: str) -> Identity:
        """Check ``id_token`` and return whom it names.

        Raises:
            Unauthorized: a bad signature, another issuer or audience, an expired
                token, a nonce that does not match ``nonce_secret``, or no email.
            ProviderUnavailable: the provider's discovery document or keys cannot be fetched.
        """
        import jwt

        jwks = await self._jwks_client()
        try:
            key = await asyncio.to_thread(jwks.get_signing_key_from_jwt, id_token)
        except jwt.PyJWKClientConnectionError as exc:
            log.warning("event=sso_jwks_failed reason=%r", str(exc))
            raise ProviderUnavailable(
                "Deskbell cannot reach your company's sign-in service right now. "
                "Try again in a moment; if it keeps happening, tell your IT team."
            ) from None
        except jwt.PyJWTError as exc:
            raise self._refused("signature key", exc) from None
        try:
            # Expiry is checked below against our own clock (injectable), not PyJWT's.
            claims: dict[str, Any] = jwt.decode(
                id_token,
                key,
                algorithms=self._algorithms,
                audience=self.settings.client_id,
                issuer=self.settings.issuer,
                options={
                    "require": ["iss", "aud", "exp", "iat", "sub", "nonce"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidAudienceError as exc:
            raise self._refused(
                "audience", exc, "it was made for another application. " + ASK_IT
            ) from None
        except jwt.InvalidIssuerError as exc:
            raise self._refused(
                "issuer", exc, "it comes from another sign-in service. " + ASK_IT
            ) from None
        except jwt.PyJWTError as exc:
            raise self._refused("token", exc) from None
        return self._identity(claims, nonce_secret)

    def _identity(self, claims: dict[str, Any], nonce_secret: str) -> Identity:
        settings = self.settings
        audiences = claims["aud"] if isinstance(claims["aud"], list) else [claims["aud"]]
        if len(audiences) > 1 and claims.get("azp") != settings.client_id:
            raise self._refused("azp", claims.get("azp"), "it was made for another application.")
        now = self._clock()
        exp = _number(claims, "exp")
        if exp <= now - CLOCK_LEEWAY:
            raise self._refused(
                "expired", exp, "it has expired. Sign in again (check this computer's clock)."
            )
        if _number(claims, "iat") > now + CLOCK_LEEWAY:
            raise self._refused("iat", claims["iat"], "it was issued in the future. " + ASK_IT)
        nonce = claims["nonce"]
        if not isinstance(nonce, str) or not hmac.compare_digest(nonce, nonce_hash(nonce_secret)):
            raise self._refused("nonce", None, "it does not belong to this sign-in. Try again.")
        email = claims.get(settings.email_claim)
        if not isinstance(email, str) or "@" not in email:
            raise self._refused(
                "email", settings.email_claim, "it carries no email address. " + ASK_IT
            )
        if claims.get("email_verified") is False:
            raise self._refused("email_verified", email, "its email address is not verified.")
        name = claims.get("name")
        if not isinstance(name, str) or not name.strip():
            name = email.split("@", 1)[0]
        groups: Sequence[Any] = ()
        if settings.groups_claim:
            found = claims.get(settings.groups_claim)
            groups = found if isinstance(found, list) else ()
        return Identity(
            email=email.strip(),
            name=name.strip()[: protocol.MAX_NAME_CHARS],
            groups=tuple(g for g in groups[:MAX_GROUPS] if isinstance(g, str) and g.strip()),
            nonce_hash=nonce,
            expires_at=_iso(exp + CLOCK_LEEWAY),
        )

    def _refused(self, check: str, detail: object, why: str = "") -> Unauthorized:
        log.info("event=sso_refused check=%s detail=%r", check, str(detail)[:200])
        return Unauthorized(f"{REFUSED}: {why or 'it could not be verified. ' + ASK_IT}")


def _number(claims: dict[str, Any], name: str) -> float:
    value = claims[name]
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Unauthorized(f"{REFUSED}: its {name} is not a time. {ASK_IT}")
    return float(value)


def _iso(epoch: float) -> str:
    moment = datetime.fromtimestamp(epoch, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
