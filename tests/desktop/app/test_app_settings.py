"""Settings from the tray menu reach the badge, toasts and launch-at-login at once."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from desktop_agent.cli import CliOptions
from desktop_agent.core.settings import PolicyFolder
from tests.desktop.app.conftest import Apps


class Switch:
    """A launch-at-login switch that remembers its state (the Autostart interface)."""

    def __init__(self) -> None:
        self.enabled = False

    def is_enabled(self) -> bool:
        return self.enabled

    def enable(self) -> None:
        self.enabled = True

    def disable(self) -> None:
        self.enabled = False


def test_settings_chosen_in_the_window_apply_at_once_and_are_saved(
    apps: Apps, qtbot: QtBot, tmp_path: Path
) -> None:
    switch = Switch()
    app = apps.start(CliOptions(), autostart=switch)
    assert switch.enabled  # launch at login is on unless someone turns it off
    app.controller._on_unread({"total": 5, "chat": 2, "ticket": 3})
    assert app.controller.badge_count == 2

    app.tray.settings_action.trigger()
    dialog = app.settings_dialog
    assert dialog is not None and dialog.isVisible()
    dialog.badge_all_radio.setChecked(True)
    dialog.category_checks["ticket"].setChecked(True)
    dialog.autostart_check.setChecked(False)
    dialog.accept()

    assert app.settings.badge_scope == "all", app.settings.problems
    assert app.controller.badge_count == 5
    assert "ticket" in app.policy.categories
    assert not switch.enabled
    saved = (tmp_path / "config").glob("settings.*")
    assert any("badge_scope" in p.read_text() for p in saved)
    qtbot.waitUntil(lambda: app.settings_dialog is None)


def test_policy_values_win_over_the_user_and_lock_the_server_address(
    apps: Apps, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "deskbell.toml").write_text(
        'ServerUrl = "wss://help.example.org"\nBadgeScope = "all"\n'
    )
    app = apps.start(
        CliOptions(server_url="ws://127.0.0.1:1"), policy_sources=[PolicyFolder(policies)]
    )

    dialog = app.signin_dialog
    assert dialog is not None
    assert dialog.url_edit.text() == "wss://help.example.org"
    assert not dialog.url_edit.isEnabled()
    assert app.settings.badge_scope == "all"
