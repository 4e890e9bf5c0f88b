"""SignInDialog: locked server address, validation messages, busy state, submit."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication

from desktop_agent.ui.signin_dialog import LOCKED_TEXT, SignInDialog


def strict_url(url: str) -> str:
    if not url.startswith(("ws://", "wss://")):
        raise ValueError("it must start with ws:// or wss://")
    return url.rstrip("/")


@pytest.fixture
def dialog(qtbot: Any) -> SignInDialog:
    dialog = SignInDialog("wss://desk.example.org/", validate_url=strict_url)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    return dialog


def fill(qtbot: Any, dialog: SignInDialog, email: str, password: str) -> None:
    qtbot.keyClicks(dialog.email_edit, email)
    qtbot.keyClicks(dialog.password_edit, password)


def test_server_address_is_prefilled_and_editable(dialog: SignInDialog) -> None:
    assert dialog.url_edit.text() == "wss://desk.example.org/"
    assert dialog.url_edit.isEnabled() and not dialog.url_edit.isReadOnly()
    assert not dialog.url_lock_label.isVisibleTo(dialog)


def test_locked_server_address_is_read_only_and_says_so(qtbot: Any) -> None:
    dialog = SignInDialog("wss://policy.example.org", url_locked=True)
    qtbot.addWidget(dialog)
    assert dialog.url_edit.isReadOnly()
    assert not dialog.url_edit.isEnabled()
    assert dialog.url_lock_label.text() == LOCKED_TEXT
    assert dialog.url_lock_label.isVisibleTo(dialog)
    dialog.set_busy(True)
    dialog.set_busy(False)
    assert not dialog.url_edit.isEnabled()  # busy state does not unlock it


def test_sign_in_emits_url_email_and_password_and_goes_busy(
    qtbot: Any, dialog: SignInDialog
) -> None:
    fill(qtbot, dialog, "dana@example.org", "s3cret")
    with qtbot.waitSignal(dialog.submitted) as blocker:
        qtbot.mouseClick(dialog.sign_in_button, Qt.MouseButton.LeftButton)
    assert blocker.args == ["wss://desk.example.org", "dana@example.org", "s3cret"]
    assert dialog.is_busy()
    assert dialog.sign_in_button.text() == "Signing in…"
    assert not dialog.password_edit.isEnabled()
    assert dialog.isVisible()  # it stays open until the app says it worked


def test_enter_in_the_password_field_signs_in_once(qtbot: Any, dialog: SignInDialog) -> None:
    fill(qtbot, dialog, "dana@example.org", "pw")
    calls: list[tuple[str, str, str]] = []
    dialog.submitted.connect(lambda *args: calls.append(args))
    qtbot.keyClick(dialog.password_edit, Qt.Key.Key_Return)
    assert len(calls) == 1


def test_busy_dialog_does_not_submit_twice(qtbot: Any, dialog: SignInDialog) -> None:
    fill(qtbot, dialog, "dana@example.org", "pw")
    dialog.sign_in_button.click()
    with qtbot.assertNotEmitted(dialog.submitted):
        dialog.buttons.accepted.emit()


def test_failure_message_and_retry(qtbot: Any, dialog: SignInDialog) -> None:
    fill(qtbot, dialog, "dana@example.org", "wrong")
    dialog.sign_in_button.click()
    dialog.set_busy(False)
    dialog.set_error("The email or password is wrong. Check them and sign in again.")
    assert dialog.message_label.isVisibleTo(dialog)
    assert dialog.sign_in_button.isEnabled()
    with qtbot.waitSignal(dialog.submitted):
        dialog.sign_in_button.click()
    assert not dialog.message_label.isVisibleTo(dialog)


@pytest.mark.parametrize(
    ("url", "email", "password", "message"),
    [
        (
            "http://x",
            "dana@example.org",
            "pw",
            "Check the server address: it must start with ws:// or wss://.",
        ),
        ("wss://x", "dana", "pw", "Enter your work email address, like you@example.org."),
        ("wss://x", "dana@example.org", "", "Enter your password."),
    ],
)
def test_incomplete_form_says_what_to_fix(
    qtbot: Any, dialog: SignInDialog, url: str, email: str, password: str, message: str
) -> None:
    dialog.url_edit.setText(url)
    fill(qtbot, dialog, email, password)
    with qtbot.assertNotEmitted(dialog.submitted):
        dialog.sign_in_button.click()
    assert dialog.message_label.text() == message
    assert not dialog.is_busy()


def test_reason_and_notice_are_shown_as_plain_text(dialog: SignInDialog) -> None:
    dialog.set_error("Your session ended: the token was revoked. Sign in again.")
    assert (
        dialog.message_label.text() == "Your session ended: the token was revoked. Sign in again."
    )
    dialog.set_notice("No system keyring found: you will stay signed in only until you quit. <b>")
    assert dialog.message_label.textFormat() == Qt.TextFormat.PlainText
    assert dialog.message_label.text().endswith("<b>")


def test_prefilled_email_puts_focus_on_the_password(qtbot: Any) -> None:
    dialog = SignInDialog("wss://x", email="dana@example.org")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitUntil(
        lambda: dialog.password_edit.hasFocus() or dialog.focusWidget() is dialog.password_edit
    )


def test_dialog_can_be_grabbed_for_screenshots(dialog: SignInDialog) -> None:
    assert not dialog.grab().isNull()


def test_without_single_sign_on_there_is_no_company_button(dialog: SignInDialog) -> None:
    assert not dialog.sso_button.isVisibleTo(dialog)
    dialog.set_sign_in_options(True, None)
    assert not dialog.sso_button.isVisibleTo(dialog)
    assert dialog.password_edit.isVisibleTo(dialog)


def test_a_server_with_sso_offers_sign_in_with_the_company(
    qtbot: Any, dialog: SignInDialog
) -> None:
    dialog.set_sign_in_options(True, "Example Co")
    assert dialog.sso_button.isVisibleTo(dialog)
    assert dialog.sso_button.text() == "Sign in with Example Co"
    # Passwords still work on this server.
    assert dialog.password_edit.isVisibleTo(dialog) and dialog.sign_in_button.isVisibleTo(dialog)
    with qtbot.waitSignal(dialog.ssoRequested) as requested:
        dialog.sso_button.click()
    assert requested.args == ["wss://desk.example.org"]
    assert dialog.is_busy() and not dialog.sso_button.isEnabled()
    assert "web browser" in dialog.message_label.text()


def test_a_server_without_passwords_shows_only_the_company_button(
    qtbot: Any, dialog: SignInDialog
) -> None:
    dialog.set_sign_in_options(False, "Example Co")
    assert not dialog.email_edit.isVisibleTo(dialog)
    assert not dialog.password_edit.isVisibleTo(dialog)
    assert not dialog.sign_in_button.isVisibleTo(dialog)
    # Enter signs in with the company, the only way there is.
    with qtbot.waitSignal(dialog.ssoRequested):
        qtbot.keyClick(dialog.url_edit, Qt.Key.Key_Return)


def test_editing_the_address_asks_again_how_that_server_signs_in(
    qtbot: Any, dialog: SignInDialog
) -> None:
    dialog.url_edit.clear()
    qtbot.keyClicks(dialog.url_edit, "wss://other.example.org")
    with qtbot.waitSignal(dialog.serverChanged) as changed:
        dialog.url_edit.editingFinished.emit()
    assert changed.args == ["wss://other.example.org"]


def test_a_three_line_error_makes_room_instead_of_squashing_the_fields(qtbot: Any) -> None:
    dialog = SignInDialog(server_url="wss://desk.example.org", email="ann@example.org")
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    field_height = dialog.email_edit.sizeHint().height()
    dialog.set_error(
        "The server at wss://desk.example.org did not accept the token in "
        "/home/ann/Downloads/deskbell-token.txt. Check that the file holds the whole "
        "token, then start Deskbell with --token-file again.\nSecond line.\nThird line."
    )
    QApplication.processEvents()
    for edit in (dialog.url_edit, dialog.email_edit, dialog.password_edit):
        assert edit.height() >= field_height
    label = dialog.message_label
    assert label.height() >= label.heightForWidth(label.width())
