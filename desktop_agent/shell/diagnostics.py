"""Logging to a rotating file in the platform log folder; no error is ever lost.

Unhandled exceptions -- in Qt slots (PySide routes them to ``sys.excepthook``), in
threads, and in asyncio tasks nobody awaited -- are logged with their traceback.
"""

from __future__ import annotations

import asyncio
import logging
import logging.handlers
import sys
import threading
from pathlib import Path
from types import TracebackType
from typing import Any

LOG_FILE = "deskbell.log"
MAX_BYTES = 1_000_000
BACKUPS = 5
FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

log = logging.getLogger("desktop_agent")


def setup_logging(log_dir: Path, level: str = "INFO", *, stderr: bool = True) -> Path | None:
    """Log to ``log_dir/deskbell.log`` (rotating) and warnings to stderr.

    Returns:
        The log file, or None when the folder cannot be written (then stderr only).
    """
    root = logging.getLogger()
    root.setLevel(getattr(logging, level.upper(), logging.INFO))
    path: Path | None = Path(log_dir) / LOG_FILE
    try:
        Path(log_dir).mkdir(parents=True, exist_ok=True)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            Path(log_dir) / LOG_FILE, maxBytes=MAX_BYTES, backupCount=BACKUPS, encoding="utf-8"
        )
        handler.setFormatter(logging.Formatter(FORMAT))
        root.addHandler(handler)
    except OSError as exc:
        path = None
        print(f"deskbell: cannot write logs to {log_dir}: {exc}", file=sys.stderr)
    if stderr:
        console = logging.StreamHandler(sys.stderr)
        console.setLevel(logging.WARNING)
        console.setFormatter(_OneLineFormatter("deskbell: %(levelname)s %(message)s"))
        # A library's warning is for developers: the log file keeps it, the agent's
        # terminal does not show it.
        console.addFilter(lambda record: record.name != "py.warnings")
        root.addHandler(console)
    logging.captureWarnings(True)
    install_excepthooks()
    return path


class _OneLineFormatter(logging.Formatter):
    """For the terminal: one line per record, never a traceback (the log file has it)."""

    def format(self, record: logging.LogRecord) -> str:
        text = record.getMessage().splitlines()[0] if record.getMessage() else ""
        error = record.exc_info[1] if record.exc_info else None
        if error is not None:
            detail = str(error).splitlines()[0] if str(error) else ""
            text += f" ({type(error).__name__}: {detail})"
        return self._fmt % {"levelname": record.levelname, "message": text} if self._fmt else text


def _log_uncaught(
    kind: type[BaseException], value: BaseException, tb: TracebackType | None
) -> None:
    if issubclass(kind, KeyboardInterrupt):
        sys.__excepthook__(kind, value, tb)
        return
    log.critical("unhandled error", exc_info=(kind, value, tb))


def _log_thread(args: threading.ExceptHookArgs) -> None:
    if args.exc_type is SystemExit or args.exc_value is None:
        return
    log.critical(
        "unhandled error in thread %s",
        args.thread.name if args.thread else "?",
        exc_info=(args.exc_type, args.exc_value, args.exc_traceback),
    )


def install_excepthooks() -> None:
    """Log unhandled exceptions of the main thread, Qt slots and other threads."""
    sys.excepthook = _log_uncaught
    threading.excepthook = _log_thread


def loop_exception_handler(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    """asyncio's handler for errors nobody awaited: log them with their traceback."""
    exc = context.get("exception")
    message = context.get("message", "error in the event loop")
    if exc is not None:
        log.error("%s", message, exc_info=exc)
    else:
        log.error("%s (%s)", message, {k: v for k, v in context.items() if k != "message"})
