"""Layered settings: organisation policy > installer defaults > user file > built-in defaults.

Each setting has one key (``toast_categories``), a built-in default, a parser that
checks a value, and, for IT, a policy name (``ToastCategories``). Policy values win and
are *locked*: the settings window shows them greyed as set by the organisation.

Sources:

- built-in defaults (:data:`SPECS`);
- the user file: ``settings.toml`` (or ``settings.json``) in the platform config folder,
  written by the settings window, keys as in :data:`SPECS`;
- installer defaults: values IT gave the installer, by policy name (the packaging work
  reads them per OS and passes them in);
- policy sources, by policy name; on Linux the folder ``/etc/deskbell/policies`` of
  ``*.toml`` files, read in name order (a later file wins). Other OS sources implement
  :class:`PolicySource`.

A ``ServerUrl`` policy locks the address unless ``LockServerUrl = false``; then it only
pre-fills it (the user's own choice wins).

A file that cannot be read never stops the app and is never overwritten: its problem is
reported in :attr:`Settings.problems`, the other layers still apply, and saving refuses
to replace it unless asked to move it aside first.
"""

from __future__ import annotations

import copy
import json
import math
import re
import tomllib
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

from desktop_agent.core.dnd import DndSchedule
from desktop_agent.core.server_url import normalize_server_url
from desktop_agent.core.state import atomic_write_text
from desktop_agent.errors import InvalidSetting, SettingLocked, SettingsFileError

SETTINGS_VERSION = 1
LINUX_POLICY_DIR = Path("/etc/deskbell/policies")
LOCK_SERVER_URL = "LockServerUrl"

LAYER_POLICY = "policy"
LAYER_INSTALLER = "installer"
LAYER_USER = "user"
LAYER_SUGGESTED = "suggested"
LAYER_DEFAULT = "default"


# ----------------------------------------------------------------------- parsers


def _parse_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    # Registry and plist values often arrive as 0/1 or as text.
    if isinstance(value, int) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "yes", "1", "false", "no", "0"):
        return value.strip().lower() in ("true", "yes", "1")
    raise ValueError("expected true or false")


_CATEGORY = re.compile(r"^[a-z][a-z0-9_]*$")


def _parse_categories(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError('expected a list of categories like ["chat", "ticket"]')
    cleaned = [i.strip() for i in items if i.strip()]
    bad = [i for i in cleaned if not _CATEGORY.match(i)]
    if bad:
        raise ValueError(f"{bad[0]!r} is not a category name (lowercase letters, digits, _)")
    return sorted(set(cleaned), key=cleaned.index)


def _choice(*choices: str, upper: bool = False) -> Callable[[Any], str]:
    def parse(value: Any) -> str:
        if isinstance(value, str):
            text = value.strip().upper() if upper else value.strip().lower()
            if text in choices:
                return text
        raise ValueError(f"expected one of {', '.join(choices)}")

    return parse


def _parse_server_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a text address like ws://deskbell.example.org:8765")
    return normalize_server_url(value) if value.strip() else ""


_SOUND_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
SOUND_OFF = "off"
SOUND_DEFAULT = "default"
MAX_IDLE_MINUTES = 24 * 60


def _parse_inbox_names(value: Any) -> list[str]:
    items = value.split(",") if isinstance(value, str) else value
    if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
        raise ValueError('expected a list of inbox names like ["Sales", "Billing"]')
    cleaned = [" ".join(i.split()) for i in items if i.strip()]
    return sorted(set(cleaned), key=cleaned.index)


def _parse_inbox_sounds(value: Any) -> dict[str, str]:
    """``{"Support" = "phone-incoming-call", "Sales" = "off"}``, or the list form
    ``["Support=phone-incoming-call", "Sales=off"]`` that registry and plist lists give."""
    if isinstance(value, str):
        value = [item for item in value.split(",") if item.strip()]
    if isinstance(value, list):
        pairs: dict[str, Any] = {}
        for item in value:
            if not isinstance(item, str) or "=" not in item:
                raise ValueError('expected entries like "Support=off"')
            inbox, _, sound = item.partition("=")
            pairs[inbox] = sound
        value = pairs
    if not isinstance(value, dict):
        raise ValueError('expected a table like {Support = "default", Sales = "off"}')
    sounds: dict[str, str] = {}
    for inbox, sound in value.items():
        name = " ".join(str(inbox).split())
        text = sound.strip().lower() if isinstance(sound, str) else ""
        if not name or not _SOUND_NAME.match(text):
            raise ValueError(
                f"the sound for {name or 'an inbox'!r} must be off, default or a sound "
                "name like message-new-instant"
            )
        sounds[name] = text
    return sounds


def _parse_idle_minutes(value: Any) -> int:
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value.strip())
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_IDLE_MINUTES:
        return value
    raise ValueError(f"expected whole minutes from 0 (never) to {MAX_IDLE_MINUTES}")


