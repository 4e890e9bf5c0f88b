"""Log set-up: one ``key=value`` line per event on stderr, no secrets, no bodies."""

from __future__ import annotations

import logging
import sys
import time


class _Formatter(logging.Formatter):
    converter = staticmethod(time.gmtime)  # type: ignore[assignment]

    def format(self, record: logging.LogRecord) -> str:
        stamp = self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z"
        message = record.getMessage()
        if record.name == "py.warnings":  # "file:line: Category: text" then the source line
            message = message.splitlines()[0]
        line = f"{stamp} level={record.levelname.lower()} logger={record.name} {message}"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def setup_logging(level: str = "INFO", *, quiet: bool = False) -> None:
    """Send logs to stderr. ``quiet`` (one-shot CLI commands) shows warnings only."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(_Formatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    try:
        root.setLevel("WARNING" if quiet else level.upper())
    except ValueError:
        root.setLevel("INFO")
    # A library's warning is for its developers, not for the operator at this terminal
    # (issue 9: redis-py's deprecation notice stood above `check`'s one-line error):
    # warnings go through logging and show only at DEBUG level.
    logging.captureWarnings(True)
    logging.getLogger("py.warnings").setLevel(
        logging.WARNING if root.level <= logging.DEBUG else logging.CRITICAL
    )
    # websockets logs every failed handshake at INFO with a traceback-like text;
    # our own open/close/auth lines say what an operator needs.
    logging.getLogger("websockets").setLevel(logging.WARNING)
