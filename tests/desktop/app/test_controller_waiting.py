"""Waiting visitors in the controller (fake connection): Accept, withdraw, seen,
urgent escalations, per-inbox sound and mute, the Waiting view, presence from idle."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from backend.protocol import AgentRef, WithdrawPush
from desktop_agent.errors import RequestFailed
from tests.desktop.app.conftest import WAIT_MS, Loop
from tests.desktop.app.fake_connection import chat
from tests.desktop.app.test_controller import Rig
from tests.support.factories import escalation_notification, queue_entry


@pytest.fixture
def rig(tmp_path: Path, loop: Loop) -> Iterator[Rig]:
    made = Rig(tmp_path, loop)
    yield made
    made.close(loop)


def test_a_new_connection_loads_the_queue_into_the_waiting_view(rig: Rig, qtbot: QtBot) -> None:
    qtbot.waitUntil(lambda: ("queue", None) in rig.connection.calls, timeout=WAIT_MS)
    rig.connection.queue_entries = [queue_entry("c_2", 20), queue_entry("c_1", 10)]
    rig.connection.connect_now()  # a reconnect asks again
    waiting = rig.controller.waiting
    qtbot.waitUntil(lambda: waiting.rowCount() == 2, timeout=WAIT_MS)
    assert [waiting.entry_at(r).conversation_id for r in range(2)] == ["c_1", "c_2"]
    rig.connection.queueChanged.emit(queue_entry("c_1", None), False)
    assert waiting.rowCount() == 1


def test_an_unassigned_chat_toasts_with_accept_and_accept_claims_and_opens_it(
    rig: Rig, qtbot: QtBot
) -> None:
    rig.connection.notificationReceived.emit(chat(1, "c_1"))
    qtbot.waitUntil(lambda: bool(rig.toaster.visible), timeout=WAIT_MS)
    assert rig.toaster.requests[0].actions == ("accept", "open", "mark_read")

    rig.toaster.activate("conversation:c_1", "accept")

    qtbot.waitUntil(lambda: "c_1" in rig.controller.conversations, timeout=WAIT_MS)
    assert ("claim", "c_1") in rig.connection.calls
    assert ("seen", (["n_1"], "clicked")) in rig.connection.calls


def test_a_chat_someone_has_toasts_without_accept(rig: Rig, qtbot: QtBot) -> None:
    rig.connection.queueChanged.emit(queue_entry("c_1", 10, assignee="sam"), True)
    rig.connection.notificationReceived.emit(chat(1, "c_1"))
    qtbot.waitUntil(lambda: bool(rig.toaster.visible), timeout=WAIT_MS)
    assert "accept" not in rig.toaster.requests[0].actions


def test_a_loser_who_pressed_accept_is_told_who_took_the_chat(rig: Rig, qtbot: QtBot) -> None:
    rig.connection.claim_error = RequestFailed("conflict", "Sam Lee has already taken this chat.")
    rig.connection.notificationReceived.emit(chat(1, "c_1"))
    qtbot.waitUntil(lambda: bool(rig.toaster.visible), timeout=WAIT_MS)
    with qtbot.waitSignal(rig.controller.claimFinished, timeout=WAIT_MS) as outcome:
        rig.toaster.activate("conversation:c_1", "accept")
    assert outcome.args == ["c_1", "Sam Lee has already taken this chat."]
    qtbot.waitUntil(lambda: "claim:c_1" in rig.toaster.visible, timeout=WAIT_MS)
    told = rig.toaster.visible["claim:c_1"]
    assert told.title == "Someone else took this chat"
    assert told.body == "Sam Lee has already taken this chat."
    assert rig.controller.conversations == {}


def test_accept_in_the_notification_lists_menu_claims_the_chat(rig: Rig, qtbot: QtBot) -> None:
    rig.connection.notificationReceived.emit(chat(1, "c_1"))
    index = rig.window.proxy.index(0, 0)
    menu = rig.window.context_menu_for(index)
    next(a for a in menu.actions() if a.text() == "Accept").trigger()
    qtbot.waitUntil(lambda: ("claim", "c_1") in rig.connection.calls, timeout=WAIT_MS)


def test_a_withdraw_closes_the_chats_toast(rig: Rig, qtbot: QtBot) -> None:
    rig.connection.notificationReceived.emit(chat(1, "c_1"))
    rig.connection.notificationReceived.emit(chat(2, "c_2", "Lee"))
    qtbot.waitUntil(lambda: len(rig.toaster.visible) == 2, timeout=WAIT_MS)

    rig.connection.withdrawn.emit(
        WithdrawPush(ids=["n_1"], reason="claimed", by=AgentRef(id="a_2", name="Sam Lee"))
    )

    qtbot.waitUntil(lambda: "conversation:c_1" in rig.toaster.withdrawn, timeout=WAIT_MS)
    assert list(rig.toaster.visible) == ["conversation:c_2"]


def test_a_shown_toast_and_a_click_send_seen_receipts(rig: Rig, qtbot: QtBot) -> None:
    rig.connection.notificationReceived.emit(chat(1, "c_1"))
    qtbot.waitUntil(lambda: ("seen", (["n_1"], "shown")) in rig.connection.calls, timeout=WAIT_MS)
    rig.toaster.activate("conversation:c_1")
    qtbot.waitUntil(lambda: ("seen", (["n_1"], "clicked")) in rig.connection.calls, timeout=WAIT_MS)


def test_a_toast_the_os_refused_sends_no_shown_receipt(rig: Rig, qtbot: QtBot) -> None:
    from desktop_agent.platform.toasts import ToastAvailability

    rig.toaster.availability = ToastAvailability(False, "off")
    rig.connection.notificationReceived.emit(chat(1, "c_1"))
    qtbot.waitUntil(lambda: bool(rig.toaster.requests), timeout=WAIT_MS)
    rig.connection.notificationReceived.emit(chat(2, "c_2"))
    qtbot.waitUntil(lambda: len(rig.toaster.requests) == 2, timeout=WAIT_MS)
    assert not any(name == "seen" for name, _ in rig.connection.calls)


def test_an_escalation_is_urgent_with_a_sound_and_marks_the_tray(rig: Rig, qtbot: QtBot) -> None:
    rig.connection.queueChanged.emit(queue_entry("c_1", 0), True)
    rig.connection.notificationReceived.emit(escalation_notification(1, "c_1", 0, 1))
    qtbot.waitUntil(lambda: bool(rig.toaster.visible), timeout=WAIT_MS)
    request = rig.toaster.requests[0]
    assert request.urgent and request.sound  # a sound even with sounds off
    assert "accept" in request.actions
    assert rig.tray.escalated == 1
    assert "waited past the first escalation" in rig.tray.tooltip()


def test_per_inbox_sound_and_mute(tmp_path: Path, loop: Loop, qtbot: QtBot) -> None:
    made = Rig(
        tmp_path,
        loop,
        inbox_sounds={"Support": "phone-incoming-call"},
        muted_inboxes=["Sales"],
    )
    try:
        sales = chat(2, "c_2", "Lee")
        sales.data["inbox_name"] = "Sales"
        made.connection.notificationReceived.emit(sales)
        made.connection.notificationReceived.emit(chat(1, "c_1"))
        qtbot.waitUntil(lambda: bool(made.toaster.visible), timeout=WAIT_MS)
        (request,) = made.toaster.requests
        assert request.conversation_id == "c_1"
        assert request.sound and request.sound_name == "phone-incoming-call"
        assert made.model.rowCount() == 2  # muted: no pop-up, still in the list
    finally:
        made.close(loop)


def test_presence_away_from_idle_time_and_back(tmp_path: Path, loop: Loop, qtbot: QtBot) -> None:
    idle = [0.0]

    async def idle_seconds() -> float | None:
        return idle[0]

    made = Rig(tmp_path, loop, away_after_idle_minutes=5)
    try:
        made.controller._idle_seconds = idle_seconds  # what AppEnvironment.idle_time gives
        idle[0] = 301
        made.controller.check_presence()
        qtbot.waitUntil(lambda: ("presence", "away") in made.connection.calls, timeout=WAIT_MS)
        idle[0] = 1
        made.controller.check_presence()
        qtbot.waitUntil(lambda: ("presence", "online") in made.connection.calls, timeout=WAIT_MS)
        sent = [c for c in made.connection.calls if c[0] == "presence"]
        made.controller.check_presence()
        made.tray.away_action.setChecked(True)
        qtbot.waitUntil(
            lambda: (
                [c for c in made.connection.calls if c[0] == "presence"][-1] == ("presence", "away")
            ),
            timeout=WAIT_MS,
        )
        assert len([c for c in made.connection.calls if c[0] == "presence"]) == len(sent) + 1
    finally:
        made.close(loop)
