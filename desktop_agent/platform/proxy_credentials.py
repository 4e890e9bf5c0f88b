"""Proxy user names and passwords, kept in the OS keyring like the agent's token.

A proxy that answers 407 (authentication required) gets the credentials the person
typed into the proxy sign-in window; they are stored per proxy (``host:port``) under the
keyring service ``Deskbell proxy host:port`` (through :class:`TokenStore`, so the same
session-only fallback applies where no keyring works) and never in a file.
"""

from __future__ import annotations

import json
import logging
import urllib.parse

from desktop_agent.platform.tokens import TokenStore

log = logging.getLogger(__name__)

_ENTRY = "credentials"


def proxy_address(proxy_url: str) -> str:
    """``host:port`` of a proxy URL (the key its credentials are kept under)."""
    parts = urllib.parse.urlsplit(proxy_url)
    default = 443 if parts.scheme == "https" else 1080 if parts.scheme.startswith("socks") else 80
    return f"{parts.hostname or ''}:{parts.port or default}"


class ProxyCredentialStore:
    """Credentials per proxy address, in the keyring (via ``tokens``)."""

    def __init__(self, tokens: TokenStore) -> None:
        self._tokens = tokens

    @staticmethod
    def _key(address: str) -> str:
        return f"proxy {address}"

    def lookup(self, address: str) -> tuple[str, str] | None:
        """The (user, password) kept for the proxy at ``address``, or None."""
        stored = self._tokens.load(self._key(address), _ENTRY)
        if not stored:
            return None
        try:
            user, password = json.loads(stored)
        except (ValueError, TypeError):
            log.warning("ignoring unreadable proxy credentials for %s", address)
            return None
        return str(user), str(password)

    def save(self, address: str, user: str, password: str) -> None:
        """Keep (user, password) for the proxy at ``address``."""
        self._tokens.save(self._key(address), _ENTRY, json.dumps([user, password]))

    def forget(self, address: str) -> None:
        """Remove what is kept for ``address``."""
        self._tokens.delete(self._key(address), _ENTRY)
