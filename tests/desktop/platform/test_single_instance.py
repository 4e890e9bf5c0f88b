"""SingleInstance with real processes on a real local socket."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from desktop_agent.platform.single_instance import (
    SingleInstance,
    decode_arguments,
    default_socket_name,
    encode_arguments,
)

REPO = Path(__file__).resolve().parents[3]
LINK = "deskbell://conversation/c_123"


@pytest.fixture
def socket_name(tmp_path: Path) -> str:
    # A path in a private temp folder: tests never meet a real Deskbell or each other.
    return str(tmp_path / "deskbell-test.sock")


def start_probe(socket_name: str, *args: str) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(REPO), "QT_QPA_PLATFORM": "offscreen"}
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.single_instance_probe", socket_name, *args],
        cwd=REPO,
        env=env,
        text=True,
        stdout=subprocess.PIPE,
    )


@pytest.fixture
def primary(socket_name: str) -> Iterator[subprocess.Popen[str]]:
    process = start_probe(socket_name)
    assert process.stdout is not None
    assert process.stdout.readline().strip() == "primary"  # listening from now on
    yield process
    if process.poll() is None:
        process.kill()
    process.wait(10)
    process.stdout.close()


def test_second_process_hands_its_link_to_the_first_and_exits(
    socket_name: str, primary: subprocess.Popen[str]
) -> None:
    second = start_probe(socket_name, "--server", "wss://x", LINK)
    out, _ = second.communicate(timeout=30)
    assert (second.returncode, out.strip()) == (0, "sent")
    assert primary.stdout is not None
    assert json.loads(primary.stdout.readline()) == ["--server", "wss://x", LINK]
    assert primary.wait(10) == 0


def test_stale_socket_of_a_crashed_instance_is_taken_over(
    socket_name: str, primary: subprocess.Popen[str], qapp: QApplication
) -> None:
    primary.send_signal(signal.SIGKILL)
    primary.wait(10)
    assert Path(socket_name).exists(), "a killed instance leaves its socket behind"
    instance = SingleInstance(socket_name)
    assert instance.acquire()
    assert instance.is_primary
    instance.release()


def test_second_object_in_the_same_session_is_not_primary(
    socket_name: str, qapp: QApplication
) -> None:
    first, second = SingleInstance(socket_name), SingleInstance(socket_name)
    assert first.acquire()
    assert not second.acquire()
    first.release()
    assert second.acquire()
    second.release()


def test_first_instance_receives_arguments_as_a_signal(
    socket_name: str, qtbot: QtBot, qapp: QApplication
) -> None:
    instance = SingleInstance(socket_name)
    assert instance.acquire()
    received: list[list[str]] = []
    instance.argumentsReceived.connect(received.append)
    second = start_probe(socket_name, LINK)
    qtbot.waitUntil(lambda: second.poll() is not None, timeout=30_000)
    assert second.stdout is not None
    assert (second.returncode, second.stdout.read().strip()) == (0, "sent")
    second.stdout.close()
    assert received == [[LINK]]
    instance.release()


def test_sending_with_no_first_instance_reports_failure(
    socket_name: str, qapp: QApplication
) -> None:
    assert not SingleInstance(socket_name, connect_timeout_ms=200).send_to_primary([LINK])


def test_socket_name_is_per_user_and_private_on_linux(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    name = default_socket_name("dev.deskbell.Deskbell", "dana smith")
    if sys.platform.startswith("linux"):
        assert name == str(tmp_path / "dev.deskbell.Deskbell-dana_smith.sock")
    assert default_socket_name("a", "x") != default_socket_name("a", "y")


@pytest.mark.parametrize("data", [b"not json", b'{"argv": "x"}', b"[1]", b'{"argv": [1]}'])
def test_malformed_messages_are_rejected(data: bytes) -> None:
    assert decode_arguments(data) is None


def test_message_round_trips() -> None:
    assert decode_arguments(encode_arguments([LINK, "ü"]).strip()) == [LINK, "ü"]


def test_each_data_folder_has_its_own_instance(monkeypatch: pytest.MonkeyPatch) -> None:
    tmp_path = Path("/tmp")  # short, like /run/user/1000
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))
    users = default_socket_name(user="ann", scope=Path("/home/ann/.local/share/deskbell"))
    demo = default_socket_name(user="ann", scope=Path("/tmp/deskbell-demo.x/app-data/deskbell"))
    assert users != demo
    assert users == default_socket_name(user="ann", scope=Path("/home/ann/.local/share/deskbell"))
    assert all(Path(name).parent == tmp_path for name in (users, demo))


def test_a_runtime_folder_too_deep_for_a_socket_path_falls_back_to_a_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    deep = tmp_path / ("x" * 90)
    deep.mkdir()
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(deep))
    name = default_socket_name(user="ann", scope=Path("/data"))
    assert "/" not in name and name.startswith("dev.deskbell.Deskbell-ann-")
