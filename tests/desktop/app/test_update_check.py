"""The status window says when the server runs a newer Deskbell, unless policy says not to."""

from __future__ import annotations

from pathlib import Path

from backend.protocol import ServerInfo, Welcome
from desktop_agent.core.settings import PolicyFolder
from tests.desktop.app.conftest import Apps, Backend


def newer_server_welcome(app: object) -> Welcome:
    """The welcome the app got, as a server one release ahead would send it."""
    agent = app.connection.agent  # type: ignore[attr-defined]
    return Welcome(
        agent=agent, last_seq=0, unread={"total": 0, "chat": 0}, server=ServerInfo("99.0.0", "n1")
    )


def test_a_newer_server_shows_an_update_notice_in_the_status(apps: Apps, backend: Backend) -> None:
    app = apps.signed_in(backend)
    # The real server runs this very version: nothing to say.
    assert app.update_notice is None
    assert "Updates:" not in app.health_report().text()

    app.connection.welcomed.emit(newer_server_welcome(app))  # type: ignore[union-attr]
    assert "Updates:" in app.health_report().text()
    assert "version 99.0.0" in app.health_report().text()


def test_the_disable_update_check_policy_keeps_the_app_quiet(
    apps: Apps, backend: Backend, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "10-deskbell.toml").write_text("DisableUpdateCheck = true\n")
    app = apps.signed_in(backend, policy_sources=[PolicyFolder(policies)])

    app.connection.welcomed.emit(newer_server_welcome(app))  # type: ignore[union-attr]
    assert app.update_notice is None
    report = app.health_report().text()
    assert "Updates:" not in report
    assert "update_check_disabled = True  (set by your organisation)" in report
