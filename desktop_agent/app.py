"""The composition root of ``deskbell``: builds every object and wires them together.

Nothing else in the desktop agent creates services or reads the environment; every
dependency reaches its user through a constructor. :class:`AppEnvironment` holds what
differs between a real start and a test (folders, keyring backend, toaster, tray).

Start-up, in order: settings (policy > installer > user > defaults), the token store,
then one of: ``--token-file`` (sign in with an admin-issued token and keep it in the
keyring), the remembered account's token from the keyring, or the sign-in window. A
token the server refuses brings the sign-in window back with the reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import shutil
import signal
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Qt, QUrl, Signal
from PySide6.QtGui import QDesktopServices
from PySide6.QtWidgets import QMessageBox, QSystemTrayIcon

from backend.protocol import AgentInfo, Welcome
from desktop_agent import __version__
from desktop_agent.cli import CliOptions, TokenFileError, parse_args, read_token_file
from desktop_agent.connection import (
    ConnectionService,
    sign_in,
    sign_in_options,
    sign_out,
    sso_sign_in,
)
from desktop_agent.controller import Clock, Controller, ToasterFactory, local_now
from desktop_agent.core import paths
from desktop_agent.core.dnd import DoNotDisturb
from desktop_agent.core.server_url import normalize_server_url
from desktop_agent.core.settings import (
    PolicySource,
    Settings,
    find_user_settings_file,
)
from desktop_agent.core.state import CursorStore
from desktop_agent.core.toast_policy import ToastPolicy
from desktop_agent.core.updates import update_notice
from desktop_agent.errors import DeskbellError, SsoFailed
from desktop_agent.platform.autostart import Autostart, autostart_for_platform
from desktop_agent.platform.idle import IdleTime, idle_time_for_platform
from desktop_agent.platform.launcher_entry import LauncherEntry
from desktop_agent.platform.network import SETTING_KEYS as NETWORK_SETTING_KEYS
from desktop_agent.platform.network import NetworkAccess, NetworkSettings
from desktop_agent.platform.notification_settings import (
    NotificationSettings,
    notification_settings_for_platform,
)
from desktop_agent.platform.policy_sources import (
    installer_defaults_for_platform,
    policy_sources_for_platform,
    watchable_paths,
)
from desktop_agent.platform.policy_watch import PolicyWatcher
from desktop_agent.platform.proxy_credentials import ProxyCredentialStore
from desktop_agent.platform.single_instance import SingleInstance
from desktop_agent.platform.toasts import (
    DESKTOP_ENTRY,
    DesktopNotifierToaster,
    ToastAvailability,
    ToastCallback,
    Toaster,
)
from desktop_agent.platform.tokens import TokenStore
from desktop_agent.selftest import (
    Check,
    ConnectionStatus,
    HealthReport,
    gather_health,
    keyring_check,
    notifications_check,
    save_connection_status,
)
from desktop_agent.shell.account import Account, AccountStore
from desktop_agent.shell.sso import SsoFlow
from desktop_agent.shell.sso import fetch_json as fetch_provider_json
from desktop_agent.shell.tasks import TaskGroup
from desktop_agent.ui.notification_model import NotificationListModel
from desktop_agent.ui.notification_window import NotificationWindow
from desktop_agent.ui.proxy_login_dialog import ProxyLoginDialog
from desktop_agent.ui.settings_dialog import SettingsDialog
from desktop_agent.ui.signin_dialog import SignInDialog
from desktop_agent.ui.status_view import StatusWindow
from desktop_agent.ui.tray import TrayController

log = logging.getLogger(__name__)

SIGNED_OUT_NOTICE = "You are signed out. Sign in to get notifications again."
SERVER_LOCKED_NOTICE = (
    "Your organisation sets the server address, so --server {given} was not used."
)
NO_SERVER_FOR_TOKEN_FILE = (
    "A token file needs a server address too. Start Deskbell with "  # noqa: S105
    "--server URL --token-file PATH, or sign in here."
)
SESSION_ONLY_SIGN_IN = " You can still sign in for this session."
TOKEN_FILE_REFUSED = (
    "The server at {server} did not accept the token in {path}. Check that the file "  # noqa: S105
    "holds the whole token from 'deskbell-server token issue', issued by this server, "
    "then start Deskbell with --token-file again."
)
STORED_SIGN_IN_KEPT = " Deskbell is using your saved sign-in as {email} instead."


def toast_icon(folder: Path | None) -> str | None:
    """The icon toasts carry: the installed theme icon's name, else a PNG of it in
    ``folder`` (running from a checkout); None when neither can be had."""
    from PySide6.QtGui import QIcon

    from desktop_agent.ui.badge import render_tray_icon

    if QIcon.hasThemeIcon(DESKTOP_ENTRY):
        return DESKTOP_ENTRY
    if folder is None:
        return None
    path = folder / "deskbell-64.png"
    try:
        if not path.exists():
            folder.mkdir(parents=True, exist_ok=True)
            if not render_tray_icon(0, "normal", 64).save(str(path)):
                return None
    except OSError as exc:
        log.info("toasts go without an icon: %s", exc)
        return None
    return str(path)


def default_toaster(
    on_activated: ToastCallback, on_mark_read: ToastCallback, icon_folder: Path | None = None
) -> Toaster:
    """The real OS toaster (D-Bus notifications on Linux, WinRT, UserNotifications).

    ``icon_folder``: where to keep a PNG of the app icon when the icon theme has none.
    """
    return DesktopNotifierToaster(
        on_activated, on_mark_read, app_name="Deskbell", app_icon=toast_icon(icon_folder)
    )


def launch_command() -> list[str]:
    """How the OS should start Deskbell at login."""
    if getattr(sys, "frozen", False):  # an installed bundle (PyInstaller)
        program = Path(sys.executable)
        # On Windows the bundle's deskbellw.exe starts without a console window.
        windowed = program.with_name("deskbellw.exe")
        return [str(windowed if sys.platform == "win32" and windowed.exists() else program)]
    installed = shutil.which("deskbell")
    return [installed] if installed else [sys.executable, "-m", "desktop_agent"]


def open_in_browser(url: str) -> None:
    """Open ``url`` in the person's default browser.

    Raises:
        SsoFailed: no browser could be started.
    """
    if not QDesktopServices.openUrl(QUrl(url)):
        raise SsoFailed(
            "Deskbell could not open your web browser for the sign-in. Set a default "
            "browser, or ask your IT team for help."
        )


@dataclass
class AppEnvironment:
    """Everything a start depends on that is not in the command line.

    Attributes:
        config_dir, data_dir, log_dir: the app's folders.
        policy_sources: the organisation's policy (Linux: ``/etc/deskbell/policies``).
        installer_defaults: values given to the installer, if any.
        keyring_backend: a keyring backend; None lets ``keyring`` choose.
        make_toaster: builds the toaster from the two click callbacks.
        tray_available: None asks Qt whether a tray exists.
        autostart: launch-at-login switch; None leaves it alone.
        launcher: the dock badge used when there is no tray; None: none.
        watch_network: reconnect at once when Qt reports the network back.
        connection_options: extra keyword arguments for ``ConnectionService``.
        clock: "now" for toasts and DND.
        open_browser: shows a URL in the system browser (single sign-on).
        idle_time: reads the desktop's idle seconds (away when idle); None: never away
            from idle.
        network_options: passed to ``NetworkAccess.from_settings`` (tests give
            ``system_lookup``, a fake of the Windows/macOS proxy query, or ``platform``).
        notification_settings: what the OS says about showing pop-ups (Focus Assist,
            per-app switches); None where the toaster's own check says it all (Linux).
    """

    config_dir: Path
    data_dir: Path
    log_dir: Path
    policy_sources: Sequence[PolicySource] = ()
    installer_defaults: PolicySource | None = None
    keyring_backend: Any = None
    make_toaster: ToasterFactory = default_toaster
    tray_available: bool | None = None
    autostart: Autostart | None = None
    launcher: LauncherEntry | None = None
    watch_network: bool = True
    connection_options: dict[str, Any] = field(default_factory=dict)
    clock: Clock = local_now
    open_browser: Callable[[str], None] = field(default_factory=lambda: open_in_browser)
    idle_time: IdleTime | None = None
    network_options: dict[str, Any] = field(default_factory=dict)
    notification_settings: NotificationSettings | None = None

    @classmethod
    def for_this_user(cls) -> AppEnvironment:
        """The real environment: platform folders, /etc policy, the OS services."""
        return cls(
            config_dir=paths.config_dir(),
            data_dir=paths.data_dir(),
            log_dir=paths.log_dir(),
            # Linux: /etc/deskbell/policies; Windows: HKCU then HKLM
            # SOFTWARE\Policies\Deskbell; macOS: managed preferences of the app id.
            policy_sources=policy_sources_for_platform(),
            installer_defaults=installer_defaults_for_platform(),
            autostart=autostart_for_platform(launch_command()),
            make_toaster=functools.partial(default_toaster, icon_folder=paths.data_dir()),
            launcher=LauncherEntry() if sys.platform.startswith("linux") else None,
            idle_time=idle_time_for_platform(),
            notification_settings=notification_settings_for_platform(),
        )

    def load_settings(self) -> Settings:
        """The layered settings of this environment (never raises for broken files)."""
        return Settings(
            find_user_settings_file(self.config_dir),
            policy_sources=self.policy_sources,
            installer_defaults=self.installer_defaults,
        )


class _SettingsAdapter:
    """The settings dialog's view of :class:`Settings`; write errors are collected."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.errors: list[str] = []

    def value(self, key: str) -> Any:
        return self._settings.get(key)

    def is_locked(self, key: str) -> bool:
        return self._settings.is_locked(key)

    def set_user(self, key: str, value: Any) -> None:
        try:
            self._settings.set(key, value)
        except DeskbellError as exc:
            self.errors.append(str(exc))


