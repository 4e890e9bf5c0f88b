"""Names as long as the protocol allows, blank, or mixing directions, in every window.

Each window must fit a 1,280 px wide screen (and still narrow to its default size)
with the longest allowed names, elide them instead of widening, and keep an Arabic
and Chinese name from reordering the English around it.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import pytest
from PySide6.QtCore import QPoint
from PySide6.QtGui import QFont, QFontMetricsF, QTextLayout, QTextOption
from PySide6.QtWidgets import QApplication, QLabel, QWidget

from backend.protocol import MAX_NAME_CHARS, AgentRef, Conversation, InboxRef, Message, Visitor
from desktop_agent.core.display_text import FSI, PDI
from desktop_agent.platform.policy_sources import SourceReport
from desktop_agent.selftest import Check, HealthReport
from desktop_agent.ui.conversation_window import ConversationWindow
from desktop_agent.ui.delegate import row_title
from desktop_agent.ui.notification_model import NotificationListModel
from desktop_agent.ui.notification_window import NotificationWindow
from desktop_agent.ui.signin_dialog import SignInDialog
from desktop_agent.ui.status_view import StatusWindow
from desktop_agent.ui.transcript_delegate import fit_header

SCREEN_WIDTH = 1280
ME = AgentRef(id="a1", name="Alex Agent")
MIXED = "محمد عبد الله 王伟"  # Arabic first, then Chinese
LONG_MIXED = (MIXED + " ") * (MAX_NAME_CHARS // (len(MIXED) + 1))
LONG_LATIN = ("Maximiliana-Wolfeschlegelsteinhausen " * 4)[:MAX_NAME_CHARS]
LONG_INBOX = ("Customer Success and Renewals EMEA " * 4)[:MAX_NAME_CHARS]


def x_positions(text: str) -> list[float]:
    """Where each character of ``text`` is drawn, direction detected as Qt does."""
    layout = QTextLayout(text, QFont())
    layout.beginLayout()
    line = layout.createLine()
    line.setLineWidth(10_000)
    layout.endLayout()
    return [line.cursorToX(i)[0] for i in range(len(text))]


def drawn_right_of(text: str, part: str, after: str) -> bool:
    """Whether every character of ``after`` is drawn to the right of all of ``part``."""
    xs = x_positions(text)
    start, later = text.index(part), text.index(after)
    return min(xs[later : later + len(after)]) >= max(xs[start : start + len(part)])


def fits(window: QWidget) -> None:
    """The window fits the screen width and every child stays inside it."""
    assert window.minimumSizeHint().width() <= SCREEN_WIDTH
    assert window.sizeHint().width() <= SCREEN_WIDTH
    assert window.width() <= SCREEN_WIDTH


def conversation(make_message: Callable[..., Message], name: str) -> Conversation:
    return Conversation(
        id="c1",
        inbox=InboxRef(id="i1", name=LONG_INBOX),
        status="open",
        assignee=AgentRef(id="a2", name=LONG_LATIN),
        visitor=Visitor(name=name),
        messages=[make_message("m1", "Hello", name=name)],
    )


@pytest.fixture
def conversation_window(qtbot: Any, clock: Callable[[], datetime]) -> ConversationWindow:
    window = ConversationWindow("c1", ME, clock=clock)
    qtbot.addWidget(window)
    return window


@pytest.mark.parametrize("name", [LONG_LATIN, LONG_MIXED])
def test_conversation_window_elides_the_longest_names_and_stays_narrow(
    qtbot: Any,
    conversation_window: ConversationWindow,
    make_message: Callable[..., Message],
    name: str,
) -> None:
    window = conversation_window
    assert len(name) <= MAX_NAME_CHARS
    window.show_conversation(conversation(make_message, name))
    window.show()
    qtbot.waitExposed(window)
    QApplication.processEvents()
    fits(window)
    window.resize(480, 600)
    QApplication.processEvents()
    assert window.width() == 480  # it can still be narrowed to its default width
    for button in (window.send_button, window.assign_button):
        right = button.mapTo(window, QPoint(button.width(), 0)).x()
        assert 0 < right <= window.width(), button.text()
    assert window.title_label.is_elided()
    assert window.assignee_label.is_elided()
    assert window.title_label.toolTip() == name.strip()
    assert len(window.windowTitle()) < 140


def test_a_mixed_direction_name_keeps_the_inbox_on_its_right(
    conversation_window: ConversationWindow, make_message: Callable[..., Message]
) -> None:
    window = conversation_window
    window.show_conversation(
        Conversation(
            id="c1",
            inbox=InboxRef(id="i1", name="Support"),
            status="open",
            assignee=AgentRef(id="a2", name=MIXED),
            visitor=Visitor(name=MIXED),
            messages=[],
        )
    )
    title = window.windowTitle()
    assert drawn_right_of(title, "محمد", "Support")
    assert drawn_right_of(title, "王伟", "Deskbell")
    assert window.title_label.text() == f"{FSI}{MIXED}{PDI}"
    assert drawn_right_of(window.inbox_label.text(), "·", "Support")
    assert drawn_right_of(window.assignee_label.text(), "Assigned to", "محمد")


def test_a_transcript_header_keeps_the_time_for_a_long_mixed_name() -> None:
    metrics = QFontMetricsF(QFont())
    header = fit_header(LONG_MIXED.strip(), "15:00", metrics, 300)
    assert header.endswith(" · 15:00")
    assert metrics.horizontalAdvance(header) <= 300
    assert drawn_right_of(header, "محمد", "15:00")


def test_a_notification_row_isolates_the_visitor_name() -> None:
    data = {"visitor_name": MIXED}
    assert drawn_right_of(row_title(f"{MIXED} was assigned to you", data, True), "محمد", "assigned")
    assert row_title(MIXED, data, True) == f"{FSI}{MIXED}{PDI}"


@pytest.mark.parametrize("blank", ["   ", "\t\n"])
def test_a_name_of_only_spaces_still_names_the_row_and_the_window(
    blank: str,
    conversation_window: ConversationWindow,
    make_message: Callable[..., Message],
) -> None:
    assert row_title(blank, {"visitor_name": blank}, True) == "Visitor"
    assert row_title(blank, {}, False) == "(no title)"
    conversation_window.show_conversation(conversation(make_message, blank))
    assert conversation_window.title_label.text() == f"{FSI}Visitor{PDI}"


def test_notification_window_fits_with_the_longest_titles_and_search(
    qtbot: Any, clock: Callable[[], datetime], make_notification: Callable[..., Any]
) -> None:
    model = NotificationListModel()
    model.upsert(
        [
            make_notification(1, title=LONG_MIXED, body=LONG_LATIN * 20),
            make_notification(2, title=LONG_LATIN, category="ticket"),
        ]
    )
    window = NotificationWindow(model, clock=clock)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    fits(window)
    window.search.setText("x" * 500)  # nothing matches: the empty text quotes it
    QApplication.processEvents()
    fits(window)


def breaks_only_between_words(label: QLabel) -> bool:
    """Whether the label's wrapped lines all end at a space (not after "/" or "-")."""
    text = label.text()
    layout = QTextLayout(text, label.font())
    option = QTextOption()
    option.setWrapMode(QTextOption.WrapMode.WordWrap)
    layout.setTextOption(option)
    layout.beginLayout()
    ends = []
    while (line := layout.createLine()).isValid():
        line.setLineWidth(label.contentsRect().width())
        ends.append(line.textStart() + line.textLength())
    layout.endLayout()
    return all(text[end - 1].isspace() for end in ends[:-1])


