"""DesktopNotifierToaster against a real dunst under Xvfb on a private session bus."""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from desktop_agent.platform.notification_server import ServerInfo, query_server
from desktop_agent.platform.toasts import (
    NO_ACTIONS_REASON,
    NO_SERVER_REASON,
    DesktopNotifierToaster,
    ServerQuery,
    ToastAvailability,
    ToastRequest,
    toast_sound_name,
)
from tests.support.bus_monitor import BusMonitor, Captured
from tests.support.desktop_session import DesktopSession
from tests.support.waiting import wait_until

pytestmark = pytest.mark.desktop

NOTIFICATIONS = "interface='org.freedesktop.Notifications'"


class Clicks:
    """Collects toaster callbacks and lets a test await the next one."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []
        self._event = asyncio.Event()

    def activated(self, key: str, conversation_id: str | None) -> None:
        self.calls.append(("activated", key, conversation_id))
        self._event.set()

    def mark_read(self, key: str, conversation_id: str | None) -> None:
        self.calls.append(("mark_read", key, conversation_id))
        self._event.set()

    async def next(self) -> tuple[str, str, str | None]:
        await asyncio.wait_for(self._event.wait(), 5)
        return self.calls[-1]


def rendered_bodies(dunst: DesktopSession) -> list[str]:
    """The markup dunst rendered for each toast, newest first (closes all toasts)."""
    dunst.dunstctl("close-all")
    history = json.loads(dunst.dunstctl("history"))
    return [entry["message"]["data"] for entry in history["data"][0]]


def hint(notify: Captured, name: str) -> str | None:
    """The string value of a Notify hint, as dbus-monitor printed it (a variant)."""
    lines = notify.body_lines
    for index, line in enumerate(lines[:-1]):
        if line.strip() == f'string "{name}"':
            match = re.search(r'variant\s+string "(.*)"', lines[index + 1])
            return match.group(1) if match else None
    return None


def is_notify(message: Captured) -> bool:
    return message.kind == "method call" and message.member == "Notify"


@pytest.fixture
def dunst(notification_session: DesktopSession) -> Iterator[DesktopSession]:
    """The module's dunst with an empty screen, and os.environ pointing at its session."""
    notification_session.dunstctl("close-all")
    with notification_session.activated():
        yield notification_session


@pytest.fixture
def clicks() -> Clicks:
    return Clicks()


@pytest.fixture
def toaster(clicks: Clicks) -> DesktopNotifierToaster:
    return DesktopNotifierToaster(clicks.activated, clicks.mark_read)


def chat(
    key: str = "conv:c_123",
    body: str = "Hello, my order is late",
    *,
    replaces: str | None = None,
    sound: bool = False,
) -> ToastRequest:
    return ToastRequest(
        key=key,
        title="Dana Smith · Support",
        body=body,
        conversation_id="c_123",
        replaces=replaces,
        sound=sound,
    )


async def test_toast_reaches_dunst_as_deskbell_with_open_and_mark_read_buttons(
    dunst: DesktopSession, toaster: DesktopNotifierToaster
) -> None:
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        await toaster.show(chat())
        notify = await monitor.wait_for_async(is_notify)
    app_name, _icon, title, body, *actions = notify.strings[:10]
    assert (app_name, title, body) == (
        "Deskbell",
        "Dana Smith · Support",
        "Hello, my order is late",
    )
    assert actions == ["default", "", "open", "Open", "mark_read", "Mark read"]
    assert dunst.dunst_displayed() == 1


async def test_visitor_markup_in_body_is_escaped_for_a_markup_reading_server(
    dunst: DesktopSession, toaster: DesktopNotifierToaster
) -> None:
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        await toaster.show(chat(body="<b>hi</b> & <img src=x>"))
        notify = await monitor.wait_for_async(is_notify)
    assert notify.strings[3] == "&lt;b&gt;hi&lt;/b&gt; &amp; &lt;img src=x&gt;"
    # dunst's rendered text (markup it will draw) keeps the tags as literal characters.
    assert rendered_bodies(dunst)[0].endswith("&lt;b&gt;hi&lt;/b&gt; &amp; &lt;img src=x&gt;")


