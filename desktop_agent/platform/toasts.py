"""Toasts: the Toaster interface, a desktop-notifier implementation and a recording fake.

A toast is keyed by a caller-chosen `key` (ToastPolicy uses one per conversation):
showing a toast with a key that is already on screen, or with `replaces=` naming one,
withdraws the old toast first, so a busy conversation never piles up pop-ups.
Callbacks are given to the constructor and run on the asyncio loop's thread.
"""

from __future__ import annotations

import html
import logging
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from desktop_agent.platform.dbus_toasts import DBusBackendAdapter
from desktop_agent.platform.notification_server import (
    NotificationServerUnavailable,
    ServerInfo,
    query_server,
)
from desktop_agent.platform.toast_links import conversation_of, toast_identifier

logger = logging.getLogger(__name__)

ToastAction = Literal["open", "mark_read", "accept"]
ToastCallback = Callable[[str, "str | None"], None]
"""Called with (key, conversation_id)."""

ACTION_LABELS: dict[str, str] = {"open": "Open", "mark_read": "Mark read", "accept": "Accept"}

DESKTOP_ENTRY = "deskbell"
"""The .desktop file's name (packaging/linux/deskbell.desktop) and the themed icon's."""
SOUND_NAMES: dict[str, str] = {
    # freedesktop Sound Naming Specification, "Messaging": a new instant message.
    "linux": "message-new-instant",
    # Windows toast audio: the "Instant Message" system sound event.
    "win32": "ms-winsoundevent:Notification.IM",
}
"""The new-message sound by platform; macOS (and anything else) plays its default."""
URGENT_SOUND_NAMES: dict[str, str] = {
    # freedesktop Sound Naming Specification, "Alarm": needs attention now.
    "linux": "dialog-warning",
    # Windows toast audio: the looping-free "Reminder" event, louder than IM.
    "win32": "ms-winsoundevent:Notification.Reminder",
}
"""The escalation sound by platform; macOS plays its default (with a time-sensitive
interruption level where the OS has one)."""


def toast_sound_name(platform: str = sys.platform, *, urgent: bool = False) -> str | None:
    """The sound name a toast asks for on ``platform``; None for the system default."""
    for prefix, name in (URGENT_SOUND_NAMES if urgent else SOUND_NAMES).items():
        if platform.startswith(prefix):
            return name
    return None


NO_SERVER_REASON = (
    "Pop-up notifications are off because no notification service is running on this "
    "desktop. New chats still show in the tray and the notification list; start your "
    "desktop's notification service (for example dunst or your desktop's own) and "
    "restart Deskbell to get pop-ups."
)
NOT_AUTHORISED_REASON = (
    "Pop-up notifications for Deskbell are turned off in your system settings. Turn them "
    "on in the system notification settings to see new chats as pop-ups."
)
NO_ACTIONS_REASON = (
    "This desktop's notification service cannot show buttons, so clicking a pop-up "
    "will not open the conversation. Open it from the tray instead."
)


@dataclass(frozen=True)
class ToastRequest:
    """One toast to show. `body` and `title` are plain text (visitor text included)."""

    key: str
    title: str
    body: str
    conversation_id: str | None = None
    actions: tuple[ToastAction, ...] = ("open", "mark_read")
    replaces: str | None = None
    sound: bool = False
    urgent: bool = False
    """An escalation: freedesktop urgency critical (stays until acted on), a sound
    even when ``sound`` is off. desktop-notifier carries the same intent to Windows
    (high priority, the Reminder sound) and macOS (time-sensitive interruption level,
    the default sound)."""
    notification_ids: tuple[str, ...] = ()
    """The notifications behind the toast (for ``seen`` receipts)."""
    sound_name: str | None = None
    """A sound of the desktop's theme for this toast (per-inbox sound); None: the
    platform's message sound."""


@dataclass(frozen=True)
class ToastAvailability:
    """Whether toasts can be shown; `reason` is a sentence for a person when not (or partly)."""

    ok: bool
    reason: str = ""


class Toaster(Protocol):
    """Shows toasts and reports clicks through the callbacks given to its constructor."""

    on_accept: ToastCallback | None
    """Called with (key, conversation_id) when "Accept" is pressed (None: ignored)."""

    async def show(self, request: ToastRequest) -> bool:
        """Show `request`, replacing the toast of the same key and of `request.replaces`.

        Returns whether the OS accepted the toast (the ``shown`` seen receipt).
        Never raises for a missing notification server: the toast is dropped and logged,
        and `available()` says why.
        """

    async def withdraw(self, key: str) -> None:
        """Remove the toast shown under `key`, if it is still there."""

    async def available(self) -> ToastAvailability:
        """Report whether toasts can be shown right now, and if not, why."""


def escape_markup(text: str) -> str:
    """Escape &, < and > so a markup-reading notification server shows `text` literally."""
    return html.escape(text, quote=False)


@dataclass
class _Shown:
    key: str
    conversation_id: str | None
    identifier: str


ServerQuery = Callable[[], Awaitable[ServerInfo]]


