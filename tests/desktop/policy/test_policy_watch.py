"""A policy file dropped, edited or removed while the app runs is noticed at once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from desktop_agent.core.settings import PolicyFolder, Settings
from desktop_agent.platform.policy_watch import PolicyWatcher


def test_a_new_edited_or_removed_policy_file_is_noticed(qtbot: Any, tmp_path: Path) -> None:
    folder = tmp_path / "policies"
    folder.mkdir()
    settings = Settings(tmp_path / "user.toml", policy_sources=[PolicyFolder(folder)])
    watcher = PolicyWatcher([folder], recheck_ms=0, settle_ms=10)
    policy = folder / "10-site.toml"

    with qtbot.waitSignal(watcher.changed, timeout=5000):
        policy.write_text('BadgeScope = "all"\n')
    assert settings.reload() == {"badge_scope"}
    assert settings.is_locked("badge_scope")

    with qtbot.waitSignal(watcher.changed, timeout=5000):
        policy.write_text('BadgeScope = "chat"\n')
    assert settings.reload() == {"badge_scope"}

    with qtbot.waitSignal(watcher.changed, timeout=5000):
        policy.unlink()
    assert settings.reload() == {"badge_scope"}
    assert not settings.is_locked("badge_scope")


def test_a_policy_folder_created_later_is_noticed(qtbot: Any, tmp_path: Path) -> None:
    folder = tmp_path / "etc" / "deskbell" / "policies"
    watcher = PolicyWatcher([folder], recheck_ms=0, settle_ms=10)
    assert watcher.watched() == [str(tmp_path)]
    with qtbot.waitSignal(watcher.changed, timeout=5000):
        (tmp_path / "etc").mkdir()
    with qtbot.waitSignal(watcher.changed, timeout=5000):
        folder.mkdir(parents=True)
    assert str(folder) in watcher.watched()


def test_sources_that_cannot_be_watched_are_read_again_on_a_timer(qtbot: Any) -> None:
    watcher = PolicyWatcher([], recheck_ms=20)
    with qtbot.waitSignal(watcher.changed, timeout=2000):
        pass


def test_files_and_folders_of_the_sources_are_watched_the_registry_is_not(
    tmp_path: Path,
) -> None:
    from desktop_agent.platform.policy_sources import (
        policy_sources_for_platform,
        watchable_paths,
    )
    from tests.desktop.policy.fake_winreg import FakeRegistry

    assert watchable_paths(policy_sources_for_platform("linux")) == [Path("/etc/deskbell/policies")]
    mac = policy_sources_for_platform("darwin", managed_dir=tmp_path, user="dana")
    assert watchable_paths(mac) == [
        tmp_path / "dev.deskbell.Deskbell.plist",
        tmp_path / "dana" / "dev.deskbell.Deskbell.plist",
    ]
    assert watchable_paths(policy_sources_for_platform("win32", registry=FakeRegistry())) == []
