"""``deskbell --selftest`` and ``deskbell --status``: what IT support needs to see.

``--selftest`` checks an installed build on the spot, without a display: it loads Qt
(offscreen) and paints the tray icon, asks the keyring which backend it would use, asks
the OS whether notifications can be shown, reads the settings and every policy source,
prints what it found, and exits 0. It exits 1 only when a part of the installation
itself is broken (a library that does not load), not for things of this desktop session
such as a locked keyring or no notification server; those are printed as warnings.

``--status`` prints the health view (the same text as the About/Status window): the
connection as the running app last recorded it in ``status.json`` in the data folder,
the server and agent, notifications, keyring, settings and policy sources.

The running app records its connection with :func:`save_connection_status`; the
status window renders a :class:`HealthReport` built by :func:`gather_health`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import platform
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from desktop_agent import __version__
from desktop_agent.core import paths
from desktop_agent.core.settings import SPECS, PolicySource, Settings, find_user_settings_file
from desktop_agent.core.state import atomic_write_text
from desktop_agent.platform.policy_sources import (
    SourceReport,
    describe_source,
    installer_defaults_for_platform,
    policy_sources_for_platform,
)

log = logging.getLogger(__name__)

STATUS_FILE = "status.json"
TOAST_CHECK_SECONDS = 5.0

OK, WARN, FAIL = "ok", "warn", "FAIL"


@dataclass(frozen=True)
class Check:
    """One finding: ``level`` is ``ok``, ``warn`` (works, with a limit) or ``FAIL``."""

    name: str
    level: str
    detail: str


@dataclass(frozen=True)
class ConnectionStatus:
    """The connection as the running app last saw it.

    Attributes:
        state: ``connected``, ``connecting``, ``disconnected`` or ``signed_out``.
        since: when it entered that state (ISO 8601, UTC).
        server_url: the server it talks to ("" when signed out).
        agent: the signed-in agent's email ("" before the server welcomed it).
        pid: the app's process id (``--status`` says whether it still runs).
        problem: why the last connection attempt failed, for a person ("" if it did not).
    """

    state: str
    since: str
    server_url: str = ""
    agent: str = ""
    pid: int = 0
    problem: str = ""

    @classmethod
    def now(cls, state: str, server_url: str = "", agent: str = "") -> ConnectionStatus:
        """The status ``state`` starting now, for this process."""
        stamp = datetime.now(UTC).isoformat(timespec="seconds")
        return cls(state, stamp, server_url, agent, os.getpid())


def save_connection_status(data_dir: Path, status: ConnectionStatus) -> None:
    """Record ``status`` in ``data_dir/status.json`` (atomic). Logs, never raises, on failure."""
    try:
        atomic_write_text(Path(data_dir) / STATUS_FILE, json.dumps(asdict(status)) + "\n")
    except OSError as exc:
        log.warning("could not record the connection status: %s", exc)


def load_connection_status(data_dir: Path) -> ConnectionStatus | None:
    """The status the app last recorded, or None (never ran, or an unreadable file)."""
    try:
        raw = json.loads((Path(data_dir) / STATUS_FILE).read_text(encoding="utf-8"))
        return ConnectionStatus(
            state=str(raw["state"]),
            since=str(raw["since"]),
            server_url=str(raw.get("server_url", "")),
            agent=str(raw.get("agent", "")),
            pid=int(raw.get("pid", 0)),
            problem=str(raw.get("problem", "")),
        )
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _process_running(pid: int) -> bool | None:
    """True/False on POSIX; None where it cannot be asked safely (Windows: os.kill ends it)."""
    if pid <= 0 or sys.platform == "win32":
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


_STATE_TEXT = {
    "connected": "Connected",
    "connecting": "Connecting",
    "disconnected": "Not connected (retrying)",
    "signed_out": "Signed out",
}


def connection_text(status: ConnectionStatus | None, *, running: bool | None = True) -> str:
    """One line about the connection for a person, e.g. "Connected since 2026-03-10 09:12 UTC"."""
    if status is None:
        return "Not known: Deskbell has not recorded a connection on this account yet."
    if running is False:
        return "Deskbell is not running."
    try:
        since = datetime.fromisoformat(status.since).astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
    except ValueError:
        since = status.since
    state = _STATE_TEXT.get(status.state, status.state)
    if status.problem and status.state in ("connecting", "disconnected"):
        return f"{state} since {since}. {status.problem}"
    return f"{state} since {since}"


@dataclass(frozen=True)
class HealthReport:
    """Everything the status window and ``--status`` show."""

    version: str
    connection: str
    server_url: str
    agent: str
    notifications: Check
    keyring: Check
    policy_sources: tuple[SourceReport, ...]
    settings: tuple[tuple[str, str, str], ...] = ()
    """(setting, value, where it comes from) for every setting."""
    problems: tuple[str, ...] = ()
    checks: tuple[Check, ...] = field(default_factory=tuple)
    """Extra findings of ``--selftest`` (Qt, ...)."""

    def text(self) -> str:
        """The report as plain text (``--status``, and Copy in the status window)."""
        lines = [
            f"Deskbell {self.version} on {platform.system()} {platform.release()}",
            f"Connection:     {self.connection}",
            f"Server:         {self.server_url or '(not set)'}",
            f"Agent:          {self.agent or '(not signed in)'}",
            f"Notifications:  {self.notifications.level}: {self.notifications.detail}",
            f"Keyring:        {self.keyring.level}: {self.keyring.detail}",
        ]
        lines += [f"{check.name + ':':<16}{check.level}: {check.detail}" for check in self.checks]
        lines.append("Policy sources:")
        lines += [f"  {policy_line(report)}" for report in self.policy_sources]
        if self.settings:
            lines.append("Settings:")
            lines += [f"  {key} = {value}  ({layer})" for key, value, layer in self.settings]
        if self.problems:
            lines.append("Problems:")
            lines += [f"  {problem}" for problem in self.problems]
        return "\n".join(lines) + "\n"


def policy_line(report: SourceReport) -> str:
    """One line about a policy source, e.g. "/etc/deskbell/policies: ServerUrl, AutoStart"."""
    if not report.found:
        return f"{report.location}: none"
    names = ", ".join(report.names) if report.names else "no usable values"
    return f"{report.location}: {names}"


def _setting_text(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) or "(none)"
    if value is None or value == "":
        return "(not set)"
    return str(value)


def _shown_value(settings: Settings, key: str) -> Any:
    """A setting's value as the status view may show it (a proxy password never is: the
    text goes into support tickets)."""
    value = settings.get(key)
    if key == "proxy_server" and isinstance(value, str) and value:
        from desktop_agent.platform.proxies import hide_password

        return hide_password(value)
    return value


def _layer_text(settings: Settings, key: str) -> str:
    layer = settings.source(key)
    return "set by your organisation" if layer == "policy" else layer


def keyring_check(store: Any = None) -> Check:
    """Where sign-ins are kept: the running app's :class:`TokenStore`, or (None) a new one
    with the backend ``keyring`` would choose here."""
    from desktop_agent.platform.tokens import TokenStore

    if store is None:
        store = TokenStore()
    if store.persistent:
        return Check("Keyring", OK, store.backend_name())
    return Check("Keyring", WARN, store.unavailable_reason)


def notifications_check(available: Any) -> Check:
    """A :class:`~desktop_agent.platform.toasts.ToastAvailability` as a finding."""
    if available is None:
        return Check("Notifications", WARN, "not checked yet")
    if not available.ok:
        return Check("Notifications", WARN, available.reason)
    return Check("Notifications", OK, available.reason or "permitted")


async def _ask_toasts() -> Any:
    from desktop_agent.platform.toasts import DesktopNotifierToaster

    def ignore(_key: str, _conversation: str | None) -> None:
        return None

    from desktop_agent.platform.notification_settings import notification_settings_for_platform

    toaster = DesktopNotifierToaster(ignore, ignore, app_name="Deskbell")
    available = await asyncio.wait_for(toaster.available(), TOAST_CHECK_SECONDS)
    refine = notification_settings_for_platform()
    if refine is not None:
        available = await asyncio.wait_for(refine.check(available), TOAST_CHECK_SECONDS)
    return available


def probe_notifications() -> Check:
    """Ask the OS notification service (D-Bus, WinRT, UserNotifications) whether toasts work."""
    try:
        import desktop_notifier
    except ImportError as exc:
        return Check("Notifications", FAIL, f"desktop-notifier does not load: {exc}")
    try:
        available = asyncio.run(_ask_toasts())
    except TimeoutError:
        return Check("Notifications", WARN, "the notification service did not answer in time")
    except Exception as exc:  # any backend failure is a finding here, not a crash
        return Check("Notifications", WARN, f"could not ask the notification service: {exc}")
    del desktop_notifier
    return notifications_check(available)


def probe_network(settings: Settings) -> Check:
    """Load what the network settings need (truststore, the PAC engine, SOCKS) and say
    how the server will be reached; FAIL when a library of the bundle does not load,
    warn when the settings cannot be used."""
    try:
        from desktop_agent.platform.network import (
            SETTING_KEYS,
            NetworkAccess,
            NetworkSettings,
            TlsSetupError,
        )

        network = NetworkAccess.from_settings(
            NetworkSettings.from_values({key: settings.get(key) for key in SETTING_KEYS})
        )
        from pypac.parser import PACFile
        from python_socks.async_.asyncio import Proxy  # noqa: F401 -- websockets' SOCKS

        PACFile('function FindProxyForURL(url, host) { return "DIRECT"; }')
    except Exception as exc:  # a broken bundle: any import or engine failure
        return Check("Network", FAIL, f"a network library does not load: {exc}")
    trust = "system trust store"
    if network.ca_file is not None:
        trust += f" + {network.ca_file}"
    try:
        network.ssl_context()
    except TlsSetupError as exc:
        return Check("Network", WARN, str(exc))
    detail = f"proxy: {network.proxy_description}; TLS: {trust}"
    level = WARN if network.proxy_description.startswith("not usable") else OK
    return Check("Network", level, detail)


def probe_qt() -> Check:
    """Load Qt and paint the tray icon; FAIL when Qt or its plugins do not load.

    Offscreen unless ``QT_QPA_PLATFORM`` names a platform: then the tray is checked too
    (``QT_QPA_PLATFORM=xcb deskbell --selftest`` on a Linux desktop).
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        from PySide6 import QtCore
        from PySide6.QtWidgets import QApplication, QSystemTrayIcon

        from desktop_agent.ui.badge import render_tray_icon
    except ImportError as exc:
        return Check("Qt", FAIL, f"PySide6 does not load: {exc}")
    app = QApplication.instance() or QApplication([sys.argv[0] if sys.argv else "deskbell"])
    image = render_tray_icon(3, "normal", 32).toImage()
    painted = sum(
        1
        for x in range(image.width())
        for y in range(image.height())
        if image.pixelColor(x, y).alpha()
    )
    if not painted:
        return Check("Qt", FAIL, "Qt loaded but painted an empty tray icon")
    plugin = app.platformName() if isinstance(app, QApplication) else "?"
    found = f"Qt {QtCore.qVersion()}, platform {plugin}, tray icon painted"
    if plugin != "offscreen":
        found += (
            "; a system tray is available"
            if QSystemTrayIcon.isSystemTrayAvailable()
            else "; no system tray here (Deskbell shows a small window instead)"
        )
    return Check("Qt", OK, found)