async def test_title_is_sent_verbatim_because_the_summary_is_plain_text(
    dunst: DesktopSession, clicks: Clicks
) -> None:
    toaster = DesktopNotifierToaster(clicks.activated, clicks.mark_read)
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        await toaster.show(ToastRequest("k", "Dana <i>&</i>", "body", "c_1"))
        notify = await monitor.wait_for_async(is_notify)
    assert notify.strings[2] == "Dana <i>&</i>"


async def test_clicking_the_toast_activates_its_conversation(
    dunst: DesktopSession, toaster: DesktopNotifierToaster, clicks: Clicks
) -> None:
    await toaster.show(chat())
    await asyncio.to_thread(dunst.dunstctl, "action", "0")
    assert await clicks.next() == ("activated", "conv:c_123", "c_123")
    assert toaster.shown_keys() == frozenset()


async def test_a_click_read_together_with_the_reply_to_notify_still_activates(
    dunst: DesktopSession, toaster: DesktopNotifierToaster, clicks: Clicks
) -> None:
    # A person clicks the toast while the app's loop is busy (here: blocked on purpose
    # between sending Notify and reading its reply), so the reply and ActionInvoked
    # reach the app in one read of the bus socket.
    await toaster.show(chat(key="warm-up"))  # connects to the bus and adapts the proxy
    await toaster.withdraw("warm-up")
    interface = toaster._notifier._backend.interface
    notify = interface.call_notify

    async def notify_then_click_before_the_reply_is_read(*args: Any) -> Any:
        reply = asyncio.ensure_future(notify(*args))
        await asyncio.sleep(0)  # the task has sent Notify; this step runs before any read
        wait_until(lambda: dunst.dunst_displayed() == 1, what="the toast on screen")
        dunst.dunstctl("action", "0")  # dunst signals the click before it answers us
        return await reply

    interface.call_notify = notify_then_click_before_the_reply_is_read
    await toaster.show(chat())
    assert await clicks.next() == ("activated", "conv:c_123", "c_123")
    assert toaster.shown_keys() == frozenset()


async def test_open_button_activates_and_mark_read_button_marks_read(
    dunst: DesktopSession, toaster: DesktopNotifierToaster, clicks: Clicks
) -> None:
    await toaster.show(chat())
    await asyncio.to_thread(dunst.dunst_context, "Mark read")
    assert await clicks.next() == ("mark_read", "conv:c_123", "c_123")

    clicks._event.clear()
    await toaster.show(chat(key="conv:c_9"))
    await asyncio.to_thread(dunst.dunst_context, "Open")
    assert await clicks.next() == ("activated", "conv:c_9", "c_123")


async def test_second_toast_with_same_key_replaces_the_first(
    dunst: DesktopSession, toaster: DesktopNotifierToaster
) -> None:
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        await toaster.show(chat(body="first"))
        await toaster.show(chat(body="second"))
        await monitor.wait_for_async(lambda m: is_notify(m) and "second" in m.strings)
        closes = [m for m in monitor.messages if m.member == "CloseNotification"]
    assert len(closes) == 1
    assert dunst.dunst_displayed() == 1
    assert rendered_bodies(dunst)[0].endswith("second")


async def test_replaces_withdraws_the_named_toast(
    dunst: DesktopSession, toaster: DesktopNotifierToaster
) -> None:
    await toaster.show(chat(key="summary"))
    await toaster.show(chat(key="conv:c_123", replaces="summary"))
    assert dunst.dunst_displayed() == 1
    assert toaster.shown_keys() == {"conv:c_123"}


async def test_withdraw_closes_the_toast_and_tolerates_unknown_keys(
    dunst: DesktopSession, toaster: DesktopNotifierToaster
) -> None:
    await toaster.show(chat())
    await toaster.withdraw("conv:c_123")
    await toaster.withdraw("never-shown")
    assert dunst.dunst_displayed() == 0


async def test_sound_is_requested_only_when_asked(
    dunst: DesktopSession, toaster: DesktopNotifierToaster
) -> None:
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        await toaster.show(chat(key="quiet", body="quiet"))
        await toaster.show(chat(key="loud", body="loud", sound=True))
        quiet = await monitor.wait_for_async(lambda m: is_notify(m) and "quiet" in m.strings)
        loud = await monitor.wait_for_async(lambda m: is_notify(m) and "loud" in m.strings)
    assert "sound-name" not in quiet.strings
    assert hint(loud, "sound-name") == "message-new-instant"  # the freedesktop spec's name


