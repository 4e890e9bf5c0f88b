"""A StatusNotifierWatcher for tests: the piece of a desktop panel that tray icons talk to.

Qt on xcb looks for ``org.kde.StatusNotifierWatcher`` on the session bus when a
``QSystemTrayIcon`` is created; when it finds one it exports the icon as a
StatusNotifierItem (SNI) and registers it here instead of asking for an XEmbed tray.
:class:`SniWatcher` owns that name on a (private) bus, records every item that
registers, and plays the panel's part: it reads an item's properties (``IconPixmap``,
``ToolTip``, ``Status``) and calls its ``Activate`` (a left click).

The interface follows the StatusNotifierItem specification of freedesktop.org
(``org.kde.StatusNotifierWatcher`` and ``org.kde.StatusNotifierItem``)::

    async with SniWatcher(session.dbus_address) as watcher:
        ... start the app ...
        item = await watcher.wait_for_item()
        pixmaps = await watcher.icon_pixmaps(item)
        await watcher.activate(item)

Every wait has a deadline and ends on a bus message, never on a fixed delay.
"""

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from types import TracebackType
from typing import Annotated, Any

from dbus_fast import BusType, Message, MessageType, PropertyAccess, RequestNameReply, Variant
from dbus_fast.aio import MessageBus
from dbus_fast.annotations import DBusSignature
from dbus_fast.service import ServiceInterface, dbus_method, dbus_property, dbus_signal

WATCHER_NAME = "org.kde.StatusNotifierWatcher"
WATCHER_PATH = "/StatusNotifierWatcher"
ITEM_INTERFACE = "org.kde.StatusNotifierItem"
DEFAULT_ITEM_PATH = "/StatusNotifierItem"
"""Where an item lives when it registers with a bus name only (the spec's default)."""

DEFAULT_TIMEOUT = 10.0

DBusStr = Annotated[str, DBusSignature("s")]
DBusStrList = Annotated[list[str], DBusSignature("as")]
DBusBool = Annotated[bool, DBusSignature("b")]
DBusInt = Annotated[int, DBusSignature("i")]


class SniError(AssertionError):
    """An expected item or property did not show up in time, or had the wrong shape."""


@dataclass(frozen=True)
class SniItem:
    """A registered StatusNotifierItem: the bus name that owns it and its object path."""

    bus_name: str
    object_path: str

    @property
    def key(self) -> str:
        """How the watcher lists the item (``RegisteredStatusNotifierItems``)."""
        return f"{self.bus_name}{self.object_path}"


@dataclass(frozen=True)
class ArgbImage:
    """One entry of ``IconPixmap``: ARGB32 pixels in network byte order (A, R, G, B)."""

    width: int
    height: int
    data: bytes

    def pixel(self, x: int, y: int) -> tuple[int, int, int, int]:
        """The (alpha, red, green, blue) of the pixel at column ``x``, row ``y``."""
        offset = (y * self.width + x) * 4
        a, r, g, b = self.data[offset : offset + 4]
        return a, r, g, b

    def count_pixels(self, predicate: Callable[[int, int, int, int], bool]) -> int:
        """How many pixels satisfy ``predicate(a, r, g, b)``."""
        data = self.data
        return sum(
            1
            for offset in range(0, self.width * self.height * 4, 4)
            if predicate(data[offset], data[offset + 1], data[offset + 2], data[offset + 3])
        )


@dataclass(frozen=True)
class ToolTip:
    """An item's ``ToolTip`` property (the spec's ``(sa(iiay)ss)``)."""

    icon_name: str
    icons: list[ArgbImage]
    title: str
    text: str