@dataclass
class HealthInputs:
    """Where :func:`gather_health` looks; the defaults are this user's real ones."""

    config_dir: Path = field(default_factory=paths.config_dir)
    data_dir: Path = field(default_factory=paths.data_dir)
    policy_sources: Sequence[PolicySource] = field(default_factory=policy_sources_for_platform)
    installer_defaults: PolicySource | None = field(default_factory=installer_defaults_for_platform)


def gather_health(
    settings: Settings,
    policy_sources: Sequence[PolicySource],
    *,
    connection: ConnectionStatus | None,
    notifications: Check,
    keyring: Check,
    running: bool | None = True,
    checks: Sequence[Check] = (),
) -> HealthReport:
    """Build the health report from what the caller already knows.

    Args:
        settings: the effective settings.
        policy_sources: the policy sources to describe (each is read again).
        connection: the connection now (the app) or as last recorded (``--status``).
        running: whether the app that recorded ``connection`` still runs (None: unknown).
    """
    server = (connection.server_url if connection else "") or settings.server_url
    return HealthReport(
        version=__version__,
        connection=connection_text(connection, running=running),
        server_url=server,
        agent=connection.agent if connection else "",
        notifications=notifications,
        keyring=keyring,
        policy_sources=tuple(describe_source(source) for source in policy_sources),
        settings=tuple(
            (key, _setting_text(_shown_value(settings, key)), _layer_text(settings, key))
            for key in SPECS
        ),
        problems=tuple(problem.message for problem in settings.problems),
        checks=tuple(checks),
    )


