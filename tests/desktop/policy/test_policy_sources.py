"""Policy from the Windows registry, macOS managed preferences and the Linux folder:
the same names and meanings everywhere, and broken sources never stop the app."""

from __future__ import annotations

import plistlib
from pathlib import Path

import pytest

from desktop_agent import APP_ID
from desktop_agent.core.settings import PolicyFolder, Settings
from desktop_agent.platform.policy_sources import (
    INSTALLER_KEY,
    POLICY_KEY,
    PlistPolicy,
    RegistryPolicy,
    describe_source,
    installer_defaults_for_platform,
    policy_sources_for_platform,
    reading_from_plist,
    reading_from_registry_values,
)
from tests.desktop.policy.fake_winreg import (
    REG_BINARY,
    REG_DWORD,
    REG_MULTI_SZ,
    REG_SZ,
    FakeRegistry,
)

FIXTURES = Path(__file__).parent / "fixtures"

# The same policy, written the way each OS's tools write it.
EXPECTED = {
    "server_url": "wss://desk.example.org",
    "autostart": True,
    "toast_categories": ["chat", "ticket"],
    "badge_scope": "all",
    "sign_out_disabled": True,
    "update_check_disabled": True,
    "log_level": "DEBUG",
}


def effective(tmp_path: Path, *sources: object, installer: object = None) -> Settings:
    return Settings(
        tmp_path / "user" / "settings.toml",
        policy_sources=list(sources),  # type: ignore[arg-type]
        installer_defaults=installer,  # type: ignore[arg-type]
    )


def group_policy_registry() -> FakeRegistry:
    """What the ADMX template makes Group Policy write (DWORDs, strings)."""
    reg = FakeRegistry()
    for name, data, kind in [
        ("ServerUrl", "wss://desk.example.org", REG_SZ),
        ("AutoStart", 1, REG_DWORD),
        ("ToastCategories", "chat,ticket", REG_SZ),
        ("BadgeScope", "all", REG_SZ),
        ("DisableSignOut", 1, REG_DWORD),
        ("DisableUpdateCheck", 1, REG_DWORD),
        ("LogLevel", "DEBUG", REG_SZ),
    ]:
        reg.set("HKLM", POLICY_KEY, name, data, kind)
    return reg


def test_registry_policy_means_the_same_as_the_linux_folder(tmp_path: Path) -> None:
    folder = effective(tmp_path, PolicyFolder(FIXTURES / "policies"))
    registry = effective(
        tmp_path, *policy_sources_for_platform("win32", registry=group_policy_registry())
    )
    for key, value in EXPECTED.items():
        assert folder.get(key) == value, key
        assert registry.get(key) == value, key
        assert registry.is_locked(key) and folder.is_locked(key)
    assert registry.problems == folder.problems == []


def test_managed_preferences_mean_the_same_as_the_linux_folder(tmp_path: Path) -> None:
    managed = tmp_path / "Managed Preferences"
    managed.mkdir()
    (managed / f"{APP_ID}.plist").write_bytes((FIXTURES / "managed.plist").read_bytes())
    settings = effective(
        tmp_path, *policy_sources_for_platform("darwin", managed_dir=managed, user="dana")
    )
    assert {key: settings.get(key) for key in EXPECTED} == EXPECTED
    assert settings.problems == []


def test_machine_policy_beats_user_policy_on_windows(tmp_path: Path) -> None:
    reg = FakeRegistry()
    reg.set("HKCU", POLICY_KEY, "BadgeScope", "all", REG_SZ)
    reg.set("HKCU", POLICY_KEY, "LogLevel", "warning", REG_SZ)
    reg.set("HKLM", POLICY_KEY, "BadgeScope", "chat", REG_SZ)
    settings = effective(tmp_path, *policy_sources_for_platform("win32", registry=reg))
    assert settings.badge_scope == "chat"
    assert settings.get("log_level") == "WARNING"


def test_user_managed_preferences_beat_computer_ones_on_macos(tmp_path: Path) -> None:
    managed = tmp_path / "Managed Preferences"
    (managed / "dana").mkdir(parents=True)
    (managed / f"{APP_ID}.plist").write_bytes(plistlib.dumps({"BadgeScope": "all"}))
    (managed / "dana" / f"{APP_ID}.plist").write_bytes(
        plistlib.dumps({"BadgeScope": "chat"}, fmt=plistlib.FMT_BINARY)
    )
    sources = policy_sources_for_platform("darwin", managed_dir=managed, user="dana")
    assert effective(tmp_path, *sources).badge_scope == "chat"


def test_registry_names_are_matched_without_case_and_multi_strings_are_lists() -> None:
    reading = reading_from_registry_values(
        [
            ("serverurl", "ws://h", REG_SZ),
            ("TOASTCATEGORIES", ["chat", "", "system"], REG_MULTI_SZ),
        ],
        "HKLM\\x",
    )
    assert reading.values == {"ServerUrl": "ws://h", "ToastCategories": ["chat", "system"]}
    assert reading.problems == []


def test_unknown_registry_values_and_types_are_reported_not_used() -> None:
    reading = reading_from_registry_values(
        [("ServerAddress", "ws://h", REG_SZ), ("AutoStart", b"\x01", REG_BINARY)], "HKLM\\x"
    )
    assert reading.values == {}
    assert [p.key for p in reading.problems] == ["ServerAddress", "AutoStart"]
    assert "REG_DWORD" in reading.problems[1].message


