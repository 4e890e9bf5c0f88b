"""Ask the freedesktop notification server what it supports (Linux, D-Bus).

desktop-notifier maps server capabilities to its own enum and drops the ones Deskbell
needs to stay safe, notably "body-markup": a server that reads markup in the body would
render visitor text such as ``<b>hi</b>``, so the body must be escaped for it.
"""

from __future__ import annotations

from dataclasses import dataclass

NOTIFICATIONS_NAME = "org.freedesktop.Notifications"
NOTIFICATIONS_PATH = "/org/freedesktop/Notifications"


class NotificationServerUnavailable(Exception):
    """No notification server answered on the session bus; `args[0]` says why."""


@dataclass(frozen=True)
class ServerInfo:
    """What the running notification server reported about itself."""

    name: str
    vendor: str
    version: str
    capabilities: frozenset[str]

    @property
    def body_markup(self) -> bool:
        """True when the server interprets markup in the body (and so must get it escaped)."""
        return "body-markup" in self.capabilities


async def query_server(bus_address: str | None = None) -> ServerInfo:
    """Return the session notification server's identity and capabilities.

    Args:
      bus_address: a D-Bus address; None means the session bus from the environment.

    Raises:
      NotificationServerUnavailable: no session bus, or nothing owns
        org.freedesktop.Notifications (with auto-start, the bus may start one first).
    """
    from dbus_fast import BusType, Message, MessageType
    from dbus_fast.aio import MessageBus

    try:
        if bus_address is None:
            bus = await MessageBus(bus_type=BusType.SESSION).connect()
        else:
            bus = await MessageBus(bus_address=bus_address).connect()
    except Exception as exc:
        raise NotificationServerUnavailable(f"no session D-Bus: {exc}") from exc
    try:
        replies = []
        for member in ("GetServerInformation", "GetCapabilities"):
            reply = await bus.call(
                Message(
                    destination=NOTIFICATIONS_NAME,
                    path=NOTIFICATIONS_PATH,
                    interface=NOTIFICATIONS_NAME,
                    member=member,
                )
            )
            if reply is None or reply.message_type == MessageType.ERROR:
                detail = reply.error_name if reply is not None else "no reply"
                raise NotificationServerUnavailable(
                    f"{NOTIFICATIONS_NAME}.{member} failed: {detail}"
                )
            replies.append(reply.body)
        (name, vendor, version, *_), (capabilities,) = replies
        return ServerInfo(
            str(name), str(vendor), str(version), frozenset(str(c) for c in capabilities)
        )
    finally:
        bus.disconnect()
