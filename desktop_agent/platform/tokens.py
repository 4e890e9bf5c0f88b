"""TokenStore: the agent's access token in the OS keyring, or in memory for this session.

Tokens live in the system keyring (Secret Service on Linux, Credential Manager on
Windows, Keychain on macOS) under service "Deskbell <server_url>" and the agent's email.
When no usable keyring exists (headless Linux gets keyring's fail backend) or it fails
(locked, prompt dismissed), the store keeps tokens in memory only and reports
`persistent == False`, so the app can tell the person they will have to sign in again
after a restart. A token is never written to a plain file.
"""

from __future__ import annotations

import logging
from typing import Any

logger = logging.getLogger(__name__)

SESSION_ONLY_NAME = "session only (no keyring)"
SESSION_ONLY_REASON = (
    "Deskbell could not use a system keyring ({detail}), so your sign-in is kept only "
    "until Deskbell quits and you will have to sign in again next time. To stay signed "
    "in, install or unlock a keyring (for example GNOME Keyring or KWallet)."
)


def service_name(server_url: str) -> str:
    """The keyring service a token for `server_url` is stored under."""
    return f"Deskbell {server_url}"


def is_usable(backend: Any) -> bool:
    """False for keyring's fail and null backends and for a chainer with nothing to chain."""
    from keyring.backends import chainer, fail, null

    if isinstance(backend, fail.Keyring | null.Keyring):
        return False
    return not (isinstance(backend, chainer.ChainerBackend) and not backend.backends)


class TokenStore:
    """Stores one token per (server URL, email).

    Args:
      backend: a keyring backend instance; None uses `keyring.get_keyring()`, the one
        the user's keyring configuration and the platform select.
    """

    def __init__(self, backend: Any = None) -> None:
        import keyring

        self._backend: Any = keyring.get_keyring() if backend is None else backend
        self._memory: dict[tuple[str, str], str] = {}
        self.unavailable_reason = ""
        """A sentence for a person when the store is session-only, else ""."""
        if not is_usable(self._backend):
            self._fall_back(f"no keyring backend, found {type(self._backend).__module__}")

    @property
    def persistent(self) -> bool:
        """True when tokens survive a restart (they are in the OS keyring)."""
        return self._backend is not None

    def backend_name(self) -> str:
        """A short name of where tokens go, for logs and the settings dialog."""
        if self._backend is None:
            return SESSION_ONLY_NAME
        return str(getattr(self._backend, "name", type(self._backend).__name__))

    def save(self, server_url: str, email: str, token: str) -> None:
        """Store `token`; if the keyring fails, keep it for this session and go session-only.

        Never raises for keyring trouble: check `persistent` afterwards.
        """
        from keyring.errors import KeyringError

        if self._backend is not None:
            try:
                self._backend.set_password(service_name(server_url), email, token)
                return
            except KeyringError as exc:
                self._fall_back(f"{type(exc).__name__}: {exc}")
        self._memory[(server_url, email)] = token

    def load(self, server_url: str, email: str) -> str | None:
        """The stored token, or None if there is none (or the keyring cannot be read)."""
        from keyring.errors import KeyringError

        if self._backend is not None:
            try:
                token = self._backend.get_password(service_name(server_url), email)
            except KeyringError as exc:
                self._fall_back(f"{type(exc).__name__}: {exc}")
                return None
            return str(token) if token is not None else None
        return self._memory.get((server_url, email))

    def delete(self, server_url: str, email: str) -> None:
        """Forget the token; deleting one that is not there is fine."""
        from keyring.errors import KeyringError, PasswordDeleteError

        self._memory.pop((server_url, email), None)
        if self._backend is None:
            return
        try:
            self._backend.delete_password(service_name(server_url), email)
        except PasswordDeleteError:
            pass  # nothing stored
        except KeyringError as exc:
            logger.warning("could not delete the token from %s: %s", self.backend_name(), exc)

    def _fall_back(self, detail: str) -> None:
        logger.warning("token storage is session-only: %s", detail)
        self._backend = None
        self.unavailable_reason = SESSION_ONLY_REASON.format(detail=detail)
