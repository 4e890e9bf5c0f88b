"""Passwords and throttling: pure functions and small stateful helpers, no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
import secrets
from collections import deque
from dataclasses import dataclass, field

# scrypt parameters: n=2**14, r=8 costs 16 MiB and ~40 ms here, the OWASP minimum
# recommendation for interactive logins.
_SCRYPT_N = 2**14
_SCRYPT_R = 8
_SCRYPT_P = 1


def hash_password(password: str, *, n: int = _SCRYPT_N) -> str:
    """Return an encoded scrypt hash: ``scrypt$n$r$p$salt$hash`` (base64 parts)."""
    salt = secrets.token_bytes(16)
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=_SCRYPT_R, p=_SCRYPT_P, maxmem=64 * 1024 * 1024
    )
    parts = [base64.b64encode(x).decode() for x in (salt, digest)]
    return f"scrypt${n}${_SCRYPT_R}${_SCRYPT_P}${parts[0]}${parts[1]}"


def verify_password(password: str, encoded: str | None) -> bool:
    """Check a password against an encoded hash.

    With ``encoded`` None (an unknown account) the same work is done against a dummy
    hash, so a caller's timing does not tell unknown emails from wrong passwords.
    """
    target = encoded or _DUMMY_HASH
    try:
        scheme, n_text, r_text, p_text, salt_text, hash_text = target.split("$")
        salt = base64.b64decode(salt_text)
        expected = base64.b64decode(hash_text)
        n, r, p = int(n_text), int(r_text), int(p_text)
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    digest = hashlib.scrypt(
        password.encode(), salt=salt, n=n, r=r, p=p, maxmem=64 * 1024 * 1024, dklen=len(expected)
    )
    return hmac.compare_digest(digest, expected) and encoded is not None


_DUMMY_HASH = hash_password(secrets.token_urlsafe(16))


def wait_words(seconds: float) -> str:
    """How long to wait, for a person: whole seconds up to 90, then whole minutes
    (rounded up, so that trying again then works)."""
    whole = max(1, math.ceil(seconds))
    if whole <= 90:
        return f"{whole} second{'' if whole == 1 else 's'}"
    minutes = math.ceil(whole / 60)
    return f"{minutes} minutes"


@dataclass
class SlidingWindowLimiter:
    """Counts events per key in a sliding window; pure apart from its own memory.

    Args:
        limit: events allowed per key within ``window`` seconds.
        window: the window in seconds.
        max_keys: keys kept at most; the stalest are forgotten first.
    """

    limit: int
    window: float
    max_keys: int = 100_000
    _events: dict[str, deque[float]] = field(default_factory=dict)

    def blocked(self, key: str, now: float) -> bool:
        """True when ``key`` has used up its events in the window ending at ``now``."""
        events = self._events.get(key)
        if events is None:
            return False
        while events and events[0] <= now - self.window:
            events.popleft()
        if not events:
            del self._events[key]
            return False
        return len(events) >= self.limit

    def retry_after(self, key: str, now: float) -> float:
        """Seconds until ``key`` may act again (0 when not blocked)."""
        if not self.blocked(key, now):
            return 0.0
        return max(0.0, self._events[key][0] + self.window - now)

    def record(self, key: str, now: float) -> None:
        """Count one event for ``key`` at ``now``."""
        events = self._events.get(key)
        if events is None:
            if len(self._events) >= self.max_keys:
                self._events.pop(next(iter(self._events)))
            events = self._events[key] = deque()
        events.append(now)
        while len(events) > self.limit:
            events.popleft()

    def reset(self, key: str) -> None:
        """Forget ``key`` (after a successful login, for instance)."""
        self._events.pop(key, None)
