"""SettingsDialog: shows effective values, greys locked ones, writes only what changed."""

from __future__ import annotations

from typing import Any

import pytest
from PySide6.QtCore import QTime

from desktop_agent.ui.settings_dialog import LOCKED_TEXT, SettingsDialog


class FakeSettings:
    """An in-memory SettingsSource: effective values plus a set of locked keys."""

    def __init__(self, values: dict[str, Any], locked: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.values = dict(values)
        self.locked = set(locked)
        self.writes: list[tuple[str, Any]] = []

    def value(self, key: str) -> Any:
        return self.values.get(key)

    def is_locked(self, key: str) -> bool:
        return key in self.locked

    def set_user(self, key: str, value: Any) -> None:
        assert key not in self.locked, "locked settings must never be written"
        self.writes.append((key, value))
        self.values[key] = value


DEFAULTS = {
    "server_url": "wss://desk.example.org",
    "autostart": True,
    "toast_categories": ["chat"],
    "badge_scope": "chat",
    "sound": False,
    "dnd_schedule": None,
}


@pytest.fixture
def make_dialog(qtbot: Any) -> Any:
    def make(locked: set[str] = frozenset(), **values: Any) -> tuple[SettingsDialog, FakeSettings]:  # type: ignore[assignment]
        settings = FakeSettings({**DEFAULTS, **values}, locked)
        dialog = SettingsDialog(settings, categories=("chat", "ticket", "system"))
        qtbot.addWidget(dialog)
        return dialog, settings

    return make


def test_dialog_shows_the_effective_values(make_dialog: Any) -> None:
    dialog, _ = make_dialog(
        toast_categories=["chat", "ticket"],
        badge_scope="all",
        sound=True,
        dnd_schedule={"start": "19:30", "end": "07:15", "days": [0, 1, 2, 3, 4]},
    )
    assert dialog.server_url_edit.text() == "wss://desk.example.org"
    assert dialog.autostart_check.isChecked()
    assert dialog.category_checks["ticket"].isChecked()
    assert not dialog.category_checks["system"].isChecked()
    assert "chat" not in dialog.category_checks  # chat always toasts
    assert dialog.badge_all_radio.isChecked()
    assert dialog.sound_check.isChecked()
    assert dialog.dnd_check.isChecked()
    assert dialog.dnd_from_edit.time() == QTime(19, 30)
    assert dialog.dnd_to_edit.time() == QTime(7, 15)


def test_ok_writes_only_changed_values(qtbot: Any, make_dialog: Any) -> None:
    dialog, settings = make_dialog()
    dialog.category_checks["ticket"].setChecked(True)
    dialog.badge_all_radio.setChecked(True)
    dialog.dnd_check.setChecked(True)
    dialog.dnd_from_edit.setTime(QTime(22, 0))
    dialog.dnd_to_edit.setTime(QTime(6, 30))
    with qtbot.waitSignal(dialog.applied) as blocker:
        dialog.buttons.accepted.emit()
    assert dict(settings.writes) == {
        "toast_categories": ["chat", "ticket"],
        "badge_scope": "all",
        "dnd_schedule": {"start": "22:00", "end": "06:30"},
    }
    assert sorted(blocker.args[0]) == ["badge_scope", "dnd_schedule", "toast_categories"]


def test_schedule_keeps_its_other_fields_and_can_be_turned_off(make_dialog: Any) -> None:
    dialog, settings = make_dialog(dnd_schedule={"start": "18:00", "end": "08:00", "days": [0, 1]})
    dialog.dnd_to_edit.setTime(QTime(9, 0))
    dialog.accept()
    assert settings.values["dnd_schedule"] == {"start": "18:00", "end": "09:00", "days": [0, 1]}
    dialog, settings = make_dialog(dnd_schedule={"start": "18:00", "end": "08:00"})
    dialog.dnd_check.setChecked(False)
    assert not dialog.dnd_from_edit.isEnabled()
    dialog.accept()
    assert settings.writes == [("dnd_schedule", None)]


def test_cancel_writes_nothing(make_dialog: Any) -> None:
    dialog, settings = make_dialog()
    dialog.sound_check.setChecked(True)
    dialog.reject()
    assert settings.writes == []


def test_locked_values_are_greyed_and_say_who_set_them(make_dialog: Any) -> None:
    dialog, _ = make_dialog(locked={"server_url", "toast_categories", "badge_scope"})
    assert not dialog.server_url_edit.isEnabled()
    assert not dialog.category_checks["ticket"].isEnabledTo(dialog)
    assert not dialog.badge_all_radio.isEnabledTo(dialog)
    assert set(dialog.lock_labels) == {"server_url", "toast_categories", "badge_scope"}
    assert all(label.text() == LOCKED_TEXT for label in dialog.lock_labels.values())
    assert "IT team" in dialog.server_url_edit.toolTip()
    assert dialog.sound_check.isEnabled()
    assert dialog.autostart_check.isEnabled()


def test_locked_values_are_never_written(make_dialog: Any) -> None:
    dialog, settings = make_dialog(locked={"autostart", "server_url"})
    dialog.autostart_check.setChecked(False)  # programmatic change of a greyed box
    dialog.server_url_edit.setText("ws://elsewhere")
    dialog.sound_check.setChecked(True)
    dialog.accept()
    assert settings.writes == [("sound", True)]


def test_locked_schedule_keeps_time_edits_disabled(make_dialog: Any) -> None:
    dialog, _ = make_dialog(
        locked={"dnd_schedule"}, dnd_schedule={"start": "18:00", "end": "08:00"}
    )
    assert not dialog.dnd_from_edit.isEnabled()
    assert not dialog.dnd_check.isEnabledTo(dialog)


def test_dialog_can_be_grabbed_for_screenshots(make_dialog: Any) -> None:
    dialog, _ = make_dialog(locked={"server_url"})
    dialog.show()
    assert not dialog.grab().isNull()


def test_bad_server_address_keeps_the_dialog_open_and_saves_nothing(qtbot: Any) -> None:
    def strict(url: str) -> str:
        if not url.startswith(("ws://", "wss://")):
            raise ValueError("it must start with ws:// or wss://")
        return url.rstrip("/")

    settings = FakeSettings(dict(DEFAULTS))
    dialog = SettingsDialog(settings, validate_url=strict)
    qtbot.addWidget(dialog)
    dialog.show()
    dialog.server_url_edit.setText("ftp://desk")
    dialog.sound_check.setChecked(True)
    with qtbot.assertNotEmitted(dialog.applied):
        dialog.buttons.accepted.emit()
    assert dialog.isVisible()
    assert settings.writes == []
    assert dialog.error_label.text() == (
        "Check the server address: it must start with ws:// or wss://. Nothing was saved."
    )
    dialog.server_url_edit.setText("wss://new.example.org/")
    dialog.buttons.accepted.emit()
    assert ("server_url", "wss://new.example.org") in settings.writes
    assert not dialog.isVisible()


def test_per_inbox_mute_sound_and_idle_are_edited_and_written(make_dialog: Any) -> None:
    dialog, settings = make_dialog(
        muted_inboxes=["Sales"], inbox_sounds={"Support": "off"}, away_after_idle_minutes=10
    )
    assert dialog.muted_edit.text() == "Sales"
    assert dialog.inbox_sounds_edit.text() == "Support=off"
    dialog.muted_edit.setText("Sales,  Billing ,")
    dialog.inbox_sounds_edit.setText("Support = phone-incoming-call, Sales=OFF")
    dialog.idle_spin.setValue(0)
    assert dialog.idle_spin.text() == "Never"
    dialog.accept()
    assert dict(settings.writes) == {
        "muted_inboxes": ["Sales", "Billing"],
        "inbox_sounds": {"Support": "phone-incoming-call", "Sales": "off"},
        "away_after_idle_minutes": 0,
    }


def test_locked_inbox_settings_are_greyed_and_never_written(make_dialog: Any) -> None:
    locked = {"muted_inboxes", "inbox_sounds", "away_after_idle_minutes"}
    dialog, settings = make_dialog(locked=locked, muted_inboxes=["Sales"])
    assert not dialog.muted_edit.isEnabled()
    assert not dialog.inbox_sounds_edit.isEnabled()
    assert not dialog.idle_spin.isEnabled()
    assert set(dialog.lock_labels) == locked
    dialog.accept()
    assert settings.writes == []
