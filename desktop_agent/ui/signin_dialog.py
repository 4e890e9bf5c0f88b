"""The sign-in dialog: server address, email, password, and a line saying what happened.

It only collects what the person types and shows what it is told; the composition
root signs in (``sign_in`` over ``/auth``) and answers with :meth:`SignInDialog.set_busy`
and :meth:`SignInDialog.set_error`. When the server offers single sign-on, the root
calls :meth:`SignInDialog.set_sign_in_options` and a "Sign in with <company>" button
appears; when the server takes no passwords, the email and password fields go away.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QResizeEvent
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

LOCKED_TEXT = "Set by your organisation"


def _accept_any(url: str) -> str:
    return url


class SignInDialog(QDialog):
    """Ask for server address, email and password.

    Args:
        server_url: pre-filled address.
        url_locked: policy fixes the address: shown read-only with "Set by your organisation".
        email: pre-filled email (the last one used), if any.
        validate_url: returns the canonical address or raises ValueError whose message
            says what to type instead (the app passes the core's URL normaliser).

    Signals:
        submitted(str, str, str): server URL (canonical), email, password.
        ssoRequested(str): "Sign in with <company>" was pressed (server URL, canonical).
        serverChanged(str): the address was edited (canonical URL; "" when unusable), so
            the root can ask that server how it signs agents in.
    """

    submitted = Signal(str, str, str)
    ssoRequested = Signal(str)
    serverChanged = Signal(str)

    def __init__(
        self,
        server_url: str = "",
        url_locked: bool = False,
        email: str = "",
        validate_url: Callable[[str], str] = _accept_any,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Sign in to Deskbell")
        self.setObjectName("deskbellSignInDialog")
        self.setMinimumWidth(400)
        self._validate_url = validate_url
        self._url_locked = url_locked

        self.url_edit = QLineEdit(server_url)
        self.url_edit.setPlaceholderText("wss://deskbell.example.org")
        self.url_edit.setReadOnly(url_locked)
        self.url_lock_label = QLabel(LOCKED_TEXT if url_locked else "")
        self.url_lock_label.setTextFormat(Qt.TextFormat.PlainText)
        self.url_lock_label.setEnabled(False)
        self.url_lock_label.setVisible(url_locked)
        if url_locked:
            self.url_edit.setEnabled(False)
            self.url_edit.setToolTip(f"{LOCKED_TEXT}: ask your IT team to change it.")
        self.email_edit = QLineEdit(email)
        self.email_edit.setPlaceholderText("you@example.org")
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.message_label = QLabel()
        self.message_label.setTextFormat(Qt.TextFormat.PlainText)
        self.message_label.setWordWrap(True)
        self.message_label.hide()

        self.buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.sign_in_button: QPushButton = self.buttons.addButton(
            "Sign in", QDialogButtonBox.ButtonRole.AcceptRole
        )
        self.buttons.accepted.connect(self._submit)
        self.buttons.rejected.connect(self.reject)
        self.sso_button = QPushButton()
        self.sso_button.setObjectName("deskbellSsoButton")
        self.sso_button.setAutoDefault(False)
        self.sso_button.hide()
        self.sso_button.clicked.connect(self._request_sso)
        self._password_allowed = True
        self.url_edit.editingFinished.connect(self._url_edited)
        # Enter in any field presses the default button (QDialog does it): no
        # returnPressed hook, or one key press would submit twice.

        form = QFormLayout()
        form.addRow("Server address", self.url_edit)
        if url_locked:
            form.addRow("", self.url_lock_label)
        form.addRow("Email", self.email_edit)
        form.addRow("Password", self.password_edit)
        self._form = form
        layout = QVBoxLayout(self)
        layout.addWidget(self.sso_button)
        layout.addLayout(form)
        layout.addWidget(self.message_label)
        layout.addWidget(self.buttons)
        # Default only once the button is inside the dialog: QDialog keeps its default
        # button when setDefault runs, and Enter in any field presses it.
        self.sign_in_button.setDefault(True)
        (self.password_edit if email else self.email_edit).setFocus()

    def set_error(self, text: str) -> None:
        """Show what went wrong and what to do (e.g. a revoked session); "" hides it."""
        self._show_message(text, error=True)

    def set_notice(self, text: str) -> None:
        """Show a neutral notice (e.g. no keyring: session-only sign-in)."""
        self._show_message(text, error=False)

    def set_sign_in_options(self, password: bool, sso_label: str | None) -> None:
        """Show how this server signs agents in.

        Args:
            password: the server takes email and password (else those fields are hidden).
            sso_label: the company's name for "Sign in with <label>", or None (no SSO).
        """
        self._password_allowed = password or sso_label is None
        self.sso_button.setText(f"Sign in with {sso_label}" if sso_label else "")
        self.sso_button.setVisible(sso_label is not None)
        for field in (self.email_edit, self.password_edit):
            self._form.setRowVisible(field, self._password_allowed)
        self.sign_in_button.setVisible(self._password_allowed)
        if not self._password_allowed:
            self.sso_button.setDefault(True)

    def set_busy(self, busy: bool) -> None:
        """While signing in: inputs and Sign in disabled, the button says so."""
        for edit in (self.email_edit, self.password_edit):
            edit.setEnabled(not busy)
        self.url_edit.setEnabled(not busy and not self._url_locked)
        self.sso_button.setEnabled(not busy)
        self.sign_in_button.setEnabled(not busy)
        self.sign_in_button.setText("Signing in…" if busy else "Sign in")
        if not busy:
            self.password_edit.setFocus()

    def is_busy(self) -> bool:
        """True between :meth:`set_busy` (True) and :meth:`set_busy` (False)."""
        return not self.sign_in_button.isEnabled()

    def _show_message(self, text: str, *, error: bool) -> None:
        self.message_label.setText(text)
        self.message_label.setStyleSheet("color: #b91c1c" if error else "")
        self.message_label.setVisible(bool(text))
        self._fit_height()

    def resizeEvent(self, event: QResizeEvent) -> None:
        """A narrower window wraps the message onto more lines: make room for them."""
        super().resizeEvent(event)
        self._fit_height()

    def _fit_height(self) -> None:
        # A top-level window does not grow for a word-wrapped label by itself (its
        # minimum size ignores height-for-width), so a three-line error squeezed the
        # fields to slivers and cut the message off. Ask the layout what the current
        # width needs, and never be shorter than that.
        layout = self.layout()
        if layout is None:
            return
        layout.activate()
        needed = layout.totalHeightForWidth(self.width())
        if needed > 0 and needed != self.minimumHeight():
            self.setMinimumHeight(needed)
            if self.height() < needed:
                self.resize(self.width(), needed)

    def _url_edited(self) -> None:
        try:
            url = self._validate_url(self.url_edit.text().strip())
        except ValueError:
            url = ""
        self.serverChanged.emit(url)

    def _request_sso(self) -> None:
        if self.is_busy():
            return
        try:
            url = self._validate_url(self.url_edit.text().strip())
        except ValueError as exc:
            self.set_error(f"Check the server address: {exc}.")
            return
        if not url:
            self.set_error("Enter the server address your IT team gave you.")
            return
        self.set_notice("Continue in your web browser; Deskbell waits for you there.")
        self.set_busy(True)
        self.ssoRequested.emit(url)

    def _submit(self) -> None:
        if self.is_busy():
            return
        if not self._password_allowed:
            self._request_sso()
            return
        try:
            url = self._validate_url(self.url_edit.text().strip())
        except ValueError as exc:
            self.set_error(f"Check the server address: {exc}.")
            self.url_edit.setFocus()
            return
        email = self.email_edit.text().strip()
        password = self.password_edit.text()
        if not url:
            self.set_error("Enter the server address your IT team gave you.")
            self.url_edit.setFocus()
            return
        if "@" not in email:
            self.set_error("Enter your work email address, like you@example.org.")
            self.email_edit.setFocus()
            return
        if not password:
            self.set_error("Enter your password.")
            self.password_edit.setFocus()
            return
        self.set_error("")
        self.set_busy(True)
        self.submitted.emit(url, email, password)
