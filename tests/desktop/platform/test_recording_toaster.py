"""RecordingToaster: the stand-in for Windows and macOS toasts follows the same rules."""

from __future__ import annotations

from typing import Any

import pytest

from desktop_agent.platform.toasts import RecordingToaster, ToastAvailability, ToastRequest


@pytest.fixture
def calls() -> list[tuple[str, str, str | None]]:
    return []


@pytest.fixture
def toaster(calls: list[tuple[str, str, str | None]]) -> RecordingToaster:
    return RecordingToaster(
        on_activated=lambda k, c: calls.append(("open", k, c)),
        on_mark_read=lambda k, c: calls.append(("read", k, c)),
    )


async def test_records_every_request_in_order(toaster: RecordingToaster) -> None:
    first = ToastRequest("a", "T", "one", "c_1")
    second = ToastRequest("b", "T", "two", "c_2")
    await toaster.show(first)
    await toaster.show(second)
    assert toaster.requests == [first, second]
    assert set(toaster.visible) == {"a", "b"}


async def test_same_key_replaces_and_replaces_withdraws(toaster: RecordingToaster) -> None:
    await toaster.show(ToastRequest("summary", "3 new chats", "", None))
    await toaster.show(ToastRequest("c", "T", "one", "c_1"))
    await toaster.show(ToastRequest("c", "T", "two", "c_1", replaces="summary"))
    assert toaster.visible["c"].body == "two"
    assert "summary" not in toaster.visible
    assert toaster.withdrawn == ["summary", "c"]


async def test_activation_reports_key_and_conversation(
    toaster: RecordingToaster, calls: list[tuple[str, str, str | None]]
) -> None:
    await toaster.show(ToastRequest("c", "T", "one", "c_1"))
    await toaster.show(ToastRequest("d", "T", "two", "c_2"))
    toaster.activate("c")
    toaster.activate("d", "mark_read")
    assert calls == [("open", "c", "c_1"), ("read", "d", "c_2")]
    assert toaster.visible == {}


async def test_activating_a_toast_that_is_gone_is_an_error(toaster: RecordingToaster) -> None:
    with pytest.raises(KeyError):
        toaster.activate("never")


async def test_unavailable_toaster_records_but_shows_nothing(toaster: RecordingToaster) -> None:
    toaster.availability = ToastAvailability(False, "no server")
    await toaster.show(ToastRequest("c", "T", "one", "c_1"))
    assert (await toaster.available()).reason == "no server"
    assert len(toaster.requests) == 1
    assert toaster.visible == {}


async def test_a_button_the_toast_does_not_have_cannot_be_clicked(
    toaster: RecordingToaster,
) -> None:
    await toaster.show(ToastRequest("c", "T", "one", "c_1", actions=("open",)))
    with pytest.raises(ValueError, match="mark_read"):
        toaster.activate("c", "mark_read")
    assert "c" in toaster.visible


class _CapturingNotifier:
    """Stands in for desktop-notifier's WinRT / UserNotifications backends (which cannot
    run here): records what the toaster hands over and says the OS took it. The urgency
    and sound are desktop-notifier's own fields, which each backend maps (WinRT: high
    priority and the sound; macOS: the time-sensitive interruption level)."""

    def __init__(self) -> None:
        self.sent: list[Any] = []

    async def send_notification(self, notification: Any) -> None:
        self.sent.append(notification)
        if notification.on_dispatched is not None:
            notification.on_dispatched()

    async def has_authorisation(self) -> bool:
        return True


async def test_on_windows_and_macos_an_escalation_asks_for_critical_urgency_and_a_sound() -> None:
    from desktop_notifier import Urgency

    from desktop_agent.platform.notification_server import ServerInfo
    from desktop_agent.platform.toasts import DesktopNotifierToaster, ToastRequest

    async def server() -> ServerInfo:
        return ServerInfo("os", "vendor", "1", frozenset({"actions"}))

    notifier = _CapturingNotifier()
    toaster = DesktopNotifierToaster(
        lambda _k, _c: None, lambda _k, _c: None, notifier=notifier, server_query=server
    )
    urgent = ToastRequest(key="k1", title="Still waiting", body="b", urgent=True)
    calm = ToastRequest(key="k2", title="Dana", body="b")
    assert await toaster.show(urgent) is True
    assert await toaster.show(calm) is True
    first, second = notifier.sent
    assert first.urgency == Urgency.Critical and first.sound is not None
    assert second.urgency == Urgency.Normal and second.sound is None


def test_the_escalation_sound_by_platform() -> None:
    from desktop_agent.platform.toasts import toast_sound_name

    assert toast_sound_name("linux", urgent=True) == "dialog-warning"
    assert toast_sound_name("win32", urgent=True) == "ms-winsoundevent:Notification.Reminder"
    assert toast_sound_name("darwin", urgent=True) is None  # the system default sound
