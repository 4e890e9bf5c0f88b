"""Offline: the windows say so, and what the agent does meanwhile is not lost.

The real server is SIGKILLed and started again on the same port; reads and replies
made while it is down go out after the app reconnects, and the badge never counts
what the agent already read.
"""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from tests.desktop.app.conftest import WAIT_MS, Apps, Backend, Loop


def test_reads_and_replies_made_offline_are_sent_after_the_reconnect(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot
) -> None:
    app = apps.signed_in(backend)
    assert app.connection is not None
    states: list[str] = []
    app.connection.stateChanged.connect(states.append)
    _dana, started = backend.visitor("Dana Smith", "Where is my order?")
    backend.visitor("Lee Wong", "Do you ship to Norway?")
    dana = started["conversation"]["id"]
    qtbot.waitUntil(lambda: app.controller.badge_count == 2, timeout=WAIT_MS)
    app.controller.open_conversation(dana)
    window = app.controller.conversations[dana]
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: app.controller.badge_count == 1, timeout=WAIT_MS)
    assert not window.offline_label.isVisibleTo(window)
    assert not app.window.offline_label.isVisibleTo(app.window)

    backend.kill()
    qtbot.waitUntil(lambda: "disconnected" in states, timeout=WAIT_MS)
    # Both windows say it, and that replies wait.
    assert window.offline_label.isVisibleTo(window)
    assert "wait" in window.offline_label.text()
    assert app.window.offline_label.isVisibleTo(app.window)

    # Lee's row is opened while offline: read here at once, and the badge agrees.
    lee_row = next(r for r in range(app.model.rowCount()) if not app.model.notification_at(r).read)
    lee = app.model.notification_at(lee_row)
    app.window.markReadRequested.emit([lee.id])
    assert app.controller.badge_count == 0
    window.reply_edit.setPlainText("It left our warehouse this morning.")
    window.send_reply()
    assert window.model.entry(1).state == "waiting"

    backend.start_again()
    qtbot.waitUntil(lambda: states[-1:] == ["connected"], timeout=WAIT_MS)
    # Sent (or already merged with the server's copy of it): no longer waiting.
    qtbot.waitUntil(lambda: window.model.entry(1).state in ("sent", None), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: len(app.controller.pending_reads) == 0, timeout=WAIT_MS)
    assert app.controller.badge_count == 0  # never back up to 1 after the welcome
    assert not window.offline_label.isVisibleTo(window)
    assert not app.window.offline_label.isVisibleTo(app.window)

    # The server has both: another device of the agent sees nothing unread.
    other_device = backend.agent_session()
    assert other_device.welcome["unread"]["total"] == 0  # type: ignore[attr-defined]
    reply = loop.run(other_device.request({"type": "conversation", "conversation_id": dana}))
    bodies = [m["body"] for m in reply["conversation"]["messages"]]
    assert bodies == ["Where is my order?", "It left our warehouse this morning."]
