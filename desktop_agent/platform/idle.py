"""How long the desktop has had no keyboard or mouse input (for "away when idle").

One small interface, :class:`IdleTime`, with an implementation per OS and a fake:

- Linux: ``org.freedesktop.ScreenSaver.GetSessionIdleTime`` on the session bus (KDE,
  Xfce, and GNOME through its compatibility service); None when nothing answers;
- Windows: ``GetLastInputInfo`` (user32) against ``GetTickCount64``;
- macOS: nothing yet (None: the app never sets away from idle there; Away by hand and
  DND still work);
- :class:`FakeIdleTime` for tests.

An idle time that cannot be read is None, never an error: presence then simply stays
what the agent chose.
"""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass
from typing import Protocol

log = logging.getLogger(__name__)

SCREENSAVER_NAME = "org.freedesktop.ScreenSaver"
SCREENSAVER_PATH = "/org/freedesktop/ScreenSaver"


class IdleTime(Protocol):
    async def __call__(self) -> float | None:
        """Seconds since the last keyboard or mouse input; None when unknown."""
        ...


class ScreenSaverIdleTime:
    """Linux: ask the session's screensaver service over D-Bus.

    Args:
        bus_address: a D-Bus address; None: the session bus of the environment.
    """

    def __init__(self, bus_address: str | None = None) -> None:
        self._address = bus_address
        self._said_unavailable = False

    async def __call__(self) -> float | None:
        from dbus_fast import BusType, Message, MessageType
        from dbus_fast.aio import MessageBus

        try:
            if self._address is None:
                bus = await MessageBus(bus_type=BusType.SESSION).connect()
            else:
                bus = await MessageBus(bus_address=self._address).connect()
        except Exception as exc:
            self._say_unavailable(f"no session D-Bus: {exc}")
            return None
        try:
            reply = await bus.call(
                Message(
                    destination=SCREENSAVER_NAME,
                    path=SCREENSAVER_PATH,
                    interface=SCREENSAVER_NAME,
                    member="GetSessionIdleTime",
                )
            )
        finally:
            bus.disconnect()
        if reply is None or reply.message_type == MessageType.ERROR or not reply.body:
            detail = reply.error_name if reply is not None else "no reply"
            self._say_unavailable(f"{SCREENSAVER_NAME}.GetSessionIdleTime failed: {detail}")
            return None
        self._said_unavailable = False
        return float(reply.body[0]) / 1000.0  # milliseconds on the wire

    def _say_unavailable(self, detail: str) -> None:
        if not self._said_unavailable:
            log.info("idle time unknown, so no automatic away: %s", detail)
            self._said_unavailable = True


class WindowsIdleTime:  # pragma: no cover - runs on Windows only
    """Windows: milliseconds since the last input event of this session."""

    async def __call__(self) -> float | None:
        import ctypes
        from ctypes import wintypes

        class LastInputInfo(ctypes.Structure):
            _fields_ = [("cbSize", wintypes.UINT), ("dwTime", wintypes.DWORD)]

        info = LastInputInfo()
        info.cbSize = ctypes.sizeof(LastInputInfo)
        windll = ctypes.windll  # type: ignore[attr-defined]
        if not windll.user32.GetLastInputInfo(ctypes.byref(info)):
            return None
        now = windll.kernel32.GetTickCount64() & 0xFFFFFFFF  # dwTime wraps at 32 bits
        return float((now - info.dwTime) & 0xFFFFFFFF) / 1000.0


@dataclass
class FakeIdleTime:
    """A test's idle time: set ``seconds`` (None: unknown)."""

    seconds: float | None = 0.0

    async def __call__(self) -> float | None:
        return self.seconds


def idle_time_for_platform(platform: str = sys.platform) -> IdleTime | None:
    """The idle-time reader of this OS, or None where there is none."""
    if platform.startswith("linux"):
        return ScreenSaverIdleTime()
    if platform == "win32":
        return WindowsIdleTime()
    return None
