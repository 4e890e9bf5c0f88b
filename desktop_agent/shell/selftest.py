"""``deskbell --selftest``: can this desktop show Deskbell's tray, toasts and keep tokens?

Each check says what it found in a sentence for a person; the exit status is 0 when
toasts and the keyring work (a missing tray is fine: a window stands in for it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from desktop_agent.platform.toasts import Toaster
from desktop_agent.platform.tokens import TokenStore


@dataclass(frozen=True)
class Check:
    """One finding: ``name``, whether it is fine, and what it means for the person."""

    name: str
    ok: bool
    detail: str

    def line(self) -> str:
        return f"{self.name:8} {'ok' if self.ok else 'PROBLEM'}: {self.detail}"


async def run_checks(
    tray_available: bool, toaster: Toaster, keyring_backend: Any = None
) -> list[Check]:
    """Check the tray, the notification service and the keyring."""
    checks = [
        Check(
            "tray",
            True,
            "a system tray is available"
            if tray_available
            else "no system tray here; Deskbell shows a small window instead",
        )
    ]
    availability = await toaster.available()
    checks.append(
        Check("toasts", availability.ok, availability.reason or "pop-up notifications work")
    )
    tokens = TokenStore(keyring_backend)
    checks.append(
        Check(
            "keyring",
            tokens.persistent,
            f"sign-ins are kept in {tokens.backend_name()}"
            if tokens.persistent
            else tokens.unavailable_reason,
        )
    )
    return checks


def exit_status(checks: list[Check]) -> int:
    """0 when every check is fine, 1 otherwise."""
    return 0 if all(c.ok for c in checks) else 1
