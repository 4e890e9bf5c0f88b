"""Whether the OS will actually show Deskbell's pop-ups, and if not, what to change.

The toaster answers "can toasts be sent" (a notification server on Linux, permission
on Windows and macOS). On Windows a permitted toast can still be held back: Focus
Assist ("Do not disturb"), presentation mode, a full-screen game, or notifications
turned off for every app. :class:`NotificationSettings` refines the toaster's answer
with what the OS says, so the status view names the switch to flip.

- Windows (:class:`WindowsNotificationSettings`): the per-app and global switches in
  the registry, Focus Assist's profile (the shell's WNF state, as the Action Center
  reads it) and ``SHQueryUserNotificationState``. The OS calls are constructor
  arguments; :func:`windows_notification_state` decides, purely, from their answers.
- macOS (:class:`MacNotificationSettings`): permission is the toaster's answer
  (UserNotifications' authorization status); this adds where to grant it.
- Linux: the toaster's D-Bus check says it all (no refinement).

The Windows and macOS code paths have not run on a real machine (docs/deployment.md).
"""

from __future__ import annotations

import asyncio
import ctypes
import importlib
import logging
import sys
from collections.abc import Callable
from enum import IntEnum
from typing import Any, Final, Protocol

from desktop_agent.platform.toasts import ToastAvailability

log = logging.getLogger(__name__)

APP_USER_MODEL_ID: Final = "Deskbell"
"""The Start-menu shortcut's AppUserModelID (the MSI sets it; toasts.py uses it)."""
PUSH_NOTIFICATIONS_KEY: Final = r"Software\Microsoft\Windows\CurrentVersion\PushNotifications"
APP_SETTINGS_KEY: Final = (
    r"Software\Microsoft\Windows\CurrentVersion\Notifications\Settings" + "\\" + APP_USER_MODEL_ID
)
WNF_SHEL_QUIETHOURS_ACTIVE_PROFILE_CHANGED: Final = 0x0D83063EA3BF1C75
"""The shell's state name for the active Focus Assist profile (0 off, 1 priority, 2 alarms)."""

ALL_OFF_REASON = (
    "Notifications are turned off for every app in Windows, so Deskbell cannot show "
    "pop-ups. Turn them on in Settings → System → Notifications. New chats still show "
    "in the tray and the notification list."
)
APP_OFF_REASON = (
    "Notifications for Deskbell are turned off in Windows. Turn them on in Settings → "
    "System → Notifications → Deskbell. New chats still show in the tray and the "
    "notification list."
)
ALARMS_ONLY_REASON = (
    "Focus assist (Do not disturb) is on, set to alarms only, so Windows holds back "
    "Deskbell's pop-ups. Turn it off in Settings → System → Focus assist (Notifications on "
    "Windows 11). New chats still show in the tray."
)
PRIORITY_ONLY_REASON = (
    "Focus assist is on, set to priority only: Windows shows Deskbell's pop-ups only if "
    "Deskbell is on its priority list. Add Deskbell there, or turn Focus assist off, in "
    "Settings → System → Focus assist. New chats still show in the tray."
)
BUSY_REASONS: Final = {
    2: "Windows holds back pop-ups while an app is in full-screen mode; they show when it "
    "leaves full screen. New chats still show in the tray.",
    3: "Windows holds back pop-ups while a full-screen game or video runs. New chats still "
    "show in the tray.",
    4: "Windows holds back pop-ups in presentation mode. New chats still show in the tray.",
    6: "Windows holds back pop-ups in the quiet time after a first sign-in on this computer; "
    "they start within an hour. New chats still show in the tray.",
}
"""``SHQueryUserNotificationState`` answers (QUNS_*) under which toasts are held back."""
MAC_NOT_ALLOWED_REASON = (
    "Notifications for Deskbell are not allowed on this Mac. Allow them in System Settings → "
    "Notifications → Deskbell (Allow notifications, alert style Alerts). New chats still show "
    "in the menu bar icon and the notification list."
)


class FocusAssist(IntEnum):
    """The active Focus Assist profile."""

    OFF = 0
    PRIORITY_ONLY = 1
    ALARMS_ONLY = 2


class NotificationSettings(Protocol):
    """Refines the toaster's availability with what the OS's settings say."""

    async def check(self, toaster: ToastAvailability) -> ToastAvailability:
        """What the person should know, given the toaster's own answer. Never raises."""
        ...


