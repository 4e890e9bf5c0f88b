"""ConversationWindow and its transcript model: replies, states, retry, plain text."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QStyleOptionViewItem

from backend.protocol import AgentRef, Conversation, InboxRef, Message, Visitor
from desktop_agent.core.display_text import without_format_controls as shown
from desktop_agent.ui.conversation_window import ConversationWindow
from desktop_agent.ui.transcript import TranscriptModel, TranscriptRole
from desktop_agent.ui.transcript_delegate import format_time

ME = AgentRef(id="a1", name="Alex Agent")
MakeMessage = Callable[..., Message]


def conversation(make_message: MakeMessage, **changes: Any) -> Conversation:
    fields: dict[str, Any] = {
        "id": "c1",
        "inbox": InboxRef(id="i1", name="Support"),
        "status": "open",
        "assignee": None,
        "visitor": Visitor(name="Dana Smith"),
        "messages": [
            make_message("m1", "Hi, my order is late"),
            make_message("m2", "Let me check", kind="agent", author_id="a2", name="Sam"),
        ],
    }
    fields.update(changes)
    return Conversation(**fields)


@pytest.fixture
def ids() -> Iterator[str]:
    return (f"cm{n}" for n in range(1, 100))


@pytest.fixture
def window(
    qtbot: Any, clock: Callable[[], datetime], ids: Iterator[str], make_message: MakeMessage
) -> ConversationWindow:
    window = ConversationWindow("c1", ME, clock=clock, make_client_msg_id=lambda: next(ids))
    qtbot.addWidget(window)
    window.show_conversation(conversation(make_message))
    window.show()
    qtbot.waitExposed(window)
    return window


def bodies(window: ConversationWindow) -> list[str]:
    return [e.body for e in window.model.entries()]


def test_transcript_model_passes_qtmodeltester(
    qtmodeltester: Any, make_message: MakeMessage
) -> None:
    model = TranscriptModel("a1")
    qtmodeltester.check(model)
    model.set_messages([make_message("m1", "hello")])
    model.add_pending("cm1", "hi there", "Alex", datetime(2026, 1, 1))
    model.set_state("cm1", "failed")
    model.add_message(make_message("m2", "anyone?"))
    qtmodeltester.check(model)


def test_header_shows_visitor_inbox_status_and_assignee(window: ConversationWindow) -> None:
    assert shown(window.title_label.text()) == "Dana Smith"
    assert shown(window.inbox_label.text()) == "· Support"
    assert window.status_label.text() == "Open"
    assert window.assignee_label.text() == "Unassigned"
    assert window.assign_button.isVisibleTo(window)


def test_visitor_and_agents_are_told_apart(window: ConversationWindow) -> None:
    first, second = window.model.entries()[:2]
    assert (first.author_kind, first.author_name, first.own) == ("visitor", "Dana Smith", False)
    assert (second.author_kind, second.author_name) == ("agent", "Sam")


def test_enter_sends_the_reply_with_a_fresh_client_msg_id(
    qtbot: Any, window: ConversationWindow
) -> None:
    qtbot.keyClicks(window.reply_edit, "On its way")
    with qtbot.waitSignal(window.replyRequested) as blocker:
        qtbot.keyClick(window.reply_edit, Qt.Key.Key_Return)
    assert blocker.args == ["c1", "On its way", "cm1"]
    assert window.reply_edit.toPlainText() == ""
    last = window.model.entries()[-1]
    assert (last.body, last.own, last.state, last.client_msg_id) == (
        "On its way",
        True,
        "sending",
        "cm1",
    )


def test_shift_enter_adds_a_line_and_does_not_send(qtbot: Any, window: ConversationWindow) -> None:
    qtbot.keyClicks(window.reply_edit, "line one")
    with qtbot.assertNotEmitted(window.replyRequested):
        qtbot.keyClick(window.reply_edit, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    qtbot.keyClicks(window.reply_edit, "line two")
    with qtbot.waitSignal(window.replyRequested) as blocker:
        qtbot.keyClick(window.reply_edit, Qt.Key.Key_Enter, Qt.KeyboardModifier.KeypadModifier)
    assert blocker.args[1] == "line one\nline two"


def test_a_blank_reply_is_not_sent(qtbot: Any, window: ConversationWindow) -> None:
    qtbot.keyClicks(window.reply_edit, "   ")
    with qtbot.assertNotEmitted(window.replyRequested):
        qtbot.keyClick(window.reply_edit, Qt.Key.Key_Return)


def test_a_too_long_reply_is_refused_with_a_reason(qtbot: Any, window: ConversationWindow) -> None:
    window.reply_edit.setPlainText("x" * 8001)
    with qtbot.assertNotEmitted(window.replyRequested):
        window.send_button.click()
    assert "limit is 8000" in window.error_label.text()
    assert window.reply_edit.toPlainText() == "x" * 8001  # nothing typed is lost


def test_failed_reply_is_retried_with_the_same_client_msg_id(
    qtbot: Any, window: ConversationWindow
) -> None:
    window.reply_edit.setPlainText("Sorry for the wait")
    window.send_button.click()
    window.set_reply_state("cm1", "failed")
    assert window.model.entries()[-1].state == "failed"
    assert window.retry_bar.isVisibleTo(window)
    assert "not sent" in window.retry_label.text()
    with qtbot.waitSignal(window.replyRequested) as blocker:
        window.retry_button.click()
    assert blocker.args == ["c1", "Sorry for the wait", "cm1"]
    assert window.model.entries()[-1].state == "sending"
    assert not window.retry_bar.isVisibleTo(window)
    assert len([e for e in window.model.entries() if e.client_msg_id == "cm1"]) == 1


def test_double_clicking_a_failed_reply_retries_it(qtbot: Any, window: ConversationWindow) -> None:
    window.reply_edit.setPlainText("hello")
    window.send_button.click()
    window.set_reply_state("cm1", "failed")
    index = window.model.index(window.model.rowCount() - 1, 0)
    with qtbot.waitSignal(window.replyRequested) as blocker:
        window.view.doubleClicked.emit(index)
    assert blocker.args[2] == "cm1"


def test_sent_reply_and_its_echo_make_one_row(
    window: ConversationWindow, make_message: MakeMessage
) -> None:
    window.reply_edit.setPlainText("On its way")
    window.send_button.click()
    server_copy = make_message("m9", "On its way", kind="agent", author_id="a1", name="Alex Agent")
    window.set_reply_state("cm1", "sent", server_copy)
    window.add_message(server_copy)
    assert bodies(window).count("On its way") == 1
    assert window.model.entries()[-1].state == "sent"


def test_echo_before_the_answer_still_makes_one_row(
    window: ConversationWindow, make_message: MakeMessage
) -> None:
    window.reply_edit.setPlainText("On its way")
    window.send_button.click()
    server_copy = make_message("m9", "On its way", kind="agent", author_id="a1", name="Alex Agent")
    window.add_message(server_copy)
    window.set_reply_state("cm1", "sent", server_copy)
    assert bodies(window).count("On its way") == 1


def test_live_messages_are_added_once(
    window: ConversationWindow, make_message: MakeMessage
) -> None:
    message = make_message("m3", "Any news?")
    window.add_message(message)
    window.add_message(message)
    assert bodies(window)[-1] == "Any news?"
    assert bodies(window).count("Any news?") == 1


def test_markup_is_shown_literally(window: ConversationWindow, make_message: MakeMessage) -> None:
    window.add_message(make_message("m3", "<b>bold?</b> <a href='https://evil'>click</a>"))
    index = window.model.index(window.model.rowCount() - 1, 0)
    option = QStyleOptionViewItem()
    option.initFrom(window.view)
    option.rect = window.view.visualRect(index)
    layout = window.delegate.layout_for(option, index)
    assert layout.text() == "<b>bold?</b> <a href='https://evil'>click</a>"
    assert index.data(TranscriptRole.Body) == "<b>bold?</b> <a href='https://evil'>click</a>"


def test_multi_line_messages_get_taller_rows(
    window: ConversationWindow, make_message: MakeMessage
) -> None:
    window.add_message(make_message("m3", "one line"))
    window.add_message(make_message("m4", "one\ntwo\nthree\nfour"))
    rows = window.model.rowCount()
    short = window.view.visualRect(window.model.index(rows - 2, 0)).height()
    tall = window.view.visualRect(window.model.index(rows - 1, 0)).height()
    assert tall > short


def test_assign_to_me(qtbot: Any, window: ConversationWindow) -> None:
    with qtbot.waitSignal(window.assignToMeRequested) as blocker:
        window.assign_button.click()
    assert blocker.args == ["c1"]
    window.set_assignee(ME)
    assert window.assignee_label.text() == "Assigned to you"
    assert not window.assign_button.isVisibleTo(window)
    window.set_assignee(AgentRef(id="a2", name="Sam"))
    assert shown(window.assignee_label.text()) == "Assigned to Sam"


def test_resolved_status_and_refetch_keep_unsent_replies(
    window: ConversationWindow, make_message: MakeMessage
) -> None:
    window.reply_edit.setPlainText("still there?")
    window.send_button.click()
    window.set_reply_state("cm1", "failed")
    window.show_conversation(conversation(make_message, status="resolved"))
    assert window.status_label.text() == "Resolved"
    assert bodies(window)[-1] == "still there?"


def test_format_time(clock: Callable[[], datetime]) -> None:
    now = clock()
    assert format_time(now, now) == "15:00"
    assert format_time(datetime(2026, 3, 9, 9, 5, tzinfo=now.tzinfo), now) == "9 Mar 09:05"


def test_window_can_be_grabbed_for_screenshots(window: ConversationWindow) -> None:
    assert not window.grab().isNull()


def test_activation_and_close_are_reported(qtbot: Any, window: ConversationWindow) -> None:
    from PySide6.QtCore import QEvent
    from PySide6.QtWidgets import QApplication

    with qtbot.waitSignal(window.activeChanged) as blocker:
        QApplication.sendEvent(window, QEvent(QEvent.Type.ActivationChange))
    assert blocker.args == ["c1", window.isActiveWindow()]
    with qtbot.waitSignal(window.closed) as closed:
        window.close()
    assert closed.args == ["c1"]


def test_a_failed_reply_stays_in_view_when_the_retry_bar_appears(
    qtbot: Any, window: ConversationWindow, make_message: MakeMessage
) -> None:
    long = [make_message(f"m{n}", f"Message number {n}") for n in range(40)]
    window.show_conversation(conversation(make_message, messages=long))
    bar = window.view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    window.reply_edit.setPlainText("Sorry for the wait")
    window.send_button.click()
    window.set_reply_state("cm1", "failed")
    qtbot.waitUntil(lambda: window.retry_bar.isVisible())
    qtbot.waitUntil(lambda: bar.value() == bar.maximum())
    last = window.model.index(window.model.rowCount() - 1, 0)
    assert window.view.viewport().rect().contains(window.view.visualRect(last).bottomLeft())


def test_scrolling_up_is_respected_when_new_rows_do_not_come(
    qtbot: Any, window: ConversationWindow, make_message: MakeMessage
) -> None:
    long = [make_message(f"m{n}", f"Message number {n}") for n in range(40)]
    window.show_conversation(conversation(make_message, messages=long))
    bar = window.view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 0)
    bar.setValue(0)
    window.resize(window.width(), window.height() - 40)
    qtbot.waitUntil(lambda: window.view.viewport().height() > 0)
    assert bar.value() == 0
