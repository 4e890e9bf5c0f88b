"""What Deskbell adds to desktop-notifier's D-Bus backend (Linux), by adapting its proxy.

desktop-notifier (6.x) has no way to add either of these, so the backend's D-Bus
proxy is adapted once, right after it connects:

- The ``desktop-entry`` hint on every Notify call: it lets the desktop group Deskbell's
  toasts and apply its notification settings to them.
- Clicks that come in before the backend knows the toast. The backend records the
  server's id for a toast only when the coroutine awaiting Notify's reply resumes, but
  dbus-fast hands every message of one socket read to its handlers at once. When the
  reply and an ActionInvoked (or NotificationClosed) signal are read together -- a
  person clicked the toast while the app's loop was busy -- the signal is handled first,
  matches no toast and the click is lost. So while a Notify is in flight, signals for
  ids the backend does not know yet are held, and handed on once it has recorded them.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterator
from typing import Any

logger = logging.getLogger(__name__)

SignalHandler = Callable[[int, Any], None]

_HELD_SIGNALS = (
    # (the proxy's name for the signal, the backend's handler for it)
    ("action_invoked", "_on_action"),
    ("notification_closed", "_on_closed"),
)


class DBusBackendAdapter:
    """Adapts a ``desktop_notifier.DesktopNotifier``'s D-Bus backend for one toaster.

    With any other backend (Windows, macOS, a test's notifier) it does nothing.

    Args:
      notifier: the DesktopNotifier whose backend to adapt.
      desktop_entry: the ``desktop-entry`` hint to add; None adds none.
    """

    def __init__(self, notifier: Any, desktop_entry: str | None) -> None:
        backend = getattr(notifier, "_backend", None)
        self._backend: Any = backend if hasattr(backend, "_init_dbus") else None
        self._desktop_entry = desktop_entry
        self._in_flight = 0
        self._held: list[tuple[SignalHandler, int, Any]] = []

    async def prepare(self) -> None:
        """Connect the backend to the session bus if it is not yet, and adapt its proxy.

        Never raises: without a server desktop-notifier logs and drops the toast itself.
        """
        backend = self._backend
        if backend is None:
            return
        interface = backend.interface
        if interface is None:
            try:
                interface = backend.interface = await backend._init_dbus()
            except Exception:
                return
        if getattr(interface, "_deskbell_adapted", False):
            return
        if self._desktop_entry is not None:
            interface.call_notify = _with_desktop_entry(interface.call_notify, self._desktop_entry)
        for signal, handler_name in _HELD_SIGNALS:
            if not hasattr(interface, f"on_{signal}"):
                continue  # an old server without the signal
            handler = getattr(backend, handler_name)
            # Subscribe the holding handler before dropping the backend's own, so the
            # proxy never has no handler (which would remove its match rule meanwhile).
            getattr(interface, f"on_{signal}")(self._holding(handler))
            getattr(interface, f"off_{signal}")(handler)
        interface._deskbell_adapted = True

    @contextlib.contextmanager
    def sending(self) -> Iterator[None]:
        """Wrap one ``send_notification``: hold early signals until it has returned."""
        self._in_flight += 1
        try:
            yield
        finally:
            self._in_flight -= 1
            self._release()

    def _holding(self, handler: SignalHandler) -> SignalHandler:
        def on_signal(platform_id: int, value: Any) -> None:
            if self._in_flight and not self._knows(platform_id):
                self._held.append((handler, platform_id, value))
            else:
                handler(platform_id, value)

        return on_signal

    def _knows(self, platform_id: int) -> bool:
        return platform_id in self._backend._platform_to_interface_notification_identifier

    def _release(self) -> None:
        """Hand on the held signals whose toast is now known; keep the others while a
        Notify is still in flight, and drop them after (another program's toasts)."""
        held, self._held = self._held, []
        for handler, platform_id, value in held:
            if self._knows(platform_id):
                try:
                    handler(platform_id, value)
                except Exception:
                    logger.exception("a held toast signal for %d failed", platform_id)
            elif self._in_flight:
                self._held.append((handler, platform_id, value))


def _with_desktop_entry(notify: Any, entry: str) -> Any:
    """Wrap the proxy's ``call_notify`` to add the ``desktop-entry`` hint."""

    async def call_notify(*args: Any, **kwargs: Any) -> Any:
        args_list = list(args)
        if len(args_list) >= 7 and isinstance(args_list[6], dict):
            hints = dict(args_list[6])
            # The server's Notify takes a{sv} (the spec) or a{ss} (old servers).
            typed = any(hasattr(value, "signature") for value in hints.values())
            if typed:
                from dbus_fast import Variant

                hints["desktop-entry"] = Variant("s", entry)
            else:
                hints["desktop-entry"] = entry
            args_list[6] = hints
        return await notify(*args_list, **kwargs)

    return call_notify
