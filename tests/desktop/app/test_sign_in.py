"""Signing in, staying signed in, being signed out: tokens only ever in the keyring."""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from keyring.backends import fail
from pytestqt.qtbot import QtBot
from websockets.exceptions import InvalidStatus

from desktop_agent.cli import CliOptions
from desktop_agent.connection import SIGNED_OUT_REVOKED
from desktop_agent.core.settings import PolicyFolder
from desktop_agent.platform.tokens import service_name
from tests.desktop.app.conftest import AGENT, PASSWORD, WAIT_MS, Apps, Backend, Loop


def files_containing(root: Path, secret: str) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def sign_in_through_the_window(app: object, qtbot: QtBot, email: str, password: str) -> None:
    dialog = app.signin_dialog  # type: ignore[attr-defined]
    assert dialog is not None and dialog.isVisible()
    dialog.email_edit.setText(email)
    dialog.password_edit.setText(password)
    dialog.sign_in_button.click()


def test_with_no_token_the_sign_in_window_signs_in_and_keeps_the_token_in_the_keyring(
    apps: Apps, backend: Backend, qtbot: QtBot, tmp_path: Path
) -> None:
    app = apps.start(CliOptions(server_url=backend.url))
    assert app.connection is None
    sign_in_through_the_window(app, qtbot, AGENT, PASSWORD)

    with qtbot.waitSignal(app.signedIn, timeout=WAIT_MS) as signed_in:
        pass
    assert signed_in.args == [AGENT]
    token = apps.keyring.get_password(service_name(backend.url), AGENT)
    assert token is not None and token.startswith("dbat_")
    assert app.signin_dialog is None
    assert files_containing(tmp_path / "data", token) == []
    assert files_containing(tmp_path / "config", token) == []


def test_a_wrong_password_says_so_and_stores_nothing(
    apps: Apps, backend: Backend, qtbot: QtBot
) -> None:
    app = apps.start(CliOptions(server_url=backend.url))
    sign_in_through_the_window(app, qtbot, AGENT, "not the password")
    dialog = app.signin_dialog
    assert dialog is not None
    qtbot.waitUntil(lambda: not dialog.is_busy(), timeout=WAIT_MS)
    assert "email or password is not right" in dialog.message_label.text()
    assert app.connection is None
    assert apps.keyring.secrets == {}


def test_a_token_file_is_kept_in_the_keyring_and_used_on_the_next_start(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot
) -> None:
    first = apps.signed_in(backend)
    assert apps.keyring.get_password(service_name(backend.url), AGENT) == backend.tokens[AGENT]
    loop.run(first.shutdown())

    again = apps.start(CliOptions())
    assert again.signin_dialog is None
    with qtbot.waitSignal(again.signedIn, timeout=WAIT_MS):
        pass
    assert again.server_url == backend.url


def test_a_revoked_token_brings_the_sign_in_window_back_with_the_reason(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot
) -> None:
    app = apps.signed_in(backend)
    auth = loop.run(backend.harness.channel("/auth"))
    backend.clients.append(auth)

    reply = loop.run(auth.request({"type": "logout", "token": backend.tokens[AGENT]}))
    assert reply["type"] == "ok"

    qtbot.waitUntil(lambda: app.signin_dialog is not None, timeout=WAIT_MS)
    assert app.signin_dialog is not None
    assert app.signin_dialog.message_label.text() == SIGNED_OUT_REVOKED
    assert app.connection is None
    assert apps.keyring.get_password(service_name(backend.url), AGENT) is None
    assert "Signed out" in app.tray.tooltip()


def test_sign_out_revokes_the_token_on_the_server_and_deletes_it_here(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot
) -> None:
    app = apps.signed_in(backend)
    app.tray.sign_out_action.trigger()

    qtbot.waitUntil(lambda: app.signin_dialog is not None, timeout=WAIT_MS)
    assert app.signin_dialog is not None
    assert "signed out" in app.signin_dialog.message_label.text()
    assert "Signed out" in app.tray.tooltip()
    assert app.model.rowCount() == 0
    assert apps.keyring.secrets == {}
    with pytest.raises(InvalidStatus) as refused:
        loop.run(backend.harness.agent(backend.tokens[AGENT]))
    assert refused.value.response.status_code == 401


