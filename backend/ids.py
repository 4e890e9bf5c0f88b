"""Public identifiers and secret tokens.

Public ids are a kind prefix and 26 Crockford base32 characters: 48 bits of
milliseconds then 80 random bits, so they sort by creation time. Tokens are the kind
prefix and 256 random bits in URL-safe base64; only their SHA-256 is ever stored.
"""

from __future__ import annotations

import hashlib
import secrets
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"


def new_id(prefix: str, now_ms: int | None = None) -> str:
    """Return a new time-ordered id such as ``c_01JD3…`` (prefix ``c``)."""
    millis = int(time.time() * 1000) if now_ms is None else now_ms
    value = (millis << 80) | secrets.randbits(80)
    chars = []
    for _ in range(26):
        chars.append(_CROCKFORD[value & 31])
        value >>= 5
    return f"{prefix}_{''.join(reversed(chars))}"


def new_token(prefix: str) -> str:
    """Return a new secret token: ``prefix`` then 256 random bits, URL-safe.

    ``secrets.token_urlsafe`` may start with ``-``; tokens must not (a CLI would read
    one as an option), so such a draw is replaced.
    """
    while True:
        body = secrets.token_urlsafe(32)
        if not body.startswith("-"):
            return prefix + body


def token_hash(token: str) -> str:
    """The stored form of a token: hex SHA-256 (tokens have 256 bits of entropy)."""
    return hashlib.sha256(token.encode()).hexdigest()


def notification_id(agent_public_id: str, seq: int) -> str:
    """Public id of an agent's notification number ``seq``."""
    return f"n_{agent_public_id.removeprefix('a_')}_{seq}"


def parse_notification_id(value: str) -> tuple[str, int] | None:
    """Return (agent public id, seq) of a notification id, or None if malformed."""
    if not value.startswith("n_"):
        return None
    agent_key, _, seq_text = value[2:].rpartition("_")
    if not agent_key or not seq_text.isdigit() or len(seq_text) > 18:
        return None
    return f"a_{agent_key}", int(seq_text)