def windows_notification_state(
    toaster: ToastAvailability,
    *,
    toasts_enabled: bool | None,
    app_enabled: bool | None,
    focus_assist: FocusAssist | None,
    user_state: int | None,
) -> ToastAvailability:
    """Decide from the OS's answers (None: could not be asked) what to tell the person.

    The switch that blocks everything is named first (notifications off for all apps,
    then for Deskbell), then what holds toasts back for now (Focus Assist, full screen).
    """
    if toasts_enabled is False:
        return ToastAvailability(False, ALL_OFF_REASON)
    if app_enabled is False or not toaster.ok:
        return ToastAvailability(False, APP_OFF_REASON)
    if focus_assist is FocusAssist.ALARMS_ONLY:
        return ToastAvailability(False, ALARMS_ONLY_REASON)
    if focus_assist is FocusAssist.PRIORITY_ONLY:
        return ToastAvailability(False, PRIORITY_ONLY_REASON)
    if user_state in BUSY_REASONS:
        return ToastAvailability(False, BUSY_REASONS[user_state])
    return toaster


def _read_dword(registry: Any, key: str, name: str) -> int | None:
    try:
        with registry.OpenKey(registry.HKEY_CURRENT_USER, key) as handle:
            value, _kind = registry.QueryValueEx(handle, name)
    except OSError:
        return None  # not set: Windows' default (on) applies
    return int(value) if isinstance(value, int) else None


def query_focus_assist() -> FocusAssist | None:
    """The active Focus Assist profile from the shell's WNF state (Windows 10 1803+)."""
    ntdll = ctypes.WinDLL("ntdll")  # type: ignore[attr-defined,unused-ignore]
    state_name = ctypes.c_uint64(WNF_SHEL_QUIETHOURS_ACTIVE_PROFILE_CHANGED)
    change_stamp = ctypes.c_ulong(0)
    profile = ctypes.c_uint32(0)
    size = ctypes.c_ulong(ctypes.sizeof(profile))
    status = ntdll.NtQueryWnfStateData(
        ctypes.byref(state_name),
        None,
        None,
        ctypes.byref(change_stamp),
        ctypes.byref(profile),
        ctypes.byref(size),
    )
    if status != 0:
        return None
    try:
        return FocusAssist(profile.value)
    except ValueError:
        return None


def query_user_notification_state() -> int | None:
    """``SHQueryUserNotificationState`` (QUNS_* value), or None when it fails."""
    shell32 = ctypes.WinDLL("shell32")  # type: ignore[attr-defined,unused-ignore]
    state = ctypes.c_int(0)
    if shell32.SHQueryUserNotificationState(ctypes.byref(state)) != 0:
        return None
    return int(state.value)


class WindowsNotificationSettings:
    """Windows' notification switches, Focus Assist and the shell's notification state.

    Args:
        registry: the ``winreg`` module (a fake in tests).
        focus_assist: returns the Focus Assist profile (None: unknown).
        user_state: returns ``SHQueryUserNotificationState``'s answer (None: unknown).
    """

    def __init__(
        self,
        registry: Any = None,
        focus_assist: Callable[[], FocusAssist | None] = query_focus_assist,
        user_state: Callable[[], int | None] = query_user_notification_state,
    ) -> None:
        self._registry = registry
        self._focus_assist = focus_assist
        self._user_state = user_state

    async def check(self, toaster: ToastAvailability) -> ToastAvailability:
        return await asyncio.to_thread(self._check, toaster)

    def _check(self, toaster: ToastAvailability) -> ToastAvailability:
        registry = self._registry or importlib.import_module("winreg")
        toasts = _read_dword(registry, PUSH_NOTIFICATIONS_KEY, "ToastEnabled")
        app = _read_dword(registry, APP_SETTINGS_KEY, "Enabled")
        focus: FocusAssist | None = None
        user_state: int | None = None
        try:
            focus = self._focus_assist()
        except (OSError, AttributeError, ValueError):
            log.info("could not read the Focus Assist state", exc_info=True)
        try:
            user_state = self._user_state()
        except (OSError, AttributeError, ValueError):
            log.info("could not ask the shell's notification state", exc_info=True)
        return windows_notification_state(
            toaster,
            toasts_enabled=None if toasts is None else toasts != 0,
            app_enabled=None if app is None else app != 0,
            focus_assist=focus,
            user_state=user_state,
        )


class MacNotificationSettings:
    """macOS: permission is the toaster's answer; this says where to grant it."""

    async def check(self, toaster: ToastAvailability) -> ToastAvailability:
        if toaster.ok:
            return toaster
        return ToastAvailability(False, MAC_NOT_ALLOWED_REASON)


def notification_settings_for_platform(platform: str = sys.platform) -> NotificationSettings | None:
    """The refinement for ``platform`` (a ``sys.platform`` value); None on Linux."""
    if platform == "win32":
        return WindowsNotificationSettings()
    if platform == "darwin":
        return MacNotificationSettings()
    return None
