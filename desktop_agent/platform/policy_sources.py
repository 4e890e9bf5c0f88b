"""Where IT's policy and installer defaults come from on each OS.

Every source yields the same policy names (``ServerUrl``, ``LockServerUrl``,
``AutoStart``, ``ToastCategories``, ``BadgeScope``, ``DisableSignOut``,
``DisableUpdateCheck``, ``LogLevel``, ``MutedInboxes``, ``InboxSounds``,
``AwayWhenIdleMinutes``)
with the same meaning; :class:`~desktop_agent.core.settings.Settings` parses and
checks the values, so a registry DWORD ``1``, a plist ``<true/>`` and a TOML ``true``
all mean the same.

- Windows: policy in ``HKCU`` then ``HKLM`` ``\\SOFTWARE\\Policies\\Deskbell`` (machine
  policy wins, as Group Policy does); installer defaults (the MSI's ``SERVER_URL`` and
  ``AUTOSTART``) in ``HKLM\\SOFTWARE\\Deskbell``.
- macOS: managed preferences for the app id (a configuration profile), computer-wide
  ``/Library/Managed Preferences/<app id>.plist`` then the user's
  ``/Library/Managed Preferences/<user>/<app id>.plist``; installer defaults in
  ``/Library/Preferences/<app id>.plist`` (``defaults write`` by a deployment script).
- Linux: ``*.toml`` files in ``/etc/deskbell/policies`` (:class:`PolicyFolder`).

The parsing functions (:func:`reading_from_registry_values`, :func:`reading_from_plist`)
are pure, so all three formats are tested on any OS; the classes only fetch bytes or
registry values. The ``winreg`` module is a constructor argument for the same reason.
"""

from __future__ import annotations

import getpass
import importlib
import plistlib
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from desktop_agent import APP_ID
from desktop_agent.core.settings import (
    LINUX_POLICY_DIR,
    POLICY_NAMES,
    PolicyFolder,
    PolicySource,
    SettingsProblem,
    SourceReading,
)

POLICY_KEY = r"SOFTWARE\Policies\Deskbell"
"""Registry key (under HKLM and HKCU) that Group Policy writes; see the ADMX template."""
INSTALLER_KEY = r"SOFTWARE\Deskbell"
"""Registry key under HKLM where the MSI writes SERVER_URL and AUTOSTART."""
MANAGED_PREFERENCES_DIR = Path("/Library/Managed Preferences")
MAC_PREFERENCES_DIR = Path("/Library/Preferences")

# Value types of the Windows registry (winnt.h); fixed by the OS, the same in winreg.
REG_SZ = 1
REG_EXPAND_SZ = 2
REG_DWORD = 4
REG_MULTI_SZ = 7
REG_QWORD = 11

# Keys that macOS itself may add to a managed preferences file; they are not ours.
_MAC_HOUSEKEEPING_PREFIXES = ("Payload", "mcx_", "PolicyBanner")


@dataclass(frozen=True)
class SourceReport:
    """What one source holds, for ``deskbell --selftest``, ``--status`` and the status view.

    Attributes:
        location: where it was looked for (a folder, a file, a registry key).
        found: whether anything is there.
        names: the policy names it sets, sorted.
        problems: what could not be used, for a person.
    """

    location: str
    found: bool
    names: tuple[str, ...] = ()
    problems: tuple[str, ...] = field(default_factory=tuple)


# ------------------------------------------------------------------------- pure parsing


def reading_from_registry_values(
    values: Iterable[tuple[str, Any, int]], location: str
) -> SourceReading:
    """Turn registry values ``(name, data, type)`` into policy values.

    ``REG_SZ``/``REG_EXPAND_SZ`` give text, ``REG_DWORD``/``REG_QWORD`` numbers (0/1
    for booleans), ``REG_MULTI_SZ`` a list (``ToastCategories``). Names are matched
    without regard to case, as the registry does. Unknown names and other types are
    reported as problems, not used. An empty text value is left out: the MSI writes
    one for an installer property that was not given.
    """
    by_lower = {name.lower(): name for name in POLICY_NAMES}
    reading = SourceReading()
    for raw_name, data, kind in values:
        name = by_lower.get(raw_name.lower())
        if name is None:
            known = ", ".join(sorted(POLICY_NAMES))
            reading.problems.append(
                SettingsProblem(location, f"unknown policy (known: {known})", raw_name)
            )
            continue
        if kind in (REG_SZ, REG_EXPAND_SZ) and not str(data).strip():
            continue  # the MSI writes SERVER_URL="" when none was given: not set
        if kind in (REG_SZ, REG_EXPAND_SZ, REG_DWORD, REG_QWORD):
            reading.values[name] = data
        elif kind == REG_MULTI_SZ:
            reading.values[name] = [item for item in data if item]
        else:
            reading.problems.append(
                SettingsProblem(
                    location, "unsupported registry type (use REG_SZ or REG_DWORD)", name
                )
            )
    return reading


def reading_from_plist(data: bytes, location: str) -> SourceReading:
    """Turn a managed preferences plist (XML or binary) into policy values.

    Booleans, strings and arrays of strings are passed on as they are. A file that is
    not a plist dictionary is one problem; unknown keys are problems too, except the
    bookkeeping keys macOS adds (``Payload…``, ``mcx_…``).
    """
    reading = SourceReading()
    try:
        content = plistlib.loads(data)
    except (plistlib.InvalidFileException, ValueError, OverflowError) as exc:
        reading.problems.append(SettingsProblem(location, f"not a property list ({exc})"))
        return reading
    if not isinstance(content, dict):
        reading.problems.append(SettingsProblem(location, "expected a dictionary of policies"))
        return reading
    for name, value in content.items():
        if not isinstance(name, str) or name.startswith(_MAC_HOUSEKEEPING_PREFIXES):
            continue
        if name not in POLICY_NAMES:
            known = ", ".join(sorted(POLICY_NAMES))
            reading.problems.append(
                SettingsProblem(location, f"unknown policy (known: {known})", name)
            )
            continue
        reading.values[name] = value
    return reading


