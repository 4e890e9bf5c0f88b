"""Core tests run headless; every async test runs on plain asyncio and on qasync.

The app runs the connection service on qasync's loop inside Qt; running each async test
on both loops catches code that only works on one of them.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Mapping
from typing import Any

import pytest

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def _qasync_loop() -> asyncio.AbstractEventLoop:
    from PySide6.QtWidgets import QApplication

    from tests.support.qt_loops import TestQEventLoop

    app = QApplication.instance() or QApplication([])
    loop: asyncio.AbstractEventLoop = TestQEventLoop(app)
    return loop


def pytest_asyncio_loop_factories(
    config: pytest.Config, item: pytest.Item
) -> Mapping[str, Any] | None:
    return {"asyncio": asyncio.new_event_loop, "qasync": _qasync_loop}