class _WatcherInterface(ServiceInterface):
    """The exported ``org.kde.StatusNotifierWatcher`` interface.

    Registration itself happens in :meth:`SniWatcher._on_message`, which sees the
    caller's unique name (needed when an item registers with an object path only);
    the method here exists so that introspection and the call's reply are right.
    """

    def __init__(self) -> None:
        super().__init__(WATCHER_NAME)
        self.items: list[str] = []

    @dbus_method()
    def RegisterStatusNotifierItem(self, service: DBusStr) -> None:
        """Accept an item (recorded by the watcher's message handler)."""

    @dbus_method()
    def RegisterStatusNotifierHost(self, service: DBusStr) -> None:
        """Accept a host; this watcher is its own (and only) host."""

    @dbus_property(access=PropertyAccess.READ)
    def RegisteredStatusNotifierItems(self) -> DBusStrList:
        """The items registered so far, as ``bus name + object path``."""
        return list(self.items)

    @dbus_property(access=PropertyAccess.READ)
    def IsStatusNotifierHostRegistered(self) -> DBusBool:
        """Always true: the test reading the items is the host."""
        return True

    @dbus_property(access=PropertyAccess.READ)
    def ProtocolVersion(self) -> DBusInt:
        """The protocol version of the specification (0)."""
        return 0

    @dbus_signal()
    def StatusNotifierItemRegistered(self, key: str) -> DBusStr:
        """Broadcast when an item registers."""
        return key

    @dbus_signal()
    def StatusNotifierItemUnregistered(self, key: str) -> DBusStr:
        """Broadcast when an item's owner leaves the bus."""
        return key

    @dbus_signal()
    def StatusNotifierHostRegistered(self) -> None:
        """Broadcast once, when the watcher starts (it is the host)."""


