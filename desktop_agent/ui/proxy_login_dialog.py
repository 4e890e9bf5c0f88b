"""The proxy sign-in window: user name and password for a proxy that asked for them.

It only collects what the person types; the composition root keeps the credentials in
the keyring and reconnects.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QLineEdit,
    QVBoxLayout,
    QWidget,
)


class ProxyLoginDialog(QDialog):
    """Ask for the user name and password of the proxy at ``address`` (``host:port``).

    Signals:
        submitted(str, str, str): proxy address, user name, password.
    """

    submitted = Signal(str, str, str)

    def __init__(self, address: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.address = address
        self.setWindowTitle("Proxy sign-in — Deskbell")
        self.setObjectName("deskbellProxyLoginDialog")
        self.setMinimumWidth(380)
        self.intro_label = QLabel(
            f"The proxy {address} needs a user name and password before Deskbell can reach "
            "its server. They are kept in the system keyring. If you do not know them, ask IT."
        )
        self.intro_label.setTextFormat(Qt.TextFormat.PlainText)
        self.intro_label.setWordWrap(True)
        self.user_edit = QLineEdit()
        self.password_edit = QLineEdit()
        self.password_edit.setEchoMode(QLineEdit.EchoMode.Password)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        self.buttons.accepted.connect(self._submit)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout()
        form.addRow("User name", self.user_edit)
        form.addRow("Password", self.password_edit)
        layout = QVBoxLayout(self)
        layout.addWidget(self.intro_label)
        layout.addLayout(form)
        layout.addWidget(self.buttons)

    def _submit(self) -> None:
        user = self.user_edit.text().strip()
        if not user:
            self.user_edit.setFocus()
            return
        self.submitted.emit(self.address, user, self.password_edit.text())
        self.accept()