def _load(inputs: HealthInputs) -> Settings:
    return Settings(
        find_user_settings_file(inputs.config_dir),
        policy_sources=inputs.policy_sources,
        installer_defaults=inputs.installer_defaults,
    )


def run_selftest(
    inputs: HealthInputs | None = None,
    *,
    out: Callable[[str], Any] = sys.stdout.write,
    probe_toasts: Callable[[], Check] = probe_notifications,
) -> int:
    """Check this installation and print what was found; 0 unless a part is broken."""
    inputs = inputs or HealthInputs()
    qt = probe_qt()
    settings = _load(inputs)
    network = probe_network(settings)
    report = gather_health(
        settings,
        inputs.policy_sources,
        connection=None,
        notifications=probe_toasts(),
        keyring=keyring_check(),
        checks=[qt, network],
    )
    kind = "installed build" if getattr(sys, "frozen", False) else "source"
    out(f"Deskbell self-test ({kind})\n")
    out(report.text())
    failed = [c for c in (qt, network, report.notifications, report.keyring) if c.level == FAIL]
    out("Self-test: " + ("FAILED: " + "; ".join(c.name for c in failed) if failed else "ok") + "\n")
    return 1 if failed else 0


def app_answers(data_dir: Path) -> bool:
    """Whether the Deskbell of ``data_dir`` runs: its single-instance socket answers."""
    from desktop_agent.platform.single_instance import default_socket_name, instance_answers

    return instance_answers(default_socket_name(scope=data_dir))