def test_the_disable_sign_out_policy_hides_sign_out_and_keeps_the_session(
    apps: Apps, backend: Backend, qtbot: QtBot, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "10-deskbell.toml").write_text("DisableSignOut = true\n")
    app = apps.signed_in(backend, policy_sources=[PolicyFolder(policies)])

    assert not app.tray.sign_out_action.isVisible()
    app.request_sign_out()
    assert app.connection is not None and app.connection.state == "connected"
    assert apps.keyring.get_password(service_name(backend.url), AGENT) is not None


def test_without_a_keyring_sign_in_is_for_this_session_only_and_says_so(
    apps: Apps, backend: Backend, qtbot: QtBot, tmp_path: Path
) -> None:
    app = apps.start(
        CliOptions(server_url=backend.url),
        keyring_backend=fail.Keyring(),  # type: ignore[no-untyped-call]
    )
    dialog = app.signin_dialog
    assert dialog is not None
    assert "could not use a system keyring" in dialog.message_label.text()
    assert "for this session" in dialog.message_label.text()

    sign_in_through_the_window(app, qtbot, AGENT, PASSWORD)
    with qtbot.waitSignal(app.signedIn, timeout=WAIT_MS):
        pass
    assert not app.tokens.persistent
    token = app.tokens.load(backend.url, AGENT)
    assert token is not None
    assert files_containing(tmp_path, token) == []


def test_a_never_valid_token_file_keeps_the_saved_sign_in_and_says_why(
    apps: Apps,
    backend: Backend,
    loop: Loop,
    qtbot: QtBot,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    first = apps.signed_in(backend)
    loop.run(first.shutdown())
    wrong = tmp_path / "wrong.token"
    wrong.write_text("dbat_this_was_never_issued\n", encoding="utf-8")

    with caplog.at_level(logging.WARNING):
        again = apps.start(CliOptions(server_url=backend.url, token_file=wrong))
        with qtbot.waitSignal(again.signedIn, timeout=WAIT_MS * 2) as signed_in:
            pass
    assert signed_in.args == [AGENT]  # the saved sign-in, still working
    assert again.signin_dialog is None
    assert apps.keyring.get_password(service_name(backend.url), AGENT) == backend.tokens[AGENT]
    logged = caplog.text
    assert f"did not accept the token in {wrong}" in logged
    assert "saved sign-in as" in logged
    assert "revoked" not in logged and "expired" not in logged


def test_a_never_valid_token_file_without_a_saved_sign_in_shows_why_in_the_window(
    apps: Apps, backend: Backend, qtbot: QtBot, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    wrong = tmp_path / "wrong.token"
    wrong.write_text("dbat_this_was_never_issued\n", encoding="utf-8")
    with caplog.at_level(logging.WARNING):
        app = apps.start(CliOptions(server_url=backend.url, token_file=wrong))
        qtbot.waitUntil(lambda: app.signin_dialog is not None, timeout=WAIT_MS)
    assert app.signin_dialog is not None
    text = app.signin_dialog.message_label.text()
    assert f"did not accept the token in {wrong}" in text
    assert "revoked" not in text
    assert f"did not accept the token in {wrong}" in caplog.text
    assert apps.keyring.secrets == {}


def test_an_unreadable_token_file_is_reported_on_the_terminal(tmp_path: Path, qtbot: QtBot) -> None:
    """The real program: the problem reaches stderr (and the log), not only a dialog."""
    folder = Path(tempfile.mkdtemp(prefix="db-tf-"))
    (folder / "run").mkdir(mode=0o700)
    env = {
        **os.environ,
        "QT_QPA_PLATFORM": "offscreen",
        "XDG_RUNTIME_DIR": str(folder / "run"),
        "XDG_DATA_HOME": str(folder / "data"),
        "XDG_CONFIG_HOME": str(folder / "config"),
        "XDG_STATE_HOME": str(folder / "state"),
        "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
    }
    missing = tmp_path / "no-such.token"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "desktop_agent",
            "--server",
            "ws://127.0.0.1:9",
            "--token-file",
            str(missing),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    expected = f"Could not read the token file {missing}"

    def logged() -> bool:
        logs = list((folder / "state").rglob("deskbell.log"))
        return bool(logs) and expected in logs[0].read_text(encoding="utf-8")

    try:
        # Wait on the log file (no blocking read of a pipe), then stop the app and
        # read everything it said on the terminal.
        qtbot.waitUntil(lambda: logged() or process.poll() is not None, timeout=WAIT_MS * 2)
        assert logged()
        process.terminate()
        _out, err = process.communicate(timeout=30)
        assert expected in err
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        shutil.rmtree(folder, ignore_errors=True)
