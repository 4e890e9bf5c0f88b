"""Launch Deskbell at login: XDG autostart (Linux), HKCU Run key (Windows), LaunchAgent (macOS).

The file contents are built by pure functions (`desktop_entry`, `run_key_value`,
`launch_agent_plist`) so they can be checked on any OS; the classes only write, read and
remove them. Paths and the registry module are constructor arguments, so tests use a
temporary HOME and a recording registry.
"""

from __future__ import annotations

import importlib
import os
import plistlib
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol

from desktop_agent import APP_ID

APP_NAME = "Deskbell"
DESKTOP_FILE_NAME = "deskbell.desktop"
RUN_KEY_PATH = r"Software\Microsoft\Windows\CurrentVersion\Run"
COMMENT = "Helpdesk chat notifications in your tray"


class Autostart(Protocol):
    """Turns launch-at-login on or off for the current user."""

    def is_enabled(self) -> bool:
        """True when Deskbell will start at the next login."""

    def enable(self) -> None:
        """Start Deskbell at login from now on (idempotent)."""

    def disable(self) -> None:
        """Stop starting Deskbell at login (idempotent)."""


# -- pure builders ----------------------------------------------------------------------

_EXEC_RESERVED = set(" \t\n\"'\\><~|&;$*?#()`")


def _exec_argument(argument: str) -> str:
    """Quote one Exec argument by the Desktop Entry spec (quoting + string escapes)."""
    argument = argument.replace("%", "%%")  # field codes start with %
    if argument and not _EXEC_RESERVED & set(argument):
        quoted = argument
    else:
        inner = "".join("\\" + ch if ch in '"`$\\' else ch for ch in argument)
        quoted = f'"{inner}"'
    # Exec is a string value: a backslash is itself written as "\\".
    return quoted.replace("\\", "\\\\")


def desktop_entry(
    command: Sequence[str], *, name: str = APP_NAME, icon: str = "deskbell", comment: str = COMMENT
) -> str:
    """The text of an XDG autostart .desktop file that runs `command` (argv) at login."""
    if not command:
        raise ValueError("command must name the executable")
    exec_line = " ".join(_exec_argument(argument) for argument in command)
    return (
        "[Desktop Entry]\n"
        "Type=Application\n"
        f"Name={name}\n"
        f"Comment={comment}\n"
        f"Exec={exec_line}\n"
        f"Icon={icon}\n"
        "Terminal=false\n"
        "Categories=Network;Chat;\n"
        "X-GNOME-Autostart-enabled=true\n"
    )


def run_key_value(command: Sequence[str]) -> str:
    """The HKCU Run value for `command`, quoted the way Windows splits command lines."""
    if not command:
        raise ValueError("command must name the executable")
    return subprocess.list2cmdline(list(command))


def launch_agent_plist(command: Sequence[str], *, label: str = APP_ID) -> bytes:
    """The XML of a per-user LaunchAgent that runs `command` (argv) at login."""
    if not command:
        raise ValueError("command must name the executable")
    return plistlib.dumps(
        {
            "Label": label,
            "ProgramArguments": list(command),
            "RunAtLoad": True,
            "ProcessType": "Interactive",
            "LimitLoadToSessionType": "Aqua",
        }
    )


