import json
import tomllib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from desktop_agent.core.settings import (
    PolicyFolder,
    Settings,
    StaticPolicy,
    dump_toml,
    find_user_settings_file,
)
from desktop_agent.errors import InvalidSetting, SettingLocked, SettingsFileError


@pytest.fixture
def policy_dir(tmp_path: Path) -> Path:
    folder = tmp_path / "policies"
    folder.mkdir()
    return folder


@pytest.fixture
def user_file(tmp_path: Path) -> Path:
    return tmp_path / "config" / "settings.toml"


def make(user_file: Path, policy_dir: Path, **kwargs: object) -> Settings:
    return Settings(user_file, policy_sources=[PolicyFolder(policy_dir)], **kwargs)  # type: ignore[arg-type]


def test_with_no_files_the_built_in_defaults_apply(user_file: Path, policy_dir: Path) -> None:
    settings = make(user_file, policy_dir)
    assert settings.server_url == ""
    assert settings.toast_categories == {"chat"}
    assert settings.badge_scope == "chat"
    assert settings.get("autostart") is True
    assert settings.dnd_schedule is None
    assert settings.problems == []
    assert not any(settings.is_locked(k) for k in ("server_url", "toast_categories"))
    assert settings.source("badge_scope") == "default"


def test_the_users_file_overrides_the_defaults(user_file: Path, policy_dir: Path) -> None:
    user_file.parent.mkdir()
    user_file.write_text('badge_scope = "all"\nserver_url = "http://h:8765/"\n')
    settings = make(user_file, policy_dir)
    assert settings.badge_scope == "all"
    assert settings.server_url == "ws://h:8765"
    assert settings.source("badge_scope") == "user"


def test_a_json_user_file_is_read_too(tmp_path: Path, policy_dir: Path) -> None:
    (tmp_path / "settings.json").write_text(json.dumps({"sound": True}))
    path = find_user_settings_file(tmp_path)
    assert path.name == "settings.json"
    assert make(path, policy_dir).get("sound") is True


def test_policy_wins_over_the_user_and_locks_the_setting(user_file: Path, policy_dir: Path) -> None:
    user_file.parent.mkdir()
    user_file.write_text('badge_scope = "all"\n')
    (policy_dir / "10-org.toml").write_text('BadgeScope = "chat"\nServerUrl = "wss://corp"\n')
    settings = make(user_file, policy_dir)
    assert settings.badge_scope == "chat"
    assert settings.is_locked("badge_scope")
    assert settings.server_url == "wss://corp" and settings.is_locked("server_url")
    assert not settings.is_locked("sound")


def test_a_later_policy_file_wins(user_file: Path, policy_dir: Path) -> None:
    (policy_dir / "10-org.toml").write_text('LogLevel = "info"\n')
    (policy_dir / "20-site.toml").write_text('LogLevel = "debug"\n')
    assert make(user_file, policy_dir).get("log_level") == "DEBUG"


def test_an_unlocked_server_url_policy_only_pre_fills_the_address(
    user_file: Path, policy_dir: Path
) -> None:
    (policy_dir / "org.toml").write_text('ServerUrl = "wss://corp"\nLockServerUrl = false\n')
    settings = make(user_file, policy_dir)
    assert settings.server_url == "wss://corp" and not settings.is_locked("server_url")
    settings.set("server_url", "ws://my-own:8765")
    assert settings.server_url == "ws://my-own:8765"


def test_installer_defaults_sit_between_policy_and_the_user(
    user_file: Path, policy_dir: Path
) -> None:
    user_file.parent.mkdir()
    user_file.write_text('badge_scope = "all"\nautostart = true\n')
    (policy_dir / "org.toml").write_text("AutoStart = false\n")
    installer = StaticPolicy({"BadgeScope": "chat", "AutoStart": True})
    settings = make(user_file, policy_dir, installer_defaults=installer)
    assert settings.badge_scope == "chat" and settings.source("badge_scope") == "installer"
    assert not settings.is_locked("badge_scope")
    assert settings.get("autostart") is False and settings.source("autostart") == "policy"


