"""``deskbell --selftest`` and ``--status``: what they find and print, and when they fail."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_agent.core.settings import PolicyFolder
from desktop_agent.selftest import (
    FAIL,
    OK,
    Check,
    ConnectionStatus,
    HealthInputs,
    connection_text,
    keyring_check,
    load_connection_status,
    run_selftest,
    run_status,
    save_connection_status,
)

ROOT = Path(__file__).resolve().parents[3]
POLICIES = Path(__file__).parent / "fixtures" / "policies"


def toasts_ok() -> Check:
    return Check("Notifications", OK, "permitted")


def inputs(tmp_path: Path, policy_dir: Path = POLICIES) -> HealthInputs:
    return HealthInputs(
        config_dir=tmp_path / "config",
        data_dir=tmp_path / "data",
        policy_sources=[PolicyFolder(policy_dir)],
        installer_defaults=None,
    )


def run(function: object, *args: object, **kwargs: object) -> tuple[int, str]:
    printed: list[str] = []
    status = function(*args, out=printed.append, **kwargs)  # type: ignore[operator]
    return status, "".join(printed)


def test_selftest_prints_the_policy_server_url_and_exits_0(tmp_path: Path) -> None:
    status, text = run(run_selftest, inputs(tmp_path), probe_toasts=toasts_ok)
    assert status == 0
    assert "Server:         wss://desk.example.org" in text
    assert "server_url = wss://desk.example.org  (set by your organisation)" in text
    assert (
        f"{POLICIES}: AutoStart, BadgeScope, DisableSignOut, DisableUpdateCheck, LogLevel" in text
    )
    assert "Qt:             ok: Qt 6." in text and "tray icon painted" in text
    assert text.rstrip().endswith("Self-test: ok")


def test_selftest_warns_but_passes_without_a_keyring_or_notification_service(
    tmp_path: Path,
) -> None:
    def no_server() -> Check:
        return Check("Notifications", "warn", "no notification service is running")

    status, text = run(run_selftest, inputs(tmp_path, tmp_path / "none"), probe_toasts=no_server)
    assert status == 0
    assert "Notifications:  warn: no notification service is running" in text
    assert f"{tmp_path / 'none'}: none" in text


def test_selftest_fails_when_a_part_of_the_installation_does_not_load(tmp_path: Path) -> None:
    def broken() -> Check:
        return Check("Notifications", FAIL, "desktop-notifier does not load: no module")

    status, text = run(run_selftest, inputs(tmp_path), probe_toasts=broken)
    assert status == 1
    assert "Self-test: FAILED: Notifications" in text


def test_status_shows_the_connection_the_app_recorded(tmp_path: Path) -> None:
    save_connection_status(
        tmp_path / "data",
        ConnectionStatus(
            "connected",
            "2026-03-10T09:12:00+00:00",
            "wss://x.example.org",
            "dana@x.org",
            os.getpid(),
        ),
    )
    status, text = run(
        run_status, inputs(tmp_path), probe_toasts=toasts_ok, app_running=lambda _dir: True
    )
    assert status == 0
    assert "Connection:     Connected since 2026-03-10 09:12 UTC" in text
    assert "Server:         wss://x.example.org" in text
    assert "Agent:          dana@x.org" in text
    assert "Notifications:  ok: permitted" in text


def test_status_says_when_the_app_that_recorded_it_no_longer_runs(tmp_path: Path) -> None:
    if sys.platform == "win32":
        pytest.skip("process liveness is not asked on Windows")
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    save_connection_status(tmp_path, ConnectionStatus.now("connected", "wss://x", "a@x"))
    recorded = load_connection_status(tmp_path)
    assert recorded is not None and recorded.pid == os.getpid()
    dead = ConnectionStatus("connected", recorded.since, pid=int(gone.stdout))
    save_connection_status(tmp_path / "data", dead)
    _, text = run(run_status, inputs(tmp_path), probe_toasts=toasts_ok)
    assert "Connection:     Deskbell is not running." in text


def test_status_believes_the_running_app_not_a_stale_process_id(tmp_path: Path) -> None:
    # An earlier run left its (dead or reused) pid; the app that runs now answers.
    stale = ConnectionStatus("signed_out", "2026-03-10T09:12:00+00:00", pid=999_999_999)
    save_connection_status(tmp_path / "data", stale)
    _, text = run(run_status, inputs(tmp_path), probe_toasts=toasts_ok, app_running=lambda _d: True)
    assert "not running" not in text
    assert "Connection:     Signed out since 2026-03-10 09:12 UTC" in text
    # And a live pid that is not Deskbell's (reused) is not taken for a running app.
    reused = ConnectionStatus("connected", "2026-03-10T09:12:00+00:00", pid=os.getpid())
    save_connection_status(tmp_path / "data", reused)
    _, text = run(run_status, inputs(tmp_path), probe_toasts=toasts_ok)
    assert "Connection:     Deskbell is not running." in text


def test_an_unreadable_status_file_means_not_known(tmp_path: Path) -> None:
    (tmp_path / "status.json").write_text("{not json")
    assert load_connection_status(tmp_path) is None
    assert connection_text(None).startswith("Not known")


def test_status_lists_what_in_the_policy_could_not_be_used(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "a.toml").write_text('BadgeScope = "everything"\nColour = "red"\n')
    _, text = run(run_status, inputs(tmp_path, policies), probe_toasts=toasts_ok)
    assert "Problems:" in text
    assert "Colour" in text and "BadgeScope" in text


def test_the_installed_entry_point_runs_the_selftest(tmp_path: Path) -> None:
    """The script PyInstaller freezes, run from source: the same path as the installed one."""
    env = {
        **os.environ,
        "HOME": str(tmp_path),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "PYTHONPATH": str(ROOT),
        "QT_QPA_PLATFORM": "offscreen",
        "DBUS_SESSION_BUS_ADDRESS": "unix:path=" + str(tmp_path / "no-bus"),
    }
    done = subprocess.run(
        [sys.executable, str(ROOT / "packaging" / "deskbell_entry.py"), "--selftest"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    assert "Deskbell self-test (source)" in done.stdout
    assert "Keyring:" in done.stdout and "Policy sources:" in done.stdout
    assert done.stderr == ""


def test_keyring_finding_comes_from_the_apps_own_token_store() -> None:
    from keyring.backends import fail

    from desktop_agent.platform.tokens import TokenStore

    class Memory:
        name = "memory keyring"

    kept = keyring_check(TokenStore(Memory()))
    assert (kept.level, kept.detail) == (OK, "memory keyring")
    lost = keyring_check(TokenStore(fail.Keyring()))
    assert lost.level == "warn" and "sign in again" in lost.detail


def test_selftest_loads_the_network_libraries_and_says_how_the_server_is_reached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The PAC engine, truststore and SOCKS support load (a bundle missing one fails),
    and a policy proxy shows without its password."""
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "net.toml").write_text(
        'ProxyMode = "manual"\nProxyServer = "http://it:s3cret@proxy.example.org:3128"\n'
    )
    status, text = run(run_selftest, inputs(tmp_path, policies), probe_toasts=toasts_ok)
    assert status == 0, text
    assert (
        "Network:        ok: proxy: http://it:***@proxy.example.org:3128 (set by policy); "
        "TLS: system trust store\n"
    ) in text
    assert "proxy_server = http://it:***@proxy.example.org:3128  (set by your organisation)" in text
    assert "s3cret" not in text


def test_selftest_warns_about_a_ca_file_it_cannot_read(tmp_path: Path) -> None:
    policies = tmp_path / "policies"
    policies.mkdir()
    (policies / "net.toml").write_text(f'CaFile = "{tmp_path / "missing.pem"}"\n')
    status, text = run(run_selftest, inputs(tmp_path, policies), probe_toasts=toasts_ok)
    assert status == 0
    assert "Network:        warn: The CA certificate file" in text
