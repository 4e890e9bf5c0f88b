"""The About/Status window that IT support asks an agent to open (tray menu → About/Status).

It renders a :class:`~desktop_agent.selftest.HealthReport`: connected or not and since
when, server and agent, whether the OS lets Deskbell show notifications, the keyring
backend, the policy sources found and any settings problem. "Copy details" puts the
same text as ``deskbell --status`` on the clipboard, to paste into a ticket.

The window does not gather anything itself: the composition root builds the report and
calls :meth:`StatusWindow.set_report` again whenever the connection changes.
"""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from desktop_agent.core.display_text import keep_words_whole
from desktop_agent.selftest import OK, Check, HealthReport, policy_line
from desktop_agent.ui.elided_label import ElidedLabel

WARN_COLOUR = "#b45309"
MIN_WIDTH = 520
"""Wide enough that wrapped findings break between words, never inside one."""


def _label() -> QLabel:
    label = QLabel()
    # Everything shown here comes from files, the registry or the server: never markup.
    label.setTextFormat(Qt.TextFormat.PlainText)
    label.setWordWrap(True)
    label.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)
    return label


class StatusWindow(QDialog):
    """Shows one :class:`HealthReport`; :meth:`set_report` replaces it.

    Signals:
        copied(str): the details text put on the clipboard by "Copy details".
    """

    copied = Signal(str)

    def __init__(self, report: HealthReport, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("deskbellStatusWindow")
        self.setWindowTitle("About Deskbell")
        self.setMinimumWidth(MIN_WIDTH)
        self._report = report
        self.title_label = QLabel()
        self.title_label.setTextFormat(Qt.TextFormat.PlainText)
        font = self.title_label.font()
        font.setBold(True)
        font.setPointSizeF(font.pointSizeF() * 1.2)
        self.title_label.setFont(font)

        self.connection_label = _label()
        # An address or email is one long word: wrapping would cut it anywhere. It is
        # shortened in the middle instead (whole in its tooltip and in Copy details).
        self.server_label = ElidedLabel(max_hint=480, mode=Qt.TextElideMode.ElideMiddle)
        self.agent_label = ElidedLabel(max_hint=480, mode=Qt.TextElideMode.ElideMiddle)
        self.notifications_label = _label()
        self.keyring_label = _label()
        self.policy_label = _label()
        self.problems_label = _label()
        self.problems_label.setStyleSheet(f"color: {WARN_COLOUR}")

        form = QFormLayout()
        form.addRow("Connection", self.connection_label)
        form.addRow("Server", self.server_label)
        form.addRow("Agent", self.agent_label)
        form.addRow("Notifications", self.notifications_label)
        form.addRow("Keyring", self.keyring_label)
        form.addRow("Policy", self.policy_label)

        self.copy_button = QPushButton("Copy details")
        self.copy_button.setToolTip("Copy this information to paste it into a support request")
        self.copy_button.clicked.connect(self.copy_details)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        buttons.addButton(self.copy_button, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons

        layout = QVBoxLayout(self)
        layout.addWidget(self.title_label)
        layout.addLayout(form)
        layout.addWidget(self.problems_label)
        layout.addWidget(buttons)
        self.set_report(report)

    @property
    def report(self) -> HealthReport:
        return self._report

    def set_report(self, report: HealthReport) -> None:
        """Show ``report`` instead of the current one."""
        self._report = report
        self.title_label.setText(f"Deskbell {report.version}")
        self.connection_label.setText(keep_words_whole(report.connection))
        self.server_label.setText(report.server_url or "Not set")
        self.agent_label.setText(report.agent or "Not signed in")
        self._show_check(self.notifications_label, report.notifications)
        self._show_check(self.keyring_label, report.keyring)
        found = [source for source in report.policy_sources if source.found]
        if found:
            self.policy_label.setText(
                keep_words_whole("\n".join(policy_line(source) for source in found))
            )
        else:
            looked = ", ".join(source.location for source in report.policy_sources)
            self.policy_label.setText(
                keep_words_whole(f"None found (looked in {looked or 'no sources'})")
            )
        self.problems_label.setText(keep_words_whole("\n".join(report.problems)))
        self.problems_label.setVisible(bool(report.problems))

    @staticmethod
    def _show_check(label: QLabel, check: Check) -> None:
        label.setText(keep_words_whole(check.detail))
        label.setStyleSheet("" if check.level == OK else f"color: {WARN_COLOUR}")
        label.setProperty("level", check.level)

    def details_text(self) -> str:
        """The text "Copy details" puts on the clipboard (the same as ``deskbell --status``)."""
        return self._report.text()

    def copy_details(self) -> None:
        """Put :meth:`details_text` on the clipboard."""
        text = self.details_text()
        QGuiApplication.clipboard().setText(text)
        self.copied.emit(text)
