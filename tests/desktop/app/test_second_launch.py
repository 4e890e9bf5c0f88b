"""A second ``deskbell`` start hands its deskbell:// link to the running app."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop_agent.core.display_text import without_format_controls as shown
from desktop_agent.platform.single_instance import SingleInstance, default_socket_name
from tests.desktop.app.conftest import WAIT_MS, Apps, Backend, Loop


def test_a_second_start_with_a_link_opens_that_conversation_in_the_first(
    apps: Apps,
    backend: Backend,
    loop: Loop,
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime_dir = tmp_path / "runtime"
    runtime_dir.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime_dir))
    app = apps.signed_in(backend)
    single = SingleInstance(default_socket_name())
    assert single.acquire()
    app.listen_to(single)
    _visitor, started = backend.visitor("Dana Smith", "Where is my parcel?")
    conversation_id = started["conversation"]["id"]

    second = subprocess.Popen(
        [sys.executable, "-m", "desktop_agent", f"deskbell://conversation/{conversation_id}"],
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        qtbot.waitUntil(lambda: second.poll() is not None, timeout=WAIT_MS)
        _out, err = second.communicate()
        assert second.returncode == 0, err
        assert "already running" in err

        qtbot.waitUntil(lambda: conversation_id in app.controller.conversations, timeout=WAIT_MS)
        window = app.controller.conversations[conversation_id]
        qtbot.waitUntil(lambda: window.model.rowCount() == 1, timeout=WAIT_MS)
        assert shown(window.title_label.text()) == "Dana Smith"
        assert window.isVisible()
    finally:
        if second.poll() is None:
            second.kill()
            second.wait()
        single.release()
