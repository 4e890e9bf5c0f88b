"""The update check compares releases only, and speaks only when the server is newer."""

from __future__ import annotations

import pytest

from desktop_agent.core.updates import release_of, update_notice


@pytest.mark.parametrize(
    ("version", "release"),
    [
        ("0.1.0", (0, 1, 0)),
        ("1.2", (1, 2, 0)),
        ("v2.10.3", (2, 10, 3)),
        ("1.3.0rc1", (1, 3, 0)),
        ("0.0.0+source", (0, 0, 0)),
        ("nightly", None),
        ("", None),
    ],
)
def test_release_of_reads_the_leading_numbers(
    version: str, release: tuple[int, int, int] | None
) -> None:
    assert release_of(version) == release


def test_a_newer_server_gives_a_notice_naming_both_versions() -> None:
    notice = update_notice("0.1.0", "0.10.0")
    assert notice is not None
    assert "0.10.0" in notice and "0.1.0" in notice and "IT team" in notice


@pytest.mark.parametrize(
    ("app", "server"),
    [("0.1.0", "0.1.0"), ("0.2.0", "0.1.9"), ("1.0.0", "1.0.0rc2"), ("0.1.0", "custom")],
)
def test_the_same_an_older_or_an_unreadable_server_version_says_nothing(
    app: str, server: str
) -> None:
    assert update_notice(app, server) is None
