"""The app's real Linux toast path: D-Bus Notify to dunst under Xvfb, and a click back."""

from __future__ import annotations

import html
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtGui import QImage
from pytestqt.qtbot import QtBot

from desktop_agent.app import default_toaster
from desktop_agent.platform.toasts import DesktopNotifierToaster, ToastCallback, Toaster
from tests.desktop.app.conftest import WAIT_MS, Apps, Backend, Loop
from tests.support.bus_monitor import BusMonitor, Captured
from tests.support.desktop_session import DesktopSession

pytestmark = pytest.mark.desktop

NOTIFICATIONS = "interface='org.freedesktop.Notifications'"
UNTRUSTED = "<b>Free</b> shipping & <a href='https://evil.example'>click</a>?"


@pytest.fixture
def dunst(notification_session: DesktopSession) -> Iterator[DesktopSession]:
    notification_session.dunstctl("close-all")
    with notification_session.activated():
        yield notification_session


def test_a_visitor_message_is_a_real_toast_and_clicking_it_opens_the_conversation(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot, dunst: DesktopSession
) -> None:
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        app = apps.signed_in(backend, make_toaster=default_toaster)
        assert isinstance(app.controller.toaster, DesktopNotifierToaster)
        _visitor, started = backend.visitor("Dana Smith", UNTRUSTED)
        conversation_id = started["conversation"]["id"]

        def notify() -> Captured | None:
            calls = [m for m in monitor.messages if m.member == "Notify"]
            return calls[0] if calls else None

        qtbot.waitUntil(lambda: notify() is not None, timeout=WAIT_MS)
        call = notify()
        assert call is not None
        _app_name, _icon, title, body, *_rest = call.strings
        assert title == "Dana Smith · Support"
        # dunst reads markup in bodies: the visitor's text arrives escaped, shown literally.
        assert body == html.escape(UNTRUSTED, quote=False)
        qtbot.waitUntil(lambda: dunst.dunst_displayed() == 1, timeout=WAIT_MS)

        dunst.dunstctl("action", "0")

        qtbot.waitUntil(lambda: conversation_id in app.controller.conversations, timeout=WAIT_MS)
        window = app.controller.conversations[conversation_id]
        qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=WAIT_MS)
        assert window.model.entry(0).body == UNTRUSTED
        qtbot.waitUntil(lambda: app.controller.badge_count == 0, timeout=WAIT_MS)


def test_the_apps_toasts_carry_an_icon_file_and_the_desktop_entry(
    apps: Apps, backend: Backend, qtbot: QtBot, dunst: DesktopSession, tmp_path: Path
) -> None:
    icons = tmp_path / "icons"

    def make_toaster(on_activated: ToastCallback, on_mark_read: ToastCallback) -> Toaster:
        return default_toaster(on_activated, on_mark_read, icon_folder=icons)

    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        apps.signed_in(backend, make_toaster=make_toaster)
        backend.visitor("Dana Smith", "Hello")
        qtbot.waitUntil(
            lambda: any(m.member == "Notify" for m in monitor.messages), timeout=WAIT_MS
        )
        call = next(m for m in monitor.messages if m.member == "Notify")
    icon = icons / "deskbell-64.png"
    assert call.strings[1] == icon.as_uri()
    assert QImage(str(icon)).width() == 64
    assert "desktop-entry" in call.strings
