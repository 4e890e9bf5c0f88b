"""The tray icon for real on the XEmbed tray: Xvfb, trayer as the panel, xdotool clicks.

No StatusNotifierWatcher runs in this module, so Qt on xcb falls back to the XEmbed
protocol and docks its icon window into trayer's tray. The X window tree shows where
it went; a screenshot of that window shows the badge; an xdotool click opens the list.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Callable, Iterator

import pytest
from PySide6.QtGui import QImage

from tests.desktop.tray.probe_process import ProbeStarter
from tests.desktop.tray.tray_probe import APP_NAME
from tests.support.desktop_session import DesktopSession, require_binaries
from tests.support.waiting import wait_until

pytestmark = [pytest.mark.desktop, pytest.mark.timeout(90)]

X_TIMEOUT = 20.0


def x_command(session: DesktopSession, *argv: str, timeout: float = X_TIMEOUT) -> str:
    """Run an X client (xdotool, xwininfo, import) on the session's display."""
    result = subprocess.run(argv, env=session.env, capture_output=True, timeout=timeout, check=True)
    return result.stdout.decode(errors="replace")


@pytest.fixture(scope="module")
def trayer(tray_session: DesktopSession) -> Iterator[str]:
    """trayer running on the session's display; yields its panel window id."""
    require_binaries("trayer", "xdotool", "xwininfo", "import")
    process = subprocess.Popen(
        ["trayer", "--edge", "top", "--align", "right", "--widthtype", "request"],
        env=tray_session.env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        # trayer maps its panel only after its tray plugin owns _NET_SYSTEM_TRAY_S0,
        # so a visible panel means a tray a Qt app can dock into. --sync waits for it.
        panel = x_command(
            tray_session, "xdotool", "search", "--sync", "--onlyvisible", "--classname", "panel"
        ).split()[0]
        yield panel
    finally:
        process.terminate()
        process.wait(10)


def docked_icon(session: DesktopSession, panel: str) -> str | None:
    """The id of the probe's icon window inside the panel, or None while not docked."""
    for line in x_command(session, "xwininfo", "-tree", "-id", panel).splitlines():
        if f'("{APP_NAME}" ' in line:
            return line.split()[0]
    return None


def red_pixels(session: DesktopSession, window: str) -> int:
    """How many clearly red (badge) pixels the window shows on screen now."""
    png = subprocess.run(
        ["import", "-window", window, "png:-"],
        env=session.env,
        capture_output=True,
        timeout=X_TIMEOUT,
        check=True,
    ).stdout
    image = QImage.fromData(png).convertToFormat(QImage.Format.Format_RGB32)
    assert not image.isNull(), "import gave no image of the icon window"
    count = 0
    for y in range(image.height()):
        for x in range(image.width()):
            color = image.pixelColor(x, y)
            if color.red() > 170 and color.green() < 90 and color.blue() < 90:
                count += 1
    return count


async def wait_for(condition: Callable[[], bool], what: str) -> None:
    """Wait (off the event loop) until ``condition()`` holds."""
    await asyncio.to_thread(wait_until, condition, X_TIMEOUT, what)


async def test_icon_docks_into_trayer_and_shows_the_badge(
    tray_session: DesktopSession, trayer: str, start_probe: ProbeStarter
) -> None:
    probe = await start_probe()
    assert probe.lines[0] == "ready tray=1", "Qt found no XEmbed tray although trayer runs"

    await wait_for(lambda: docked_icon(tray_session, trayer) is not None, "the icon to dock")
    icon = docked_icon(tray_session, trayer)
    assert icon is not None

    await probe.set_state(7)
    await wait_for(lambda: red_pixels(tray_session, icon) > 20, "the red badge on screen")
    await probe.set_state(0)
    await wait_for(lambda: red_pixels(tray_session, icon) == 0, "the badge to go away")


async def test_click_on_the_docked_icon_opens_the_notifications(
    tray_session: DesktopSession, trayer: str, start_probe: ProbeStarter
) -> None:
    probe = await start_probe()
    await wait_for(lambda: docked_icon(tray_session, trayer) is not None, "the icon to dock")
    icon = docked_icon(tray_session, trayer)
    assert icon is not None

    x_command(tray_session, "xdotool", "mousemove", "--window", icon, "8", "8", "click", "1")

    assert await probe.expect("open-notifications", timeout=10) == "open-notifications"