class DeskbellApp(QObject):
    """The running app: one signed-in session at a time, the tray, the windows.

    Args:
        options: the command line.
        env: folders and OS services.
        settings: the layered settings (default: read from ``env``).

    Signals:
        signedIn(str): the server welcomed this agent (email).
        signInShown(): the sign-in window was shown (no token, refused, signed out).
        signInOptionsShown(): the sign-in window now shows how the server signs agents in.
        quitRequested(): Quit was chosen; :meth:`wait_for_quit` returns.
    """

    signedIn = Signal(str)
    signInShown = Signal()
    signInOptionsShown = Signal()
    quitRequested = Signal()

    def __init__(
        self,
        options: CliOptions,
        env: AppEnvironment,
        settings: Settings | None = None,
        parent: QObject | None = None,
        *,
        tray_icon: QSystemTrayIcon | None = None,
    ) -> None:
        super().__init__(parent)
        self.options = options
        self.env = env
        self.settings = settings if settings is not None else env.load_settings()
        for problem in self.settings.problems:
            log.warning("%s", problem.message)
        self.tokens = TokenStore(env.keyring_backend)
        self.proxy_credentials = ProxyCredentialStore(self.tokens)
        self.accounts = AccountStore(env.data_dir)
        self.cursors = CursorStore(env.data_dir)
        self.tasks = TaskGroup()
        self._quit = asyncio.Event()

        self.model = NotificationListModel(self)
        self.window = NotificationWindow(self.model, clock=env.clock)
        self.tray = TrayController(
            allow_sign_out=not self.settings.sign_out_disabled,
            tray_available=env.tray_available,
            clock=env.clock,
            tray_icon=tray_icon,
            parent=self,
        )
        self.policy = ToastPolicy(
            categories=self.settings.toast_categories,
            dnd=DoNotDisturb(self.settings.dnd_schedule),
        )
        self.controller = Controller(
            model=self.model,
            tray=self.tray,
            window=self.window,
            policy=self.policy,
            settings=self.settings,
            make_toaster=env.make_toaster,
            launcher=env.launcher,
            clock=env.clock,
            idle_seconds=env.idle_time,
            parent=self,
        )
        self.tray.openNotifications.connect(self._on_open_requested)
        self.tray.settingsRequested.connect(self.show_settings)
        self.tray.statusRequested.connect(self.show_status)
        self.policy_watcher = PolicyWatcher(watchable_paths(env.policy_sources), parent=self)
        self.policy_watcher.changed.connect(self.reload_settings)
        self.tray.signOutRequested.connect(self.request_sign_out)
        self.tray.quitRequested.connect(self.quit)

        self.connection: ConnectionService | None = None
        self.server_url = ""
        self.account: Account | None = None
        self._token = ""
        self._token_file: Path | None = None
        """The --token-file of the current session, until the server welcomes it."""
        self._save_token_on_welcome = False
        self._pending_conversation: str | None = options.conversation_id
        self.signin_dialog: SignInDialog | None = None
        self.settings_dialog: SettingsDialog | None = None
        self.status_window: StatusWindow | None = None
        self.proxy_login_dialog: ProxyLoginDialog | None = None
        self._network_access: NetworkAccess | None = None
        self.connection_status: ConnectionStatus | None = None
        """The connection as the status window and ``deskbell --status`` show it."""
        self._toast_availability: ToastAvailability | None = None
        self._connection_problem = ""
        self.update_notice: str | None = None
        """Says a newer Deskbell runs on the server (None: none, or checks are off)."""
        self._network: Any = None
        self._shut_down = False

    # -------------------------------------------------------------- lifecycle

    def start(self) -> None:
        """Show the tray and sign in (token file, keyring, or the sign-in window).

        Raises:
            RuntimeError: no running event loop.
        """
        self.tray.show()
        self._sync_autostart()
        self._watch_network()
        self.tasks.spawn(self._report_toast_availability(), "checking toasts")
        server_url = self._initial_server_url()
        options = self.options
        if options.token_file is not None:
            try:
                if not server_url:
                    raise TokenFileError(NO_SERVER_FOR_TOKEN_FILE)
                token = read_token_file(options.token_file)
            except TokenFileError as exc:
                self._token_file_failed(str(exc), server_url)
                if self.connection is None:
                    self._record_connection("signed_out")
                return
            self._start_session(server_url, token, account=None)
            self._token_file = options.token_file
            return
        if not self._start_stored_session(server_url):
            self.show_sign_in()
        if self.connection is None:
            # Replace what an earlier run left in status.json (its pid, its state).
            self._record_connection("signed_out")

    def _start_stored_session(self, server_url: str) -> bool:
        """Connect with the sign-in kept in the keyring (for ``server_url``, if given)."""
        account = self.accounts.load()
        if account is not None and (not server_url or account.server_url == server_url):
            stored = self.tokens.load(account.server_url, account.email)
            if stored:
                self._start_session(account.server_url, stored, account=account)
                return True
        return False

    def _token_file_failed(self, problem: str, server_url: str) -> None:
        """A --token-file could not be used: say so on the terminal and in the log, and
        keep a saved sign-in working rather than replace it with the sign-in window."""
        log.warning("%s", problem)
        account = self.accounts.load()
        if self._start_stored_session(server_url):
            assert account is not None
            log.warning("%s", STORED_SIGN_IN_KEPT.format(email=account.email).strip())
            return
        self.show_sign_in(error=problem)

    async def wait_for_quit(self) -> None:
        """Return once Quit was chosen (or :meth:`quit` called)."""
        await self._quit.wait()

    def quit(self) -> None:
        """Ask the app to end; :func:`run_app` then shuts down cleanly."""
        self._quit.set()
        self.quitRequested.emit()

    async def shutdown(self) -> None:
        """Close the connection, windows and tray; stop background work. Runs once."""
        if self._shut_down:
            return
        self._shut_down = True
        if self.connection is not None:
            await self.connection.stop()
        await self.controller.close()
        await self.tasks.cancel_all()
        if self.env.launcher is not None:
            with contextlib.suppress(Exception):
                await self.env.launcher.close()
        for dialog in (
            self.signin_dialog,
            self.settings_dialog,
            self.status_window,
            self.proxy_login_dialog,
        ):
            if dialog is not None:
                dialog.close()
        for conversation in list(self.controller.conversations.values()):
            conversation.close()
        self.window.close()
        self.tray.hide()
        # Top-level widgets have no QObject parent: delete them now, while every
        # object they point at still exists, rather than whenever Python collects them.
        self.window.deleteLater()
        if self.tray.fallback_window is not None:
            self.tray.fallback_window.deleteLater()

    # ------------------------------------------------------- second launches

    def listen_to(self, single_instance: SingleInstance) -> None:
        """Act on the arguments later ``deskbell`` starts hand to this one."""
        single_instance.argumentsReceived.connect(self.handle_arguments)

    def handle_arguments(self, argv: list[str]) -> None:
        """A later ``deskbell`` start handed over its arguments: act on them."""
        try:
            options = parse_args(argv)
        except SystemExit:
            log.warning("ignoring arguments from a second start: %r", argv)
            return
        if options.server_url is not None or options.token_file is not None:
            log.warning(
                "a second start asked for --server/--token-file; they apply only at start-up "
                "and were not used"
            )
        if options.conversation_id is not None:
            self.open_conversation_when_ready(options.conversation_id)
        elif self.connection is None:
            self.show_sign_in()
        else:
            self.controller.show_notifications()

    def open_conversation_when_ready(self, conversation_id: str) -> None:
        """Open a conversation now, or as soon as the server has welcomed us."""
        connection = self.connection
        if connection is not None and connection.state == "connected":
            self.controller.open_conversation(conversation_id)
        else:
            self._pending_conversation = conversation_id

    # --------------------------------------------------------------- session

    def _initial_server_url(self) -> str:
        given = self.options.server_url
        if self.settings.is_locked("server_url"):
            locked = self.settings.server_url
            if given and given != locked:
                log.warning(SERVER_LOCKED_NOTICE.format(given=given))
            return locked
        if given:
            return given
        if self.settings.server_url:
            return self.settings.server_url
        account = self.accounts.load()
        return account.server_url if account is not None else ""

    def _start_session(self, server_url: str, token: str, account: Account | None) -> None:
        self.server_url = server_url
        self.account = account
        self._token = token
        self._save_token_on_welcome = account is None
        connection = ConnectionService(
            server_url,
            token,
            self.cursors,
            network=self.network_access(),
            parent=self,
            **self.env.connection_options,
        )
        connection.connectFailed.connect(
            lambda message, source=connection: self._on_connect_failed(source, message)
        )
        connection.welcomed.connect(self._on_welcomed)
        connection.stateChanged.connect(
            lambda state, source=connection: self._on_connection_state(source, state)
        )
        connection.authFailed.connect(self._on_auth_failed)
        self.connection = connection
        self.controller.attach(connection)
        connection.start()
        log.info("connecting to %s", server_url)

    def _on_welcomed(self, welcome: Welcome) -> None:
        email = welcome.agent.email
        self._check_for_update(welcome.server.version)
        self._token_file = None
        if self._save_token_on_welcome:
            # A token from a file: keep it in the keyring like any sign-in.
            self._save_token_on_welcome = False
            self.account = Account(self.server_url, email)
            self.tokens.save(self.server_url, email, self._token)
            self.accounts.save(self.account)
        self._record_connection("connected")
        self.signedIn.emit(email)
        pending, self._pending_conversation = self._pending_conversation, None
        if pending is not None:
            self.controller.open_conversation(pending)

    def _on_auth_failed(self, reason: str) -> None:
        token_file, self._token_file = self._token_file, None
        server_url = self.server_url
        self._end_session(forget_token=True)
        if token_file is not None:
            # Never accepted, so not "revoked or expired": most likely a wrong token.
            self._token_file_failed(
                TOKEN_FILE_REFUSED.format(server=server_url, path=token_file), server_url
            )
            return
        log.warning("signed out by the server: %s", reason)
        self.show_sign_in(error=reason)

    def _end_session(self, *, forget_token: bool) -> None:
        connection, self.connection = self.connection, None
        self.controller.detach()
        if connection is not None:
            self.tasks.spawn(self._retire(connection), "closing the old connection")
        if forget_token and self.account is not None:
            self.tokens.delete(self.account.server_url, self.account.email)
        self._token = ""

    async def _retire(self, connection: ConnectionService) -> None:
        await connection.stop()
        connection.deleteLater()

    # --------------------------------------------------------------- sign-in

    def show_sign_in(self, *, error: str = "", notice: str = "") -> None:
        """Show the sign-in window (with what happened, if anything)."""
        account = self.account or self.accounts.load()
        dialog = self.signin_dialog
        if dialog is None:
            locked = self.settings.is_locked("server_url")
            url = (
                self.settings.server_url
                if locked
                else (self.server_url or self._initial_server_url())
            )
            dialog = SignInDialog(
                server_url=url,
                url_locked=locked,
                email=account.email if account is not None else "",
                validate_url=_server_url_or_empty,
            )
            dialog.submitted.connect(self._on_sign_in_submitted)
            dialog.ssoRequested.connect(self._on_sso_requested)
            dialog.serverChanged.connect(self._ask_sign_in_options)
            dialog.finished.connect(self._on_sign_in_closed)
            self.signin_dialog = dialog
            if url:
                self._ask_sign_in_options(url)
        if not self.tokens.persistent and not error:
            notice = (notice + " " if notice else "") + (
                self.tokens.unavailable_reason + SESSION_ONLY_SIGN_IN
            )
        if error:
            dialog.set_error(error)
        elif notice:
            dialog.set_notice(notice)
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()
        self.signInShown.emit()

    def _on_sign_in_closed(self, _result: int) -> None:
        dialog, self.signin_dialog = self.signin_dialog, None
        if dialog is not None:
            dialog.deleteLater()

    def _on_sign_in_submitted(self, server_url: str, email: str, password: str) -> None:
        self.tasks.spawn(
            self._sign_in(server_url, email, password),
            "signing in",
            on_error=self._sign_in_failed,
        )

    def _ask_sign_in_options(self, server_url: str) -> None:
        if server_url:
            self.tasks.spawn(self._show_sign_in_options(server_url), "asking how to sign in")

    async def _show_sign_in_options(self, server_url: str) -> None:
        try:
            options = await sign_in_options(server_url, network=self.network_access())
        except DeskbellError as exc:
            # An older server, or not reachable yet: the password form stays as it is.
            log.info("could not ask %s how to sign in: %s", server_url, exc)
            return
        dialog = self.signin_dialog
        if dialog is not None:
            dialog.set_sign_in_options(
                options.password, options.sso.label if options.sso is not None else None
            )
        self.signInOptionsShown.emit()

    def _on_sso_requested(self, server_url: str) -> None:
        self.tasks.spawn(
            self._sso_sign_in(server_url), "signing in with SSO", on_error=self._sign_in_failed
        )

    async def _sso_sign_in(self, server_url: str) -> None:
        options = await sign_in_options(server_url, network=self.network_access())
        if options.sso is None:
            raise SsoFailed(
                "This Deskbell server no longer offers single sign-on. Sign in with your "
                "email and password, or ask your IT team."
            )

        async def exchange(id_token: str, nonce_secret: str) -> tuple[str, AgentInfo]:
            return await sso_sign_in(
                server_url,
                id_token,
                nonce_secret,
                device=socket.gethostname(),
                network=self.network_access(),
            )

        network = self.network_access()

        def fetch_json(url: str, form: dict[str, str] | None) -> dict[str, Any]:
            # In SsoFlow's worker thread: the provider is reached like the server.
            return fetch_provider_json(url, form, opener=network.https_opener(url))

        flow = SsoFlow(options.sso, self.env.open_browser, exchange, fetch_json=fetch_json)
        token, agent = await flow.run()
        await self._signed_in(server_url, token, agent)

    async def _sign_in(self, server_url: str, email: str, password: str) -> None:
        token, agent = await sign_in(
            server_url,
            email,
            password,
            device=socket.gethostname(),
            network=self.network_access(),
        )
        await self._signed_in(server_url, token, agent)

    async def _signed_in(self, server_url: str, token: str, agent: AgentInfo) -> None:
        account = Account(server_url, agent.email)
        self.tokens.save(server_url, agent.email, token)
        self.accounts.save(account)
        if not self.settings.is_locked("server_url") and self.settings.server_url != server_url:
            try:
                self.settings.set("server_url", server_url)
            except DeskbellError as exc:
                log.warning("could not remember the server address: %s", exc)
        if self.connection is not None:
            self._end_session(forget_token=False)
        self._start_session(server_url, token, account=account)
        dialog = self.signin_dialog
        if dialog is not None:
            dialog.set_busy(False)
            dialog.accept()

    def _sign_in_failed(self, exc: DeskbellError) -> None:
        dialog = self.signin_dialog
        if dialog is not None:
            dialog.set_busy(False)
            dialog.set_error(str(exc))
        self._ask_for_proxy_credentials()

    def request_sign_out(self) -> None:
        """Sign out (revoke the token on the server, delete it here), unless policy forbids."""
        if self.settings.sign_out_disabled:
            log.info("sign-out is disabled by policy")
            return
        self.tasks.spawn(self.sign_out(), "signing out")

    async def sign_out(self) -> None:
        """Revoke the token on the server and forget it on this computer."""
        server_url, token, account = self.server_url, self._token, self.account
        connection, self.connection = self.connection, None
        self.controller.detach()
        if connection is not None:
            await connection.stop()
            connection.deleteLater()
        notice = SIGNED_OUT_NOTICE
        if token:
            try:
                await sign_out(server_url, token, answer_within=10, network=self.network_access())
            except DeskbellError as exc:
                log.warning("could not revoke the token on the server: %s", exc)
                notice = (
                    "You are signed out on this computer, but the server could not be told "
                    f"({exc}). Ask your administrator to revoke this device's sign-in."
                )
        if account is not None:
            self.tokens.delete(account.server_url, account.email)
        self.accounts.forget()
        self._token = ""
        self._record_connection("signed_out")
        self.show_sign_in(notice=notice)

    # -------------------------------------------------------------- settings

    def show_settings(self) -> None:
        """Show the settings window."""
        if self.settings_dialog is not None:
            self.settings_dialog.raise_()
            self.settings_dialog.activateWindow()
            return
        adapter = _SettingsAdapter(self.settings)
        dialog = SettingsDialog(adapter, validate_url=_server_url_or_empty)
        dialog.applied.connect(lambda keys: self._settings_applied(keys, adapter))
        dialog.finished.connect(self._on_settings_closed)
        self.settings_dialog = dialog
        dialog.show()

    def _on_settings_closed(self, _result: int) -> None:
        dialog, self.settings_dialog = self.settings_dialog, None
        if dialog is not None:
            dialog.deleteLater()

    def _settings_applied(self, keys: list[str], adapter: _SettingsAdapter) -> None:
        self.controller.settings_changed()
        if "autostart" in keys:
            self._sync_autostart()
        if adapter.errors:
            box = QMessageBox(
                QMessageBox.Icon.Warning,
                "Settings not saved",
                "\n\n".join(adapter.errors),
            )
            box.setAttribute(Qt.WidgetAttribute.WA_DeleteOnClose)
            box.show()

    def _sync_autostart(self) -> None:
        # The login item follows the setting (default on), so what the settings window
        # shows is what happens at the next login.
        autostart = self.env.autostart
        if autostart is None:
            return
        try:
            wanted = bool(self.settings.get("autostart"))
            if wanted != autostart.is_enabled():
                autostart.enable() if wanted else autostart.disable()
        except OSError:
            log.exception("could not change launch at login")

    def reload_settings(self) -> None:
        """Read policy and settings again (IT changed a policy) and apply what changed."""
        changed = self.settings.reload()
        if not changed:
            return
        log.info("settings changed by policy: %s", ", ".join(sorted(changed)))
        for problem in self.settings.problems:
            log.warning("%s", problem.message)
        self.controller.settings_changed()
        if "autostart" in changed:
            self._sync_autostart()
        if self.connection is not None and changed & set(NETWORK_SETTING_KEYS):
            # A new proxy or CA from IT applies to the next connection; a failing one
            # retries with it at once rather than after its backoff.
            self.connection.set_network(self.network_access())
            if self.connection.state != "connected":
                self.connection.wake()
        if self.status_window is not None:
            self.status_window.set_report(self.health_report())

    # ---------------------------------------------------------------- status

    def network_access(self) -> NetworkAccess:
        """Proxy and TLS trust as the settings (and policy) say now."""
        values = {key: self.settings.get(key) for key in NETWORK_SETTING_KEYS}
        network = NetworkAccess.from_settings(
            NetworkSettings.from_values(values),
            credentials=self.proxy_credentials.lookup,
            **self.env.network_options,
        )
        self._network_access = network
        return network

    def _on_connect_failed(self, source: ConnectionService, message: str) -> None:
        if source is not self.connection:
            return
        if message != self._connection_problem:
            log.warning("%s", message)
        self._connection_problem = message
        self._record_connection(source.state)
        self._ask_for_proxy_credentials()

    def _ask_for_proxy_credentials(self) -> None:
        """Show the proxy sign-in window when the last proxy answered 407."""
        network = self._network_access
        address = network.proxy_needing_credentials if network is not None else None
        if address is None or self.proxy_login_dialog is not None:
            return
        dialog = ProxyLoginDialog(address)
        dialog.submitted.connect(self._on_proxy_credentials)
        dialog.finished.connect(self._on_proxy_login_closed)
        self.proxy_login_dialog = dialog
        dialog.show()
        dialog.raise_()
        dialog.activateWindow()

    def _on_proxy_credentials(self, address: str, user: str, password: str) -> None:
        self.proxy_credentials.save(address, user, password)
        if self.connection is not None:
            self.connection.set_network(self.network_access())
            self.connection.wake()

    def _on_proxy_login_closed(self, _result: int) -> None:
        dialog, self.proxy_login_dialog = self.proxy_login_dialog, None
        if dialog is not None:
            dialog.deleteLater()

    def _on_connection_state(self, source: ConnectionService, state: str) -> None:
        if source is self.connection:  # not a retired connection closing late
            if state == "connected":
                self._connection_problem = ""
            self._record_connection(state)

    def _record_connection(self, state: str) -> None:
        """Remember the connection state (and since when) for the status window and
        ``deskbell --status``, which reads it from the data folder."""
        signed_out = state == "signed_out"
        server = "" if signed_out else self.server_url
        agent = self.account.email if self.account is not None and not signed_out else ""
        problem = "" if state in ("connected", "signed_out") else self._connection_problem
        current = self.connection_status
        if current is not None and (current.state, current.server_url) == (state, server):
            if (current.agent, current.problem) == (agent, problem):
                return
            status = ConnectionStatus(state, current.since, server, agent, current.pid, problem)
        else:
            status = replace(ConnectionStatus.now(state, server, agent), problem=problem)
        self.connection_status = status
        save_connection_status(self.env.data_dir, status)
        if self.status_window is not None:
            self.status_window.set_report(self.health_report())

    def _check_for_update(self, server_version: str) -> None:
        """Compare with the server's version, unless IT's policy turned checks off."""
        if self.settings.update_check_disabled:
            self.update_notice = None
            return
        notice = update_notice(__version__, server_version)
        if notice is not None and notice != self.update_notice:
            log.info("%s", notice)
        self.update_notice = notice

    def health_report(self) -> HealthReport:
        """What the About/Status window shows right now."""
        connection = self.connection_status or ConnectionStatus.now(
            "signed_out" if self.connection is None else "connecting", self.server_url
        )
        return gather_health(
            self.settings,
            self.env.policy_sources,
            connection=connection,
            notifications=notifications_check(self._toast_availability),
            keyring=keyring_check(self.tokens),
            checks=[Check("Updates", "warn", self.update_notice)] if self.update_notice else [],
        )

    def show_status(self) -> None:
        """Show the About/Status window (tray menu → About Deskbell…)."""
        window = self.status_window
        if window is None:
            window = StatusWindow(self.health_report())
            window.finished.connect(self._on_status_closed)
            self.status_window = window
        else:
            window.set_report(self.health_report())
        # Focus Assist and the OS's switches change during the day: ask again.
        self.tasks.spawn(self.check_toasts(), "checking notifications")
        window.show()
        window.raise_()
        window.activateWindow()

    def _on_status_closed(self, _result: int) -> None:
        window, self.status_window = self.status_window, None
        if window is not None:
            window.deleteLater()

    # --------------------------------------------------------------- helpers

    def _on_open_requested(self) -> None:
        if self.connection is None:
            self.show_sign_in()

    async def _report_toast_availability(self) -> None:
        availability = await self.check_toasts()
        if not availability.ok or availability.reason:
            log.warning("%s", availability.reason)

    async def check_toasts(self) -> ToastAvailability:
        """Ask the toaster and the OS's settings whether pop-ups show; keep the answer
        for the status view (and refresh an open status window)."""
        availability = await self.controller.toaster.available()
        if self.env.notification_settings is not None:
            availability = await self.env.notification_settings.check(availability)
        self._toast_availability = availability
        if self.status_window is not None:
            self.status_window.set_report(self.health_report())
        return availability

    def _watch_network(self) -> None:
        if not self.env.watch_network:
            return
        from PySide6.QtNetwork import QNetworkInformation

        if not QNetworkInformation.loadDefaultBackend():
            log.info("no network information backend: reconnects rely on backoff and pings")
            return
        info = QNetworkInformation.instance()
        if info is None:
            return
        self._network = info
        info.reachabilityChanged.connect(self.network_reachability_changed)

    @property
    def network_information(self) -> Any:
        """Qt's QNetworkInformation when the platform has a backend, else None."""
        return self._network

    def network_reachability_changed(self, reachability: Any) -> None:
        """The network came back (Qt says Online): reconnect now, not after the backoff."""
        from PySide6.QtNetwork import QNetworkInformation

        if reachability == QNetworkInformation.Reachability.Online and self.connection:
            log.info("network is back: reconnecting now")
            self.connection.network_changed()


def _server_url_or_empty(text: str) -> str:
    """The settings window's check: empty means "not set", anything else must be a URL."""
    return normalize_server_url(text) if text.strip() else ""


async def run_app(app: DeskbellApp, quit_requested: Callable[[], bool] = lambda: False) -> int:
    """Start ``app``, wait for Quit, shut down; the exit status.

    ``quit_requested`` says whether Ctrl+C or SIGTERM came during start-up, before
    this loop's own handlers took over: then the app quits at once.
    """
    loop = asyncio.get_running_loop()
    with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
        # Ctrl+C in a terminal (the demo) quits cleanly.
        loop.add_signal_handler(signal.SIGINT, app.quit)
        loop.add_signal_handler(signal.SIGTERM, app.quit)
    app.start()
    if quit_requested():
        app.quit()
    await app.wait_for_quit()
    await app.shutdown()
    return 0
