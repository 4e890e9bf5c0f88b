"""The controller's wiring, with a fake connection: exact control of what the server says."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import msgspec
import pytest
from pytestqt.qtbot import QtBot

from backend.protocol import HistoryOk
from desktop_agent.controller import Controller
from desktop_agent.core.session import ResumeResult
from desktop_agent.core.settings import Settings
from desktop_agent.core.toast_policy import ToastPolicy
from desktop_agent.errors import RequestFailed
from desktop_agent.platform.toasts import RecordingToaster, ToastCallback
from desktop_agent.ui.notification_model import NotificationListModel
from desktop_agent.ui.notification_window import NotificationWindow
from desktop_agent.ui.tray import TrayController
from tests.desktop.app.conftest import WAIT_MS, Loop
from tests.desktop.app.fake_connection import FakeConnection, chat, conversation, other

NOW = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


class Launcher:
    def __init__(self) -> None:
        self.counts: list[int] = []

    async def set_count(self, count: int) -> None:
        self.counts.append(count)


class Rig:
    def __init__(self, tmp_path: Path, loop: Loop, **settings: Any) -> None:
        user_file = tmp_path / "settings.toml"
        self.settings = Settings(user_file)
        for key, value in settings.items():
            self.settings.set(key, value)
        self.toasters: list[RecordingToaster] = []
        self.launcher = Launcher()
        self.model = NotificationListModel()
        self.tray = TrayController(tray_available=False, clock=lambda: NOW)
        self.window = NotificationWindow(self.model, clock=lambda: NOW)
        self.connection = FakeConnection()
        self.controller = Controller(
            model=self.model,
            tray=self.tray,
            window=self.window,
            policy=ToastPolicy(categories=self.settings.toast_categories),
            settings=self.settings,
            make_toaster=self.make_toaster,
            launcher=self.launcher,
            clock=lambda: NOW,
        )
        self.controller.attach(self.connection)
        self.connection.connect_now()

    def make_toaster(self, on_activated: ToastCallback, on_mark_read: ToastCallback) -> Any:
        toaster = RecordingToaster(on_activated, on_mark_read)
        self.toasters.append(toaster)
        return toaster

    @property
    def toaster(self) -> RecordingToaster:
        return self.toasters[0]

    def close(self, loop: Loop) -> None:
        loop.run(self.controller.close())
        for window in list(self.controller.conversations.values()):
            window.close()
        self.window.deleteLater()
        if self.tray.fallback_window is not None:
            self.tray.fallback_window.deleteLater()


@pytest.fixture
def rig(tmp_path: Path, loop: Loop) -> Iterator[Rig]:
    made = Rig(tmp_path, loop)
    yield made
    made.close(loop)


def test_a_live_chat_notification_is_a_row_and_a_toast(rig: Rig, qtbot: QtBot) -> None:
    rig.connection.notificationReceived.emit(chat(1))
    qtbot.waitUntil(lambda: bool(rig.toaster.visible), timeout=WAIT_MS)
    assert rig.model.rowCount() == 1
    assert rig.toaster.requests[0].title == "Dana Smith · Support"


def test_the_focused_conversation_does_not_toast(rig: Rig, qtbot: QtBot) -> None:
    rig.controller.open_conversation("c_1")
    window = rig.controller.conversations["c_1"]
    window.activeChanged.emit("c_1", True)  # what focusing the window reports

    rig.connection.notificationReceived.emit(chat(1, "c_1"))
    rig.connection.notificationReceived.emit(chat(2, "c_2", "Lee Wong"))

    qtbot.waitUntil(lambda: len(rig.toaster.requests) == 1, timeout=WAIT_MS)
    assert rig.toaster.requests[0].conversation_id == "c_2"
    assert rig.model.rowCount() == 2


def test_do_not_disturb_from_the_tray_silences_toasts_and_tells_the_server(
    rig: Rig, qtbot: QtBot
) -> None:
    asked: list[object] = []
    rig.controller.toastRequested.connect(asked.append)
    rig.tray.dnd_on_action.trigger()
    rig.connection.notificationReceived.emit(chat(1))
    rig.connection.unreadChanged.emit({"total": 1, "chat": 1})

    qtbot.waitUntil(lambda: ("presence", "dnd") in rig.connection.calls, timeout=WAIT_MS)
    assert asked == []
    assert "Do not disturb is on" in rig.tray.tooltip()
    assert rig.controller.badge_count == 1  # DND hides pop-ups, never the count

    rig.tray.dnd_off_action.trigger()
    qtbot.waitUntil(lambda: ("presence", "online") in rig.connection.calls, timeout=WAIT_MS)


def test_mark_read_on_a_toast_marks_its_conversation_read_on_the_server(
    rig: Rig, qtbot: QtBot
) -> None:
    rig.connection.notificationReceived.emit(chat(1, "c_1"))
    qtbot.waitUntil(lambda: bool(rig.toaster.visible), timeout=WAIT_MS)

    rig.toaster.activate("conversation:c_1", "mark_read")

    qtbot.waitUntil(lambda: ("mark_read", "c_1") in rig.connection.calls, timeout=WAIT_MS)
    assert rig.model.unread_count("chat") == 0
    assert rig.controller.conversations == {}


def test_a_summary_toast_opens_the_notification_window(rig: Rig, qtbot: QtBot) -> None:
    rig.connection.resumed.emit(ResumeResult([chat(1, "c_1"), chat(2, "c_2", "Lee")], False))
    qtbot.waitUntil(lambda: bool(rig.toaster.visible), timeout=WAIT_MS)
    (key,) = rig.toaster.visible

    rig.toaster.activate(key)

    assert rig.window.isVisible()
    assert rig.model.rowCount() == 2


def test_clicking_a_row_opens_the_conversation_and_marks_it_read(rig: Rig, qtbot: QtBot) -> None:
    rig.connection.notificationReceived.emit(chat(1, "c_1"))
    qtbot.waitUntil(lambda: "conversation:c_1" in rig.toaster.visible, timeout=WAIT_MS)
    rig.window.show()
    rig.window.conversationRequested.emit("c_1")

    window = rig.controller.conversations["c_1"]
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: ("mark_read", "c_1") in rig.connection.calls, timeout=WAIT_MS)
    # Its toast goes with the read (withdrawn by the toast worker, after the reply).
    qtbot.waitUntil(lambda: rig.toaster.visible == {}, timeout=WAIT_MS)


def test_message_pushes_reach_the_open_conversation_window(rig: Rig, qtbot: QtBot) -> None:
    rig.controller.open_conversation("c_1")
    window = rig.controller.conversations["c_1"]
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=WAIT_MS)
    later = conversation("c_1").messages[0]
    pushed = type(later)(id="m_9", author=later.author, body="Still there?", created_at="x")
    rig.connection.messageReceived.emit("c_1", pushed)
    rig.connection.messageReceived.emit("c_other", pushed)

    assert window.model.rowCount() == 2


def test_a_failed_reply_is_shown_as_failed_with_the_reason(rig: Rig, qtbot: QtBot) -> None:
    rig.controller.open_conversation("c_1")
    window = rig.controller.conversations["c_1"]
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=WAIT_MS)
    rig.connection.fail_with = RequestFailed("forbidden", "This conversation is resolved.")

    window.reply_edit.setPlainText("Hello?")
    window.send_reply()

    qtbot.waitUntil(lambda: len(window.model.failed()) == 1, timeout=WAIT_MS)
    assert "This conversation is resolved." in window.error_label.text()
    assert window.retry_bar.isVisibleTo(window)


def test_mark_all_read_and_more_history_from_the_window_go_to_the_server(
    rig: Rig, qtbot: QtBot
) -> None:
    qtbot.waitUntil(lambda: ("history", None) in rig.connection.calls, timeout=WAIT_MS)
    rig.connection.history_pages.append(HistoryOk(id=1, items=[chat(1), other(2)], more=True))

    rig.window.moreHistoryRequested.emit(3)
    qtbot.waitUntil(lambda: rig.model.rowCount() == 2, timeout=WAIT_MS)
    assert ("history", 3) in rig.connection.calls

    rig.window.markAllReadRequested.emit("chat")
    qtbot.waitUntil(lambda: ("mark_all_read", "chat") in rig.connection.calls, timeout=WAIT_MS)
    assert rig.model.unread_count("chat") == 0
    assert rig.model.unread_count("ticket") == 1


def test_badge_scope_all_counts_every_category_and_the_launcher_follows(
    tmp_path: Path, loop: Loop, qtbot: QtBot
) -> None:
    rig = Rig(tmp_path, loop, badge_scope="all")
    try:
        rig.connection.unreadChanged.emit({"total": 5, "chat": 2, "ticket": 3})
        assert rig.controller.badge_count == 5
        qtbot.waitUntil(lambda: rig.launcher.counts[-1:] == [5], timeout=WAIT_MS)

        rig.settings.set("badge_scope", "chat")
        rig.controller.settings_changed()
        assert rig.controller.badge_count == 2
        qtbot.waitUntil(lambda: rig.launcher.counts[-1:] == [2], timeout=WAIT_MS)
    finally:
        rig.close(loop)


def test_a_disconnect_shows_on_the_tray(rig: Rig) -> None:
    rig.connection.stateChanged.emit("disconnected")
    assert "Offline" in rig.tray.tooltip()
    rig.connection.stateChanged.emit("connected")
    assert "Connected" in rig.tray.tooltip()


def test_assign_to_me_assigns_on_the_server_and_says_so(rig: Rig, qtbot: QtBot) -> None:
    rig.controller.open_conversation("c_1")
    window = rig.controller.conversations["c_1"]
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=WAIT_MS)
    assert window.assignee_label.text() == "Unassigned"

    window.assign_button.click()

    qtbot.waitUntil(lambda: window.assignee_label.text() == "Assigned to you", timeout=WAIT_MS)
    assert ("assign", ("c_1", "a_1")) in rig.connection.calls
    # The server's "assigned" echo of our own action does not toast (decided at once).
    asked: list[object] = []
    rig.controller.toastRequested.connect(asked.append)
    echo = msgspec.structs.replace(chat(5, "c_1"), kind="chat.conversation.assigned")
    rig.connection.notificationReceived.emit(echo)
    assert asked == []
    rig.connection.notificationReceived.emit(chat(6, "c_2", "Lee Wong"))
    assert len(asked) == 1


def test_queued_toasts_that_a_later_one_replaces_are_not_shown() -> None:
    from desktop_agent.controller import _without_superseded
    from desktop_agent.platform.toasts import ToastRequest

    def toast(key: str, body: str, replaces: str | None = None) -> ToastRequest:
        return ToastRequest(key=key, title="Dana Smith · Support", body=body, replaces=replaces)

    batch: list[ToastRequest | str] = [
        toast("conversation:c1", "Hi"),
        toast("conversation:c2", "Hello"),
        toast("conversation:c1", "2 new messages from Dana"),
        "conversation:c2",  # read elsewhere: withdraw
        toast("summary", "12 new chats", replaces="conversation:c3"),
        toast("conversation:c3", "old, replaced by the summary"),
    ]
    kept = _without_superseded(batch)
    shown = [(k.key, k.body) if isinstance(k, ToastRequest) else k for k in kept]
    assert shown == [
        ("conversation:c1", "2 new messages from Dana"),
        "conversation:c2",
        ("summary", "12 new chats"),
        ("conversation:c3", "old, replaced by the summary"),
    ]


def test_tab_counts_and_mark_all_read_on_other_use_the_servers_counts(
    rig: Rig, qtbot: QtBot
) -> None:
    rig.connection.notificationReceived.emit(other(1))  # one "ticket" row loaded
    rig.connection.unreadChanged.emit({"total": 31, "chat": 10, "ticket": 20, "billing": 1})
    assert rig.window.tabs.tabText(2) == "Other (21)"
    rig.window.set_mode("other")
    rig.window.mark_all_button.click()
    qtbot.waitUntil(
        lambda: (
            {("mark_all_read", "billing"), ("mark_all_read", "ticket")} <= set(rig.connection.calls)
        ),
        timeout=WAIT_MS,
    )
