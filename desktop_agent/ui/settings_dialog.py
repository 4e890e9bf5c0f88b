"""The settings dialog. Values set by policy are shown greyed: "Set by your organisation".

The dialog reads and writes through :class:`SettingsSource`, a Protocol, so it does not
depend on the settings class of ``desktop_agent.core``; the composition root passes that
object (or an adapter) in. Setting names come from :class:`SettingKeys`, replaceable for
the same reason.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import time
from typing import Any, Protocol

from PySide6.QtCore import Qt, QTime, Signal
from PySide6.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QRadioButton,
    QSpinBox,
    QTimeEdit,
    QVBoxLayout,
    QWidget,
)

LOCKED_TEXT = "Set by your organisation"
CATEGORY_LABELS = {"ticket": "Tickets", "system": "System messages", "billing": "Billing"}


class SettingsSource(Protocol):
    """What the dialog needs from the settings object.

    Value shapes, by :class:`SettingKeys` field: ``server_url`` str, ``autostart`` bool,
    ``toast_categories`` list of category names, ``badge_scope`` "chat" or "all",
    ``sound`` bool, ``dnd_schedule`` None or ``{"start": "18:00", "end": "08:00", ...}``
    (extra keys such as ``days`` are kept as they are).
    """

    def value(self, key: str) -> Any:
        """The effective value (policy, installer default, user, built-in default)."""
        ...

    def is_locked(self, key: str) -> bool:
        """True when policy fixes this value."""
        ...

    def set_user(self, key: str, value: Any) -> None:
        """Store the person's own choice (never called for locked keys)."""
        ...


@dataclass(frozen=True)
class SettingKeys:
    """The names of the settings the dialog edits."""

    server_url: str = "server_url"
    autostart: str = "autostart"
    toast_categories: str = "toast_categories"
    badge_scope: str = "badge_scope"
    sound: str = "sound"
    dnd_schedule: str = "dnd_schedule"
    muted_inboxes: str = "muted_inboxes"
    inbox_sounds: str = "inbox_sounds"
    away_after_idle_minutes: str = "away_after_idle_minutes"


DEFAULT_IDLE_MINUTES = 10


def inbox_list_text(names: Any) -> str:
    """``["Sales", "Billing"]`` as the field shows it: ``Sales, Billing``."""
    return ", ".join(str(n) for n in names or ())


def parse_inbox_list(text: str) -> list[str]:
    return [" ".join(part.split()) for part in text.split(",") if part.strip()]


def inbox_sounds_text(sounds: Any) -> str:
    """``{"Support": "off"}`` as the field shows it: ``Support=off``."""
    if not isinstance(sounds, dict):
        return ""
    return ", ".join(f"{inbox}={sound}" for inbox, sound in sounds.items())


def parse_inbox_sounds(text: str) -> dict[str, str] | list[str]:
    """The field's ``Inbox=sound, …`` as a table; entries without ``=`` stay a list so
    the settings check refuses them with its own explanation."""
    parts = [part.strip() for part in text.split(",") if part.strip()]
    if not all("=" in part for part in parts):
        return parts
    return {
        " ".join(inbox.split()): sound.strip().lower()
        for inbox, _, sound in (part.partition("=") for part in parts)
    }


def _accept_any(url: str) -> str:
    return url


def _parse_time(text: Any, fallback: time) -> QTime:
    try:
        value = time.fromisoformat(str(text))
    except ValueError:
        value = fallback
    return QTime(value.hour, value.minute)


