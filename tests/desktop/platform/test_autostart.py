"""Autostart: real XDG files in a temp HOME, the Run key with a recording registry."""

from __future__ import annotations

import json
import plistlib
import shutil
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from desktop_agent.platform.autostart import (
    RUN_KEY_PATH,
    MacLaunchAgent,
    WindowsRunKey,
    XdgAutostart,
    autostart_for_platform,
    default_autostart_dir,
    desktop_entry,
    launch_agent_plist,
    run_key_value,
)
from tests.support.waiting import wait_until

COMMAND = ["/opt/deskbell/deskbell"]


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    return tmp_path


def test_xdg_autostart_goes_to_dot_config_autostart_by_default(home: Path) -> None:
    assert default_autostart_dir() == home / ".config" / "autostart"
    entry = XdgAutostart(COMMAND)
    assert not entry.is_enabled()
    entry.enable()
    assert entry.is_enabled()
    assert (
        (home / ".config/autostart/deskbell.desktop")
        .read_text()
        .startswith("[Desktop Entry]\nType=Application\nName=Deskbell\n")
    )


def test_xdg_config_home_is_respected(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / "cfg"))
    XdgAutostart(COMMAND).enable()
    assert (home / "cfg/autostart/deskbell.desktop").is_file()


def test_enable_twice_and_disable_twice_are_harmless(home: Path) -> None:
    entry = XdgAutostart(COMMAND, home / "autostart")
    entry.enable()
    entry.enable()
    entry.disable()
    entry.disable()
    assert not entry.is_enabled()
    assert list((home / "autostart").iterdir()) == []


def test_entry_disabled_in_place_by_the_desktop_counts_as_off(home: Path) -> None:
    entry = XdgAutostart(COMMAND, home)
    entry.enable()
    entry.path.write_text(entry.path.read_text() + "Hidden=true\n")
    assert not entry.is_enabled()


@pytest.mark.skipif(shutil.which("gio") is None, reason="needs gio (libglib2.0-bin)")
def test_desktop_entry_exec_line_survives_glibs_parser(tmp_path: Path) -> None:
    folder = tmp_path / "a folder with spaces"
    folder.mkdir()
    script = folder / "dump argv.py"
    script.write_text("import json, sys\nopen(sys.argv[1], 'w').write(json.dumps(sys.argv[2:]))\n")
    out = folder / "argv.json"
    tricky = ["--server", "wss://x/?a=1&b=2", 'q "x" `y` $HOME \\ 100%', "deskbell://c/1"]
    entry = XdgAutostart([sys.executable, str(script), str(out), *tricky], tmp_path)
    entry.enable()
    subprocess.run(["gio", "launch", str(entry.path)], check=True, timeout=30)
    wait_until(lambda: out.is_file() and out.stat().st_size > 0, what="the launched command")
    assert json.loads(out.read_text()) == tricky


def test_desktop_entry_needs_a_command() -> None:
    with pytest.raises(ValueError):
        desktop_entry([])


def test_run_key_value_quotes_paths_with_spaces() -> None:
    assert run_key_value([r"C:\Program Files\Deskbell\deskbell.exe", "--server", "wss://x"]) == (
        r'"C:\Program Files\Deskbell\deskbell.exe" --server wss://x'
    )


class RecordingRegistry:
    """Stands in for `winreg`: a dict of keys, each a dict of values."""

    HKEY_CURRENT_USER = "HKCU"
    KEY_READ, KEY_SET_VALUE, REG_SZ = 1, 2, 1

    def __init__(self) -> None:
        self.keys: dict[str, dict[str, tuple[int, str]]] = {}

    def _key(self, root: str, path: str, create: bool) -> Any:
        name = f"{root}\\{path}"
        if name not in self.keys:
            if not create:
                raise FileNotFoundError(name)
            self.keys[name] = {}
        values = self.keys[name]

        class Handle(SimpleNamespace):
            def __enter__(self) -> dict[str, tuple[int, str]]:
                return values

            def __exit__(self, *exc: object) -> None:
                return None

        return Handle()

    def OpenKey(self, root: str, path: str, reserved: int, access: int) -> Any:
        return self._key(root, path, create=False)

    def CreateKeyEx(self, root: str, path: str, reserved: int, access: int) -> Any:
        return self._key(root, path, create=True)

    def QueryValueEx(self, key: dict[str, tuple[int, str]], name: str) -> tuple[str, int]:
        if name not in key:
            raise FileNotFoundError(name)
        kind, value = key[name]
        return value, kind

    def SetValueEx(
        self, key: dict[str, tuple[int, str]], name: str, reserved: int, kind: int, value: str
    ) -> None:
        key[name] = (kind, value)

    def DeleteValue(self, key: dict[str, tuple[int, str]], name: str) -> None:
        if name not in key:
            raise FileNotFoundError(name)
        del key[name]


def test_windows_run_key_writes_and_removes_the_hkcu_value() -> None:
    registry = RecordingRegistry()
    run = WindowsRunKey([r"C:\Program Files\Deskbell\deskbell.exe"], registry=registry)
    assert not run.is_enabled()
    run.disable()  # nothing there yet: fine
    run.enable()
    assert run.is_enabled()
    assert registry.keys[f"HKCU\\{RUN_KEY_PATH}"] == {
        "Deskbell": (1, r'"C:\Program Files\Deskbell\deskbell.exe"')
    }
    run.disable()
    assert not run.is_enabled()


def test_mac_launch_agent_plist_runs_the_command_at_load(home: Path) -> None:
    agent = MacLaunchAgent(["/Applications/Deskbell.app/Contents/MacOS/Deskbell"])
    agent.enable()
    assert agent.path == home / "Library/LaunchAgents/dev.deskbell.Deskbell.plist"
    plist = plistlib.loads(agent.path.read_bytes())
    assert plist["ProgramArguments"] == ["/Applications/Deskbell.app/Contents/MacOS/Deskbell"]
    assert plist["RunAtLoad"] is True
    assert plist["Label"] == "dev.deskbell.Deskbell"
    agent.disable()
    assert not agent.is_enabled()


def test_launch_agent_plist_is_xml() -> None:
    assert launch_agent_plist(COMMAND).startswith(b"<?xml")


def test_platform_picks_the_native_mechanism(home: Path) -> None:
    assert isinstance(autostart_for_platform(COMMAND, "linux"), XdgAutostart)
    assert isinstance(autostart_for_platform(COMMAND, "darwin"), MacLaunchAgent)


def test_turning_off_hides_the_system_wide_entry_the_package_installs(home: Path) -> None:
    system = home / "etc-xdg-autostart"
    system.mkdir()
    (system / "deskbell.desktop").write_text(desktop_entry(COMMAND))
    entry = XdgAutostart(COMMAND, home / "autostart", system_dirs=[system])
    assert entry.is_enabled()  # the package's entry starts it for everyone
    entry.disable()
    assert not entry.is_enabled()
    assert "Hidden=true" in entry.path.read_text().splitlines()
    entry.enable()
    assert entry.is_enabled()
    assert "Hidden=true" not in entry.path.read_text()


def test_without_a_system_entry_turning_off_removes_the_users_file(home: Path) -> None:
    entry = XdgAutostart(COMMAND, home / "autostart", system_dirs=[home / "none"])
    entry.enable()
    entry.disable()
    assert not entry.path.exists()
    assert not entry.is_enabled()
