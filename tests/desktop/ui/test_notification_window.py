"""NotificationWindow: tabs, search, Mark all read, clicks, lazy history, empty state."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from PySide6.QtCore import QPoint, QPointF, Qt
from PySide6.QtGui import QEnterEvent
from PySide6.QtWidgets import QApplication

from backend.protocol import Notification
from desktop_agent.ui.notification_model import NotificationListModel, Role
from desktop_agent.ui.notification_window import NotificationWindow

Make = Callable[..., Notification]


@pytest.fixture
def model(make_notification: Make) -> NotificationListModel:
    model = NotificationListModel()
    model.upsert(
        [
            make_notification(1, title="Dana Smith · Support", body="my order is late"),
            make_notification(2, category="ticket", title="Ticket #12 updated", body="order 5521"),
            make_notification(3, title="Lee · Sales", body="pricing question"),
            make_notification(4, category="system", title="Maintenance", body="tonight"),
        ]
    )
    return model


@pytest.fixture
def window(
    qtbot: Any, model: NotificationListModel, clock: Callable[[], datetime]
) -> NotificationWindow:
    window = NotificationWindow(model, clock=clock)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window


def shown_ids(window: NotificationWindow) -> list[str]:
    proxy = window.view.model()
    return [proxy.index(r, 0).data(Role.Id) for r in range(proxy.rowCount())]


def click_row(qtbot: Any, window: NotificationWindow, row: int) -> None:
    index = window.view.model().index(row, 0)
    rect = window.view.visualRect(index)
    qtbot.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def test_chat_tab_is_selected_first(window: NotificationWindow) -> None:
    assert window.tabs.currentIndex() == 0
    assert window.tabs.tabText(0).startswith("Chat")
    assert shown_ids(window) == ["n3", "n1"]


def test_tabs_switch_the_filter(window: NotificationWindow) -> None:
    window.tabs.setCurrentIndex(1)
    assert window.mode() == "all"
    assert shown_ids(window) == ["n4", "n3", "n2", "n1"]
    window.tabs.setCurrentIndex(2)
    assert window.mode() == "other"
    assert shown_ids(window) == ["n4", "n2"]


def test_search_box_filters_the_current_tab(qtbot: Any, window: NotificationWindow) -> None:
    window.set_mode("all")
    qtbot.keyClicks(window.search, "ORDER")
    assert shown_ids(window) == ["n2", "n1"]
    window.set_mode("chat")
    assert shown_ids(window) == ["n1"]


@pytest.mark.parametrize(
    ("mode", "expected"), [("chat", ["chat"]), ("all", [None]), ("other", ["system", "ticket"])]
)
def test_mark_all_read_asks_for_the_current_filter(
    qtbot: Any, window: NotificationWindow, mode: Any, expected: list[str | None]
) -> None:
    window.set_mode(mode)
    asked: list[str | None] = []
    window.markAllReadRequested.connect(asked.append)
    qtbot.mouseClick(window.mark_all_button, Qt.MouseButton.LeftButton)
    assert asked == expected


def test_mark_all_read_is_disabled_when_the_tab_has_nothing_unread(
    window: NotificationWindow, model: NotificationListModel
) -> None:
    assert window.mark_all_button.isEnabled()
    model.mark_category_read("chat")
    assert not window.mark_all_button.isEnabled()
    window.set_mode("other")
    assert window.mark_all_button.isEnabled()


def test_clicking_a_chat_row_opens_its_conversation_and_asks_to_mark_it_read(
    qtbot: Any, window: NotificationWindow
) -> None:
    read: list[list[str]] = []
    window.markReadRequested.connect(read.append)
    with qtbot.waitSignal(window.conversationRequested) as blocker:
        click_row(qtbot, window, 1)
    assert blocker.args == ["c1"]
    assert read == [["n1"]]


def test_clicking_a_read_row_does_not_ask_to_mark_it_again(
    qtbot: Any, window: NotificationWindow, model: NotificationListModel
) -> None:
    model.mark_read(["n3"])
    with (
        qtbot.assertNotEmitted(window.markReadRequested),
        qtbot.waitSignal(window.conversationRequested),
    ):
        click_row(qtbot, window, 0)


def test_clicking_an_other_row_with_a_link_asks_to_open_it(
    qtbot: Any, model: NotificationListModel, make_notification: Make, clock: Any
) -> None:
    model.upsert([make_notification(9, category="ticket", url="https://desk.example/t/9")])
    window = NotificationWindow(model, clock=clock)
    qtbot.addWidget(window)
    window.show()
    window.set_mode("other")
    with (
        qtbot.assertNotEmitted(window.conversationRequested),
        qtbot.waitSignal(window.urlRequested) as blocker,
    ):
        click_row(qtbot, window, 0)
    assert blocker.args == ["https://desk.example/t/9"]


def test_live_rows_appear_at_the_top(
    window: NotificationWindow, model: NotificationListModel, make_notification: Make
) -> None:
    model.upsert([make_notification(10)])
    assert shown_ids(window)[0] == "n10"


def test_scrolling_near_the_end_asks_for_older_history_once_per_page(
    qtbot: Any, make_notification: Make, clock: Any
) -> None:
    model = NotificationListModel()
    model.upsert([make_notification(s) for s in range(301, 501)])
    window = NotificationWindow(model, clock=clock)
    qtbot.addWidget(window)
    asked: list[int] = []
    window.moreHistoryRequested.connect(asked.append)
    window.show()
    qtbot.waitExposed(window)
    assert asked == []  # the top of a long list needs nothing older
    window.view.scrollToBottom()
    qtbot.waitUntil(lambda: asked == [301])
    window.view.scrollToTop()
    window.view.scrollToBottom()
    assert asked == [301]  # the same page is not asked for twice
    model.add_history([make_notification(s) for s in range(251, 301)])
    window.view.scrollToBottom()
    qtbot.waitUntil(lambda: asked == [301, 251])
    window.set_history_complete(True)
    model.add_history([make_notification(s) for s in range(201, 251)])
    window.view.scrollToBottom()
    assert asked == [301, 251]


def test_empty_chat_tab_says_what_is_happening(
    qtbot: Any, clock: Any, make_notification: Make
) -> None:
    model = NotificationListModel()
    window = NotificationWindow(model, clock=clock)
    qtbot.addWidget(window)
    window.show()
    window.set_connection_state("connecting")
    assert window.stack.currentWidget() is window.empty_label
    assert window.empty_label.text().startswith("Connecting to the server")
    window.set_connection_state("connected")
    assert window.empty_label.text().startswith("No chat notifications yet")
    model.upsert([make_notification(1, category="ticket")])
    assert window.empty_label.text().startswith("No chat notifications yet")
    window.set_mode("other")
    assert window.stack.currentWidget() is window.view


def test_empty_search_result_quotes_the_search_as_plain_text(
    qtbot: Any, window: NotificationWindow
) -> None:
    qtbot.keyClicks(window.search, "<b>zzz</b>")
    assert window.stack.currentWidget() is window.empty_label
    assert window.empty_label.textFormat() == Qt.TextFormat.PlainText
    assert "“<b>zzz</b>”" in window.empty_label.text()


def test_window_can_be_grabbed_for_screenshots(window: NotificationWindow) -> None:
    image = window.grab()
    assert not image.isNull()
    assert image.width() >= 300


def test_hundred_thousand_rows_scroll_without_trouble(
    qtbot: Any, make_notification: Make, clock: Any
) -> None:
    model = NotificationListModel()
    model.upsert(
        [make_notification(s, category="chat" if s % 2 else "ticket") for s in range(1, 100_001)]
    )
    window = NotificationWindow(model, clock=clock)
    qtbot.addWidget(window)
    window.show()
    window.set_mode("all")
    window.view.scrollToBottom()
    window.view.scrollToTop()
    assert window.view.model().rowCount() == 100_000
    assert not window.grab().isNull()


def test_a_failed_history_page_can_be_asked_for_again(
    qtbot: Any, make_notification: Make, clock: Any
) -> None:
    model = NotificationListModel()
    model.upsert([make_notification(s) for s in range(301, 501)])
    window = NotificationWindow(model, clock=clock)
    qtbot.addWidget(window)
    asked: list[int] = []
    window.moreHistoryRequested.connect(asked.append)
    window.show()
    window.view.scrollToBottom()
    qtbot.waitUntil(lambda: asked == [301])
    window.history_failed()
    assert asked == [301, 301]


@pytest.fixture
def long_list(
    qtbot: Any, make_notification: Make, clock: Callable[[], datetime]
) -> tuple[NotificationWindow, NotificationListModel]:
    model = NotificationListModel()
    model.upsert([make_notification(seq) for seq in range(1, 41)])
    window = NotificationWindow(model, clock=clock)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    return window, model


def row_id_at(window: NotificationWindow, point: QPoint) -> str:
    return str(window.view.indexAt(point).data(Role.Id))


def point_over(window: NotificationWindow, row: int) -> QPoint:
    proxy = window.view.model()
    return window.view.visualRect(proxy.index(row, 0)).center()


def test_rows_arriving_while_the_pointer_is_over_the_list_do_not_move_the_clicked_row(
    qtbot: Any,
    long_list: tuple[NotificationWindow, NotificationListModel],
    make_notification: Make,
) -> None:
    window, model = long_list
    viewport = window.view.viewport()
    point = point_over(window, 2)
    target = row_id_at(window, point)
    QApplication.sendEvent(viewport, QEnterEvent(QPointF(point), QPointF(point), QPointF(point)))
    model.upsert([make_notification(41)])
    model.upsert([make_notification(42), make_notification(43)])
    assert row_id_at(window, point) == target
    with qtbot.waitSignal(window.conversationRequested) as blocker:
        qtbot.mouseClick(viewport, Qt.MouseButton.LeftButton, pos=point)
    assert blocker.args == [f"c{target.removeprefix('n')}"]
    assert window.new_button.isVisible() and window.new_button.text() == "↑ 3 new"
    # The list itself did not move down to make room for the button.
    assert row_id_at(window, point) == target


def test_a_selected_row_stays_put_and_n_new_scrolls_up_to_the_newest(
    qtbot: Any,
    long_list: tuple[NotificationWindow, NotificationListModel],
    make_notification: Make,
) -> None:
    window, model = long_list
    window.view.setCurrentIndex(window.view.model().index(1, 0))
    point = point_over(window, 1)
    model.upsert([make_notification(50)])
    assert row_id_at(window, point) == "n39"
    assert window.new_button.text() == "↑ 1 new"
    qtbot.mouseClick(window.new_button, Qt.MouseButton.LeftButton)
    assert shown_ids(window)[0] == "n50"
    assert row_id_at(window, QPoint(5, 5)) == "n50"
    assert not window.new_button.isVisible()


def test_with_the_pointer_away_and_nothing_selected_new_rows_show_at_the_top(
    long_list: tuple[NotificationWindow, NotificationListModel], make_notification: Make
) -> None:
    window, model = long_list
    model.upsert([make_notification(60)])
    assert row_id_at(window, QPoint(5, 5)) == "n60"
    assert not window.new_button.isVisible()


def test_tab_counts_and_mark_all_read_on_other_follow_the_servers_counts(
    qtbot: Any, window: NotificationWindow
) -> None:
    # Loaded here: one ticket and one system row. The server counts far more,
    # including a category of which no row is loaded yet.
    window.set_unread_counts({"total": 40, "chat": 12, "ticket": 20, "billing": 8})
    assert [window.tabs.tabText(i) for i in range(3)] == ["Chat (12)", "All (40)", "Other (28)"]
    window.set_mode("other")
    asked: list[str | None] = []
    window.markAllReadRequested.connect(asked.append)
    qtbot.mouseClick(window.mark_all_button, Qt.MouseButton.LeftButton)
    assert asked == ["billing", "ticket"]
    window.set_unread_counts({"total": 12, "chat": 12})
    assert not window.mark_all_button.isEnabled()
    assert window.tabs.tabText(2) == "Other"


def test_the_offline_bar_shows_after_a_connection_is_lost_not_before_the_first(
    window: NotificationWindow,
) -> None:
    window.set_connection_state("connecting")
    assert not window.offline_label.isVisibleTo(window)
    window.set_connection_state("connected")
    window.set_connection_state("disconnected")
    assert window.offline_label.isVisibleTo(window)
    window.set_connection_state("connecting")
    assert window.offline_label.isVisibleTo(window)
    window.set_connection_state("connected")
    assert not window.offline_label.isVisibleTo(window)