class SettingsDialog(QDialog):
    """Edit the person's settings; policy-locked ones are shown but cannot change.

    Args:
        settings: read and written through :class:`SettingsSource`.
        categories: non-chat categories offered for toasts (chat always toasts).
        keys: the setting names.
        validate_url: returns the canonical server address or raises ValueError whose
            message says what to type instead (the app passes the core's normaliser).

    Signals:
        applied(list): the keys written when OK was pressed (only changed, unlocked ones).
    """

    applied = Signal(list)

    def __init__(
        self,
        settings: SettingsSource,
        categories: Sequence[str] = ("ticket", "system"),
        keys: SettingKeys = SettingKeys(),
        validate_url: Callable[[str], str] = _accept_any,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Deskbell settings")
        self._validate_url = validate_url
        self.setObjectName("deskbellSettingsDialog")
        self._settings = settings
        self._keys = keys
        self._categories = [c for c in categories if c != "chat"]
        self.lock_labels: dict[str, QLabel] = {}

        form = QFormLayout()
        self.server_url_edit = QLineEdit(str(settings.value(keys.server_url) or ""))
        self.server_url_edit.setPlaceholderText("wss://deskbell.example.org")
        form.addRow("Server address", self._row(keys.server_url, self.server_url_edit))

        self.autostart_check = QCheckBox("Start Deskbell when I sign in to this computer")
        self.autostart_check.setChecked(bool(settings.value(keys.autostart)))
        form.addRow("Launch at login", self._row(keys.autostart, self.autostart_check))

        toasts = QWidget()
        toasts_layout = QVBoxLayout(toasts)
        toasts_layout.setContentsMargins(0, 0, 0, 0)
        chat = QCheckBox("Chats (always shown)")
        chat.setChecked(True)
        chat.setEnabled(False)
        toasts_layout.addWidget(chat)
        chosen = set(settings.value(keys.toast_categories) or ())
        self.category_checks: dict[str, QCheckBox] = {}
        for category in self._categories:
            check = QCheckBox(CATEGORY_LABELS.get(category, category.capitalize()))
            check.setChecked(category in chosen)
            self.category_checks[category] = check
            toasts_layout.addWidget(check)
        form.addRow("Pop-up notifications", self._row(keys.toast_categories, toasts))

        scope = QWidget()
        scope_layout = QHBoxLayout(scope)
        scope_layout.setContentsMargins(0, 0, 0, 0)
        self.badge_chat_radio = QRadioButton("Unread chats")
        self.badge_all_radio = QRadioButton("All unread notifications")
        self._badge_group = QButtonGroup(self)
        for radio in (self.badge_chat_radio, self.badge_all_radio):
            self._badge_group.addButton(radio)
            scope_layout.addWidget(radio)
        (
            self.badge_all_radio
            if settings.value(keys.badge_scope) == "all"
            else self.badge_chat_radio
        ).setChecked(True)
        form.addRow("Badge counts", self._row(keys.badge_scope, scope))

        self.sound_check = QCheckBox("Play a sound with pop-ups")
        self.sound_check.setChecked(bool(settings.value(keys.sound)))
        form.addRow("Sound", self._row(keys.sound, self.sound_check))

        self.muted_edit = QLineEdit(inbox_list_text(settings.value(keys.muted_inboxes)))
        self.muted_edit.setPlaceholderText("Inboxes without pop-ups, e.g. Sales, Billing")
        self.muted_edit.setToolTip(
            "Chats of these inboxes show no pop-up; they still count and show in the "
            "lists. A visitor waiting too long still pops up."
        )
        form.addRow("Muted inboxes", self._row(keys.muted_inboxes, self.muted_edit))
        self.inbox_sounds_edit = QLineEdit(inbox_sounds_text(settings.value(keys.inbox_sounds)))
        self.inbox_sounds_edit.setPlaceholderText("e.g. Support=phone-incoming-call, Sales=off")
        self.inbox_sounds_edit.setToolTip(
            "A sound per inbox: off, default, or a sound name of your desktop's theme. "
            "Other inboxes follow the Sound switch."
        )
        form.addRow("Inbox sounds", self._row(keys.inbox_sounds, self.inbox_sounds_edit))
        self.idle_spin = QSpinBox()
        self.idle_spin.setRange(0, 24 * 60)
        self.idle_spin.setSuffix(" min")
        self.idle_spin.setSpecialValueText("Never")
        idle = settings.value(keys.away_after_idle_minutes)
        self.idle_spin.setValue(DEFAULT_IDLE_MINUTES if idle is None else int(idle))
        form.addRow("Away when idle for", self._row(keys.away_after_idle_minutes, self.idle_spin))

        schedule = settings.value(keys.dnd_schedule)
        self._schedule_extra = dict(schedule) if isinstance(schedule, dict) else {}
        dnd = QWidget()
        dnd_layout = QHBoxLayout(dnd)
        dnd_layout.setContentsMargins(0, 0, 0, 0)
        self.dnd_check = QCheckBox("Quiet every day from")
        self.dnd_check.setChecked(isinstance(schedule, dict))
        self.dnd_from_edit = QTimeEdit(_parse_time(self._schedule_extra.get("start"), time(18, 0)))
        self.dnd_to_edit = QTimeEdit(_parse_time(self._schedule_extra.get("end"), time(8, 0)))
        for edit in (self.dnd_from_edit, self.dnd_to_edit):
            edit.setDisplayFormat("HH:mm")
        dnd_layout.addWidget(self.dnd_check)
        dnd_layout.addWidget(self.dnd_from_edit)
        dnd_layout.addWidget(QLabel("to"))
        dnd_layout.addWidget(self.dnd_to_edit)
        dnd_layout.addStretch(1)
        self.dnd_check.toggled.connect(self._sync_dnd_edits)
        form.addRow("Do not disturb", self._row(keys.dnd_schedule, dnd))
        self._sync_dnd_edits()

        buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
        )
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        self.buttons = buttons
        self.error_label = QLabel()
        self.error_label.setTextFormat(Qt.TextFormat.PlainText)
        self.error_label.setWordWrap(True)
        self.error_label.setStyleSheet("color: #b91c1c")
        self.error_label.hide()
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addWidget(self.error_label)
        layout.addWidget(buttons)

    def _row(self, key: str, editor: QWidget) -> QWidget:
        """The editor, greyed with "Set by your organisation" beside it when locked."""
        if not self._settings.is_locked(key):
            return editor
        editor.setEnabled(False)
        editor.setToolTip(f"{LOCKED_TEXT}: ask your IT team to change it.")
        note = QLabel(LOCKED_TEXT)
        note.setTextFormat(Qt.TextFormat.PlainText)
        note.setEnabled(False)
        self.lock_labels[key] = note
        row = QWidget()
        layout = QHBoxLayout(row)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(editor, 1)
        layout.addWidget(note)
        return row

    def _sync_dnd_edits(self) -> None:
        on = self.dnd_check.isChecked() and not self._settings.is_locked(self._keys.dnd_schedule)
        self.dnd_from_edit.setEnabled(on)
        self.dnd_to_edit.setEnabled(on)

    def values(self) -> dict[str, Any]:
        """The values as shown in the dialog, by setting name."""
        k = self._keys
        schedule: dict[str, Any] | None = None
        if self.dnd_check.isChecked():
            schedule = {
                **self._schedule_extra,
                "start": self.dnd_from_edit.time().toString("HH:mm"),
                "end": self.dnd_to_edit.time().toString("HH:mm"),
            }
        return {
            k.server_url: self.server_url_edit.text().strip(),
            k.autostart: self.autostart_check.isChecked(),
            k.toast_categories: ["chat"]
            + [c for c, box in self.category_checks.items() if box.isChecked()],
            k.badge_scope: "all" if self.badge_all_radio.isChecked() else "chat",
            k.sound: self.sound_check.isChecked(),
            k.dnd_schedule: schedule,
            k.muted_inboxes: parse_inbox_list(self.muted_edit.text()),
            k.inbox_sounds: parse_inbox_sounds(self.inbox_sounds_edit.text()),
            k.away_after_idle_minutes: self.idle_spin.value(),
        }

    def accept(self) -> None:
        """Write every changed, unlocked value with ``set_user``, then close.

        A server address that does not validate keeps the dialog open with the reason.
        """
        values = self.values()
        url_key = self._keys.server_url
        if not self._settings.is_locked(url_key):
            try:
                values[url_key] = self._validate_url(values[url_key])
            except ValueError as exc:
                self.error_label.setText(f"Check the server address: {exc}. Nothing was saved.")
                self.error_label.show()
                self.server_url_edit.setFocus()
                return
        written: list[str] = []
        for key, value in values.items():
            if self._settings.is_locked(key):
                continue
            current = self._settings.value(key)
            if key == self._keys.toast_categories:
                current = ["chat", *sorted(set(current or ()) - {"chat"})]
                value = ["chat", *sorted(set(value) - {"chat"})]
            elif key == self._keys.muted_inboxes:
                current = list(current or [])
            elif key == self._keys.inbox_sounds:
                current = dict(current or {})
            elif key == self._keys.away_after_idle_minutes and current is None:
                current = DEFAULT_IDLE_MINUTES
            if value != current:
                self._settings.set_user(key, value)
                written.append(key)
        self.applied.emit(written)
        super().accept()
