"""The About/Status window: what IT support reads off an agent's screen."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QGuiApplication

from desktop_agent.core.display_text import without_format_controls as shown
from desktop_agent.platform.policy_sources import SourceReport
from desktop_agent.selftest import OK, WARN, Check, HealthReport
from desktop_agent.ui.status_view import StatusWindow


def report(**changes: Any) -> HealthReport:
    values: dict[str, Any] = {
        "version": "1.2.3",
        "connection": "Connected since 2026-03-10 09:12 UTC",
        "server_url": "wss://desk.example.org",
        "agent": "dana@example.org",
        "notifications": Check("Notifications", OK, "permitted"),
        "keyring": Check("Keyring", OK, "SecretService Keyring"),
        "policy_sources": (
            SourceReport("/etc/deskbell/policies", True, ("LockServerUrl", "ServerUrl")),
            SourceReport("/elsewhere", False),
        ),
    }
    values.update(changes)
    return HealthReport(**values)


def make(qtbot: Any, **changes: Any) -> StatusWindow:
    window = StatusWindow(report(**changes))
    qtbot.addWidget(window)
    return window


def test_status_shows_connection_server_agent_keyring_and_policy(qtbot: Any) -> None:
    window = make(qtbot)
    assert window.title_label.text() == "Deskbell 1.2.3"
    assert shown(window.connection_label.text()) == "Connected since 2026-03-10 09:12 UTC"
    assert window.server_label.text() == "wss://desk.example.org"
    assert window.agent_label.text() == "dana@example.org"
    assert window.notifications_label.text() == "permitted"
    assert window.keyring_label.text() == "SecretService Keyring"
    assert shown(window.policy_label.text()) == "/etc/deskbell/policies: LockServerUrl, ServerUrl"
    assert window.problems_label.isHidden()


def test_warnings_stand_out_and_problems_are_listed(qtbot: Any) -> None:
    window = make(
        qtbot,
        keyring=Check("Keyring", WARN, "no keyring: sign in again after each restart"),
        problems=("The value of BadgeScope in /etc/deskbell/policies/a.toml was ignored",),
    )
    window.show()
    assert window.keyring_label.property("level") == WARN
    assert "color" in window.keyring_label.styleSheet()
    assert window.notifications_label.styleSheet() == ""
    assert window.problems_label.isVisible()
    assert "BadgeScope" in window.problems_label.text()


def test_no_policy_says_where_it_looked(qtbot: Any) -> None:
    window = make(
        qtbot, policy_sources=(SourceReport("HKLM\\SOFTWARE\\Policies\\Deskbell", False),)
    )
    assert window.policy_label.text() == "None found (looked in HKLM\\SOFTWARE\\Policies\\Deskbell)"


def test_signed_out_and_unset_server_read_plainly(qtbot: Any) -> None:
    window = make(
        qtbot, server_url="", agent="", connection="Signed out since 2026-03-10 10:00 UTC"
    )
    assert window.server_label.text() == "Not set"
    assert window.agent_label.text() == "Not signed in"


def test_set_report_replaces_what_is_shown(qtbot: Any) -> None:
    window = make(qtbot)
    window.set_report(report(connection="Not connected (retrying) since 2026-03-10 10:01 UTC"))
    assert window.connection_label.text().startswith("Not connected (retrying)")


def test_text_from_the_server_is_never_read_as_markup(qtbot: Any) -> None:
    window = make(qtbot, agent="<b>dana</b>@x.org")
    assert window.agent_label.text() == "<b>dana</b>@x.org"
    assert window.agent_label.textFormat().name == "PlainText"


def test_copy_details_puts_the_status_text_on_the_clipboard(qtbot: Any) -> None:
    window = make(qtbot)
    with qtbot.waitSignal(window.copied) as copied:
        window.copy_button.click()
    assert copied.args[0] == window.report.text()
    assert "Server:         wss://desk.example.org" in copied.args[0]
    assert QGuiApplication.clipboard().text() == copied.args[0]
