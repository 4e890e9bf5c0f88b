"""What presence the app tells the server: online, away or dnd.

Pure: the inputs are the manual do-not-disturb, the agent's own "Away" switch and the
desktop's idle time; the output is the status, and :class:`PresenceTracker` says when it
changed (so the app sends one ``presence`` frame per change, not one per idle check).
The server uses it to escalate early when every recipient is away (PROTOCOL.md v1.1).

Precedence: dnd (chosen by the agent) > away by hand > away from idle > online.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

PresenceStatus = Literal["online", "away", "dnd"]


def presence_status(
    *,
    dnd: bool,
    away_by_hand: bool,
    idle_seconds: float | None,
    away_after_seconds: float | None,
) -> PresenceStatus:
    """The status to announce.

    Args:
        dnd: manual do-not-disturb is on.
        away_by_hand: the agent chose "Away".
        idle_seconds: how long the desktop has had no input; None when unknown.
        away_after_seconds: idle this long means away; None or 0: idle never does.
    """
    if dnd:
        return "dnd"
    if away_by_hand:
        return "away"
    if away_after_seconds and idle_seconds is not None and idle_seconds >= away_after_seconds:
        return "away"
    return "online"


@dataclass
class PresenceTracker:
    """Remembers the last status sent; :meth:`update` returns a status only when new."""

    sent: PresenceStatus | None = None

    def update(self, status: PresenceStatus) -> PresenceStatus | None:
        """``status`` when it differs from what was last sent (then it counts as sent)."""
        if status == self.sent:
            return None
        self.sent = status
        return status

    def reconnected(self) -> None:
        """A new connection starts online on the server: the next non-online status goes."""
        self.sent = "online"