_PROXY_SCHEMES = ("http", "https", "socks5", "socks5h", "socks4", "socks4a")


def _parse_proxy_server(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected a proxy address like http://proxy.example.org:3128")
    text = value.strip()
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme.lower() not in _PROXY_SCHEMES or not parts.hostname:
        raise ValueError(
            "expected a proxy address like http://proxy.example.org:3128 or "
            f"socks5://proxy.example.org:1080 (schemes: {', '.join(_PROXY_SCHEMES)})"
        )
    return text


def _parse_pac_url(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError(
            "expected the address of a PAC file like http://wpad.example.org/proxy.pac"
        )
    text = value.strip()
    if not text:
        return ""
    parts = urlsplit(text)
    if parts.scheme.lower() in ("http", "https") and parts.hostname:
        return text
    if parts.scheme.lower() == "file" or Path(text).is_absolute():
        return text
    raise ValueError("expected an http(s):// or file:// address of a PAC file, or an absolute path")


def _parse_path(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("expected the path of a file")
    return value.strip()


def _parse_schedule(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    return DndSchedule.from_setting(value).to_setting()


@dataclass(frozen=True)
class SettingSpec:
    """One setting: its key, built-in default, parser and policy name (None: not by policy)."""

    key: str
    default: Any
    parse: Callable[[Any], Any]
    policy_name: str | None
    user_may_set: bool = True


SPECS: dict[str, SettingSpec] = {
    spec.key: spec
    for spec in (
        SettingSpec("server_url", "", _parse_server_url, "ServerUrl"),
        SettingSpec("autostart", True, _parse_bool, "AutoStart"),
        SettingSpec("toast_categories", ["chat"], _parse_categories, "ToastCategories"),
        SettingSpec("badge_scope", "chat", _choice("chat", "all"), "BadgeScope"),
        SettingSpec("sound", False, _parse_bool, None),
        SettingSpec("dnd_schedule", None, _parse_schedule, None),
        SettingSpec("muted_inboxes", [], _parse_inbox_names, "MutedInboxes"),
        SettingSpec("inbox_sounds", {}, _parse_inbox_sounds, "InboxSounds"),
        SettingSpec("away_after_idle_minutes", 10, _parse_idle_minutes, "AwayWhenIdleMinutes"),
        SettingSpec(
            "log_level",
            "INFO",
            _choice("DEBUG", "INFO", "WARNING", "ERROR", upper=True),
            "LogLevel",
        ),
        SettingSpec("sign_out_disabled", False, _parse_bool, "DisableSignOut", user_may_set=False),
        SettingSpec(
            "update_check_disabled", False, _parse_bool, "DisableUpdateCheck", user_may_set=False
        ),
        SettingSpec(
            "proxy_mode", "system", _choice("system", "direct", "manual", "pac"), "ProxyMode"
        ),
        SettingSpec("proxy_server", "", _parse_proxy_server, "ProxyServer"),
        SettingSpec("proxy_pac_url", "", _parse_pac_url, "ProxyPacUrl"),
        SettingSpec("ca_file", "", _parse_path, "CaFile"),
    )
}
_BY_POLICY_NAME = {spec.policy_name: spec for spec in SPECS.values() if spec.policy_name}
POLICY_NAMES = frozenset([*_BY_POLICY_NAME, LOCK_SERVER_URL])


# ---------------------------------------------------------------------- problems


@dataclass(frozen=True)
class SettingsProblem:
    """Something in a settings source that could not be used; the rest still applies.

    Attributes:
        source: the file (or source description) it came from.
        detail: what was wrong.
        key: the setting or policy name, when one value was the problem (else the whole
            source was unreadable).
    """

    source: str
    detail: str
    key: str | None = None

    @property
    def message(self) -> str:
        """The problem for a person: what happened and what to do."""
        if self.key is None:
            return (
                f"The settings in {self.source} could not be read ({self.detail}), so they "
                "are not used. The file was left as it is: fix it, or remove it to go back "
                "to the defaults."
            )
        return (
            f"The value of {self.key} in {self.source} was ignored: {self.detail}. "
            "Fix it there to use it."
        )

    def __str__(self) -> str:
        return self.message


@dataclass
class SourceReading:
    """Raw values read from one source and what went wrong while reading."""

    values: dict[str, Any] = field(default_factory=dict)
    problems: list[SettingsProblem] = field(default_factory=list)


# ------------------------------------------------------------------ policy sources


class PolicySource(Protocol):
    """A source of organisation policy, keyed by policy name (``ServerUrl``, ...)."""

    def read(self) -> SourceReading:
        """Read the current policy; never raises for a broken source (report a problem)."""
        ...


class PolicyFolder:
    """Linux policy: every ``*.toml`` in a folder, in name order (later files win).

    Args:
        path: the folder; missing means no policy.
    """

    def __init__(self, path: Path = LINUX_POLICY_DIR) -> None:
        self.path = Path(path)

    def read(self) -> SourceReading:
        reading = SourceReading()
        try:
            files = sorted(p for p in self.path.glob("*.toml") if p.is_file())
        except OSError as exc:
            reading.problems.append(SettingsProblem(str(self.path), str(exc)))
            return reading
        for file in files:
            try:
                data = tomllib.loads(file.read_text(encoding="utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                reading.problems.append(SettingsProblem(str(file), str(exc)))
                continue
            for name, value in data.items():
                if name not in POLICY_NAMES:
                    known = ", ".join(sorted(POLICY_NAMES))
                    reading.problems.append(
                        SettingsProblem(str(file), f"unknown policy (known: {known})", name)
                    )
                    continue
                reading.values[name] = value
        return reading


class StaticPolicy:
    """Policy values given directly (installer defaults, tests, other OS readers)."""

    def __init__(self, values: Mapping[str, Any], description: str = "installer defaults"):
        self._values = dict(values)
        self._description = description

    def read(self) -> SourceReading:
        reading = SourceReading()
        for name, value in self._values.items():
            if name in POLICY_NAMES:
                reading.values[name] = value
            else:
                reading.problems.append(
                    SettingsProblem(self._description, "unknown setting name", name)
                )
        return reading


# --------------------------------------------------------------------- user file


def find_user_settings_file(config_dir: Path) -> Path:
    """The user's settings file in ``config_dir``: ``settings.toml``, else an existing
    ``settings.json``, else ``settings.toml`` (created on first save)."""
    toml_file = config_dir / "settings.toml"
    json_file = config_dir / "settings.json"
    if not toml_file.exists() and json_file.exists():
        return json_file
    return toml_file


def _read_user_file(path: Path) -> tuple[dict[str, Any], SettingsProblem | None]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}, None
    except (OSError, UnicodeDecodeError) as exc:
        return {}, SettingsProblem(str(path), str(exc))
    try:
        data: Any = json.loads(text) if path.suffix == ".json" else tomllib.loads(text)
    except (ValueError, tomllib.TOMLDecodeError) as exc:
        return {}, SettingsProblem(str(path), str(exc))
    if not isinstance(data, dict):
        return {}, SettingsProblem(str(path), "expected a table of settings at the top level")
    return data, None


def dump_toml(values: Mapping[str, Any]) -> str:
    """Write flat settings as TOML: strings, booleans, numbers, lists, inline tables.

    Raises:
        TypeError: a value of another type.
    """
    lines = ["# Deskbell settings. Values set by your organisation's policy win over these."]
    lines += [f"{key} = {_toml_value(value)}" for key, value in values.items()]
    return "\n".join(lines) + "\n"


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float) and math.isfinite(value):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a TOML basic string, except that TOML also forbids raw DEL.
        return json.dumps(value, ensure_ascii=False).replace("\x7f", "\\u007f")
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        inner = ", ".join(f"{_toml_key(k)} = {_toml_value(v)}" for k, v in value.items())
        return "{" + (f" {inner} " if inner else "") + "}"
    raise TypeError(f"cannot write {type(value).__name__} to TOML")


def _toml_key(key: str) -> str:
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


# ---------------------------------------------------------------------- settings


@dataclass(frozen=True)
class _Resolved:
    value: Any
    layer: str


class Settings:
    """The effective settings and where each value comes from.

    Args:
        user_file: the user's settings file (TOML or JSON by suffix).
        policy_sources: organisation policy, strongest last.
        installer_defaults: values IT gave the installer (by policy name).
    """

    def __init__(
        self,
        user_file: Path,
        *,
        policy_sources: Sequence[PolicySource] = (),
        installer_defaults: PolicySource | None = None,
    ) -> None:
        self.user_file = Path(user_file)
        self._policy_sources = list(policy_sources)
        self._installer = installer_defaults
        self._resolved: dict[str, _Resolved] = {}
        self._user_raw: dict[str, Any] = {}
        self._user_broken: SettingsProblem | None = None
        self.problems: list[SettingsProblem] = []
        self.reload()

    # --------------------------------------------------------------- reading

    def reload(self) -> set[str]:
        """Read every source again; return the keys whose value or lock changed.

        Never raises for a broken source: see :attr:`problems`.
        """
        problems: list[SettingsProblem] = []
        layers: dict[str, dict[str, Any]] = {
            LAYER_POLICY: {},
            LAYER_INSTALLER: {},
            LAYER_USER: {},
            LAYER_SUGGESTED: {},
        }

        policy_raw: dict[str, Any] = {}
        for source in self._policy_sources:
            reading = source.read()
            problems += reading.problems
            policy_raw.update(reading.values)
        self._apply_policy(
            policy_raw, layers[LAYER_POLICY], layers[LAYER_SUGGESTED], problems, origin="policy"
        )
        if self._installer is not None:
            reading = self._installer.read()
            problems += reading.problems
            self._apply_policy(
                reading.values,
                layers[LAYER_INSTALLER],
                layers[LAYER_INSTALLER],
                problems,
                origin="installer defaults",
            )

        self._user_raw, self._user_broken = _read_user_file(self.user_file)
        if self._user_broken is not None:
            problems.append(self._user_broken)
        for key, value in self._user_raw.items():
            spec = SPECS.get(key)
            if key == "settings_version":
                continue
            if spec is None:
                continue  # kept in the file for newer versions of the app; not used here
            if not spec.user_may_set:
                problems.append(
                    SettingsProblem(
                        str(self.user_file), "only your organisation's policy can set it", key
                    )
                )
                continue
            try:
                layers[LAYER_USER][key] = spec.parse(value)
            except ValueError as exc:
                problems.append(SettingsProblem(str(self.user_file), str(exc), key))

        before = self._resolved
        resolved: dict[str, _Resolved] = {}
        for key, spec in SPECS.items():
            for layer in (LAYER_POLICY, LAYER_INSTALLER, LAYER_USER, LAYER_SUGGESTED):
                if key in layers[layer]:
                    resolved[key] = _Resolved(layers[layer][key], layer)
                    break
            else:
                resolved[key] = _Resolved(
                    spec.parse(spec.default) if spec.default is not None else None, LAYER_DEFAULT
                )
        self._resolved = resolved
        self.problems = problems
        return {
            key
            for key in SPECS
            if key not in before
            or before[key].value != resolved[key].value
            or (before[key].layer == LAYER_POLICY) != (resolved[key].layer == LAYER_POLICY)
        }

    @staticmethod
    def _apply_policy(
        raw: Mapping[str, Any],
        locked: dict[str, Any],
        suggested: dict[str, Any],
        problems: list[SettingsProblem],
        origin: str,
    ) -> None:
        lock_url = True
        if LOCK_SERVER_URL in raw:
            try:
                lock_url = _parse_bool(raw[LOCK_SERVER_URL])
            except ValueError as exc:
                problems.append(SettingsProblem(origin, str(exc), LOCK_SERVER_URL))
        for name, value in raw.items():
            spec = _BY_POLICY_NAME.get(name)
            if spec is None:
                continue
            try:
                parsed = spec.parse(value)
            except ValueError as exc:
                problems.append(SettingsProblem(origin, str(exc), name))
                continue
            target = suggested if spec.key == "server_url" and not lock_url else locked
            target[spec.key] = parsed

    # ------------------------------------------------------------------ access

    def get(self, key: str) -> Any:
        """The effective value of ``key``.

        Raises:
            KeyError: not a setting.
        """
        # A copy, so a caller changing a list or table cannot change the settings behind
        # their back.
        return copy.deepcopy(self._resolved[key].value)

    def __getitem__(self, key: str) -> Any:
        return self.get(key)

    def is_locked(self, key: str) -> bool:
        """True when the organisation's policy sets ``key`` (the UI greys it out)."""
        return self._resolved[key].layer == LAYER_POLICY

    def source(self, key: str) -> str:
        """Where the value comes from: policy, installer, user, suggested or default."""
        return self._resolved[key].layer

    @property
    def user_file_problem(self) -> SettingsProblem | None:
        """The problem with the user file when it could not be read, else None."""
        return self._user_broken

    @property
    def server_url(self) -> str:
        return str(self.get("server_url"))

    @property
    def toast_categories(self) -> frozenset[str]:
        return frozenset(self.get("toast_categories"))

    @property
    def badge_scope(self) -> str:
        return str(self.get("badge_scope"))

    @property
    def dnd_schedule(self) -> DndSchedule | None:
        value = self.get("dnd_schedule")
        return DndSchedule.from_setting(value) if value is not None else None

    @property
    def muted_inboxes(self) -> frozenset[str]:
        return frozenset(self.get("muted_inboxes"))

    @property
    def away_after_idle_seconds(self) -> int:
        """Idle time after which the agent shows as away (0: never)."""
        return int(self.get("away_after_idle_minutes")) * 60

    def toast_sound(self, inbox: str | None, *, urgent: bool = False) -> str | None:
        """The sound a toast of ``inbox`` plays: None (silent), "default", or a name.

        The inbox's own sound wins; else the global switch. An urgent toast (an
        escalation) always plays one: the inbox's, or the default when it is off.
        """
        chosen = self.get("inbox_sounds").get(inbox) if inbox else None
        if chosen is None:
            chosen = SOUND_DEFAULT if self.get("sound") else SOUND_OFF
        if chosen == SOUND_OFF:
            return SOUND_DEFAULT if urgent else None
        return str(chosen)

    @property
    def sign_out_disabled(self) -> bool:
        return bool(self.get("sign_out_disabled"))

    @property
    def update_check_disabled(self) -> bool:
        return bool(self.get("update_check_disabled"))

    # ----------------------------------------------------------------- writing

    def set(self, key: str, value: Any, *, replace_broken: bool = False) -> None:
        """Change one user setting and save the user file. See :meth:`update`."""
        self.update({key: value}, replace_broken=replace_broken)

    def update(self, changes: Mapping[str, Any], *, replace_broken: bool = False) -> None:
        """Change user settings and save them, all or nothing.

        ``None`` removes a user value (back to the lower layers).

        Args:
            replace_broken: when the user file could not be read, move it aside as
                ``<name>.broken-<time>`` first; without it, saving refuses.

        Raises:
            KeyError: an unknown key.
            SettingLocked: the organisation's policy sets one of them.
            InvalidSetting: a value does not fit.
            SettingsFileError: the user file is unreadable (and not to be replaced), or
                cannot be written.
        """
        parsed: dict[str, Any] = {}
        for key, value in changes.items():
            spec = SPECS[key]
            if self.is_locked(key) or not spec.user_may_set:
                raise SettingLocked(key)
            if value is None:
                parsed[key] = None
                continue
            try:
                parsed[key] = spec.parse(value)
            except ValueError as exc:
                raise InvalidSetting(key, str(exc)) from None
        if self._user_broken is not None:
            if not replace_broken:
                raise SettingsFileError(
                    self.user_file,
                    self._user_broken.detail,
                    "Your changes were not saved so that the file is not lost: fix it or "
                    "remove it, then save again.",
                )
            self._move_aside()
        data = {k: v for k, v in self._user_raw.items() if k != "settings_version"}
        for key, value in parsed.items():
            if value is None:
                data.pop(key, None)
            else:
                data[key] = value
        text = self._serialize({"settings_version": SETTINGS_VERSION, **data})
        try:
            atomic_write_text(self.user_file, text)
        except OSError as exc:
            raise SettingsFileError(
                self.user_file, exc.strerror or str(exc), "Check that the folder can be written."
            ) from None
        self.reload()

    def _serialize(self, data: dict[str, Any]) -> str:
        if self.user_file.suffix == ".json":
            return json.dumps(data, indent=2, ensure_ascii=False) + "\n"
        return dump_toml(data)

    def _move_aside(self) -> None:
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
        target = self.user_file.with_name(f"{self.user_file.name}.broken-{stamp}")
        try:
            self.user_file.rename(target)
        except OSError as exc:
            raise SettingsFileError(
                self.user_file,
                exc.strerror or str(exc),
                "It could not be moved aside; nothing was saved.",
            ) from None
        self._user_raw = {}
        self._user_broken = None


def policy_names() -> Iterable[str]:
    """Every policy name IT can set (for templates and docs)."""
    return sorted(POLICY_NAMES)