class DesktopNotifierToaster:
    """Toaster over desktop-notifier (D-Bus on Linux, WinRT on Windows, UN on macOS).

    Needs a running asyncio loop (the qasync loop in the app) for clicks to arrive.

    On Windows desktop-notifier uses `app_name` as the AppUserModelID (and registers it
    under HKCU\\Software\\Classes\\AppUserModelId), so the installer's Start-menu
    shortcut must carry the same ID ("Deskbell") for toasts and their clicks to work.

    Args:
      on_activated: called with (key, conversation_id) on a body click or "Open".
      on_mark_read: called with (key, conversation_id) on "Mark read".
      app_name: the name the notification server shows; matches the .desktop entry.
      app_icon: an icon theme name (e.g. "deskbell") or the path of an icon file;
        None for the server's default.
      desktop_entry: the ``desktop-entry`` hint (Linux): lets the desktop group
        Deskbell's toasts and apply its notification settings to them.
      notifier: a desktop_notifier.DesktopNotifier to use (tests, or a preconfigured one).
      server_query: returns the server's capabilities; defaults to the session D-Bus
        on Linux. Elsewhere servers take no markup, so nothing is escaped.
    """

    def __init__(
        self,
        on_activated: ToastCallback,
        on_mark_read: ToastCallback,
        *,
        app_name: str = "Deskbell",
        app_icon: str | None = None,
        desktop_entry: str | None = DESKTOP_ENTRY,
        notifier: Any = None,
        server_query: ServerQuery | None = None,
    ) -> None:
        from desktop_notifier import DesktopNotifier, Icon

        self._on_activated = on_activated
        self._on_mark_read = on_mark_read
        if notifier is None:
            icon = None
            if app_icon:
                path = Path(app_icon)
                icon = Icon(path=path) if path.is_absolute() else Icon(name=app_icon)
            notifier = DesktopNotifier(app_name=app_name, app_icon=icon)
            if sys.platform == "win32":
                from desktop_agent.platform.windows_toasts import use_protocol_toasts

                use_protocol_toasts(notifier)
        # A click on a toast this process did not show (macOS relaunched Deskbell for
        # it) arrives here, with only the toast's identifier to go on.
        notifier.on_clicked = self._clicked_from_earlier_run
        self._notifier = notifier
        self._dbus = DBusBackendAdapter(notifier, desktop_entry)
        if server_query is None and sys.platform.startswith("linux"):
            server_query = query_server
        self._server_query = server_query
        self._server: ServerInfo | None = None
        self._said_unavailable = False
        self._shown: dict[str, _Shown] = {}
        self.on_accept: ToastCallback | None = None

    async def show(self, request: ToastRequest) -> bool:
        from desktop_notifier import DEFAULT_SOUND, Button, Notification, Sound, Urgency

        for old_key in dict.fromkeys(k for k in (request.replaces, request.key) if k):
            await self.withdraw(old_key)

        if self._server_query is not None and self._server is None:
            try:
                self._server = await self._server_query()
            except NotificationServerUnavailable as exc:
                # No server to show it: drop the toast (the tray and the list still have
                # it) and say so once, not for every toast. The next toast asks again,
                # so pop-ups come back as soon as a server starts.
                if not self._said_unavailable:
                    logger.warning("%s (%s)", NO_SERVER_REASON, exc)
                    self._said_unavailable = True
                return False
            self._said_unavailable = False
        escape = await self._body_needs_escaping()
        body = escape_markup(request.body) if escape else request.body
        key, conversation_id = request.key, request.conversation_id
        identifier = toast_identifier(conversation_id)
        # The summary (title) is plain text by the notification spec; servers escape it
        # themselves, so escaping it here would show "&lt;" to the person.
        buttons = tuple(
            Button(
                title=ACTION_LABELS[action],
                identifier=action,
                on_pressed=self._button_handler(action, key, conversation_id, identifier),
            )
            for action in request.actions
        )
        dispatched: list[bool] = []
        notification = Notification(
            title=request.title,
            message=body,
            buttons=buttons,
            on_clicked=lambda: self._fire(self._on_activated, key, conversation_id, identifier),
            on_dismissed=lambda: self._forget(key, identifier),
            on_dispatched=lambda: dispatched.append(True),
            sound=_sound(request, DEFAULT_SOUND, Sound),
            urgency=Urgency.Critical if request.urgent else Urgency.Normal,
            thread=key,
            identifier=identifier,
        )
        await self._dbus.prepare()
        # A click that came in during the send is handed on when this block ends, once
        # the toast is recorded here too (so the click forgets it again).
        with self._dbus.sending():
            await self._notifier.send_notification(notification)
            if dispatched:
                self._shown[key] = _Shown(key, conversation_id, identifier)
                return True
        # desktop-notifier logs the cause and never raises; forget the server so the
        # next toast (or available()) asks again.
        self._server = None
        logger.warning("toast %r was not shown: the notification server refused it", key)
        return False

    async def withdraw(self, key: str) -> None:
        shown = self._shown.pop(key, None)
        if shown is None:
            return
        try:
            await self._notifier.clear(shown.identifier)
        except KeyError:
            pass  # the server closed it already (clicked, dismissed or expired)
        except Exception:
            logger.warning("could not withdraw toast %r", key, exc_info=True)

    async def available(self) -> ToastAvailability:
        if self._server_query is None:
            if await self._notifier.has_authorisation():
                return ToastAvailability(True)
            return ToastAvailability(False, NOT_AUTHORISED_REASON)
        try:
            self._server = await self._server_query()
        except NotificationServerUnavailable as exc:
            self._server = None
            logger.info("no notification server: %s", exc)
            return ToastAvailability(False, NO_SERVER_REASON)
        if "actions" not in self._server.capabilities:
            return ToastAvailability(True, NO_ACTIONS_REASON)
        return ToastAvailability(True)

    def _clicked_from_earlier_run(self, identifier: str) -> None:
        try:
            self._on_activated("", conversation_of(identifier))
        except Exception:
            logger.exception("toast click from an earlier run failed")

    def shown_keys(self) -> frozenset[str]:
        """Keys of the toasts this toaster believes are still on screen."""
        return frozenset(self._shown)

    async def _body_needs_escaping(self) -> bool:
        if self._server_query is None:
            return False
        if self._server is None:
            try:
                self._server = await self._server_query()
            except NotificationServerUnavailable:
                return True  # unknown server: escaping is the safe side
        return self._server.body_markup

    def _button_handler(
        self, action: str, key: str, conversation_id: str | None, identifier: str
    ) -> Callable[[], None]:
        if action == "accept":
            return lambda: self._fire(self._accept, key, conversation_id, identifier)
        callback = self._on_mark_read if action == "mark_read" else self._on_activated
        return lambda: self._fire(callback, key, conversation_id, identifier)

    def _accept(self, key: str, conversation_id: str | None) -> None:
        if self.on_accept is not None:
            self.on_accept(key, conversation_id)

    def _fire(
        self, callback: ToastCallback, key: str, conversation_id: str | None, identifier: str
    ) -> None:
        # A click on an older toast of the key still counts; it just must not make us
        # forget the newer toast that replaced it.
        self._forget(key, identifier)
        try:
            callback(key, conversation_id)
        except Exception:
            # Runs inside the D-Bus signal dispatch, where an exception would be lost.
            logger.exception("toast callback for %r failed", key)

    def _forget(self, key: str, identifier: str) -> None:
        shown = self._shown.get(key)
        if shown is not None and shown.identifier == identifier:
            del self._shown[key]


