"""A stand-in for Windows' ``winreg`` holding keys in memory, for the policy tests.

It offers the functions and constants :mod:`desktop_agent.platform.policy_sources` and
:mod:`desktop_agent.platform.autostart` use, with winreg's behaviour where they rely on
it: ``OpenKey`` raises FileNotFoundError for a missing key, ``EnumValue`` raises OSError
past the last value, handles are context managers.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

HKEY_CURRENT_USER = "HKCU"
HKEY_LOCAL_MACHINE = "HKLM"
KEY_READ = 0x20019
KEY_SET_VALUE = 0x0002
REG_SZ = 1
REG_EXPAND_SZ = 2
REG_BINARY = 3
REG_DWORD = 4
REG_MULTI_SZ = 7
REG_QWORD = 11


class _Handle:
    def __init__(self, values: dict[str, tuple[Any, int]]) -> None:
        self.values = values

    def __enter__(self) -> _Handle:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        return None


class FakeRegistry:
    """Keys by (hive, lower-case path) → {value name: (data, type)}."""

    HKEY_CURRENT_USER = HKEY_CURRENT_USER
    HKEY_LOCAL_MACHINE = HKEY_LOCAL_MACHINE
    KEY_READ = KEY_READ
    KEY_SET_VALUE = KEY_SET_VALUE
    REG_SZ = REG_SZ
    REG_DWORD = REG_DWORD
    REG_MULTI_SZ = REG_MULTI_SZ

    def __init__(self) -> None:
        self.keys: dict[tuple[str, str], dict[str, tuple[Any, int]]] = {}
        self.denied: set[tuple[str, str]] = set()

    def set(self, hive: str, path: str, name: str, data: Any, kind: int) -> None:
        self.keys.setdefault((hive, path.lower()), {})[name] = (data, kind)

    def OpenKey(self, hive: str, path: str, reserved: int = 0, access: int = KEY_READ) -> _Handle:
        if (hive, path.lower()) in self.denied:
            raise PermissionError(5, "Access is denied")
        try:
            return _Handle(self.keys[(hive, path.lower())])
        except KeyError:
            raise FileNotFoundError(2, "The system cannot find the file specified") from None

    def EnumValue(self, handle: _Handle, index: int) -> tuple[str, Any, int]:
        items = list(handle.values.items())
        if index >= len(items):
            raise OSError(259, "No more data is available")
        name, (data, kind) = items[index]
        return name, data, kind

    def QueryValueEx(self, handle: _Handle, name: str) -> tuple[Any, int]:
        try:
            return handle.values[name]
        except KeyError:
            raise FileNotFoundError(2, "The system cannot find the file specified") from None