async def test_toast_carries_the_app_icon_and_the_desktop_entry_hint(
    dunst: DesktopSession, clicks: Clicks, tmp_path: Path
) -> None:
    icon = tmp_path / "deskbell-64.png"
    icon.write_bytes(b"\x89PNG\r\n\x1a\n")
    toaster = DesktopNotifierToaster(clicks.activated, clicks.mark_read, app_icon=str(icon))
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        await toaster.show(chat(key="first", body="first"))
        await toaster.show(chat(key="second", body="second"))
        first = await monitor.wait_for_async(lambda m: is_notify(m) and "first" in m.strings)
        second = await monitor.wait_for_async(lambda m: is_notify(m) and "second" in m.strings)
    for notify in (first, second):
        assert notify.strings[1] == icon.as_uri()
        assert hint(notify, "desktop-entry") == "deskbell"


async def test_a_themed_icon_is_sent_by_name(dunst: DesktopSession, clicks: Clicks) -> None:
    toaster = DesktopNotifierToaster(clicks.activated, clicks.mark_read, app_icon="deskbell")
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        await toaster.show(chat())
        notify = await monitor.wait_for_async(is_notify)
    assert notify.strings[1] == "deskbell"


@pytest.mark.parametrize(
    ("platform", "name"),
    [
        ("linux", "message-new-instant"),
        ("win32", "ms-winsoundevent:Notification.IM"),
        ("darwin", None),  # UNNotificationSound.defaultSound
    ],
)
def test_the_new_message_sound_by_platform(platform: str, name: str | None) -> None:
    assert toast_sound_name(platform) == name


async def test_available_with_dunst_running(
    dunst: DesktopSession, toaster: DesktopNotifierToaster
) -> None:
    availability = await toaster.available()
    assert availability.ok
    assert availability.reason == ""


async def test_no_server_on_the_bus_is_reported_and_show_drops_the_toast(
    bus_session: DesktopSession, clicks: Clicks
) -> None:
    with bus_session.activated():
        toaster = DesktopNotifierToaster(clicks.activated, clicks.mark_read)
        availability = await toaster.available()
        await toaster.show(chat())
    assert not availability.ok
    assert availability.reason == NO_SERVER_REASON
    assert toaster.shown_keys() == frozenset()


async def test_without_a_server_toasts_are_dropped_with_one_warning_not_one_each(
    bus_session: DesktopSession, clicks: Clicks, caplog: pytest.LogCaptureFixture
) -> None:
    with bus_session.activated(), caplog.at_level(logging.WARNING):
        toaster = DesktopNotifierToaster(clicks.activated, clicks.mark_read)
        for n in range(3):
            await toaster.show(chat(key=f"k{n}"))
    warnings = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert NO_SERVER_REASON in warnings[0].getMessage()
    assert not any(r.exc_info for r in caplog.records)
    assert toaster.shown_keys() == frozenset()


def server_without(capability: str) -> ServerQuery:
    async def query() -> ServerInfo:
        real = await query_server()
        return ServerInfo(real.name, real.vendor, real.version, real.capabilities - {capability})

    return query


async def test_body_is_sent_unescaped_to_a_server_that_reads_no_markup(
    dunst: DesktopSession, clicks: Clicks
) -> None:
    toaster = DesktopNotifierToaster(
        clicks.activated, clicks.mark_read, server_query=server_without("body-markup")
    )
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        await toaster.show(chat(body="<b>hi</b> & co"))
        notify = await monitor.wait_for_async(is_notify)
    assert notify.strings[3] == "<b>hi</b> & co"


async def test_server_without_buttons_is_usable_but_says_clicks_will_not_open(
    dunst: DesktopSession, clicks: Clicks
) -> None:
    toaster = DesktopNotifierToaster(
        clicks.activated, clicks.mark_read, server_query=server_without("actions")
    )
    assert await toaster.available() == ToastAvailability(True, NO_ACTIONS_REASON)