def test_a_missing_registry_key_is_no_policy_and_a_denied_one_a_problem() -> None:
    reg = FakeRegistry()
    assert RegistryPolicy("HKLM", POLICY_KEY, reg).read().values == {}
    reg.denied.add(("HKLM", POLICY_KEY.lower()))
    reading = RegistryPolicy("HKLM", POLICY_KEY, reg).read()
    assert reading.values == {}
    assert "denied" in reading.problems[0].message


def test_a_policy_value_of_the_wrong_shape_is_ignored_with_a_reason(tmp_path: Path) -> None:
    reg = FakeRegistry()
    reg.set("HKLM", POLICY_KEY, "AutoStart", 7, REG_DWORD)
    reg.set("HKLM", POLICY_KEY, "ServerUrl", "wss://ok.example.org", REG_SZ)
    settings = effective(tmp_path, *policy_sources_for_platform("win32", registry=reg))
    assert settings.server_url == "wss://ok.example.org"
    assert not settings.is_locked("autostart")
    assert [p.key for p in settings.problems] == ["AutoStart"]


def test_a_broken_plist_is_a_problem_and_macos_bookkeeping_keys_are_ignored() -> None:
    assert reading_from_plist(b"not a plist", "/x.plist").problems[0].key is None
    assert "dictionary" in reading_from_plist(plistlib.dumps(["a"]), "/x.plist").problems[0].detail
    reading = reading_from_plist(
        plistlib.dumps({"PayloadUUID": "1", "mcx_preference_settings": {}, "LogLevel": "info"}),
        "/x.plist",
    )
    assert reading.values == {"LogLevel": "info"}
    assert reading.problems == []


def test_installer_defaults_are_beaten_by_policy_and_beat_the_user(tmp_path: Path) -> None:
    reg = FakeRegistry()
    reg.set("HKLM", INSTALLER_KEY, "ServerUrl", "wss://installer.example.org", REG_SZ)
    reg.set("HKLM", INSTALLER_KEY, "AutoStart", 0, REG_DWORD)
    reg.set("HKLM", POLICY_KEY, "ServerUrl", "wss://policy.example.org", REG_SZ)
    user_file = tmp_path / "user" / "settings.toml"
    user_file.parent.mkdir()
    user_file.write_text('server_url = "wss://mine.example.org"\nautostart = true\nsound = true\n')
    settings = Settings(
        user_file,
        policy_sources=policy_sources_for_platform("win32", registry=reg),
        installer_defaults=installer_defaults_for_platform("win32", registry=reg),
    )
    assert (settings.server_url, settings.source("server_url")) == (
        "wss://policy.example.org",
        "policy",
    )
    assert (settings.get("autostart"), settings.source("autostart")) == (False, "installer")
    assert not settings.is_locked("autostart")  # an installer default is not a lock
    assert (settings.get("sound"), settings.source("sound")) == (True, "user")


def test_an_empty_installer_value_is_not_set(tmp_path: Path) -> None:
    """msiexec without SERVER_URL writes ServerUrl="": the user's own address stays."""
    reg = FakeRegistry()
    reg.set("HKLM", INSTALLER_KEY, "ServerUrl", "", REG_SZ)
    reg.set("HKLM", INSTALLER_KEY, "AutoStart", 1, REG_DWORD)
    user_file = tmp_path / "settings.toml"
    user_file.write_text('server_url = "wss://mine.example.org"\n')
    settings = Settings(
        user_file, installer_defaults=installer_defaults_for_platform("win32", registry=reg)
    )
    assert (settings.server_url, settings.source("server_url")) == (
        "wss://mine.example.org",
        "user",
    )
    assert settings.problems == []


def test_macos_installer_defaults_come_from_library_preferences(tmp_path: Path) -> None:
    (tmp_path / f"{APP_ID}.plist").write_bytes(plistlib.dumps({"ServerUrl": "wss://d.example.org"}))
    source = installer_defaults_for_platform("darwin", mac_preferences_dir=tmp_path)
    settings = effective(tmp_path, installer=source)
    assert settings.server_url == "wss://d.example.org"
    assert settings.source("server_url") == "installer"
    assert installer_defaults_for_platform("linux") is None


def test_linux_reads_the_etc_folder_by_default() -> None:
    (source,) = policy_sources_for_platform("linux")
    assert isinstance(source, PolicyFolder)
    assert source.path == Path("/etc/deskbell/policies")


def test_describe_source_says_where_it_looked_and_what_it_found(tmp_path: Path) -> None:
    report = describe_source(PolicyFolder(FIXTURES / "policies"))
    assert report.found
    assert report.location.endswith("policies")
    assert "ServerUrl" in report.names
    missing = describe_source(PlistPolicy(tmp_path / "none.plist"))
    assert (missing.found, missing.names, missing.problems) == (False, (), ())
    reg = FakeRegistry()
    reg.set("HKCU", POLICY_KEY, "Colour", "red", REG_SZ)
    odd = describe_source(RegistryPolicy("HKCU", POLICY_KEY, reg))
    assert odd.found and odd.location == "HKCU\\SOFTWARE\\Policies\\Deskbell"
    assert odd.problems and "Colour" in odd.problems[0]


def test_registry_policy_only_takes_the_two_policy_hives() -> None:
    with pytest.raises(ValueError):
        RegistryPolicy("HKCR")