def _write_atomically(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


# -- per-OS implementations -------------------------------------------------------------


def system_autostart_dirs() -> list[Path]:
    """Each folder of $XDG_CONFIG_DIRS (default /etc/xdg) with /autostart appended."""
    dirs = os.environ.get("XDG_CONFIG_DIRS") or "/etc/xdg"
    return [Path(d) / "autostart" for d in dirs.split(":") if d]


def default_autostart_dir() -> Path:
    """$XDG_CONFIG_HOME/autostart, or ~/.config/autostart."""
    config_home = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(config_home) / "autostart"


class XdgAutostart:
    """A .desktop file in the XDG autostart folder (GNOME, KDE, Xfce, ...).

    The .deb installs a system-wide entry (``/etc/xdg/autostart/deskbell.desktop``).
    By the XDG autostart spec a user's file of the same name replaces it, so turning
    launch at login off writes a ``Hidden=true`` entry while a system entry exists
    (deleting the user's file would let the system one start Deskbell again).

    Args:
        system_dirs: the system autostart folders (default: each of
            ``$XDG_CONFIG_DIRS``/autostart, else /etc/xdg/autostart).
    """

    def __init__(
        self,
        command: Sequence[str],
        autostart_dir: Path | None = None,
        system_dirs: Sequence[Path] | None = None,
    ) -> None:
        self.command = list(command)
        self.path = (autostart_dir or default_autostart_dir()) / DESKTOP_FILE_NAME
        self.system_dirs = list(system_dirs) if system_dirs is not None else system_autostart_dirs()

    def _system_entry(self) -> Path | None:
        for folder in self.system_dirs:
            if (folder / DESKTOP_FILE_NAME).is_file():
                return folder / DESKTOP_FILE_NAME
        return None

    @staticmethod
    def _entry_enabled(path: Path) -> bool | None:
        try:
            text = path.read_text(encoding="utf-8")
        except OSError:
            return None
        lines = {line.strip() for line in text.splitlines()}
        # A desktop may disable an entry in place rather than delete it.
        return not ({"Hidden=true", "X-GNOME-Autostart-enabled=false"} & lines)

    def is_enabled(self) -> bool:
        mine = self._entry_enabled(self.path)
        if mine is not None:
            return mine
        system = self._system_entry()
        return bool(system is not None and self._entry_enabled(system))

    def enable(self) -> None:
        _write_atomically(self.path, desktop_entry(self.command).encode("utf-8"))

    def disable(self) -> None:
        if self._system_entry() is None:
            self.path.unlink(missing_ok=True)
            return
        hidden = desktop_entry(self.command) + "Hidden=true\n"
        _write_atomically(self.path, hidden.encode("utf-8"))


class WindowsRunKey:
    """A value under HKCU\\...\\CurrentVersion\\Run.

    Args:
      registry: the `winreg` module (imported only on Windows) or a stand-in with the
        same functions, for tests.
    """

    def __init__(
        self, command: Sequence[str], *, value_name: str = APP_NAME, registry: Any = None
    ) -> None:
        # winreg exists only on Windows; imported by name so other OSes can load this module.
        self._registry: Any = registry or importlib.import_module("winreg")
        self.command = list(command)
        self.value_name = value_name

    def is_enabled(self) -> bool:
        reg = self._registry
        try:
            with reg.OpenKey(reg.HKEY_CURRENT_USER, RUN_KEY_PATH, 0, reg.KEY_READ) as key:
                reg.QueryValueEx(key, self.value_name)
        except FileNotFoundError:
            return False
        return True

    def enable(self) -> None:
        reg = self._registry
        with reg.CreateKeyEx(reg.HKEY_CURRENT_USER, RUN_KEY_PATH, 0, reg.KEY_SET_VALUE) as key:
            reg.SetValueEx(key, self.value_name, 0, reg.REG_SZ, run_key_value(self.command))

    def disable(self) -> None:
        reg = self._registry
        try:
            with reg.OpenKey(reg.HKEY_CURRENT_USER, RUN_KEY_PATH, 0, reg.KEY_SET_VALUE) as key:
                reg.DeleteValue(key, self.value_name)
        except FileNotFoundError:
            pass


class MacLaunchAgent:
    """~/Library/LaunchAgents/<label>.plist, loaded by launchd at the next login."""

    def __init__(
        self, command: Sequence[str], *, label: str = APP_ID, agents_dir: Path | None = None
    ) -> None:
        self.command = list(command)
        self.label = label
        self.path = (agents_dir or Path.home() / "Library" / "LaunchAgents") / f"{label}.plist"

    def is_enabled(self) -> bool:
        return self.path.is_file()

    def enable(self) -> None:
        _write_atomically(self.path, launch_agent_plist(self.command, label=self.label))

    def disable(self) -> None:
        self.path.unlink(missing_ok=True)


def autostart_for_platform(command: Sequence[str], platform: str = sys.platform) -> Autostart:
    """The Autostart implementation for `platform` (a sys.platform value)."""
    if platform == "win32":
        return WindowsRunKey(command)
    if platform == "darwin":
        return MacLaunchAgent(command)
    return XdgAutostart(command)
