"""The test watcher itself, driven by a bare D-Bus client instead of Qt.

Qt registers its item by object path; other toolkits register by bus name. Both forms,
the watcher's own properties and the departure of an item are checked here, so a tray
test that fails points at the app, not at the watcher.
"""

from __future__ import annotations

import pytest
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from tests.support.desktop_session import DesktopSession
from tests.support.sni_watcher import (
    DEFAULT_ITEM_PATH,
    WATCHER_NAME,
    WATCHER_PATH,
    SniItem,
    SniWatcher,
)

pytestmark = [pytest.mark.desktop, pytest.mark.timeout(60)]

ITEM_NAME = "org.kde.StatusNotifierItem-4242-1"


async def call_watcher(bus: MessageBus, interface: str, member: str, signature: str,
                       body: list[object]) -> Message:  # fmt: skip
    reply = await bus.call(
        Message(
            destination=WATCHER_NAME,
            path=WATCHER_PATH,
            interface=interface,
            member=member,
            signature=signature,
            body=body,
        )
    )
    assert reply is not None
    assert reply.message_type == MessageType.METHOD_RETURN, reply.body
    return reply


async def watcher_property(bus: MessageBus, name: str) -> object:
    reply = await call_watcher(
        bus, "org.freedesktop.DBus.Properties", "Get", "ss", [WATCHER_NAME, name]
    )
    return reply.body[0].value


async def test_item_registered_by_bus_name_is_listed_and_forgotten_when_it_leaves(
    tray_session: DesktopSession, sni_watcher: SniWatcher
) -> None:
    client = await MessageBus(bus_address=tray_session.dbus_address).connect()
    try:
        await client.request_name(ITEM_NAME)
        await call_watcher(client, WATCHER_NAME, "RegisterStatusNotifierItem", "s", [ITEM_NAME])

        item = await sni_watcher.wait_for_item()
        assert item == SniItem(ITEM_NAME, DEFAULT_ITEM_PATH)
        assert await watcher_property(client, "RegisteredStatusNotifierItems") == [item.key]
        assert await watcher_property(client, "IsStatusNotifierHostRegistered") is True
    finally:
        client.disconnect()

    await sni_watcher.wait_for_no_items()


async def test_item_registered_by_object_path_takes_the_callers_unique_name(
    tray_session: DesktopSession, sni_watcher: SniWatcher
) -> None:
    client = await MessageBus(bus_address=tray_session.dbus_address).connect()
    try:
        await call_watcher(
            client, WATCHER_NAME, "RegisterStatusNotifierItem", "s", ["/org/example/Tray"]
        )

        item = await sni_watcher.wait_for_item()
        assert item == SniItem(str(client.unique_name), "/org/example/Tray")
    finally:
        client.disconnect()
