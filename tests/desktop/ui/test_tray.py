"""TrayController: menu, tooltip, DND choices and the no-tray fallback window."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from PySide6.QtWidgets import QSystemTrayIcon

from desktop_agent.ui.tray import TrayController, icon_state, tooltip_text, until_tomorrow


def menu_texts(tray: TrayController) -> list[str]:
    return [a.text() for a in tray.menu.actions() if not a.isSeparator() and a.isVisible()]


def test_menu_offers_the_actions_in_order(qapp: Any) -> None:
    tray = TrayController(tray_available=True)
    assert menu_texts(tray) == [
        "Open notifications",
        "Waiting visitors",
        "Away",
        "Do not disturb",
        "Settings…",
        "About Deskbell…",
        "Sign out",
        "Quit Deskbell",
    ]
    assert [a.text() for a in tray.dnd_menu.actions()] == [
        "On",
        "For 1 hour",
        "Until tomorrow",
        "Off",
    ]


def test_disable_sign_out_policy_hides_sign_out(qapp: Any) -> None:
    tray = TrayController(tray_available=True, allow_sign_out=False)
    assert "Sign out" not in menu_texts(tray)
    assert not tray.sign_out_action.isEnabled()


@pytest.mark.parametrize(
    ("action", "signal"),
    [
        ("open_action", "openNotifications"),
        ("settings_action", "settingsRequested"),
        ("sign_out_action", "signOutRequested"),
        ("quit_action", "quitRequested"),
    ],
)
def test_menu_actions_emit_their_signals(qtbot: Any, action: str, signal: str) -> None:
    tray = TrayController(tray_available=True)
    with qtbot.waitSignal(getattr(tray, signal)):
        getattr(tray, action).trigger()


def test_do_not_disturb_choices(qtbot: Any, clock: Callable[[], datetime]) -> None:
    tray = TrayController(tray_available=True, clock=clock)
    now = clock()
    choices = [
        (tray.dnd_on_action, "on"),
        (tray.dnd_hour_action, now + timedelta(hours=1)),
        (tray.dnd_tomorrow_action, until_tomorrow(now)),
    ]
    for action, expected in choices:
        with qtbot.waitSignal(tray.dndRequested) as blocker:
            action.trigger()
        assert blocker.args == [expected]
    tray.set_state(0, "connected", dnd=True)
    with qtbot.waitSignal(tray.dndRequested) as blocker:
        tray.dnd_off_action.trigger()
    assert blocker.args == [None]


def test_until_tomorrow_is_next_morning() -> None:
    late = datetime(2026, 3, 10, 23, 30, tzinfo=UTC)
    assert until_tomorrow(late) == datetime(2026, 3, 11, 8, 0, tzinfo=UTC)


def test_left_click_opens_notifications_but_right_click_does_not(qtbot: Any) -> None:
    tray = TrayController(tray_available=True)
    with qtbot.waitSignal(tray.openNotifications):
        tray._on_activated(QSystemTrayIcon.ActivationReason.Trigger)
    with qtbot.assertNotEmitted(tray.openNotifications):
        tray._on_activated(QSystemTrayIcon.ActivationReason.Context)


def test_tooltip_says_state_and_count(qapp: Any) -> None:
    tray = TrayController(tray_available=True)
    tray.set_state(3, "connected", dnd=True)
    assert tray.tray is not None
    assert tray.tray.toolTip() == (
        "Deskbell: Connected\n3 unread notifications\nDo not disturb is on: no pop-ups"
    )
    assert "Offline" in tooltip_text(1, "disconnected", False)
    assert "1 unread notification" in tooltip_text(1, "disconnected", False)


def test_icon_look_follows_connection_before_dnd() -> None:
    assert icon_state("connected", False) == "normal"
    assert icon_state("connected", True) == "dnd"
    assert icon_state("disconnected", True) == "disconnected"
    assert icon_state("connecting", False) == "disconnected"


def test_without_a_tray_a_fallback_window_shows_count_and_actions(qtbot: Any) -> None:
    tray = TrayController(tray_available=False, allow_sign_out=False)
    assert tray.tray is None
    window = tray.fallback_window
    assert window is not None
    qtbot.addWidget(window)
    tray.set_state(4, "connected", dnd=False)
    tray.show()
    assert window.isVisible()
    assert window.windowTitle() == "Deskbell (4)"
    assert "4 unread" in window.state_label.text()
    with qtbot.waitSignal(tray.openNotifications):
        window.open_button.click()
    assert "Sign out" not in menu_texts(tray)
    window.close()
    assert not window.isVisible()
    assert not window.grab().isNull()


def test_offscreen_has_no_tray_so_the_default_is_the_fallback(qapp: Any) -> None:
    tray = TrayController()
    assert (tray.tray is None) == (not QSystemTrayIcon.isSystemTrayAvailable())


def test_tooltip_splits_chats_from_other_notifications_when_given_counts() -> None:
    text = tooltip_text(3, "connected", False, {"total": 5, "chat": 3, "ticket": 2})
    assert text == "Deskbell: Connected\n3 unread chats\n2 other unread notifications"
    assert tooltip_text(0, "connected", False, {"total": 0, "chat": 0}).endswith("No unread chats")


def test_same_state_does_not_repaint(qapp: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    tray = TrayController(tray_available=True)
    tray.set_state(2, "connected", False)
    renders: list[int] = []
    monkeypatch.setattr(tray, "_render", lambda: renders.append(1))
    tray.set_state(2, "connected", False)
    tray.set_state(3, "connected", False)
    assert renders == [1]


def test_a_burst_of_new_counts_repaints_the_icon_twice_and_ends_on_the_last(
    qtbot: Any,
) -> None:
    tray = TrayController(tray_available=False)
    drawn: list[int] = []
    real_icon = tray.icon

    def counting_icon() -> Any:
        drawn.append(tray._unread)
        return real_icon()

    tray.icon = counting_icon  # type: ignore[method-assign]
    for count in range(1, 51):  # fifty new chats arrive in one go
        tray.set_state(count, "connected", False)
        assert f"{count} unread" in tray.tooltip()  # the text follows at once
    qtbot.waitUntil(lambda: drawn[-1:] == [50])
    assert drawn == [50]  # the start-up icon was drawn just before: one repaint, the last
    assert tray.fallback_window is not None
    assert tray.fallback_window.windowTitle() == "Deskbell (50)"


def test_an_icon_shown_before_the_app_was_built_is_taken_over(qapp: Any) -> None:
    from PySide6.QtWidgets import QSystemTrayIcon

    early = QSystemTrayIcon()
    tray = TrayController(tray_available=True, tray_icon=early)
    assert tray.tray is early
    assert early.parent() is tray
    assert early.contextMenu() is tray.menu
    tray.set_state(4, "connected", False)
    assert "4 unread" in early.toolTip()


def test_a_visitor_waiting_past_the_first_escalation_shows_in_icon_and_tooltip(qapp: Any) -> None:
    tray = TrayController(tray_available=True)
    tray.set_state(2, "connected", dnd=True)
    assert icon_state("connected", True) == "dnd"
    tray.set_escalated(1)
    assert icon_state("connected", True, 1) == "waiting"
    assert "A visitor has waited past the first escalation" in tray.tooltip()
    tray.set_escalated(0)
    assert "escalation" not in tray.tooltip()
    assert icon_state("disconnected", False, 3) == "disconnected"
