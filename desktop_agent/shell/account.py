"""The account the app last signed in with: server address and email.

Runtime state, not a setting: it says which keyring entry holds the token, so the
next start can connect without asking. The token itself never goes in this file.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from pathlib import Path

from desktop_agent.core.state import atomic_write_text

log = logging.getLogger(__name__)

ACCOUNT_FILE = "account.json"


@dataclass(frozen=True)
class Account:
    """Which token to load from the keyring: ``(server_url, email)``."""

    server_url: str
    email: str


class AccountStore:
    """Remembers the last account in ``data_dir/account.json``.

    Args:
        data_dir: the app's data folder.
    """

    def __init__(self, data_dir: Path) -> None:
        self.path = Path(data_dir) / ACCOUNT_FILE

    def load(self) -> Account | None:
        """The remembered account, or None (never saved, or unreadable: logged)."""
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable account file %s: %s", self.path, exc)
            return None
        if not isinstance(raw, dict):
            return None
        server_url, email = raw.get("server_url"), raw.get("email")
        if isinstance(server_url, str) and isinstance(email, str) and server_url and email:
            return Account(server_url, email)
        return None

    def save(self, account: Account) -> None:
        """Remember ``account``; a write failure is logged (the next start asks again)."""
        text = json.dumps({"server_url": account.server_url, "email": account.email})
        try:
            atomic_write_text(self.path, text)
        except OSError:
            log.exception("could not remember the signed-in account")

    def forget(self) -> None:
        """Forget the account (after signing out)."""
        try:
            self.path.unlink(missing_ok=True)
        except OSError:
            log.exception("could not forget the signed-in account")
