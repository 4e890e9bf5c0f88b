"""About/Status from the tray: what support reads off an agent's screen, live."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from pytestqt.qtbot import QtBot

from desktop_agent.cli import CliOptions
from desktop_agent.core.display_text import without_format_controls as shown
from desktop_agent.core.settings import PolicyFolder
from desktop_agent.selftest import ConnectionStatus, load_connection_status, save_connection_status
from tests.desktop.app.conftest import AGENT, WAIT_MS, Apps, Backend, Loop


def test_about_shows_the_live_connection_agent_and_policy(
    apps: Apps, backend: Backend, qtbot: QtBot, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "site.toml").write_text('BadgeScope = "all"\n')
    app = apps.signed_in(backend, policy_sources=[PolicyFolder(policies)])

    app.tray.status_action.trigger()
    window = app.status_window
    assert window is not None and window.isVisible()
    assert window.connection_label.text().startswith("Connected since ")
    assert window.server_label.text() == backend.url
    assert window.agent_label.text() == AGENT
    assert shown(window.keyring_label.text()) == app.tokens.backend_name()
    assert shown(window.policy_label.text()) == f"{policies}: BadgeScope"

    recorded = load_connection_status(tmp_path / "data")
    assert recorded is not None
    assert (recorded.state, recorded.server_url, recorded.agent) == (
        "connected",
        backend.url,
        AGENT,
    )

    backend.kill()
    qtbot.waitUntil(
        lambda: window.connection_label.text().startswith("Not connected"), timeout=WAIT_MS
    )


def test_sign_out_is_recorded_for_deskbell_status(
    apps: Apps, backend: Backend, loop: Loop, tmp_path: Path
) -> None:
    app = apps.signed_in(backend)
    loop.run(app.sign_out())
    recorded = load_connection_status(tmp_path / "data")
    assert recorded is not None
    assert (recorded.state, recorded.server_url, recorded.agent) == ("signed_out", "", "")
    app.show_status()
    assert app.status_window is not None
    assert app.status_window.agent_label.text() == "Not signed in"


def test_before_any_session_the_status_says_signed_out(apps: Apps) -> None:
    app = apps.start(CliOptions())
    app.show_status()
    assert app.status_window is not None
    assert app.status_window.connection_label.text().startswith("Signed out since ")


def test_a_policy_file_dropped_in_while_running_applies_at_once(
    apps: Apps, qtbot: QtBot, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    app = apps.start(CliOptions(), policy_sources=[PolicyFolder(policies)])
    app.controller._on_unread({"total": 5, "chat": 2, "ticket": 3})
    assert app.controller.badge_count == 2
    (policies / "site.toml").write_text('BadgeScope = "all"\n')
    qtbot.waitUntil(lambda: app.controller.badge_count == 5, timeout=WAIT_MS)
    assert app.settings.is_locked("badge_scope")


def test_status_view_shows_that_focus_assist_holds_pop_ups_back(
    apps: Apps, backend: Backend, qtbot: QtBot
) -> None:
    """The Windows path with fakes of the OS calls: Focus Assist is switched on while
    Deskbell runs, and opening About/Status asks again."""
    from desktop_agent.platform.notification_settings import (
        ALARMS_ONLY_REASON,
        FocusAssist,
        WindowsNotificationSettings,
    )
    from tests.desktop.policy.fake_winreg import FakeRegistry

    focus = [FocusAssist.OFF]
    settings = WindowsNotificationSettings(
        FakeRegistry(), focus_assist=lambda: focus[0], user_state=lambda: 5
    )
    app = apps.signed_in(backend, notification_settings=settings)
    app.show_status()
    window = app.status_window
    assert window is not None
    qtbot.waitUntil(lambda: window.report.notifications.detail == "permitted", timeout=WAIT_MS)

    focus[0] = FocusAssist.ALARMS_ONLY
    app.show_status()
    qtbot.waitUntil(
        lambda: window.report.notifications.detail == ALARMS_ONLY_REASON, timeout=WAIT_MS
    )
    assert window.notifications_label.text().startswith("Focus assist")
    assert "Focus assist" in window.details_text()


def test_status_says_why_the_app_cannot_connect_and_what_to_tell_it(
    apps: Apps, backend: Backend, qtbot: QtBot, tmp_path: Path
) -> None:
    """A proxy forced by policy but left without its address: no silent direct
    connection, and the status view (and ``deskbell --status``) say what IT must fix."""
    from desktop_agent.core.settings import StaticPolicy

    token_file = tmp_path / "token"
    token_file.write_text(backend.tokens[AGENT] + "\n", encoding="utf-8")
    app = apps.start(
        CliOptions(server_url=backend.url, token_file=token_file),
        policy_sources=[StaticPolicy({"ProxyMode": "manual"}, "policy")],
    )
    app.show_status()
    window = app.status_window
    assert window is not None
    qtbot.waitUntil(lambda: "ProxyServer" in window.report.connection, timeout=WAIT_MS)
    assert window.report.connection.startswith("Not connected (retrying) since ")
    assert "Ask IT to set ProxyServer" in window.report.connection
    assert window.connection_label.text().startswith("Not connected")
    recorded = load_connection_status(tmp_path / "data")
    assert recorded is not None and "ProxyServer" in recorded.problem


def test_a_corrected_proxy_policy_applies_without_a_restart(
    apps: Apps, backend: Backend, qtbot: QtBot, tmp_path: Path
) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    policy = policies / "50-network.toml"
    policy.write_text('ProxyMode = "manual"\n')
    token_file = tmp_path / "token"
    token_file.write_text(backend.tokens[AGENT] + "\n", encoding="utf-8")
    app = apps.start(
        CliOptions(server_url=backend.url, token_file=token_file),
        policy_sources=[PolicyFolder(policies)],
        # The retry after the failure would wait this long: only the policy change can
        # bring the connection up within the test.
        connection_options={"delays": lambda: iter([600.0] * 10), "quick_delay": lambda: 600.0},
    )
    connection = app.connection
    assert connection is not None
    qtbot.waitUntil(lambda: connection.state == "disconnected", timeout=WAIT_MS)

    policy.write_text('ProxyMode = "direct"\n')
    app.reload_settings()

    qtbot.waitUntil(lambda: connection.state == "connected", timeout=WAIT_MS)


def test_deskbell_status_says_running_while_it_runs_despite_a_stale_record(
    qtbot: QtBot,
) -> None:
    """The real programs: a status.json left by an earlier run does not fool --status."""
    home = Path(tempfile.mkdtemp(prefix="db-st-"))  # short: socket paths have 108 bytes
    try:
        (home / "run").mkdir(mode=0o700)
        env = {
            **os.environ,
            "QT_QPA_PLATFORM": "offscreen",
            "XDG_RUNTIME_DIR": str(home / "run"),
            "XDG_DATA_HOME": str(home / "data"),
            "XDG_CONFIG_HOME": str(home / "config"),
            "XDG_STATE_HOME": str(home / "state"),
            "PYTHON_KEYRING_BACKEND": "keyring.backends.fail.Keyring",
        }
        data_dir = home / "data" / "deskbell"
        stale = ConnectionStatus("connected", "2026-03-10T09:12:00+00:00", "wss://old", "", 2)
        save_connection_status(data_dir, stale)

        def status() -> str:
            result = subprocess.run(
                [sys.executable, "-m", "desktop_agent", "--status"],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, result.stderr
            return next(
                line for line in result.stdout.splitlines() if line.startswith("Connection:")
            )

        assert "not running" in status()
        app = subprocess.Popen(
            [sys.executable, "-m", "desktop_agent", "--server", "ws://127.0.0.1:9"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            qtbot.waitUntil(lambda: any((home / "run").glob("*.sock")), timeout=WAIT_MS)
            line = status()
            assert "not running" not in line, line
        finally:
            app.terminate()
            app.wait(30)
        assert "not running" in status()
    finally:
        shutil.rmtree(home, ignore_errors=True)