# --------------------------------------------------------------------------- sources


class RegistryPolicy:
    """Policy values of one registry key (Windows).

    Args:
        hive: ``"HKLM"`` or ``"HKCU"``.
        key: the key path under the hive.
        registry: the ``winreg`` module, or a stand-in with the same functions (tests).
    """

    def __init__(self, hive: str, key: str = POLICY_KEY, registry: Any = None) -> None:
        if hive not in ("HKLM", "HKCU"):
            raise ValueError("hive must be HKLM or HKCU")
        self.hive = hive
        self.key = key
        self._registry: Any = registry

    @property
    def location(self) -> str:
        return f"{self.hive}\\{self.key}"

    def _winreg(self) -> Any:
        if self._registry is None:
            # Only exists on Windows; imported by name so every OS can load this module.
            self._registry = importlib.import_module("winreg")
        return self._registry

    def read(self) -> SourceReading:
        reg = self._winreg()
        root = reg.HKEY_LOCAL_MACHINE if self.hive == "HKLM" else reg.HKEY_CURRENT_USER
        values: list[tuple[str, Any, int]] = []
        try:
            with reg.OpenKey(root, self.key, 0, reg.KEY_READ) as handle:
                index = 0
                while True:
                    try:
                        name, data, kind = reg.EnumValue(handle, index)
                    except OSError:  # ERROR_NO_MORE_ITEMS ends the enumeration
                        break
                    values.append((name, data, kind))
                    index += 1
        except FileNotFoundError:
            return SourceReading()
        except OSError as exc:
            reading = SourceReading()
            reading.problems.append(SettingsProblem(self.location, str(exc)))
            return reading
        return reading_from_registry_values(values, self.location)

    def exists(self) -> bool:
        reg = self._winreg()
        root = reg.HKEY_LOCAL_MACHINE if self.hive == "HKLM" else reg.HKEY_CURRENT_USER
        try:
            with reg.OpenKey(root, self.key, 0, reg.KEY_READ):
                return True
        except OSError:
            return False


class PlistPolicy:
    """Policy values of one property list file (macOS managed preferences).

    Args:
        path: the plist; missing means no policy.
    """

    def __init__(self, path: Path) -> None:
        self.path = Path(path)

    @property
    def location(self) -> str:
        return str(self.path)

    def read(self) -> SourceReading:
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return SourceReading()
        except OSError as exc:
            reading = SourceReading()
            reading.problems.append(SettingsProblem(self.location, str(exc)))
            return reading
        return reading_from_plist(data, self.location)

    def exists(self) -> bool:
        return self.path.is_file()


# --------------------------------------------------------------------- per platform


def policy_sources_for_platform(
    platform: str = sys.platform,
    *,
    registry: Any = None,
    linux_dir: Path = LINUX_POLICY_DIR,
    managed_dir: Path = MANAGED_PREFERENCES_DIR,
    user: str | None = None,
) -> list[PolicySource]:
    """The organisation's policy sources on ``platform`` (a ``sys.platform`` value),
    weakest first, as :class:`~desktop_agent.core.settings.Settings` expects."""
    if platform == "win32":
        return [
            RegistryPolicy("HKCU", POLICY_KEY, registry),
            RegistryPolicy("HKLM", POLICY_KEY, registry),
        ]
    if platform == "darwin":
        user = user if user is not None else getpass.getuser()
        return [
            PlistPolicy(managed_dir / f"{APP_ID}.plist"),
            PlistPolicy(managed_dir / user / f"{APP_ID}.plist"),
        ]
    return [PolicyFolder(linux_dir)]


def installer_defaults_for_platform(
    platform: str = sys.platform,
    *,
    registry: Any = None,
    mac_preferences_dir: Path = MAC_PREFERENCES_DIR,
) -> PolicySource | None:
    """Values given to the installer on ``platform``; None where there are none (Linux:
    a policy file with ``LockServerUrl = false`` pre-fills the address instead)."""
    if platform == "win32":
        return RegistryPolicy("HKLM", INSTALLER_KEY, registry)
    if platform == "darwin":
        return PlistPolicy(mac_preferences_dir / f"{APP_ID}.plist")
    return None


def source_location(source: object) -> str:
    """Where ``source`` reads from, for a person."""
    if isinstance(source, PolicyFolder):
        return str(source.path)
    location = getattr(source, "location", None)
    return str(location) if location is not None else type(source).__name__


def _source_exists(source: object) -> bool | None:
    if isinstance(source, PolicyFolder):
        try:
            return any(p.is_file() for p in source.path.glob("*.toml"))
        except OSError:
            return False
    exists = getattr(source, "exists", None)
    return bool(exists()) if callable(exists) else None


def describe_source(source: PolicySource) -> SourceReport:
    """Read ``source`` and say what it holds (never raises for a broken source)."""
    reading = source.read()
    present = _source_exists(source)
    found = bool(reading.values or reading.problems) if present is None else present
    return SourceReport(
        location=source_location(source),
        found=found,
        names=tuple(sorted(reading.values)),
        problems=tuple(problem.message for problem in reading.problems),
    )


def watchable_paths(sources: Iterable[object]) -> list[Path]:
    """The files and folders behind ``sources`` (the registry has none), for
    :class:`~desktop_agent.platform.policy_watch.PolicyWatcher`."""
    return [s.path for s in sources if isinstance(s, PolicyFolder | PlistPolicy)]
