"""The toaster on the app's qasync loop: clicks arrive on the Qt main thread."""

from __future__ import annotations

import asyncio
import threading

import pytest
from PySide6.QtWidgets import QApplication

from desktop_agent.platform.toasts import DesktopNotifierToaster, ToastRequest
from tests.support.desktop_session import DesktopSession
from tests.support.qt_loops import TestQEventLoop

pytestmark = pytest.mark.desktop


def test_click_on_a_toast_reaches_the_callback_on_the_qt_main_thread(
    notification_session: DesktopSession, qapp: QApplication
) -> None:
    calls: list[tuple[str, str | None, bool]] = []

    async def scenario() -> None:
        clicked = asyncio.Event()

        def on_activated(key: str, conversation_id: str | None) -> None:
            calls.append(
                (key, conversation_id, threading.current_thread() is threading.main_thread())
            )
            clicked.set()

        toaster = DesktopNotifierToaster(on_activated, lambda k, c: None)
        await toaster.show(ToastRequest("conv:c_7", "Dana · Support", "hi", "c_7"))
        await asyncio.to_thread(notification_session.dunstctl, "action", "0")
        await asyncio.wait_for(clicked.wait(), 5)

    notification_session.dunstctl("close-all")
    with (
        notification_session.activated(),
        asyncio.Runner(loop_factory=lambda: TestQEventLoop(qapp)) as runner,
    ):
        runner.run(scenario())
    assert calls == [("conv:c_7", "c_7", True)]
