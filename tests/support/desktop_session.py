"""A private desktop session for tests: D-Bus, Xvfb, dunst and gnome-keyring.

Every service runs in a temporary folder and on a private session bus whose config has
no service directories, so nothing is ever auto-started (with the stock session config
D-Bus would start the installed dunst, which dies without a display). Each start waits
for a readiness condition -- an address printed by the daemon, a display number written
to a pipe, a bus name gaining an owner -- and never for a fixed time.

Use `DesktopSession` as a context manager, or the pytest fixtures at the bottom of this
module (import them into a conftest.py)::

    with DesktopSession(tmp_path, display=True, notifications=True) as session:
        subprocess.run(["notify-send", "hi"], env=session.env)
        with session.activated():      # os.environ points at the private session
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

NOTIFICATIONS_BUS_NAME = "org.freedesktop.Notifications"
SECRETS_BUS_NAME = "org.freedesktop.secrets"
KEYRING_PASSWORD = "deskbell-test"  # a throwaway keyring in a temp HOME
READY_TIMEOUT = 15.0

_BUS_CONFIG = """<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <!-- Deliberately no <servicedir> and no <standard_session_servicedirs/>:
       a test starts every service itself, nothing is activated behind its back. -->
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"""

# Long timeouts so a toast is still on screen when the test acts on it; a context menu
# command that picks an action by its label (see DesktopSession.dunst_context).
_DUNSTRC = """[global]
    font = Monospace 8
    markup = full
    format = "<b>%s</b>\\n%b"
    show_indicators = no
    sticky_history = yes
    history_length = 50
    dmenu = {dmenu}
    mouse_left_click = do_action, close_current

[urgency_low]
    timeout = 0
[urgency_normal]
    timeout = 0
[urgency_critical]
    timeout = 0
