import sys
from pathlib import Path

import pytest

from desktop_agent.core import paths

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="XDG folders are Linux's")


def test_folders_follow_the_xdg_variables_on_linux(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "cfg"))
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data"))
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    assert paths.config_dir() == tmp_path / "cfg" / "deskbell"
    assert paths.data_dir() == tmp_path / "data" / "deskbell"
    assert paths.log_dir().is_relative_to(tmp_path / "state" / "deskbell")
