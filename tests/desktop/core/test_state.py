from pathlib import Path

from desktop_agent.core.state import CursorStore


def test_a_saved_cursor_is_found_again_by_a_new_store(tmp_path: Path) -> None:
    CursorStore(tmp_path).save("ws://h:8765", "a_1", 42)
    assert CursorStore(tmp_path).load("ws://h:8765", "a_1") == 42


def test_cursors_are_kept_per_server_and_agent(tmp_path: Path) -> None:
    store = CursorStore(tmp_path)
    store.save("ws://h:8765", "a_1", 1)
    store.save("ws://h:8765", "a_2", 2)
    store.save("ws://other:8765", "a_1", 3)
    fresh = CursorStore(tmp_path)
    assert fresh.load("ws://h:8765", "a_1") == 1
    assert fresh.load("ws://h:8765", "a_2") == 2
    assert fresh.load("ws://other:8765", "a_1") == 3
    assert fresh.load("ws://h:8765", "a_3") is None


def test_a_trailing_slash_does_not_make_another_server(tmp_path: Path) -> None:
    CursorStore(tmp_path).save("ws://h:8765/", "a_1", 5)
    assert CursorStore(tmp_path).load("ws://h:8765", "a_1") == 5


def test_an_unreadable_file_counts_as_no_cursor_and_is_replaced_on_save(tmp_path: Path) -> None:
    (tmp_path / "cursors.json").write_text("{not json", encoding="utf-8")
    store = CursorStore(tmp_path)
    assert store.load("ws://h", "a_1") is None
    store.save("ws://h", "a_1", 9)
    assert CursorStore(tmp_path).load("ws://h", "a_1") == 9


def test_saving_leaves_no_temporary_files_behind(tmp_path: Path) -> None:
    store = CursorStore(tmp_path / "new")
    for seq in range(5):
        store.save("ws://h", "a_1", seq)
    assert [p.name for p in (tmp_path / "new").iterdir()] == ["cursors.json"]