"""

_DMENU_SCRIPT = """#!/bin/sh
# Stand-in for dmenu: dunst writes one menu entry per line to stdin; answer with the
# first entry that contains the label in $DESKBELL_DMENU_PICK_FILE.
pick=$(cat "{pick_file}")
grep -F -m1 -- "$pick"
"""


class DesktopServiceError(RuntimeError):
    """A desktop service did not start or did not become ready in time."""


def missing_binaries(*names: str) -> list[str]:
    """Return the names in `names` that are not on PATH."""
    return [name for name in names if shutil.which(name) is None]


def require_binaries(*names: str) -> None:
    """Skip the calling test (or fixture) when any of the binaries is missing."""
    missing = missing_binaries(*names)
    if missing:
        pytest.skip(
            f"desktop test needs {', '.join(missing)} on PATH (Debian packages: "
            "dbus-daemon, xvfb, dunst, dbus-bin, gnome-keyring)"
        )


def required_binaries(display_server: bool, notifications: bool, keyring: bool) -> list[str]:
    """The executables a DesktopSession with these options starts."""
    names = ["dbus-daemon"]
    if display_server or notifications:
        names.append("Xvfb")
    if notifications:
        names += ["dunst", "dunstctl"]
    if keyring:
        names.append("gnome-keyring-daemon")
    return names


@dataclass
class _Service:
    name: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-4000:]
        except OSError:
            return ""


def _stop(service: _Service, timeout: float = 5.0) -> None:
    """Terminate a service and reap it; kill it if it ignores SIGTERM."""
    proc = service.process
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout)
    for stream in (proc.stdin, proc.stdout, proc.stderr):
        if stream is not None:
            stream.close()


def _read_line(service: _Service, timeout: float) -> str:
    """Read one line the service writes to its stdout pipe, failing if it exits first."""
    assert service.process.stdout is not None
    fd = service.process.stdout.fileno()
    deadline = time.monotonic() + timeout
    data = b""
    while not data.endswith(b"\n"):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise DesktopServiceError(
                f"{service.name} printed nothing in {timeout} s\n{service.log()}"
            )
        ready, _, _ = select.select([fd], [], [], remaining)
        if not ready:
            continue
        chunk = os.read(fd, 1)
        if not chunk:
            raise DesktopServiceError(
                f"{service.name} exited with {service.process.wait()}"
                f" before it was ready\n{service.log()}"
            )
        data += chunk
    return data.decode().strip()


async def _wait_for_name_owner_async(
    address: str, name: str, service: _Service, timeout: float
) -> None:
    from dbus_fast import Message, MessageType
    from dbus_fast.aio import MessageBus

    bus = await MessageBus(bus_address=address).connect()
    try:
        owned = asyncio.Event()

        def on_message(message: Message) -> None:
            if (
                message.message_type == MessageType.SIGNAL
                and message.member == "NameOwnerChanged"
                and message.body[0] == name
                and message.body[2]
            ):
                owned.set()

        bus.add_message_handler(on_message)
        await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="AddMatch",
                signature="s",
                body=[
                    f"type='signal',interface='org.freedesktop.DBus',"
                    f"member='NameOwnerChanged',arg0='{name}'"
                ],
            )
        )
        reply = await bus.call(
            Message(
                destination="org.freedesktop.DBus",
                path="/org/freedesktop/DBus",
                interface="org.freedesktop.DBus",
                member="NameHasOwner",
                signature="s",
                body=[name],
            )
        )
        if reply is not None and reply.body and reply.body[0]:
            return
        deadline = time.monotonic() + timeout
        # Wake up now and then only to notice a service that died before owning its name.
        while not owned.is_set():
            if service.process.poll() is not None:
                raise DesktopServiceError(
                    f"{service.name} exited with {service.process.returncode} before owning "
                    f"{name}\n{service.log()}"
                )
            if time.monotonic() > deadline:
                raise DesktopServiceError(
                    f"{service.name} did not own {name} in {timeout} s\n{service.log()}"
                )
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(owned.wait(), 0.2)
    finally:
        bus.disconnect()


def wait_for_name_owner(
    address: str, name: str, service: _Service, timeout: float = READY_TIMEOUT
) -> None:
    """Block until `name` has an owner on the bus at `address`.

    Runs its own event loop in a helper thread, so it is safe to call from code that is
    itself inside a running asyncio loop (a fixture used by an async test).
    """
    errors: list[BaseException] = []

    def run() -> None:
        try:
            asyncio.run(_wait_for_name_owner_async(address, name, service, timeout))
        except BaseException as exc:  # handed to the caller's thread
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"wait-{name}")
    thread.start()
    thread.join()
    if errors:
        raise errors[0]


@dataclass
class DesktopSession:
    """A private session bus, optionally with Xvfb, dunst and gnome-keyring.

    Attributes after `start()`:
      env: the complete environment for child processes (a copy of os.environ with
        DBUS_SESSION_BUS_ADDRESS, DISPLAY, HOME and XDG_* pointing into the session).
      dbus_address: the private bus address.
      display: the X display (":N") or None without Xvfb.
      home: the temporary HOME.
    """

    root: Path
    display_server: bool = False
    notifications: bool = False
    keyring: bool = False
    env: dict[str, str] = field(default_factory=dict)
    dbus_address: str = ""
    display: str | None = None
    _services: dict[str, _Service] = field(default_factory=dict)

    @property
    def home(self) -> Path:
        return self.root / "home"

    def __enter__(self) -> DesktopSession:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def required_binaries(self) -> list[str]:
        """The executables this session needs, given its options."""
        return required_binaries(self.display_server, self.notifications, self.keyring)

    def start(self) -> None:
        """Start every requested service and wait until each one is ready.

        Raises DesktopServiceError (after stopping what had started) when one fails.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        self._prepare_home()
        try:
            self._start_bus()
            if self.display_server or self.notifications:
                self._start_xvfb()
            if self.notifications:
                self.start_notification_server()
            if self.keyring:
                self._start_keyring()
        except BaseException:
            self.stop()
            raise

    def stop(self) -> None:
        """Stop all services, newest first. Safe to call twice."""
        for name in reversed(list(self._services)):
            _stop(self._services.pop(name))

    @contextlib.contextmanager
    def activated(self) -> Iterator[None]:
        """Point this process's os.environ at the session while the block runs.

        Libraries that read the session bus address or DISPLAY from the environment at
        connect time (desktop-notifier, keyring's Secret Service backend) then talk to
        the private services.
        """
        keys = (
            "DBUS_SESSION_BUS_ADDRESS",
            "DISPLAY",
            "HOME",
            "XDG_RUNTIME_DIR",
            "XDG_CONFIG_HOME",
            "XDG_DATA_HOME",
            "XDG_CACHE_HOME",
        )
        saved = {key: os.environ.get(key) for key in keys}
        try:
            for key in keys:
                if key in self.env:
                    os.environ[key] = self.env[key]
                else:
                    os.environ.pop(key, None)
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value

    # -- notification server -------------------------------------------------------

    def start_notification_server(self) -> None:
        """Start dunst on the session's display and bus; return when it owns its name."""
        if "dunst" in self._services:
            return
        if self.display is None:
            raise DesktopServiceError("dunst needs the session's Xvfb display")
        config_dir = self.root / "dunst"
        config_dir.mkdir(exist_ok=True)
        pick_file = config_dir / "pick"
        pick_file.write_text("")
        dmenu = config_dir / "pick-action"
        dmenu.write_text(_DMENU_SCRIPT.format(pick_file=pick_file))
        dmenu.chmod(0o755)
        dunstrc = config_dir / "dunstrc"
        dunstrc.write_text(_DUNSTRC.format(dmenu=dmenu))
        service = self._spawn("dunst", ["dunst", "-config", str(dunstrc)])
        wait_for_name_owner(self.dbus_address, NOTIFICATIONS_BUS_NAME, service)

    def stop_notification_server(self) -> None:
        """Stop dunst; the bus then has no notification server."""
        service = self._services.pop("dunst", None)
        if service is not None:
            _stop(service)

    def dunstctl(self, *args: str) -> str:
        """Run dunstctl against this session's dunst; return its stdout."""
        result = subprocess.run(
            ["dunstctl", *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        )
        return result.stdout

    def dunst_displayed(self) -> int:
        """How many toasts dunst has on screen now."""
        for line in self.dunstctl("count").splitlines():
            label, _, value = line.partition(":")
            if label.strip() == "Currently displayed":
                return int(value)
        raise DesktopServiceError("dunstctl count printed no 'Currently displayed' line")

    def dunst_context(self, label: str) -> None:
        """Pick the context-menu action whose entry contains `label` on the newest toast.

        dunst hands the menu to the `dmenu` command of the generated dunstrc, a script
        that answers with the first entry containing `label`.
        """
        (self.root / "dunst" / "pick").write_text(label)
        self.dunstctl("context")

    # -- internals -----------------------------------------------------------------

    def _prepare_home(self) -> None:
        runtime = self.root / "runtime"
        for folder in (
            self.home,
            runtime,
            self.home / ".config",
            self.home / ".local/share",
            self.home / ".cache",
        ):
            folder.mkdir(parents=True, exist_ok=True)
        runtime.chmod(0o700)
        self.env = dict(os.environ)
        self.env.update(
            {
                "HOME": str(self.home),
                "XDG_RUNTIME_DIR": str(runtime),
                "XDG_CONFIG_HOME": str(self.home / ".config"),
                "XDG_DATA_HOME": str(self.home / ".local/share"),
                "XDG_CACHE_HOME": str(self.home / ".cache"),
            }
        )
        self.env.pop("DISPLAY", None)
        self.env.pop("WAYLAND_DISPLAY", None)
        self.env.pop("DBUS_SESSION_BUS_ADDRESS", None)

    def _spawn(
        self,
        name: str,
        argv: list[str],
        *,
        stdout_pipe: bool = False,
        stdin_data: bytes | None = None,
        pass_fds: tuple[int, ...] = (),
    ) -> _Service:
        log_path = self.root / f"{name}.log"
        with log_path.open("wb") as log:
            process = subprocess.Popen(
                argv,
                env=self.env,
                stderr=log,
                stdout=subprocess.PIPE if stdout_pipe else log,
                stdin=subprocess.PIPE if stdin_data is not None else subprocess.DEVNULL,
                pass_fds=pass_fds,
                start_new_session=True,
            )
        if stdin_data is not None:
            assert process.stdin is not None
            process.stdin.write(stdin_data)
            process.stdin.close()
        service = _Service(name, process, log_path)
        self._services[name] = service
        return service

    def _start_bus(self) -> None:
        config = self.root / "bus.conf"
        config.write_text(_BUS_CONFIG.format(socket=self.root / "bus"))
        service = self._spawn(
            "dbus-daemon",
            ["dbus-daemon", f"--config-file={config}", "--nofork", "--print-address=1"],
            stdout_pipe=True,
        )
        # The daemon prints its address once it is listening.
        self.dbus_address = _read_line(service, READY_TIMEOUT)
        self.env["DBUS_SESSION_BUS_ADDRESS"] = self.dbus_address

    def _start_xvfb(self) -> None:
        read_fd, write_fd = os.pipe()
        try:
            service = self._spawn(
                "Xvfb",
                [
                    "Xvfb",
                    "-displayfd",
                    str(write_fd),
                    "-screen",
                    "0",
                    "1280x800x24",
                    "-nolisten",
                    "tcp",
                    "-noreset",
                ],
                pass_fds=(write_fd,),
            )
        finally:
            os.close(write_fd)
        # Xvfb writes the display number it picked to the fd once it accepts clients.
        with os.fdopen(read_fd, "rb") as pipe:
            deadline = time.monotonic() + READY_TIMEOUT
            number = b""
            while not number.endswith(b"\n"):
                ready, _, _ = select.select([pipe], [], [], max(0.0, deadline - time.monotonic()))
                chunk = os.read(pipe.fileno(), 16) if ready else b""
                if not chunk:
                    raise DesktopServiceError(f"Xvfb did not report a display\n{service.log()}")
                number += chunk
        self.display = f":{number.decode().strip()}"
        self.env["DISPLAY"] = self.display

    def _start_keyring(self) -> None:
        # --unlock reads the new login keyring's password from stdin (no trailing newline);
        # without it the first access fails with a dismissed prompt.
        service = self._spawn(
            "gnome-keyring-daemon",
            ["gnome-keyring-daemon", "--foreground", "--unlock", "--components=secrets"],
            stdin_data=KEYRING_PASSWORD.encode(),
        )
        wait_for_name_owner(self.dbus_address, SECRETS_BUS_NAME, service)


@contextlib.contextmanager
def desktop_session(
    *, display_server: bool = False, notifications: bool = False, keyring: bool = False
) -> Iterator[DesktopSession]:
    """Start a DesktopSession in a fresh temporary folder; skip if a binary is missing."""
    require_binaries(*required_binaries(display_server, notifications, keyring))
    # A short root keeps the bus socket path well under the 108-byte unix socket limit.
    with (
        tempfile.TemporaryDirectory(prefix="deskbell-session-") as root,
        DesktopSession(Path(root), display_server, notifications, keyring) as session,
    ):
        yield session


# -- pytest fixtures (import the ones you need into a conftest.py) ---------------------


@pytest.fixture(scope="module")
def notification_session() -> Iterator[DesktopSession]:
    """Private bus + Xvfb + dunst, shared by the tests of one module."""
    with desktop_session(notifications=True) as session:
        yield session


@pytest.fixture(scope="module")
def keyring_session() -> Iterator[DesktopSession]:
    """Private bus + unlocked gnome-keyring (Secret Service), shared by one module."""
    with desktop_session(keyring=True) as session:
        yield session


@pytest.fixture(scope="module")
def display_session() -> Iterator[DesktopSession]:
    """Private bus + Xvfb (for Qt on xcb: set QT_QPA_PLATFORM=xcb in the child env)."""
    with desktop_session(display_server=True) as session:
        yield session


@pytest.fixture
def bus_session() -> Iterator[DesktopSession]:
    """A bare private session bus with no services on it, for one test."""
    with desktop_session() as session:
        yield session
