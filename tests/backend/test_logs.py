"""What the server's log set-up shows a person at the terminal."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Iterator

import pytest

from backend.logs import setup_logging


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    captured = logging.getLogger("py.warnings")
    captured_level = captured.level
    try:
        yield
    finally:
        logging.captureWarnings(False)
        root.handlers[:] = handlers
        root.setLevel(level)
        captured.setLevel(captured_level)


@pytest.mark.parametrize("quiet", [True, False])
def test_a_library_warning_never_reaches_the_operators_terminal(
    restored_logging: None, capsys: pytest.CaptureFixture[str], quiet: bool
) -> None:
    setup_logging("INFO", quiet=quiet)
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library changed its mind", UserWarning, stacklevel=1)
    logging.getLogger("deskbell").warning("event=real_problem")
    err = capsys.readouterr().err
    assert "a library changed its mind" not in err
    assert "event=real_problem" in err  # the log itself still speaks


def test_with_debug_logging_a_library_warning_is_logged_on_one_line(
    restored_logging: None, capsys: pytest.CaptureFixture[str]
) -> None:
    setup_logging("DEBUG")
    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.warn("a library changed its mind", UserWarning, stacklevel=1)
    lines = [line for line in capsys.readouterr().err.splitlines() if "changed its mind" in line]
    assert len(lines) == 1 and "logger=py.warnings" in lines[0]
