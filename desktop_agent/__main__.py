"""``deskbell`` / ``python -m desktop_agent``: start the tray app (or hand over to it).

A second start hands its arguments (e.g. ``deskbell://conversation/<id>``) to the
running app and exits. Exit status: 0 normally, 1 when the app cannot start here
(no display, the running app did not answer), 2 for bad usage.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from desktop_agent.shell.early_signals import EarlyQuit

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication, QSystemTrayIcon

    from desktop_agent.cli import CliOptions
    from desktop_agent.platform.single_instance import SingleInstance

NO_DISPLAY = (
    "deskbell: no graphical display was found (neither DISPLAY nor WAYLAND_DISPLAY is set). "
    "Start Deskbell from your desktop session, or set QT_QPA_PLATFORM=offscreen to run "
    "it without any windows."
)
HANDED_OVER = "deskbell: Deskbell is already running; it took over."
IGNORED_ON_HANDOVER = (
    "deskbell: {flags} only apply when Deskbell starts, so the running Deskbell did not "
    "use them. To use them, quit Deskbell from its tray menu and start it again with them."
)
NOT_ANSWERING = (
    "deskbell: another Deskbell seems to be running but did not answer. "
    "Quit it from its tray menu (or end the process) and start Deskbell again."
)


def display_problem(environ: dict[str, str] | None = None, platform: str = sys.platform) -> str:
    """A sentence for a person when Qt would find no display here, else ""."""
    env = os.environ if environ is None else environ
    if not platform.startswith("linux") or env.get("QT_QPA_PLATFORM"):
        return ""
    if env.get("DISPLAY") or env.get("WAYLAND_DISPLAY"):
        return ""
    return NO_DISPLAY


def ignored_on_handover(options: CliOptions) -> str:
    """The start-up flags a running Deskbell does not act on, e.g. "--server", or ""."""
    flags = [
        flag
        for flag, given in (
            ("--server", options.server_url is not None),
            ("--token-file", options.token_file is not None),
        )
        if given
    ]
    return " and ".join(flags)


def login_wanted() -> bool:
    """Whether launch at login is on for this person (their setting, or policy).

    The system-wide login items of the packages (XDG autostart, the MSI's Run value,
    the LaunchAgent) start Deskbell for everyone with ``--login``; this lets a person,
    or a policy, turn it off without an administrator removing them.
    """
    from desktop_agent.app import AppEnvironment

    return bool(AppEnvironment.for_this_user().load_settings().get("autostart"))


def main(argv: Sequence[str] | None = None) -> int:
    """Run Deskbell; returns the exit status."""
    early = EarlyQuit()
    if argv is None:  # the real program, not a test calling main([...])
        early.install()
    from desktop_agent.cli import parse_args

    args = list(sys.argv[1:] if argv is None else argv)
    options = parse_args(args)  # --version, --help and bad usage exit here
    if options.selftest or options.status:
        # Both run offscreen, without starting the app (IT checks installs over SSH).
        from desktop_agent import selftest

        return selftest.main(["--selftest" if options.selftest else "--status"])
    if options.login and not login_wanted():
        return 0
    problem = display_problem()
    if problem:
        print(problem, file=sys.stderr)
        return 1
    if early.requested:
        return 0

    from PySide6.QtWidgets import QApplication

    from desktop_agent.platform.single_instance import SingleInstance, default_socket_name

    existing = QApplication.instance()
    qapp = existing if isinstance(existing, QApplication) else QApplication([sys.argv[0]])
    qapp.setApplicationName("Deskbell")
    qapp.setDesktopFileName("deskbell")
    qapp.setQuitOnLastWindowClosed(False)

    from desktop_agent.core import paths

    single = SingleInstance(default_socket_name(scope=paths.data_dir()))
    if not single.acquire():
        if single.send_to_primary(args):
            print(HANDED_OVER, file=sys.stderr)
            ignored = ignored_on_handover(options)
            if ignored:
                print(IGNORED_ON_HANDOVER.format(flags=ignored), file=sys.stderr)
            return 0
        print(NOT_ANSWERING, file=sys.stderr)
        return 1
    try:
        return _run_first_instance(qapp, single, options, early)
    finally:
        single.release()


def _run_first_instance(
    qapp: QApplication, single: SingleInstance, options: CliOptions, early: EarlyQuit
) -> int:
    if early.requested:
        return 0
    early_tray = _show_tray_icon_early()

    # The rest (asyncio glue, WebSocket client, keyring, notifications, windows) takes
    # most of start-up; the icon above is already there while it loads.
    import asyncio
    import logging

    import qasync

    from desktop_agent.app import AppEnvironment, DeskbellApp, run_app
    from desktop_agent.shell.diagnostics import loop_exception_handler, setup_logging

    env = AppEnvironment.for_this_user()
    settings = env.load_settings()
    log_file = setup_logging(env.log_dir, str(settings.get("log_level")))
    logging.getLogger(__name__).info("Deskbell starting; log file %s", log_file)
    if early.requested:
        if early_tray is not None:
            early_tray.hide()
        return 0
    with asyncio.Runner(loop_factory=lambda: qasync.QEventLoop(qapp)) as runner:
        runner.get_loop().set_exception_handler(loop_exception_handler)

        async def run() -> int:
            app = DeskbellApp(options, env, settings, tray_icon=early_tray)
            app.listen_to(single)
            return await run_app(app, quit_requested=lambda: early.requested)

        return runner.run(run())


def _show_tray_icon_early() -> QSystemTrayIcon | None:
    """Put the tray icon up before the app is built, so starting shows at once.

    Returns:
        The icon, for the app to take over; None where there is no tray.
    """
    from PySide6.QtWidgets import QSystemTrayIcon

    from desktop_agent.ui.badge import make_tray_icon

    if not QSystemTrayIcon.isSystemTrayAvailable():
        return None
    icon = QSystemTrayIcon(make_tray_icon(0, "disconnected"))
    icon.setToolTip("Deskbell: starting…")
    icon.show()
    return icon


if __name__ == "__main__":
    sys.exit(main())
