"""Ctrl+C (or SIGTERM) while ``deskbell`` is still starting ends it calmly, with 0.

Signals are sent at moments found by watching the process, not after sleeps: once
its single-instance socket exists (Qt is up, the heavy imports are under way), and
once its log file exists (the app is being built).
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from tests.desktop.app.conftest import WAIT_MS

NOISE = ("Traceback", "KeyboardInterrupt", "libshiboken", "CancelledError", "Fatal")


@pytest.fixture
def home() -> Iterator[Path]:
    # Short: the single-instance socket path must fit in 108 bytes.
    folder = Path(tempfile.mkdtemp(prefix="db-int-"))
    (folder / "run").mkdir(mode=0o700)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def start(home: Path) -> subprocess.Popen[str]:
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_RUNTIME_DIR": str(home / "run"),
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        "XDG_STATE_HOME": str(home / "state"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    return subprocess.Popen(
        [sys.executable, "-m", "desktop_agent", "--server", "ws://127.0.0.1:9"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def socket_exists(home: Path) -> bool:
    return any((home / "run").glob("*.sock"))


def log_exists(home: Path) -> bool:
    return any((home / "state").rglob("deskbell.log"))


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
@pytest.mark.parametrize("moment", [socket_exists, log_exists])
def test_a_signal_during_start_up_quits_with_zero_and_no_traceback(
    home: Path, qtbot: QtBot, signum: int, moment: Callable[[Path], bool]
) -> None:
    process = start(home)
    try:
        qtbot.waitUntil(lambda: moment(home) or process.poll() is not None, timeout=WAIT_MS)
        process.send_signal(signum)
        _out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, err
    for word in NOISE:
        assert word not in err, err
    assert not socket_exists(home)  # the next start does not meet a stale socket
