from pathlib import Path

import pytest

from desktop_agent import __version__
from desktop_agent.cli import (
    CliOptions,
    TokenFileError,
    conversation_from_link,
    parse_args,
    read_token_file,
)


def test_no_arguments_mean_a_plain_start() -> None:
    assert parse_args([]) == CliOptions()


def test_version_prints_the_version_and_exits_zero(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"deskbell {__version__}"


def test_server_and_token_file_are_read(tmp_path: Path) -> None:
    options = parse_args(["--server", "http://h:8765/", "--token-file", str(tmp_path / "t")])
    assert options.server_url == "ws://h:8765"
    assert options.token_file == tmp_path / "t"


def test_a_conversation_link_gives_its_id() -> None:
    assert parse_args(["deskbell://conversation/c_01J9"]).conversation_id == "c_01J9"


def test_selftest_is_a_flag() -> None:
    assert parse_args(["--selftest"]).selftest


@pytest.mark.parametrize(
    "argv",
    [
        ["--no-such-option"],
        ["--server", "ftp://h"],
        ["--server"],
        ["https://example.org/conversation/c_1"],
        ["deskbell://ticket/t_1"],
        ["deskbell://conversation/"],
        ["deskbell://conversation/c_1", "extra"],
    ],
)
def test_bad_arguments_exit_2_with_usage_on_stderr(
    argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as exited:
        parse_args(argv)
    assert exited.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: deskbell")
    assert "error:" in err


@pytest.mark.parametrize(
    "link",
    ["deskbell://conversation/c_1", "DESKBELL://Conversation/c_1/", " deskbell://conversation/c_1"],
)
def test_links_are_read_leniently_where_it_is_safe(link: str) -> None:
    assert conversation_from_link(link) == "c_1"


def test_a_token_file_gives_its_token_without_the_newline(tmp_path: Path) -> None:
    path = tmp_path / "token"
    path.write_text("dbat_abc123\n")
    assert read_token_file(path) == "dbat_abc123"


@pytest.mark.parametrize("content", ["", "  \n", "dbat_a dbat_b\n", "-rf\n"])
def test_a_token_file_without_one_token_is_refused_with_a_reason(
    tmp_path: Path, content: str
) -> None:
    path = tmp_path / "token"
    path.write_text(content)
    with pytest.raises(TokenFileError, match="token file"):
        read_token_file(path)


def test_a_missing_token_file_is_reported(tmp_path: Path) -> None:
    with pytest.raises(TokenFileError, match="Could not read"):
        read_token_file(tmp_path / "missing")
