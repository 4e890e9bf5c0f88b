"""Files the server creates are its user's alone: the database (and SQLite's -wal and
-shm beside it) 0600, every folder it makes for them 0700, whatever the umask."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from backend.store.sqlite import SQLiteStore
from tests.support.server_cli import run_server_cli


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def loose_umask() -> Iterator[None]:
    """The usual umask, which leaves new files readable by everyone."""
    previous = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(previous)


def run_cli(*args: str, data_home: Path) -> subprocess.CompletedProcess[str]:
    """The CLI with its default data folder under ``data_home`` (and this process's
    umask)."""
    env = {"XDG_DATA_HOME": str(data_home)}
    return run_server_cli(*args, env=env, inherit_deskbell_env=False)


def test_the_default_database_is_0600_in_a_0700_folder(tmp_path: Path, loose_umask: None) -> None:
    data_home = tmp_path / "share"  # does not exist yet: the server makes it
    result = run_cli("inbox", "add", "Support", data_home=data_home)
    assert result.returncode == 0, result.stderr
    folder = data_home / "deskbell"
    assert mode(data_home) == 0o700
    assert mode(folder) == 0o700
    assert mode(folder / "deskbell.sqlite3") == 0o600


def test_an_existing_default_folder_is_made_private(tmp_path: Path, loose_umask: None) -> None:
    folder = tmp_path / "share" / "deskbell"
    folder.mkdir(parents=True)
    folder.chmod(0o755)
    result = run_cli("inbox", "add", "Support", data_home=tmp_path / "share")
    assert result.returncode == 0, result.stderr
    assert mode(folder) == 0o700
    assert mode(tmp_path / "share") == 0o755  # not Deskbell's: left as it was


async def test_database_wal_and_shm_are_0600_in_folders_made_0700(
    tmp_path: Path, loose_umask: None
) -> None:
    path = tmp_path / "a" / "b" / "deskbell.sqlite3"
    store = SQLiteStore(path, make_folders=True)  # as for the default location
    await store.open()
    try:
        await store.add_inbox("Support")  # a write: the -wal and -shm exist now
        files = [path, path.with_name(path.name + "-wal"), path.with_name(path.name + "-shm")]
        assert {f.name: mode(f) for f in files} == {f.name: 0o600 for f in files}
        assert mode(tmp_path / "a") == 0o700
        assert mode(tmp_path / "a" / "b") == 0o700
    finally:
        await store.close()


async def test_a_database_readable_by_others_is_reported(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "deskbell.sqlite3"
    path.touch(mode=0o644)
    path.chmod(0o644)
    store = SQLiteStore(path)
    await store.open()
    await store.close()
    assert any("event=database_readable_by_others" in r.getMessage() for r in caplog.records)
