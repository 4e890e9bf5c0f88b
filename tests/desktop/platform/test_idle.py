"""Idle time from a real session bus: a screensaver service answering on it, or none."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator

import pytest

from desktop_agent.platform.idle import (
    FakeIdleTime,
    ScreenSaverIdleTime,
    idle_time_for_platform,
)
from tests.support.desktop_session import DesktopSession


class _ScreenSaver:
    """org.freedesktop.ScreenSaver on the private bus, in its own thread and loop."""

    def __init__(self, address: str, idle_ms: int) -> None:
        self.address = address
        self.idle_ms = idle_ms
        self._ready = threading.Event()
        self._stop: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._serve()), daemon=True)

    async def _serve(self) -> None:
        from dbus_fast.aio import MessageBus
        from dbus_fast.service import ServiceInterface, method

        owner = self

        class Interface(ServiceInterface):
            def __init__(self) -> None:
                super().__init__("org.freedesktop.ScreenSaver")

            @method()
            def GetSessionIdleTime(self) -> "u":  # type: ignore[name-defined]  # noqa: F821, UP037
                return owner.idle_ms

        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        bus = await MessageBus(bus_address=self.address).connect()
        bus.export("/org/freedesktop/ScreenSaver", Interface())
        await bus.request_name("org.freedesktop.ScreenSaver")
        self._ready.set()
        await self._stop.wait()
        bus.disconnect()

    def __enter__(self) -> _ScreenSaver:
        self._thread.start()
        assert self._ready.wait(10), "the screensaver service did not start"
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._loop is not None and self._stop is not None
        self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(10)


@pytest.fixture
def saver(bus_session: DesktopSession) -> Iterator[_ScreenSaver]:
    with _ScreenSaver(bus_session.dbus_address, 125_000) as service:
        yield service


async def test_the_screensavers_idle_time_is_read_in_seconds(saver: _ScreenSaver) -> None:
    reader = ScreenSaverIdleTime(saver.address)
    assert await reader() == 125.0
    saver.idle_ms = 500
    assert await reader() == 0.5


async def test_no_screensaver_service_means_unknown_not_an_error(
    bus_session: DesktopSession,
) -> None:
    assert await ScreenSaverIdleTime(bus_session.dbus_address)() is None
    assert await ScreenSaverIdleTime("unix:path=/nonexistent/bus")() is None


async def test_the_fake_and_the_platform_choice() -> None:
    assert await FakeIdleTime(42)() == 42
    assert isinstance(idle_time_for_platform("linux"), ScreenSaverIdleTime)
    assert idle_time_for_platform("darwin") is None
