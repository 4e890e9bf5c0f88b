"""The tray icon for real on the D-Bus tray: Xvfb, a private bus, a StatusNotifierWatcher.

With ``org.kde.StatusNotifierWatcher`` on the session bus, Qt on xcb exports the
TrayController's icon as a StatusNotifierItem. The watcher here reads what a panel
would read (IconPixmap, ToolTip, Status) and clicks it (Activate): no screenshot.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.desktop.tray.probe_process import ProbeStarter
from tests.support.sni_watcher import ArgbImage, SniItem, SniWatcher

pytestmark = [pytest.mark.desktop, pytest.mark.timeout(90)]


def is_badge_red(a: int, r: int, g: int, b: int) -> bool:
    """A clearly red, opaque pixel: the badge (#e11d2a), not the gold bell or outline."""
    return a > 200 and r > 170 and g < 90 and b < 90


def red_pixels(image: ArgbImage) -> int:
    return image.count_pixels(is_badge_red)


async def settled_icon(
    sni_watcher: SniWatcher, item: SniItem, shows: Callable[[ArgbImage], bool]
) -> list[ArgbImage]:
    """The item's IconPixmap once every size ``shows`` the expected state.

    The tray repaints at most every 150 ms, so the first NewIcon after a change can carry
    an icon drawn for the state before it; wait for the next one until the icon settles
    (or the watcher's timeout fails the test).
    """
    while True:
        seen = sni_watcher.signal_count(item, "NewIcon")
        images = await sni_watcher.icon_pixmaps(item)
        if images and all(shows(image) for image in images):
            return images
        await sni_watcher.wait_for_signal(item, "NewIcon", after=seen)


async def test_tray_icon_registers_as_a_status_notifier_item(
    sni_watcher: SniWatcher, start_probe: ProbeStarter
) -> None:
    probe = await start_probe()

    assert probe.lines[0] == "ready tray=1", "Qt found no tray although a watcher runs"
    item = await sni_watcher.wait_for_item()
    assert await sni_watcher.status(item) == "Active"
    assert sni_watcher.items == [item]


async def test_icon_pixmap_shows_the_red_badge_for_seven_unread_and_none_for_zero(
    sni_watcher: SniWatcher, start_probe: ProbeStarter
) -> None:
    probe = await start_probe()
    item = await sni_watcher.wait_for_item()

    def badged(image: ArgbImage) -> bool:
        return red_pixels(image) >= image.width * image.height // 20

    await probe.set_state(7)
    with_badge = await settled_icon(sni_watcher, item, badged)

    await probe.set_state(0)
    without_badge = await settled_icon(sni_watcher, item, lambda image: red_pixels(image) == 0)

    sizes = {image.width for image in with_badge}
    assert {16, 22, 32, 64} <= sizes, f"the panel gets too few sizes to pick from: {sizes}"
    for image in with_badge:
        assert red_pixels(image) >= image.width * image.height // 20, (
            f"{image.width}px icon for 7 unread has no visible red badge"
        )
    for image in without_badge:
        assert red_pixels(image) == 0, f"{image.width}px icon for 0 unread shows red"
        opaque = image.count_pixels(lambda a, _r, _g, _b: a > 200)
        assert opaque > image.width * image.height // 5, "the bell itself went missing"


async def test_disconnected_icon_keeps_no_red_so_a_stale_count_is_not_taken_for_live(
    sni_watcher: SniWatcher, start_probe: ProbeStarter
) -> None:
    probe = await start_probe()
    item = await sni_watcher.wait_for_item()
    await probe.set_state(7)
    before = sni_watcher.signal_count(item, "NewIcon")

    await probe.set_state(7, "disconnected")
    await sni_watcher.wait_for_signal(item, "NewIcon", after=before)

    for image in await sni_watcher.icon_pixmaps(item):
        assert red_pixels(image) == 0, f"{image.width}px disconnected icon still shows red"


async def test_tooltip_carries_the_state_and_the_counts(
    sni_watcher: SniWatcher, start_probe: ProbeStarter
) -> None:
    probe = await start_probe()
    item = await sni_watcher.wait_for_item()

    await probe.set_state(7, total=9)
    busy = await sni_watcher.tooltip(item)
    await probe.set_state(0)
    quiet = await sni_watcher.tooltip(item)

    # Qt puts the whole tooltip in the title field and leaves the text empty.
    busy_text = f"{busy.title}\n{busy.text}"
    assert "Connected" in busy_text
    assert "7 unread chats" in busy_text
    assert "2 other unread notifications" in busy_text
    quiet_text = f"{quiet.title}\n{quiet.text}"
    assert "No unread chats" in quiet_text
    assert "7" not in quiet_text


async def test_activate_from_the_panel_opens_the_notifications(
    sni_watcher: SniWatcher, start_probe: ProbeStarter
) -> None:
    probe = await start_probe()
    item = await sni_watcher.wait_for_item()

    await sni_watcher.activate(item, 1200, 10)

    assert await probe.expect("open-notifications", timeout=10) == "open-notifications"


async def test_item_goes_away_when_the_app_quits(
    sni_watcher: SniWatcher, start_probe: ProbeStarter
) -> None:
    probe = await start_probe()
    await sni_watcher.wait_for_item()

    assert await probe.stop() == 0
    await sni_watcher.wait_for_no_items()