def run_status(
    inputs: HealthInputs | None = None,
    *,
    out: Callable[[str], Any] = sys.stdout.write,
    probe_toasts: Callable[[], Check] = probe_notifications,
    app_running: Callable[[Path], bool | None] = app_answers,
) -> int:
    """Print the health view as text; always 0 (it reports, it does not judge).

    Whether the app runs is asked of the app itself (``app_running``: its
    single-instance socket); the process id in the status file is only a fallback,
    as it can be left over from an earlier run or reused by another process.
    """
    inputs = inputs or HealthInputs()
    settings = _load(inputs)
    connection = load_connection_status(inputs.data_dir)
    running = app_running(inputs.data_dir)
    if running is None and connection is not None:
        running = _process_running(connection.pid)
    report = gather_health(
        settings,
        inputs.policy_sources,
        connection=connection,
        running=running,
        notifications=probe_toasts(),
        keyring=keyring_check(),
    )
    out(report.text())
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """``deskbell --selftest`` / ``deskbell --status`` without the rest of the app."""
    parser = argparse.ArgumentParser(prog="deskbell")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--selftest", action="store_true")
    group.add_argument("--status", action="store_true")
    args, _unknown = parser.parse_known_args(argv)
    # Findings are printed as such; the library warnings behind them would repeat them.
    logging.basicConfig(level=logging.ERROR)
    return run_selftest() if args.selftest else run_status()
