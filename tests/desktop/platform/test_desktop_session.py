"""The private desktop session itself: isolated, ready when started, gone when stopped."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from tests.support.bus_monitor import BusMonitor
from tests.support.desktop_session import DesktopSession, desktop_session, require_binaries

pytestmark = pytest.mark.desktop


def dbus_call(
    session: DesktopSession, dest: str, path: str, method: str, *args: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["dbus-send", "--session", "--print-reply", f"--dest={dest}", path, method, *args],
        env=session.env,
        capture_output=True,
        text=True,
        timeout=10,
    )


@pytest.mark.skipif(shutil.which("dbus-monitor") is None, reason="needs dbus-monitor (dbus-bin)")
def test_the_bus_monitor_hands_out_a_message_only_with_all_its_lines(
    bus_session: DesktopSession,
) -> None:
    # dbus-monitor prints a line at a time: a long message is read in many pieces.
    words = [f"word{i}" for i in range(3000)]
    with BusMonitor(bus_session.dbus_address, "interface='org.example.Test'") as monitor:
        subprocess.run(
            [
                "dbus-send",
                f"--bus={bus_session.dbus_address}",
                "--type=signal",
                "/org/example/Test",
                "org.example.Test.Long",
                "array:string:" + ",".join(words),
            ],
            check=True,
            timeout=10,
        )
        long = monitor.wait_for(lambda m: m.member == "Long")
        assert long.strings == words
        # The markers that complete a message are not messages of the bus.
        assert "Marker" not in [m.member for m in monitor.messages]


@pytest.mark.skipif(shutil.which("dbus-send") is None, reason="needs dbus-send (dbus-bin)")
def test_bare_bus_auto_starts_nothing(bus_session: DesktopSession) -> None:
    result = dbus_call(
        bus_session,
        "org.freedesktop.Notifications",
        "/org/freedesktop/Notifications",
        "org.freedesktop.Notifications.GetCapabilities",
    )
    assert result.returncode != 0
    assert "ServiceUnknown" in result.stderr or "was not provided" in result.stderr


def test_session_env_points_into_the_temp_folder(bus_session: DesktopSession) -> None:
    assert bus_session.env["HOME"] == str(bus_session.home)
    assert bus_session.env["DBUS_SESSION_BUS_ADDRESS"] == bus_session.dbus_address
    assert str(bus_session.root) in bus_session.dbus_address
    assert "DISPLAY" not in bus_session.env


def test_activated_swaps_os_environ_and_restores_it(bus_session: DesktopSession) -> None:
    before = os.environ.get("DBUS_SESSION_BUS_ADDRESS")
    with bus_session.activated():
        assert os.environ["DBUS_SESSION_BUS_ADDRESS"] == bus_session.dbus_address
        assert os.environ["HOME"] == str(bus_session.home)
    assert os.environ.get("DBUS_SESSION_BUS_ADDRESS") == before


def test_notification_session_has_dunst_on_its_own_display(
    notification_session: DesktopSession,
) -> None:
    assert notification_session.display is not None
    result = dbus_call(
        notification_session,
        "org.freedesktop.Notifications",
        "/org/freedesktop/Notifications",
        "org.freedesktop.Notifications.GetServerInformation",
    )
    assert result.returncode == 0, result.stderr
    assert '"dunst"' in result.stdout
    assert notification_session.dunst_displayed() == 0


def test_notification_server_can_be_stopped_and_started_again(
    notification_session: DesktopSession,
) -> None:
    notification_session.stop_notification_server()
    try:
        gone = dbus_call(
            notification_session,
            "org.freedesktop.Notifications",
            "/org/freedesktop/Notifications",
            "org.freedesktop.Notifications.GetCapabilities",
        )
        assert gone.returncode != 0
    finally:
        notification_session.start_notification_server()
    assert notification_session.dunst_displayed() == 0


def test_stop_ends_every_process() -> None:
    with desktop_session(notifications=True, keyring=True) as session:
        processes = [service.process for service in session._services.values()]
        assert len(processes) == 4
        assert all(p.poll() is None for p in processes)
    assert all(p.poll() is not None for p in processes)
    assert not session.root.exists()


def test_qt_runs_on_the_sessions_xvfb_display(display_session: DesktopSession) -> None:
    env = {**display_session.env, "QT_QPA_PLATFORM": "xcb"}
    script = (
        "from PySide6.QtWidgets import QApplication; app = QApplication([]); "
        "print(app.platformName(), app.primaryScreen().size().width())"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["xcb", "1280"]


def test_a_missing_binary_skips_with_its_name() -> None:
    with pytest.raises(pytest.skip.Exception, match="no-such-deskbell-tool"):
        require_binaries("dbus-daemon", "no-such-deskbell-tool")