def test_sign_in_dialog_fits_with_long_values(qtbot: Any) -> None:
    dialog = SignInDialog(server_url="wss://" + "a" * 200 + ".example.org", email=LONG_LATIN)
    qtbot.addWidget(dialog)
    dialog.set_error(" ".join(["The server could not be reached."] * 12))
    dialog.show()
    qtbot.waitExposed(dialog)
    fits(dialog)


def test_about_window_fits_and_breaks_values_between_words_only(qtbot: Any) -> None:
    detail = Check(
        "Notifications",
        "warn",
        "no notification server answered on D-Bus (org.freedesktop.Notifications); "
        "toasts will not show",
    )
    report = HealthReport(
        version="1.0",
        connection="Connected since 2026-03-10 09:12 UTC",
        server_url="wss://" + "deskbell-" * 30 + "example.org",
        agent=("very.long.agent.name" * 8) + "@example.org",
        notifications=detail,
        keyring=detail,
        policy_sources=(
            SourceReport("/etc/deskbell/policies", False),
            SourceReport("/etc/xdg/deskbell/defaults.toml", False),
        ),
    )
    window = StatusWindow(report)
    qtbot.addWidget(window)
    window.show()
    qtbot.waitExposed(window)
    QApplication.processEvents()
    fits(window)
    for label in (window.notifications_label, window.keyring_label, window.policy_label):
        assert breaks_only_between_words(label), label.text()
    assert window.server_label.is_elided()
    assert window.server_label.toolTip() == report.server_url
    assert report.server_url in window.details_text()


def test_short_header_facts_stay_whole_beside_a_long_name(
    qtbot: Any, conversation_window: ConversationWindow, make_message: Callable[..., Message]
) -> None:
    window = conversation_window
    window.show_conversation(conversation(make_message, LONG_MIXED))
    window.set_assignee(ME)
    window.resize(480, 600)
    window.show()
    qtbot.waitExposed(window)
    QApplication.processEvents()
    assert window.title_label.is_elided()
    assert not window.assignee_label.is_elided()  # "Assigned to you"
    assert window.status_label.text() == "Open"
