"""A proxy that wants a password: Deskbell asks for it once, keeps it in the keyring and
connects through the proxy (real tinyproxy with Basic authentication), also after a
restart."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from desktop_agent.app import DeskbellApp
from desktop_agent.cli import CliOptions
from desktop_agent.core.settings import StaticPolicy
from tests.desktop.app.conftest import AGENT, WAIT_MS, Apps, Backend, Loop
from tests.support.network import Tinyproxy, tinyproxy

USER = "agent-ann"


@pytest.fixture
def auth_proxy(tmp_path: Path) -> Iterator[Tinyproxy]:
    with tinyproxy(tmp_path / "proxy", credentials=(USER, "proxy-pass-1")) as proxy:
        yield proxy


def _start(apps: Apps, backend: Backend, proxy: Tinyproxy, tmp_path: Path) -> DeskbellApp:
    token_file = tmp_path / "token"
    token_file.write_text(backend.tokens[AGENT] + "\n", encoding="utf-8")
    policy = StaticPolicy({"ProxyMode": "manual", "ProxyServer": proxy.url(with_credentials=False)})
    return apps.start(
        CliOptions(server_url=backend.url, token_file=token_file), policy_sources=[policy]
    )


def test_proxy_password_is_asked_once_kept_in_the_keyring_and_used(
    apps: Apps, backend: Backend, loop: Loop, qtbot: QtBot, auth_proxy: Tinyproxy, tmp_path: Path
) -> None:
    app = _start(apps, backend, auth_proxy, tmp_path)
    qtbot.waitUntil(lambda: app.proxy_login_dialog is not None, timeout=WAIT_MS)
    dialog = app.proxy_login_dialog
    assert dialog is not None and dialog.isVisible()
    assert f"127.0.0.1:{auth_proxy.port}" in dialog.intro_label.text()
    assert auth_proxy.established() == 0

    # A wrong password first: refused, and asked again.
    dialog.user_edit.setText(USER)
    dialog.password_edit.setText("wrong")
    dialog.buttons.accepted.emit()
    qtbot.waitUntil(lambda: app.proxy_login_dialog not in (None, dialog), timeout=WAIT_MS)
    status = app.connection_status
    assert status is not None
    assert "refused the user name and password" in status.problem
    assert "wrong" not in status.problem

    again = app.proxy_login_dialog
    assert again is not None
    again.user_edit.setText(USER)
    again.password_edit.setText("proxy-pass-1")
    again.buttons.accepted.emit()
    connection = app.connection
    assert connection is not None
    qtbot.waitUntil(lambda: connection.state == "connected", timeout=WAIT_MS)
    assert auth_proxy.established() == 1
    assert (
        apps.keyring.get_password(f"Deskbell proxy 127.0.0.1:{auth_proxy.port}", "credentials")
        == f'["{USER}", "proxy-pass-1"]'
    )

    # After a restart the kept password is used without asking.
    loop.run(app.shutdown())
    restarted = _start(apps, backend, auth_proxy, tmp_path)
    assert restarted.connection is not None
    qtbot.waitUntil(lambda: restarted.connection.state == "connected", timeout=WAIT_MS)  # type: ignore[union-attr]
    assert restarted.proxy_login_dialog is None
    assert auth_proxy.established() == 2
