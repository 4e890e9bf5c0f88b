"""The Waiting view: its model under qtmodeltester, live times, Accept and Open."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st
from PySide6.QtCore import QTimer
from pytestqt.qtbot import QtBot

from desktop_agent.ui.waiting_model import WaitingListModel, WaitingRole
from desktop_agent.ui.waiting_window import EMPTY_TEXT, TICK_MS, WaitingWindow
from tests.support.factories import T0, escalation_notification, queue_entry


def conversation_ids(model: WaitingListModel) -> list[str]:
    return [model.index(r).data(WaitingRole.ConversationId) for r in range(model.rowCount())]


def test_the_model_passes_qtmodeltester_through_a_day_of_pushes(qtmodeltester: Any) -> None:
    model = WaitingListModel()
    qtmodeltester.check(model)
    model.reset([queue_entry("c_2", 20), queue_entry("c_1", 10)])
    model.apply(queue_entry("c_3", 30), True)
    model.apply(queue_entry("c_1", 40), True)  # answered, then wrote again: moves down
    model.apply(queue_entry("c_2", 20, assignee="sam"), True)
    model.note_notification(escalation_notification(1, "c_3", 30, 1))
    model.apply(queue_entry("c_3", None), False)
    qtmodeltester.check(model)
    assert conversation_ids(model) == ["c_2", "c_1"]


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.sampled_from(["a", "b", "c"]), st.one_of(st.none(), st.integers(0, 4))),
        max_size=12,
    )
)
def test_views_always_see_the_cores_rows(qapp: Any, pushes: list[tuple[str, int | None]]) -> None:
    model = WaitingListModel()
    for cid, since in pushes:
        model.apply(queue_entry(cid, since), since is not None)
        assert conversation_ids(model) == [e.conversation_id for e in model.queue]


def test_escalated_rows_are_counted_for_the_tray(qapp: Any, qtbot: QtBot) -> None:
    model = WaitingListModel()
    model.reset([queue_entry("c_1", 10)])
    with qtbot.waitSignal(model.escalatedChanged) as signal:
        model.note_notification(escalation_notification(1, "c_1", 10, 1))
    assert signal.args == [1]
    with qtbot.waitSignal(model.escalatedChanged) as signal:
        model.apply(queue_entry("c_1", None), False)
    assert signal.args == [0]


def test_waiting_times_count_up_with_one_timer_for_all_rows(qtbot: QtBot) -> None:
    now = [T0 + timedelta(seconds=70)]
    model = WaitingListModel()
    model.reset([queue_entry(f"c_{i}", i) for i in range(50)])
    window = WaitingWindow(model, clock=lambda: now[0])
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    assert window.tick.isActive() and window.tick.interval() == TICK_MS
    # No per-row widgets or timers: one timer child, rows painted by the delegate.
    assert window.findChildren(QTimer) == [window.tick]
    assert window.view.indexWidget(model.index(0)) is None
    painted: list[datetime] = []
    original = window.delegate.paint

    def spy(painter: Any, option: Any, index: Any) -> None:
        painted.append(now[0])
        original(painter, option, index)

    window.delegate.paint = spy  # type: ignore[method-assign]
    now[0] += timedelta(seconds=5)
    qtbot.waitUntil(lambda: bool(painted), timeout=3 * TICK_MS)
    window.hide()
    assert not window.tick.isActive()


def test_an_empty_queue_says_nobody_is_waiting(qtbot: QtBot) -> None:
    window = WaitingWindow(WaitingListModel())
    qtbot.addWidget(window)
    assert window.stack.currentWidget() is window.empty_label
    assert window.empty_label.text() == EMPTY_TEXT


def test_accept_is_offered_only_while_nobody_has_the_chat(qtbot: QtBot) -> None:
    model = WaitingListModel()
    model.reset([queue_entry("c_1", 10), queue_entry("c_2", 20, assignee="sam")])
    window = WaitingWindow(model)
    qtbot.addWidget(window)
    menu = window.context_menu_for(0)
    accept = next(a for a in menu.actions() if a.text() == "Accept")
    assert accept.isEnabled()
    with qtbot.waitSignal(window.acceptRequested) as signal:
        accept.trigger()
    assert signal.args == ["c_1"]
    taken = window.context_menu_for(1)
    assert not next(a for a in taken.actions() if a.text() == "Accept").isEnabled()
    with qtbot.waitSignal(window.conversationRequested) as opened:
        next(a for a in taken.actions() if a.text() == "Open").trigger()
    assert opened.args == ["c_2"]