def _sound(request: ToastRequest, default: Any, sound_type: Any) -> Any:
    """The desktop-notifier sound for a toast: None (silent), a named one, or the default."""
    if not (request.sound or request.urgent):
        return None
    name = request.sound_name or toast_sound_name(urgent=request.urgent)
    return sound_type(name=name) if name else default


@dataclass
class RecordingToaster:
    """In-memory Toaster: records what was asked and lets a test fire clicks.

    It stands in for the Windows and macOS toast APIs (which cannot run here) and for
    unit tests of code that shows toasts. Same replace rules as the real toaster.
    """

    on_activated: ToastCallback
    on_mark_read: ToastCallback
    availability: ToastAvailability = field(default_factory=lambda: ToastAvailability(True))
    requests: list[ToastRequest] = field(default_factory=list)
    """Every request passed to show(), in order."""
    visible: dict[str, ToastRequest] = field(default_factory=dict)
    """Toasts on the imaginary screen, by key."""
    withdrawn: list[str] = field(default_factory=list)
    """Keys withdrawn (explicitly or by a replacing toast), in order."""
    on_accept: ToastCallback | None = None

    async def show(self, request: ToastRequest) -> bool:
        self.requests.append(request)
        if not self.availability.ok:
            return False
        for old_key in dict.fromkeys(k for k in (request.replaces, request.key) if k):
            await self.withdraw(old_key)
        self.visible[request.key] = request
        return True

    async def withdraw(self, key: str) -> None:
        if self.visible.pop(key, None) is not None:
            self.withdrawn.append(key)

    async def available(self) -> ToastAvailability:
        return self.availability

    def activate(self, key: str, action: ToastAction = "open") -> None:
        """Simulate a click on the toast `key` (body or "Open"), or its "Mark read" or
        "Accept" button.

        Raises KeyError when no such toast is visible, and ValueError for a button the
        toast does not have: a person could not click either.
        """
        request = self.visible[key]
        if action not in request.actions and action != "open":
            raise ValueError(f"toast {key!r} has no {action!r} button")
        del self.visible[key]
        if action == "accept":
            if self.on_accept is not None:
                self.on_accept(key, request.conversation_id)
            return
        callback = self.on_mark_read if action == "mark_read" else self.on_activated
        callback(key, request.conversation_id)

    def dismiss(self, key: str) -> None:
        """Simulate the person closing toast `key` without acting on it."""
        self.visible.pop(key)