class SniWatcher:
    """Own ``org.kde.StatusNotifierWatcher`` on the bus at ``address`` and record items.

    Use as an async context manager; on exit the connection closes and the name is
    released, so the next test can start its own watcher.
    """

    def __init__(self, address: str) -> None:
        self.address = address
        self.items: list[SniItem] = []
        self._interface = _WatcherInterface()
        self._bus: MessageBus | None = None
        self._changed = asyncio.Event()
        self._item_signals: dict[tuple[str, str], int] = {}  # (unique name, member)
        self._owners: dict[str, str] = {}  # registered bus name -> unique name

    async def __aenter__(self) -> "SniWatcher":
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

    async def start(self) -> None:
        """Connect, export the watcher and own its name.

        Raises:
            SniError: another process already owns the watcher name.
        """
        bus = await MessageBus(bus_address=self.address, bus_type=BusType.SESSION).connect()
        self._bus = bus
        bus.add_message_handler(self._on_message)
        bus.export(WATCHER_PATH, self._interface)
        await self._add_match(
            "type='signal',sender='org.freedesktop.DBus',interface='org.freedesktop.DBus',"
            "member='NameOwnerChanged'"
        )
        await self._add_match(f"type='signal',interface='{ITEM_INTERFACE}'")

        reply = await bus.request_name(WATCHER_NAME)
        if reply is not RequestNameReply.PRIMARY_OWNER:
            self.stop()
            raise SniError(f"{WATCHER_NAME} is already owned on {self.address}")
        self._interface.StatusNotifierHostRegistered()

    def stop(self) -> None:
        """Disconnect from the bus (safe to call twice)."""
        if self._bus is not None:
            self._bus.disconnect()
            self._bus = None

    # -- waiting ---------------------------------------------------------------------

    async def wait_for_item(self, timeout: float = DEFAULT_TIMEOUT) -> SniItem:
        """Return the first registered item, waiting up to ``timeout`` s for one.

        Raises:
            SniError: no item registered in time.
        """
        await self._wait(lambda: bool(self.items), timeout, "a StatusNotifierItem to register")
        return self.items[0]

    async def wait_for_no_items(self, timeout: float = DEFAULT_TIMEOUT) -> None:
        """Return once every registered item's owner has left the bus."""
        await self._wait(lambda: not self.items, timeout, "the StatusNotifierItem to go away")

    def signal_count(self, item: SniItem, member: str) -> int:
        """How many ``member`` signals (``NewIcon``, ``NewToolTip``, ...) ``item`` sent."""
        owner = self._owners.get(item.bus_name, item.bus_name)
        return self._item_signals.get((owner, member), 0)

    async def wait_for_signal(
        self, item: SniItem, member: str, after: int, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        """Wait until ``item`` has sent more than ``after`` ``member`` signals.

        Take ``after`` from :meth:`signal_count` before causing the change, so a signal
        sent before this call is not missed.
        """
        await self._wait(
            lambda: self.signal_count(item, member) > after,
            timeout,
            f"{member} from {item.bus_name}",
        )

    async def _wait(self, condition: Callable[[], bool], timeout: float, what: str) -> None:
        try:
            async with asyncio.timeout(timeout):
                while not condition():
                    await self._changed.wait()
        except TimeoutError:
            raise SniError(f"waited {timeout} s for {what}; items: {self.items}") from None

    # -- reading items ---------------------------------------------------------------

    async def get_property(self, item: SniItem, name: str) -> Any:
        """The value of one ``org.kde.StatusNotifierItem`` property of ``item``."""
        reply = await self._call(
            Message(
                destination=item.bus_name,
                path=item.object_path,
                interface="org.freedesktop.DBus.Properties",
                member="Get",
                signature="ss",
                body=[ITEM_INTERFACE, name],
            )
        )
        variant = reply.body[0]
        assert isinstance(variant, Variant)
        return variant.value

    async def icon_pixmaps(self, item: SniItem) -> list[ArgbImage]:
        """The item's ``IconPixmap``: one image per size, largest last as sent."""
        return [_image(entry) for entry in await self.get_property(item, "IconPixmap")]

    async def tooltip(self, item: SniItem) -> ToolTip:
        """The item's ``ToolTip`` (icon name, icons, title, text)."""
        icon_name, icons, title, text = await self.get_property(item, "ToolTip")
        return ToolTip(icon_name, [_image(entry) for entry in icons], title, text)

    async def status(self, item: SniItem) -> str:
        """The item's ``Status``: "Passive", "Active" or "NeedsAttention"."""
        value = await self.get_property(item, "Status")
        assert isinstance(value, str)
        return value

    async def activate(self, item: SniItem, x: int = 0, y: int = 0) -> None:
        """Call ``Activate(x, y)`` on the item, as a panel does on a left click."""
        await self._call(
            Message(
                destination=item.bus_name,
                path=item.object_path,
                interface=ITEM_INTERFACE,
                member="Activate",
                signature="ii",
                body=[x, y],
            )
        )

    # -- internals -------------------------------------------------------------------

    async def _call(self, message: Message) -> Message:
        if self._bus is None:
            raise SniError("the watcher is not connected")
        reply = await self._bus.call(message)
        if reply is None or reply.message_type == MessageType.ERROR:
            detail = reply.body if reply is not None else "no reply"
            raise SniError(f"{message.member} on {message.destination} failed: {detail}")
        return reply

    async def _add_match(self, rule: str) -> None:
        await self._call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[rule],
            )
        )

    def _on_message(self, message: Message) -> bool:
        """Record registrations, departures and item signals; never consume a message."""
        if (
            message.message_type == MessageType.METHOD_CALL
            and message.interface == WATCHER_NAME
            and message.member == "RegisterStatusNotifierItem"
            and message.sender
        ):
            self._register(message.sender, str(message.body[0]))
        elif message.message_type == MessageType.SIGNAL:
            if message.member == "NameOwnerChanged" and message.sender == "org.freedesktop.DBus":
                name, _old, new = message.body
                if not new:
                    self._forget_owner(name)
            elif message.interface == ITEM_INTERFACE and message.sender:
                key = (message.sender, message.member or "")
                self._item_signals[key] = self._item_signals.get(key, 0) + 1
                self._notify()
        return False  # let dbus-fast answer the call (introspection, reply)

    def _register(self, sender: str, service: str) -> None:
        # The spec lets an item send its bus name or only its object path (then the
        # caller's unique name is the bus name). Signals come from the unique name, so
        # items are kept by the name they were registered under and matched by sender
        # through _owners.
        if service.startswith("/"):
            item = SniItem(sender, service)
        else:
            item = SniItem(service, DEFAULT_ITEM_PATH)
        self._owners[item.bus_name] = sender
        if item not in self.items:
            self.items.append(item)
            self._interface.items.append(item.key)
            self._interface.StatusNotifierItemRegistered(item.key)
            self._notify()

    def _forget_owner(self, name: str) -> None:
        gone = [
            item for item in self.items if name in (item.bus_name, self._owners.get(item.bus_name))
        ]
        for item in gone:
            self.items.remove(item)
            self._interface.items.remove(item.key)
            self._interface.StatusNotifierItemUnregistered(item.key)
        if gone:
            self._notify()

    def _notify(self) -> None:
        # Wake every waiter, then arm a fresh event for the next change.
        self._changed.set()
        self._changed = asyncio.Event()


def _image(entry: Any) -> ArgbImage:
    width, height, data = entry
    if len(data) != width * height * 4:
        raise SniError(f"IconPixmap entry {width}x{height} has {len(data)} bytes, not w*h*4")
    return ArgbImage(int(width), int(height), bytes(data))
