"""LauncherEntry publishes the unread count on a private session bus."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from dbus_fast import Message, MessageType
from dbus_fast.aio import MessageBus

from desktop_agent.platform.launcher_entry import (
    DEFAULT_APP_URI,
    DEFAULT_OBJECT_PATH,
    INTERFACE,
    LauncherEntry,
    LauncherEntryUnavailable,
)
from tests.support.desktop_session import DesktopSession

pytestmark = pytest.mark.desktop


class Dock:
    """Listens for LauncherEntry Update signals like a dock does."""

    def __init__(self, bus: MessageBus) -> None:
        self.bus = bus
        self.updates: asyncio.Queue[tuple[str, str, dict[str, object]]] = asyncio.Queue()

    def _on_message(self, message: Message) -> None:
        if message.message_type == MessageType.SIGNAL and message.interface == INTERFACE:
            uri, properties = message.body
            self.updates.put_nowait(
                (str(message.member), uri, {k: v.value for k, v in properties.items()})
            )

    async def listen(self) -> None:
        self.bus.add_message_handler(self._on_message)
        await self.bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[f"type='signal',interface='{INTERFACE}'"],
            )
        )

    async def next_update(self) -> tuple[str, str, dict[str, object]]:
        return await asyncio.wait_for(self.updates.get(), 5)


@pytest.fixture
async def dock(bus_session: DesktopSession) -> AsyncIterator[Dock]:
    bus = await MessageBus(bus_address=bus_session.dbus_address).connect()
    dock = Dock(bus)
    await dock.listen()
    yield dock
    bus.disconnect()


async def test_count_is_sent_as_an_update_signal_for_the_desktop_file(
    bus_session: DesktopSession, dock: Dock
) -> None:
    entry = LauncherEntry(bus_address=bus_session.dbus_address)
    await entry.set_count(7)
    assert await dock.next_update() == (
        "Update",
        "application://deskbell.desktop",
        {"count": 7, "count-visible": True},
    )
    await entry.close()


async def test_zero_hides_the_badge_and_repeats_are_not_resent(
    bus_session: DesktopSession, dock: Dock
) -> None:
    entry = LauncherEntry(bus_address=bus_session.dbus_address)
    await entry.set_count(3)
    await entry.set_count(3)
    await entry.set_count(0)
    assert (await dock.next_update())[2] == {"count": 3, "count-visible": True}
    assert (await dock.next_update())[2] == {"count": 0, "count-visible": False}
    await entry.close()
    assert dock.updates.empty()


async def test_closing_with_unread_hides_the_badge(bus_session: DesktopSession, dock: Dock) -> None:
    entry = LauncherEntry(bus_address=bus_session.dbus_address)
    await entry.set_count(2)
    await entry.close()
    await dock.next_update()
    assert (await dock.next_update())[2] == {"count": 0, "count-visible": False}


async def test_a_restarted_dock_can_query_the_current_count(
    bus_session: DesktopSession, dock: Dock
) -> None:
    entry = LauncherEntry(bus_address=bus_session.dbus_address)
    await entry.set_count(5)
    await dock.next_update()
    reply = await dock.bus.call(
        Message(
            destination=entry.unique_name,
            path=DEFAULT_OBJECT_PATH,
            interface=INTERFACE,
            member="Query",
        )
    )
    assert reply is not None and reply.message_type == MessageType.METHOD_RETURN
    uri, properties = reply.body
    assert (uri, properties["count"].value) == (DEFAULT_APP_URI, 5)
    await entry.close()


async def test_no_bus_is_a_clear_error() -> None:
    entry = LauncherEntry(bus_address="unix:path=/nonexistent/deskbell-bus")
    with pytest.raises(LauncherEntryUnavailable, match="no session D-Bus"):
        await entry.set_count(1)
