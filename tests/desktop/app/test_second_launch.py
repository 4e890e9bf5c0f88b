"""A second ``deskbell`` start hands its deskbell:// link to the running app."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop_agent.core import paths
from desktop_agent.core.display_text import without_format_controls as shown
from desktop_agent.platform.single_instance import SingleInstance, default_socket_name
from tests.desktop.app.conftest import WAIT_MS, Apps, Backend, Loop


@pytest.fixture
def short_runtime_dir() -> Iterator[Path]:
    """A private XDG_RUNTIME_DIR short enough for a socket path (108 bytes)."""
    folder = Path(tempfile.mkdtemp(prefix="db-rt-"))
    folder.chmod(0o700)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_second_start_with_a_link_opens_that_conversation_in_the_first(
    short_runtime_dir: Path,
    apps: Apps,
    backend: Backend,
    loop: Loop,
    qtbot: QtBot,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    runtime_dir = short_runtime_dir
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime_dir))
    app = apps.signed_in(backend)
    single = SingleInstance(default_socket_name(scope=paths.data_dir()))
    assert single.acquire()
    app.listen_to(single)
    _visitor, started = backend.visitor("Dana Smith", "Where is my parcel?")
    conversation_id = started["conversation"]["id"]

    second = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "desktop_agent",
            "--server",
            "ws://elsewhere.example:1",
            f"deskbell://conversation/{conversation_id}",
        ],
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
        # The flag is not silently dropped: the person is told, and what to do.
        assert "--server only apply when Deskbell starts" in err
        assert "quit Deskbell" in err

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


def test_a_deskbell_with_its_own_data_folder_does_not_hand_over_to_the_users(
    short_runtime_dir: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, qtbot: QtBot
) -> None:
    """What scripts/demo does: its own XDG folders, so its own instance."""
    runtime_dir = short_runtime_dir
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(runtime_dir))
    users = SingleInstance(default_socket_name(scope=paths.data_dir()))
    assert users.acquire()
    demo_data = tmp_path / "demo-data"
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_DATA_HOME": str(demo_data),
        "XDG_CONFIG_HOME": str(tmp_path / "demo-config"),
        "XDG_STATE_HOME": str(tmp_path / "demo-state"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    demo_socket = Path(default_socket_name(scope=demo_data / "deskbell"))
    assert demo_socket != Path(users.socket_name)
    demo = subprocess.Popen(
        [sys.executable, "-m", "desktop_agent", "--server", "ws://127.0.0.1:9"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        qtbot.waitUntil(lambda: demo_socket.exists() or demo.poll() is not None, timeout=WAIT_MS)
        assert demo.poll() is None, demo.communicate()
        demo.terminate()
        _out, err = demo.communicate(timeout=30)
        assert "already running" not in err
        assert demo.returncode == 0, err
    finally:
        if demo.poll() is None:
            demo.kill()
            demo.wait()
        users.release()