def test_policy_values_from_registries_read_as_numbers_and_text(
    user_file: Path, policy_dir: Path
) -> None:
    installer = StaticPolicy(
        {"AutoStart": 0, "DisableSignOut": "yes", "ToastCategories": "chat, ticket"}
    )
    settings = Settings(user_file, installer_defaults=installer)
    assert settings.get("autostart") is False
    assert settings.sign_out_disabled is True
    assert settings.toast_categories == {"chat", "ticket"}


def test_a_broken_policy_file_is_reported_skipped_and_left_untouched(
    user_file: Path, policy_dir: Path
) -> None:
    broken = policy_dir / "10-broken.toml"
    broken.write_text('ServerUrl = "wss://corp\n')
    (policy_dir / "20-good.toml").write_text('BadgeScope = "all"\n')
    settings = make(user_file, policy_dir)
    assert settings.badge_scope == "all"
    assert settings.server_url == ""
    [problem] = settings.problems
    assert problem.source == str(broken) and problem.key is None
    assert "could not be read" in problem.message and "fix it" in problem.message
    assert broken.read_text() == 'ServerUrl = "wss://corp\n'


def test_unknown_policy_names_and_bad_values_are_reported_one_by_one(
    user_file: Path, policy_dir: Path
) -> None:
    (policy_dir / "org.toml").write_text(
        'BadgeScpoe = "all"\nLogLevel = "loud"\nAutoStart = false\n'
    )
    settings = make(user_file, policy_dir)
    assert {p.key for p in settings.problems} == {"BadgeScpoe", "LogLevel"}
    assert settings.get("autostart") is False
    assert settings.get("log_level") == "INFO"


def test_a_broken_user_file_means_defaults_and_is_never_overwritten(
    user_file: Path, policy_dir: Path
) -> None:
    user_file.parent.mkdir()
    user_file.write_text("badge_scope = \n")
    settings = make(user_file, policy_dir)
    assert settings.badge_scope == "chat"
    assert settings.user_file_problem is not None
    with pytest.raises(SettingsFileError, match="not saved"):
        settings.set("sound", True)
    assert user_file.read_text() == "badge_scope = \n"


def test_saving_over_a_broken_user_file_can_move_it_aside_first(
    user_file: Path, policy_dir: Path
) -> None:
    user_file.parent.mkdir()
    user_file.write_text("badge_scope = \n")
    settings = make(user_file, policy_dir)
    settings.set("sound", True, replace_broken=True)
    [kept] = [p for p in user_file.parent.iterdir() if ".broken-" in p.name]
    assert kept.read_text() == "badge_scope = \n"
    assert settings.get("sound") is True
    assert settings.problems == []


def test_a_bad_user_value_is_ignored_and_reported(user_file: Path, policy_dir: Path) -> None:
    user_file.parent.mkdir()
    user_file.write_text('badge_scope = "sometimes"\nsound = true\nsign_out_disabled = true\n')
    settings = make(user_file, policy_dir)
    assert settings.badge_scope == "chat" and settings.get("sound") is True
    assert settings.sign_out_disabled is False
    assert {p.key for p in settings.problems} == {"badge_scope", "sign_out_disabled"}


def test_saving_writes_a_readable_file_and_keeps_keys_it_does_not_know(
    user_file: Path, policy_dir: Path
) -> None:
    user_file.parent.mkdir()
    user_file.write_text('future_option = "kept"\n')
    settings = make(user_file, policy_dir)
    settings.update(
        {
            "toast_categories": ["chat", "ticket"],
            "dnd_schedule": {"start": "18:00", "end": "08:00", "days": [0, 1, 2, 3, 4]},
        }
    )
    saved = tomllib.loads(user_file.read_text())
    assert saved["future_option"] == "kept"
    assert saved["settings_version"] == 1
    assert saved["toast_categories"] == ["chat", "ticket"]
    reopened = make(user_file, policy_dir)
    assert reopened.dnd_schedule is not None and reopened.dnd_schedule.days == {0, 1, 2, 3, 4}
    reopened.set("dnd_schedule", None)
    assert make(user_file, policy_dir).dnd_schedule is None


def test_a_locked_setting_cannot_be_saved(user_file: Path, policy_dir: Path) -> None:
    (policy_dir / "org.toml").write_text('ToastCategories = ["chat"]\n')
    settings = make(user_file, policy_dir)
    with pytest.raises(SettingLocked, match="set by your organisation"):
        settings.set("toast_categories", ["chat", "ticket"])
    with pytest.raises(SettingLocked):
        settings.set("sign_out_disabled", True)
    assert not user_file.exists()


