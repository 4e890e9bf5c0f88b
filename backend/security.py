"""Passwords: scrypt hashing and checking, pure functions, no I/O."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

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