async def test_a_failing_callback_is_logged_and_later_clicks_still_work(
    dunst: DesktopSession, clicks: Clicks, caplog: pytest.LogCaptureFixture
) -> None:
    failures = 0

    def broken(key: str, conversation_id: str | None) -> None:
        nonlocal failures
        failures += 1
        if failures == 1:
            raise RuntimeError("handler bug")
        clicks.activated(key, conversation_id)

    toaster = DesktopNotifierToaster(broken, clicks.mark_read)
    await toaster.show(chat(key="first"))
    await asyncio.to_thread(dunst.dunstctl, "action", "0")
    await toaster.show(chat(key="second"))
    await asyncio.to_thread(dunst.dunstctl, "action", "0")
    assert await clicks.next() == ("activated", "second", "c_123")
    assert "toast callback for 'first' failed" in caplog.text


async def test_toasts_work_once_a_notification_server_appears_later(
    dunst: DesktopSession, clicks: Clicks
) -> None:
    toaster = DesktopNotifierToaster(clicks.activated, clicks.mark_read)
    await asyncio.to_thread(dunst.stop_notification_server)
    try:
        assert not (await toaster.available()).ok
        await toaster.show(chat(key="lost"))
    finally:
        await asyncio.to_thread(dunst.start_notification_server)
    assert (await toaster.available()).ok
    await toaster.show(chat(key="later"))
    assert toaster.shown_keys() == {"later"}
    assert dunst.dunst_displayed() == 1


def byte_hint(notify: Captured, name: str) -> int | None:
    """The byte value of a Notify hint (urgency), as dbus-monitor printed it."""
    lines = notify.body_lines
    for index, line in enumerate(lines[:-1]):
        if line.strip() == f'string "{name}"':
            match = re.search(r"variant\s+byte (\d+)", lines[index + 1])
            return int(match.group(1)) if match else None
    return None


async def test_an_urgent_toast_is_critical_with_the_alarm_sound_even_when_sounds_are_off(
    dunst: DesktopSession, toaster: DesktopNotifierToaster
) -> None:
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        await toaster.show(chat(key="calm", body="calm"))
        await toaster.show(
            ToastRequest(
                key="conv:c_7",
                title="Still waiting (5 min): Dana Smith · Support",
                body="Nobody has answered yet",
                conversation_id="c_7",
                urgent=True,
            )
        )
        calm = await monitor.wait_for_async(lambda m: is_notify(m) and "calm" in m.strings)
        urgent = await monitor.wait_for_async(
            lambda m: is_notify(m) and "Nobody has answered yet" in m.strings
        )
    assert byte_hint(calm, "urgency") == 1
    assert byte_hint(urgent, "urgency") == 2  # freedesktop: critical
    assert hint(urgent, "sound-name") == "dialog-warning"


async def test_a_per_inbox_sound_is_sent_by_name(
    dunst: DesktopSession, toaster: DesktopNotifierToaster
) -> None:
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        await toaster.show(
            ToastRequest(
                key="k",
                title="t",
                body="ring",
                sound=True,
                sound_name="phone-incoming-call",
            )
        )
        notify = await monitor.wait_for_async(lambda m: is_notify(m) and "ring" in m.strings)
    assert hint(notify, "sound-name") == "phone-incoming-call"


async def test_accept_is_a_real_dunst_action_and_show_reports_the_toast_shown(
    dunst: DesktopSession, toaster: DesktopNotifierToaster, clicks: Clicks
) -> None:
    accepted: list[tuple[str, str | None]] = []
    toaster.on_accept = lambda key, cid: (accepted.append((key, cid)), clicks._event.set())  # type: ignore[func-returns-value]
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        shown = await toaster.show(
            ToastRequest(
                key="conv:c_5",
                title="Dana Smith · Support",
                body="Hello?",
                conversation_id="c_5",
                actions=("accept", "open", "mark_read"),
            )
        )
        notify = await monitor.wait_for_async(is_notify)
    assert shown is True
    assert notify.strings[4:12] == [
        "default",
        "",
        "accept",
        "Accept",
        "open",
        "Open",
        "mark_read",
        "Mark read",
    ]
    await asyncio.to_thread(dunst.dunst_context, "Accept")
    await asyncio.wait_for(clicks._event.wait(), 5)
    assert accepted == [("conv:c_5", "c_5")]