def test_an_invalid_value_is_refused_with_a_reason(user_file: Path, policy_dir: Path) -> None:
    settings = make(user_file, policy_dir)
    with pytest.raises(InvalidSetting, match="server_url"):
        settings.set("server_url", "ftp://nope")
    with pytest.raises(InvalidSetting):
        settings.update({"sound": True, "badge_scope": "sometimes"})
    assert not user_file.exists()  # all or nothing


def test_reload_picks_up_a_new_policy_and_says_what_changed(
    user_file: Path, policy_dir: Path
) -> None:
    settings = make(user_file, policy_dir)
    assert settings.reload() == set()
    (policy_dir / "org.toml").write_text('BadgeScope = "chat"\nLogLevel = "ERROR"\n')
    assert settings.reload() == {"badge_scope", "log_level"}  # badge: same value, now locked
    assert settings.is_locked("badge_scope")


def test_a_missing_policy_folder_is_no_policy(user_file: Path, tmp_path: Path) -> None:
    settings = make(user_file, tmp_path / "does-not-exist")
    assert settings.problems == []


@given(
    st.dictionaries(
        st.text(min_size=1, max_size=10),
        st.one_of(
            st.booleans(),
            st.integers(-(10**6), 10**6),
            st.text(max_size=30),
            st.lists(st.text(max_size=10), max_size=4),
        ),
        max_size=6,
    )
)
def test_the_toml_writer_round_trips_through_the_standard_parser(values: dict[str, object]) -> None:
    values = {f"k_{i}": v for i, v in enumerate(values.values())}
    assert tomllib.loads(dump_toml(values)) == values


def test_per_inbox_mute_and_sound_are_user_settings_that_policy_can_lock(tmp_path: Path) -> None:
    from desktop_agent.core.settings import Settings, StaticPolicy
    from desktop_agent.errors import SettingLocked

    user = Settings(tmp_path / "user.toml")
    user.set("muted_inboxes", ["Sales", " Sales ", "Billing"])
    user.set("inbox_sounds", {"Support": "phone-incoming-call", "Sales": "OFF"})
    again = Settings(tmp_path / "user.toml")
    assert again.muted_inboxes == {"Sales", "Billing"}
    assert again.toast_sound("Support") == "phone-incoming-call"
    assert again.toast_sound("Sales") is None
    assert again.toast_sound("Sales", urgent=True) == "default"
    assert again.toast_sound("Other") is None  # the global switch is off by default
    again.set("sound", True)
    assert again.toast_sound("Other") == "default"

    policy = StaticPolicy({"MutedInboxes": ["Billing"], "InboxSounds": ["Support=off"]}, "IT")
    locked = Settings(tmp_path / "user.toml", policy_sources=[policy])
    assert locked.muted_inboxes == {"Billing"} and locked.is_locked("muted_inboxes")
    assert locked.toast_sound("Support") is None and locked.is_locked("inbox_sounds")
    with pytest.raises(SettingLocked):
        locked.set("muted_inboxes", [])


def test_away_when_idle_defaults_to_ten_minutes_and_policy_can_turn_it_off(tmp_path: Path) -> None:
    from desktop_agent.core.settings import Settings, StaticPolicy

    assert Settings(tmp_path / "s.toml").away_after_idle_seconds == 600
    off = Settings(
        tmp_path / "s.toml", policy_sources=[StaticPolicy({"AwayWhenIdleMinutes": 0}, "IT")]
    )
    assert off.away_after_idle_seconds == 0 and off.is_locked("away_after_idle_minutes")


def test_bad_inbox_sounds_and_idle_minutes_are_reported_not_used(tmp_path: Path) -> None:
    from desktop_agent.core.settings import Settings, StaticPolicy

    policy = StaticPolicy({"InboxSounds": ["Support"], "AwayWhenIdleMinutes": -3}, "IT")
    settings = Settings(tmp_path / "s.toml", policy_sources=[policy])
    assert {p.key for p in settings.problems} == {"InboxSounds", "AwayWhenIdleMinutes"}
    assert settings.away_after_idle_seconds == 600
