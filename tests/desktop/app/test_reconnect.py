"""A connected app survives the backend being SIGKILLed and restarted on the same port."""

from __future__ import annotations

import itertools

import pytest
from PySide6.QtNetwork import QNetworkInformation
from pytestqt.qtbot import QtBot

from backend.app import open_service
from backend.config import Config
from desktop_agent.core.toast_policy import RESUME_KEY
from tests.desktop.app.conftest import INBOX, WAIT_MS, Apps, Backend, Loop


async def _visitors_write_while_the_server_is_down(db: str, names: list[str]) -> None:
    # Committed to the store with no server process to push them: exactly what a client
    # misses when the server dies between commit and push.
    async with open_service(Config(db=db)) as service:
        for index, name in enumerate(names):
            await service.visitor_start(INBOX, name, f"Question {index} from {name}", "10.0.0.9")


def test_after_a_server_crash_the_app_reconnects_and_summarises_what_it_missed(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot
) -> None:
    app = apps.signed_in(backend)
    toaster = apps.toasters[-1]
    assert app.connection is not None
    states: list[str] = []
    app.connection.stateChanged.connect(states.append)
    resumes: list[object] = []
    app.connection.resumed.connect(resumes.append)

    backend.visitor("Dana Smith", "Before the crash")
    qtbot.waitUntil(lambda: app.controller.badge_count == 1, timeout=WAIT_MS)
    # Toasts are shown by the controller's worker task, after the frame that asked.
    qtbot.waitUntil(lambda: len(toaster.requests) == 1, timeout=WAIT_MS)

    backend.kill()
    qtbot.waitUntil(lambda: "disconnected" in states, timeout=WAIT_MS)
    assert "Offline" in app.tray.tooltip() or "Connecting" in app.tray.tooltip()
    loop.run(_visitors_write_while_the_server_is_down(backend.db, ["Lee Wong", "Ana Ruiz"]))
    backend.start_again()

    # Nobody calls wake(): the backoff alone brings it back. The badge follows the
    # welcome's counts at once; the replay and its toast come after.
    qtbot.waitUntil(lambda: bool(resumes), timeout=WAIT_MS)
    qtbot.waitUntil(lambda: app.controller.badge_count == 3, timeout=WAIT_MS)
    assert states[-1] == "connected"
    assert "Connected" in app.tray.tooltip()

    # One summary toast for the two that arrived while away, nothing per conversation.
    qtbot.waitUntil(lambda: len(toaster.requests) >= 2, timeout=WAIT_MS)
    assert len(toaster.requests) == 2
    summary = toaster.requests[1]
    assert summary.key == RESUME_KEY
    assert summary.title == "2 new messages while you were away"
    assert "Lee Wong" in summary.body and "Ana Ruiz" in summary.body
    assert summary.conversation_id is None

    # Nothing lost, nothing twice: three rows, seqs 1..3, each once.
    seqs = sorted(app.model.notification_at(r).seq for r in range(app.model.rowCount()))
    assert seqs == [1, 2, 3]

    # And the live stream goes on after the resume.
    backend.visitor("Kim Park", "After the restart")
    qtbot.waitUntil(lambda: len(toaster.requests) == 3, timeout=WAIT_MS)
    assert toaster.requests[2].title == "Kim Park · Support"
    qtbot.waitUntil(lambda: app.controller.badge_count == 4, timeout=WAIT_MS)
    assert app.model.rowCount() == 4


def test_an_open_conversation_window_stays_live_across_a_server_restart(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot
) -> None:
    app = apps.signed_in(backend)
    assert app.connection is not None
    resumes: list[object] = []
    app.connection.resumed.connect(resumes.append)
    _dana, started = backend.visitor("Dana Smith", "Before the crash")
    conversation_id = started["conversation"]["id"]
    app.controller.open_conversation(conversation_id)
    window = app.controller.conversations[conversation_id]
    qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=WAIT_MS)

    backend.kill()
    backend.start_again()
    qtbot.waitUntil(lambda: bool(resumes), timeout=WAIT_MS)

    # The visitor's page reconnects to its conversation and writes again.
    dana = loop.run(backend.harness.channel("/visitor"))
    backend.clients.append(dana)
    attached = loop.run(dana.request({"type": "attach", "token": started["token"]}))
    assert attached["type"] == "ok", attached
    sent = loop.run(dana.request({"type": "send", "text": "Still there?", "client_msg_id": "v2"}))
    assert sent["type"] == "ok", sent

    qtbot.waitUntil(lambda: window.model.rowCount() == 2, timeout=WAIT_MS)
    assert window.model.entry(1).body == "Still there?"


def test_when_the_network_comes_back_the_app_reconnects_without_waiting_out_the_backoff(
    apps: Apps, backend: Backend, qtbot: QtBot
) -> None:
    app = apps.signed_in(
        backend,
        watch_network=True,
        # A backoff far longer than the test: only the network signal can end it.
        connection_options={"delays": lambda: itertools.repeat(3600.0)},
    )
    info = app.network_information
    if info is None:
        pytest.skip("Qt has no network information backend here")
    assert app.connection is not None
    states: list[str] = []
    app.connection.stateChanged.connect(states.append)

    backend.kill()
    qtbot.waitUntil(lambda: states[-1:] == ["disconnected"], timeout=WAIT_MS)
    backend.start_again()
    assert app.connection.state == "disconnected"  # still waiting out an hour

    info.reachabilityChanged.emit(QNetworkInformation.Reachability.Online)

    qtbot.waitUntil(lambda: states[-1:] == ["connected"], timeout=WAIT_MS)
