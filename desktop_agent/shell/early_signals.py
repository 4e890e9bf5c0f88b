"""Ctrl+C and SIGTERM while Deskbell is still starting: noted, then acted on calmly.

Python's default Ctrl+C raises KeyboardInterrupt wherever the program happens to be;
in the first half-second that is inside an import of Qt or msgspec, which aborts
with "libshiboken: could not import module" or leaves Qt half-built, and prints a
traceback at the person. Until the event loop installs its own handlers, these
handlers only note the request; start-up checks it at safe points and ends with 0.
"""

from __future__ import annotations

import signal
from types import FrameType


class EarlyQuit:
    """Notes SIGINT/SIGTERM received before the event loop handles them."""

    def __init__(self) -> None:
        self.requested = False

    def install(self) -> None:
        """Replace the default handlers (main thread only)."""
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, self._note)

    def _note(self, _signum: int, _frame: FrameType | None) -> None:
        self.requested = True
