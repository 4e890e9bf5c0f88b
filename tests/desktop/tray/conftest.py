"""Fixtures for the tray tests: Xvfb + a private bus, a watcher, and the tray probe.

The test process itself runs Qt offscreen, where no tray exists; the TrayController
under test runs in ``tray_probe.py``, a child process on the session's X display.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from tests.desktop.tray.probe_process import ProbeStarter, TrayProbe
from tests.support.desktop_session import DesktopSession, desktop_session
from tests.support.sni_watcher import SniWatcher


@pytest.fixture(scope="module")
def tray_session() -> Iterator[DesktopSession]:
    """Private bus + Xvfb for one test module (skips when Xvfb or dbus-daemon is missing)."""
    with desktop_session(display_server=True) as session:
        yield session


@pytest.fixture
async def sni_watcher(tray_session: DesktopSession) -> AsyncIterator[SniWatcher]:
    """A StatusNotifierWatcher on the session bus, started before any tray probe."""
    async with SniWatcher(tray_session.dbus_address) as watcher:
        yield watcher


@pytest.fixture
async def start_probe(tray_session: DesktopSession, tmp_path: Path) -> AsyncIterator[ProbeStarter]:
    """``await start_probe()`` starts a tray probe; every one is stopped after the test."""
    probes: list[TrayProbe] = []

    async def start() -> TrayProbe:
        probe = await TrayProbe.start(tray_session, tmp_path)
        probes.append(probe)
        return probe

    yield start
    for probe in probes:
        await probe.stop()
