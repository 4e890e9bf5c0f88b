"""Windows only: desktop-notifier's WinRT backend with toasts whose click opens the
conversation's ``deskbell://`` link, so a click works after Deskbell was closed.

Everything here needs WinRT and runs only on Windows; the toast itself is built by the
pure :func:`~desktop_agent.platform.toast_links.windows_toast_xml`, tested on every OS.
What this module adds is the wiring, which has not run on a real Windows machine yet
(docs/deployment.md says so).
"""

from __future__ import annotations

from typing import Any

from desktop_notifier.backends import winrt
from desktop_notifier.common import Notification
from winrt.windows.data.xml.dom import XmlDocument
from winrt.windows.ui.notifications import ToastNotification

from desktop_agent.platform.toast_links import (
    WINDOWS_BUTTON_PREFIX,
    conversation_of,
    windows_toast_xml,
)

# The button arguments must be the ones the backend maps back to button callbacks.
if winrt.BUTTON_ACTION_PREFIX != WINDOWS_BUTTON_PREFIX:  # pragma: no cover - Windows only
    raise ImportError("desktop-notifier changed how Windows toast buttons are identified")


class ProtocolToasts(winrt.WinRTDesktopNotifier):  # type: ignore[misc]
    """The WinRT backend, with the conversation link as each toast's click target."""

    async def _send(self, notification: Notification) -> None:
        xml = windows_toast_xml(
            title=notification.title,
            message=notification.message,
            conversation_id=conversation_of(notification.identifier),
            buttons=[(button.title, button.identifier) for button in notification.buttons],
            sound=notification.sound is not None,
        )
        document = XmlDocument()
        document.load_xml(xml)
        native = ToastNotification(document)
        native.tag = notification.identifier
        native.group = winrt.DEFAULT_GROUP
        native.priority = self._to_native_urgency[notification.urgency]
        native.add_activated(winrt.eventloop_wrapper(self._on_activated))
        native.add_dismissed(winrt.eventloop_wrapper(self._on_dismissed))
        native.add_failed(winrt.eventloop_wrapper(self._on_failed))
        self.notifier.show(native)


def use_protocol_toasts(notifier: Any) -> None:
    """Make ``notifier`` (a ``desktop_notifier.DesktopNotifier``) show protocol toasts."""
    backend = notifier._backend
    notifier._backend = ProtocolToasts(backend.app_name, backend.app_icon)
