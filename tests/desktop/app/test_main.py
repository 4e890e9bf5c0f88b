"""The ``deskbell`` entry point and the app's logging of errors nobody caught."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import subprocess
import sys
import threading
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from desktop_agent import __version__
from desktop_agent.__main__ import NO_DISPLAY, display_problem
from desktop_agent.shell import diagnostics

# The app as an agent or IT starts it, with warnings as errors: a library warning that
# would reach the terminal fails the test instead (issue 9).
DESKBELL = [sys.executable, "-W", "error", "-m", "desktop_agent"]


def test_version_prints_and_exits_zero() -> None:
    result = subprocess.run([*DESKBELL, "--version"], capture_output=True, text=True)
    assert result.returncode == 0
    assert result.stdout.strip() == f"deskbell {__version__}"


def test_a_bad_link_is_bad_usage() -> None:
    result = subprocess.run(
        [*DESKBELL, "https://example.org/"],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "deskbell://conversation/<id>" in result.stderr


def test_without_a_display_deskbell_says_so_and_exits_one() -> None:
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(Path(__file__).resolve().parents[3])}
    result = subprocess.run(DESKBELL, capture_output=True, text=True, env=env)
    assert result.returncode == 1
    assert result.stderr.strip() == NO_DISPLAY


def test_selftest_needs_no_display_and_says_what_does_not_work_here(tmp_path: Path) -> None:
    """No display, no notification service, no keyring: the install itself is fine, so
    exit 0, with each limit said in a sentence (the issue's offscreen self-test)."""
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    result = subprocess.run(
        [*DESKBELL, "--selftest"],
        capture_output=True,
        text=True,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "Qt:             ok: Qt 6." in out
    assert "Notifications:  warn: Pop-up notifications are off" in out
    assert "Keyring:        warn: Deskbell could not use a system keyring" in out
    assert out.rstrip().endswith("Self-test: ok")
    assert result.stderr == ""


def test_status_prints_the_health_view_without_a_display(tmp_path: Path) -> None:
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus",
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    result = subprocess.run([*DESKBELL, "--status"], capture_output=True, text=True, env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Deskbell ")
    assert "Policy sources:" in result.stdout


def test_a_display_or_an_explicit_qt_platform_is_enough() -> None:
    assert display_problem({"DISPLAY": ":0"}, "linux") == ""
    assert display_problem({"WAYLAND_DISPLAY": "wayland-0"}, "linux") == ""
    assert display_problem({"QT_QPA_PLATFORM": "offscreen"}, "linux") == ""
    assert display_problem({}, "linux") == NO_DISPLAY
    assert display_problem({}, "win32") == ""


@pytest.fixture
def logged(tmp_path: Path) -> Iterator[Path]:
    with app_logging(tmp_path / "log", stderr=False) as path:
        yield path


@contextlib.contextmanager
def app_logging(log_dir: Path, *, stderr: bool) -> Iterator[Path]:
    """The app's logging set-up, undone afterwards (handlers, level, hooks, warnings)."""
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    hooks = sys.excepthook, threading.excepthook
    path = diagnostics.setup_logging(log_dir, "INFO", stderr=stderr)
    assert path is not None
    try:
        yield path
    finally:
        logging.captureWarnings(False)
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
        root.setLevel(level)
        sys.excepthook, threading.excepthook = hooks


def test_unhandled_errors_are_logged_with_their_traceback(logged: Path) -> None:
    try:
        raise ValueError("a slot went wrong")
    except ValueError:
        sys.excepthook(*sys.exc_info())  # type: ignore[arg-type]

    thread = threading.Thread(target=lambda: 1 / 0, name="worker")
    thread.start()
    thread.join()

    loop = asyncio.new_event_loop()
    try:
        diagnostics.loop_exception_handler(
            loop, {"message": "Task exception was never retrieved", "exception": KeyError("k")}
        )
    finally:
        loop.close()

    text = logged.read_text(encoding="utf-8")
    assert "Traceback" in text
    assert "ValueError: a slot went wrong" in text
    assert "unhandled error in thread worker" in text and "ZeroDivisionError" in text
    assert "Task exception was never retrieved" in text and "KeyError: 'k'" in text


def test_the_terminal_gets_one_line_per_problem_and_never_a_traceback() -> None:
    import logging

    from desktop_agent.shell.diagnostics import _OneLineFormatter

    try:
        raise ConnectionError("bus gone\nsecond line")
    except ConnectionError:
        import sys

        record = logging.LogRecord(
            "desktop_notifier",
            logging.WARNING,
            __file__,
            1,
            "Notification failed\nmore",
            None,
            sys.exc_info(),
        )
    text = _OneLineFormatter("deskbell: %(levelname)s %(message)s").format(record)
    assert "\n" not in text
    assert "Traceback" not in text
    assert text.startswith("deskbell: WARNING Notification failed (ConnectionError: bus gone")


def test_a_login_start_quits_at_once_when_launch_at_login_is_off(tmp_path: Path) -> None:
    """The packages' system-wide login items pass --login; a person's "off" wins."""
    settings = tmp_path / ".config" / "deskbell" / "settings.toml"
    settings.parent.mkdir(parents=True)
    env = {
        "PATH": "/usr/bin:/bin",
        "HOME": str(tmp_path),
        "PYTHONPATH": str(Path(__file__).resolve().parents[3]),
    }
    settings.write_text("autostart = false\n")
    off = subprocess.run([*DESKBELL, "--login"], capture_output=True, text=True, env=env)
    assert (off.returncode, off.stdout, off.stderr) == (0, "", "")
    settings.write_text("autostart = true\n")
    on = subprocess.run([*DESKBELL, "--login"], capture_output=True, text=True, env=env)
    assert on.returncode == 1  # it went on to start, and found no display here
    assert on.stderr.strip() == NO_DISPLAY


def test_a_library_warning_goes_to_the_log_file_not_the_terminal(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with app_logging(tmp_path / "log", stderr=True) as path, warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library changed its mind", UserWarning, stacklevel=1)
        logging.getLogger("desktop_agent").warning("the server is unreachable")
    err = capsys.readouterr().err
    assert "changed its mind" not in err
    assert "the server is unreachable" in err
    assert "a library changed its mind" in path.read_text()
