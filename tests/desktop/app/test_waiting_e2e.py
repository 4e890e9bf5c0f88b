"""Acceptance (issue 13): the real app against the real server, toasts on a real dunst
on a private D-Bus under Xvfb. Accept claims the chat; the other agent's toast is closed
(CloseNotification on the bus) within a second; a loser is told who took it; the
Waiting view follows the server's queue."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pytestqt.qtbot import QtBot

from backend.app import open_service
from backend.config import Config
from desktop_agent.app import DeskbellApp, default_toaster
from desktop_agent.platform.toasts import RecordingToaster
from tests.desktop.app.conftest import AGENT, INBOX, OTHER_AGENT, WAIT_MS, Apps, Backend, Loop
from tests.support.bus_monitor import BusMonitor, Captured
from tests.support.desktop_session import DesktopSession

pytestmark = pytest.mark.desktop

NOTIFICATIONS = "interface='org.freedesktop.Notifications'"
WITHDRAW_WITHIN_MS = 1000


@pytest.fixture
def dunst(notification_session: DesktopSession) -> Iterator[DesktopSession]:
    notification_session.dunstctl("close-all")
    with notification_session.activated():
        yield notification_session


def notifies(monitor: BusMonitor, text: str) -> list[Captured]:
    return [m for m in monitor.messages if m.member == "Notify" and text in m.strings]


def closes(monitor: BusMonitor) -> list[Captured]:
    return [m for m in monitor.messages if m.member == "CloseNotification"]


def two_agents(apps: Apps, backend: Backend) -> tuple[DeskbellApp, DeskbellApp, RecordingToaster]:
    """Sam with a recording toaster, Alex with the real toaster on dunst."""
    sam = apps.signed_in(backend, OTHER_AGENT)
    sam_toaster = apps.toasters[-1]
    alex = apps.signed_in(backend, AGENT, make_toaster=default_toaster)
    return sam, alex, sam_toaster


def wait_for_queue_row(qtbot: QtBot, app: DeskbellApp, conversation_id: str) -> None:
    waiting = app.controller.waiting
    qtbot.waitUntil(lambda: waiting.get(conversation_id) is not None, timeout=WAIT_MS)


def test_when_sam_accepts_alexs_toast_closes_within_a_second(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot, dunst: DesktopSession
) -> None:
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        sam, alex, sam_toaster = two_agents(apps, backend)
        _visitor, started = backend.visitor("Dana Smith", "Hello, is anyone there?")
        cid = started["conversation"]["id"]
        key = f"conversation:{cid}"
        qtbot.waitUntil(lambda: bool(notifies(monitor, "Accept")), timeout=WAIT_MS)
        qtbot.waitUntil(lambda: dunst.dunst_displayed() == 1, timeout=WAIT_MS)
        qtbot.waitUntil(lambda: key in sam_toaster.visible, timeout=WAIT_MS)
        assert "accept" in sam_toaster.visible[key].actions
        wait_for_queue_row(qtbot, alex, cid)
        assert alex.controller.waiting.get(cid).assignee_id is None  # type: ignore[union-attr]

        with qtbot.waitSignal(sam.controller.claimFinished, timeout=WAIT_MS) as outcome:
            sam_toaster.activate(key, "accept")
        claimed = time.monotonic()
        assert outcome.args == [cid, ""]  # Sam won

        qtbot.waitUntil(lambda: bool(closes(monitor)), timeout=WITHDRAW_WITHIN_MS)
        assert time.monotonic() - claimed < WITHDRAW_WITHIN_MS / 1000
    qtbot.waitUntil(lambda: dunst.dunst_displayed() == 0, timeout=WAIT_MS)
    qtbot.waitUntil(lambda: cid in sam.controller.conversations, timeout=WAIT_MS)
    # Alex's Waiting view learns who has it (queue_changed).
    qtbot.waitUntil(
        lambda: (
            (entry := alex.controller.waiting.get(cid)) is not None and entry.assignee_name == "Sam"
        ),
        timeout=WAIT_MS,
    )


def test_accept_on_the_real_toast_claims_the_chat_and_opens_it(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot, dunst: DesktopSession
) -> None:
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        _sam, alex, sam_toaster = two_agents(apps, backend)
        _visitor, started = backend.visitor("Dana Smith", "Hello?")
        cid = started["conversation"]["id"]
        qtbot.waitUntil(lambda: bool(notifies(monitor, "Accept")), timeout=WAIT_MS)
        qtbot.waitUntil(lambda: f"conversation:{cid}" in sam_toaster.visible, timeout=WAIT_MS)

        dunst.dunst_context("Accept")

        qtbot.waitUntil(lambda: cid in alex.controller.conversations, timeout=WAIT_MS)
        window = alex.controller.conversations[cid]
        qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=WAIT_MS)
        # Sam's toast of the chat is withdrawn on Sam's desktop.
        qtbot.waitUntil(lambda: f"conversation:{cid}" in sam_toaster.withdrawn, timeout=WAIT_MS)


def test_a_loser_who_presses_accept_sees_who_took_the_chat(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot, dunst: DesktopSession
) -> None:
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        alex = apps.signed_in(backend, AGENT, make_toaster=default_toaster)
        sam = backend.agent_session(OTHER_AGENT)
        _visitor, started = backend.visitor("Dana Smith", "Hello?")
        cid = started["conversation"]["id"]
        qtbot.waitUntil(lambda: bool(notifies(monitor, "Accept")), timeout=WAIT_MS)
        wait_for_queue_row(qtbot, alex, cid)

        reply = loop.run(sam.request({"type": "claim", "conversation_id": cid}))
        assert reply["type"] == "ok", reply
        qtbot.waitUntil(lambda: bool(closes(monitor)), timeout=WITHDRAW_WITHIN_MS)

        # Alex was looking at the Waiting view and pressed Accept there, too late.
        alex.controller.show_waiting()
        window = alex.controller.waiting_window
        row = alex.controller.waiting.queue.row_of(cid)
        menu = window.context_menu_for(row)
        accept = next(a for a in menu.actions() if a.text() == "Accept")
        if accept.isEnabled():  # the queue_changed may not be here yet
            with qtbot.waitSignal(alex.controller.claimFinished, timeout=WAIT_MS) as outcome:
                accept.trigger()
        else:
            with qtbot.waitSignal(alex.controller.claimFinished, timeout=WAIT_MS) as outcome:
                alex.controller.accept(cid)
        assert outcome.args[0] == cid and "Sam" in outcome.args[1]
        told = "Someone else took this chat"
        qtbot.waitUntil(lambda: bool(notifies(monitor, told)), timeout=WAIT_MS)
        assert any("Sam" in s for s in notifies(monitor, told)[0].strings)
    assert cid not in alex.controller.conversations


def urgency(notify: Captured) -> int | None:
    """The urgency hint of a Notify call (0 low, 1 normal, 2 critical)."""
    lines = notify.body_lines
    for index, line in enumerate(lines[:-1]):
        if line.strip() == 'string "urgency"':
            return int(lines[index + 1].split()[-1])
    return None


async def _escalate_after(db: str, seconds: int) -> None:
    async with open_service(Config(db=db)) as service:
        await service.waiting.set_policy(
            INBOX, escalate=[str(seconds)], unseen_after_s=None, clear=False
        )


def test_an_escalation_is_an_urgent_real_toast_and_turns_the_tray_orange(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot, dunst: DesktopSession
) -> None:
    # The policy is read when a wait starts; set it while the server is down, then start.
    backend.kill()
    loop.run(_escalate_after(backend.db, 1))
    backend.start_again()
    with BusMonitor(dunst.dbus_address, NOTIFICATIONS) as monitor:
        alex = apps.signed_in(backend, AGENT, make_toaster=default_toaster)
        _visitor, started = backend.visitor("Dana Smith", "Hello, is anyone there?")
        cid = started["conversation"]["id"]

        def urgent() -> list[Captured]:
            return [m for m in monitor.messages if m.member == "Notify" and urgency(m) == 2]

        qtbot.waitUntil(lambda: bool(urgent()), timeout=WAIT_MS)
        toast = urgent()[0]
        assert any(s.startswith("Still waiting") for s in toast.strings)
        assert "Accept" in toast.strings
        assert 'string "dialog-warning"' in toast.text  # the alarm sound, sounds off or not
    qtbot.waitUntil(lambda: alex.tray.escalated == 1, timeout=WAIT_MS)
    assert "waited past the first escalation" in alex.tray.tooltip()
    assert alex.controller.waiting.get(cid).escalation_step == 1  # type: ignore[union-attr]
