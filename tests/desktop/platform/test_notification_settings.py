"""What the OS says about showing Deskbell's pop-ups, named for the person: Windows'
switches, Focus Assist and full-screen states behind fakes of the OS calls (they
cannot run here), macOS permission, and nothing extra on Linux."""

from __future__ import annotations

import pytest

from desktop_agent.platform.notification_settings import (
    ALARMS_ONLY_REASON,
    ALL_OFF_REASON,
    APP_OFF_REASON,
    APP_SETTINGS_KEY,
    BUSY_REASONS,
    MAC_NOT_ALLOWED_REASON,
    PRIORITY_ONLY_REASON,
    PUSH_NOTIFICATIONS_KEY,
    FocusAssist,
    MacNotificationSettings,
    WindowsNotificationSettings,
    notification_settings_for_platform,
    windows_notification_state,
)
from desktop_agent.platform.toasts import ToastAvailability
from tests.desktop.policy.fake_winreg import REG_DWORD, FakeRegistry

PERMITTED = ToastAvailability(True)
QUNS_ACCEPTS_NOTIFICATIONS = 5
QUNS_PRESENTATION_MODE = 4


@pytest.mark.parametrize(
    ("toasts", "app", "focus", "state", "expected"),
    [
        (None, None, None, None, PERMITTED),
        (True, True, FocusAssist.OFF, QUNS_ACCEPTS_NOTIFICATIONS, PERMITTED),
        (False, True, FocusAssist.OFF, 5, ToastAvailability(False, ALL_OFF_REASON)),
        (False, False, FocusAssist.ALARMS_ONLY, 4, ToastAvailability(False, ALL_OFF_REASON)),
        (True, False, FocusAssist.OFF, 5, ToastAvailability(False, APP_OFF_REASON)),
        (None, None, FocusAssist.ALARMS_ONLY, 5, ToastAvailability(False, ALARMS_ONLY_REASON)),
        (None, None, FocusAssist.PRIORITY_ONLY, 5, ToastAvailability(False, PRIORITY_ONLY_REASON)),
        (
            None,
            None,
            FocusAssist.OFF,
            QUNS_PRESENTATION_MODE,
            ToastAvailability(False, BUSY_REASONS[4]),
        ),
    ],
)
def test_windows_names_the_switch_that_holds_pop_ups_back(
    toasts: bool | None,
    app: bool | None,
    focus: FocusAssist | None,
    state: int | None,
    expected: ToastAvailability,
) -> None:
    assert (
        windows_notification_state(
            PERMITTED, toasts_enabled=toasts, app_enabled=app, focus_assist=focus, user_state=state
        )
        == expected
    )


def test_windows_toaster_refusal_is_explained_with_the_settings_path() -> None:
    refused = ToastAvailability(False, "not authorised")
    state = windows_notification_state(
        refused, toasts_enabled=None, app_enabled=None, focus_assist=None, user_state=None
    )
    assert state == ToastAvailability(False, APP_OFF_REASON)
    assert "Settings → System → Notifications → Deskbell" in state.reason


async def test_windows_reads_the_registry_and_asks_the_shell() -> None:
    registry = FakeRegistry()
    registry.set("HKCU", APP_SETTINGS_KEY, "Enabled", 1, REG_DWORD)
    registry.set("HKCU", PUSH_NOTIFICATIONS_KEY, "ToastEnabled", 1, REG_DWORD)
    settings = WindowsNotificationSettings(
        registry, focus_assist=lambda: FocusAssist.ALARMS_ONLY, user_state=lambda: 5
    )
    assert await settings.check(PERMITTED) == ToastAvailability(False, ALARMS_ONLY_REASON)

    registry.set("HKCU", APP_SETTINGS_KEY, "Enabled", 0, REG_DWORD)
    assert await settings.check(PERMITTED) == ToastAvailability(False, APP_OFF_REASON)


async def test_windows_state_that_cannot_be_read_does_not_hide_pop_ups() -> None:
    def broken() -> FocusAssist | None:
        raise OSError("NtQueryWnfStateData is not there")

    settings = WindowsNotificationSettings(
        FakeRegistry(), focus_assist=broken, user_state=lambda: None
    )
    assert await settings.check(PERMITTED) == PERMITTED


async def test_macos_says_where_to_allow_notifications() -> None:
    settings = MacNotificationSettings()
    assert await settings.check(PERMITTED) == PERMITTED
    refused = await settings.check(ToastAvailability(False, "not authorised"))
    assert refused == ToastAvailability(False, MAC_NOT_ALLOWED_REASON)
    assert "System Settings → Notifications → Deskbell" in refused.reason


def test_each_os_gets_its_own_check() -> None:
    assert isinstance(notification_settings_for_platform("win32"), WindowsNotificationSettings)
    assert isinstance(notification_settings_for_platform("darwin"), MacNotificationSettings)
    assert notification_settings_for_platform("linux") is None
