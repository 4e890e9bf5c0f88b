"""Unread count on the dock/launcher icon via com.canonical.Unity.LauncherEntry.

Docks without a tray (Ubuntu Dock, Dash to Dock, KDE's task manager, Plank) listen on the
session bus for the `Update` signal of this interface and draw a count badge on the
icon of the matching .desktop file. The object also answers `Query`, so a dock that
restarts can ask for the current count.
"""

from __future__ import annotations

import logging
from typing import Any

from dbus_fast import Message, MessageType, Variant
from dbus_fast.aio import MessageBus

logger = logging.getLogger(__name__)

INTERFACE = "com.canonical.Unity.LauncherEntry"
DEFAULT_APP_URI = "application://deskbell.desktop"
DEFAULT_OBJECT_PATH = "/dev/deskbell/Deskbell/LauncherEntry"


class LauncherEntryUnavailable(Exception):
    """No session D-Bus to publish the count on; `args[0]` says why."""


def launcher_properties(count: int) -> dict[str, Variant]:
    """The Update properties for `count` unread (badge hidden at zero)."""
    count = max(0, count)
    return {"count": Variant("x", count), "count-visible": Variant("b", count > 0)}


class LauncherEntry:
    """Publishes the unread count for one .desktop file on the session bus.

    Args:
      app_uri: "application://<desktop file name>" of the installed app.
      bus_address: a D-Bus address; None means the session bus from the environment.
      object_path: where the entry object lives on our connection.
    """

    def __init__(
        self,
        app_uri: str = DEFAULT_APP_URI,
        *,
        bus_address: str | None = None,
        object_path: str = DEFAULT_OBJECT_PATH,
    ) -> None:
        self.app_uri = app_uri
        self._bus_address = bus_address
        self._object_path = object_path
        self._bus: Any = None
        self.count = 0

    @property
    def unique_name(self) -> str | None:
        """Our connection's unique bus name (":1.42") while connected, else None."""
        return str(self._bus.unique_name) if self._bus is not None else None

    async def set_count(self, count: int) -> None:
        """Show `count` on the launcher icon (0 hides the badge); skips repeats.

        Raises:
          LauncherEntryUnavailable: there is no session bus to publish on.
        """
        count = max(0, count)
        if self._bus is not None and count == self.count:
            return
        bus = await self._connect()
        self.count = count
        await bus.send(self._update_signal(count))
        logger.debug("launcher count %d sent on %s", count, bus.unique_name)

    async def close(self) -> None:
        """Hide the badge and leave the bus (on quit)."""
        if self._bus is None:
            return
        if self.count:
            self.count = 0
            await self._bus.send(self._update_signal(0))
        self._bus.disconnect()
        await self._bus.wait_for_disconnect()
        self._bus = None

    async def _connect(self) -> Any:
        if self._bus is not None and self._bus.connected:
            return self._bus
        try:
            if self._bus_address is None:
                bus = await MessageBus().connect()
            else:
                bus = await MessageBus(bus_address=self._bus_address).connect()
        except Exception as exc:
            raise LauncherEntryUnavailable(f"no session D-Bus: {exc}") from exc
        bus.add_message_handler(self._answer_query)
        self._bus = bus
        return bus

    def _update_signal(self, count: int) -> Message:
        return Message.new_signal(
            self._object_path,
            INTERFACE,
            "Update",
            "sa{sv}",
            [self.app_uri, launcher_properties(count)],
        )

    def _answer_query(self, message: Message) -> Message | None:
        """Reply to Query on our object with the current state; leave other messages."""
        if (
            message.message_type == MessageType.METHOD_CALL
            and message.path == self._object_path
            and message.interface == INTERFACE
            and message.member == "Query"
        ):
            return Message.new_method_return(
                message, "sa{sv}", [self.app_uri, launcher_properties(self.count)]
            )
        return None
