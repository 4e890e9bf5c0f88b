"""How many anonymous connections (``/visitor``, ``/auth``) one node holds at once.

Each open connection costs a file descriptor and memory; a stranger must not be able
to take them all (DESIGN.md guarantee 9). One address may hold ``per_address``, all
strangers together ``total``; what is left of the node's file limit stays for agents,
integrations, ``/healthz`` and the database. Counts are per node, like descriptors.

Pure bookkeeping, no I/O: the server asks before it accepts a handshake and releases
when the connection is gone.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Callable


class Refusal(enum.Enum):
    ADDRESS = "address"
    """This address already holds its share."""
    TOTAL = "total"
    """Anonymous connections as a whole are at their limit."""


class ConnectionBudget:
    """Counts held connections per address key and in total."""

    def __init__(self, per_address: int, total: int):
        self.per_address = per_address
        self.total = total
        self._held: Counter[str] = Counter()
        self._count = 0

    @property
    def held(self) -> int:
        return self._count

    def held_by(self, key: str) -> int:
        return self._held[key]

    def take(self, key: str) -> Callable[[], None] | Refusal:
        """Hold one connection for ``key``: returns its release function (safe to call
        more than once), or why there is no room."""
        if self._held[key] >= self.per_address:
            return Refusal.ADDRESS
        if self._count >= self.total:
            return Refusal.TOTAL
        self._held[key] += 1
        self._count += 1
        released = False

        def release() -> None:
            nonlocal released
            if released:
                return
            released = True
            self._count -= 1
            self._held[key] -= 1
            if self._held[key] <= 0:
                del self._held[key]

        return release
