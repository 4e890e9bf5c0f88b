"""The proxy sign-in window only hands over what was typed, and needs a user name."""

from __future__ import annotations

from pytestqt.qtbot import QtBot

from desktop_agent.ui.proxy_login_dialog import ProxyLoginDialog


def test_submits_address_user_and_password(qtbot: QtBot) -> None:
    dialog = ProxyLoginDialog("proxy.example.org:3128")
    qtbot.addWidget(dialog)
    submitted: list[tuple[str, str, str]] = []
    dialog.submitted.connect(lambda *args: submitted.append(args))
    dialog.show()
    assert dialog.password_edit.echoMode() == dialog.password_edit.EchoMode.Password
    assert "proxy.example.org:3128" in dialog.intro_label.text()

    dialog.buttons.accepted.emit()
    assert submitted == [] and dialog.isVisible()  # no user name yet

    dialog.user_edit.setText("  ann ")
    dialog.password_edit.setText(" s3cret ")
    dialog.buttons.accepted.emit()
    assert submitted == [("proxy.example.org:3128", "ann", " s3cret ")]
    assert not dialog.isVisible()
