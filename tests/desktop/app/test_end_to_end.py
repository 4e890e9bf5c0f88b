"""The whole app against a real backend process: visitor → toast → badge → window → reply."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from pytestqt.qtbot import QtBot

from desktop_agent.app import DeskbellApp, run_app
from desktop_agent.cli import CliOptions
from desktop_agent.core.display_text import without_format_controls as shown
from desktop_agent.ui.notification_model import Role
from tests.desktop.app.conftest import AGENT, WAIT_MS, Apps, Backend, Loop


def test_a_visitor_message_becomes_a_toast_a_badge_and_a_row(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot
) -> None:
    app = apps.signed_in(backend)
    toaster = apps.toasters[-1]

    _visitor, started = backend.visitor("Dana Smith", "Hi, my order #1234 has not arrived")
    conversation_id = started["conversation"]["id"]

    qtbot.waitUntil(lambda: bool(toaster.requests), timeout=WAIT_MS)
    toast = toaster.requests[0]
    assert toast.title == "Dana Smith · Support"
    assert toast.body == "Hi, my order #1234 has not arrived"
    assert toast.conversation_id == conversation_id
    assert toast.actions == ("accept", "open", "mark_read")  # a new chat: anyone may take it

    qtbot.waitUntil(lambda: app.controller.badge_count == 1, timeout=WAIT_MS)
    assert "1 unread chat" in app.tray.tooltip()

    assert app.model.rowCount() == 1
    row = app.window.proxy.index(0, 0)
    assert row.data(Role.ConversationId) == conversation_id
    assert row.data(Role.Read) is False


def test_clicking_the_toast_opens_that_conversation_and_a_reply_reaches_the_visitor(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot
) -> None:
    app = apps.signed_in(backend)
    toaster = apps.toasters[-1]
    visitor, started = backend.visitor("Dana Smith", "Hi, my order #1234 has not arrived")
    conversation_id = started["conversation"]["id"]
    qtbot.waitUntil(lambda: bool(toaster.visible), timeout=WAIT_MS)

    toaster.activate(f"conversation:{conversation_id}")

    window = app.controller.conversations[conversation_id]
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=WAIT_MS)
    assert shown(window.title_label.text()) == "Dana Smith"
    # Opening it marked it read, here and on the server.
    qtbot.waitUntil(lambda: app.controller.badge_count == 0, timeout=WAIT_MS)

    QTest.keyClicks(window.reply_edit, "It ships today, sorry for the wait")
    QTest.keyClick(window.reply_edit, Qt.Key.Key_Return)

    push = loop.run(visitor.push("message"))
    assert push["message"]["body"] == "It ships today, sorry for the wait"
    assert push["message"]["author"]["kind"] == "agent"
    qtbot.waitUntil(lambda: window.model.failed() == [] and _sent(window), timeout=WAIT_MS)


def test_reading_on_another_session_of_the_agent_clears_the_badge(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot
) -> None:
    app = apps.signed_in(backend)
    other_device = backend.agent_session(AGENT)
    _visitor, started = backend.visitor("Lee Wong", "Is the shop open on Sunday?")
    conversation_id = started["conversation"]["id"]
    qtbot.waitUntil(lambda: app.controller.badge_count == 1, timeout=WAIT_MS)

    reply = loop.run(
        other_device.request({"type": "mark_read", "conversation_id": conversation_id})
    )
    assert reply["type"] == "ok"

    qtbot.waitUntil(lambda: app.controller.badge_count == 0, timeout=WAIT_MS)
    assert "No unread chats" in app.tray.tooltip()
    assert app.model.notification_at(0).read
    # Its toast has nothing left to say.
    qtbot.waitUntil(lambda: not apps.toasters[-1].visible, timeout=WAIT_MS)


def _sent(window: object) -> bool:
    model = window.model  # type: ignore[attr-defined]
    return any(model.entry(row).state == "sent" for row in range(model.rowCount()))


def test_quit_from_the_tray_menu_ends_run_app_cleanly(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot
) -> None:
    app = DeskbellApp(
        CliOptions(server_url=backend.url, token_file=_token_file(apps, backend)),
        apps.environment(),
    )
    running = loop.loop.create_task(run_app(app))
    qtbot.waitUntil(lambda: app.connection is not None, timeout=WAIT_MS)
    connection = app.connection
    assert connection is not None
    qtbot.waitUntil(lambda: connection.state == "connected", timeout=WAIT_MS)

    app.tray.quit_action.trigger()

    qtbot.waitUntil(running.done, timeout=WAIT_MS)
    assert running.result() == 0
    assert connection.state == "disconnected"
    assert not connection.running


def _token_file(apps: Apps, backend: Backend) -> Path:
    path = apps.tmp_path / "quit.token"
    path.write_text(backend.tokens[AGENT], encoding="utf-8")
    return path
