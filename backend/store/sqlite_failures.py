"""What a failed SQLite operation means for a person: a full disk, a read-only file
system, no permission, a busy database or a failing disk."""

from __future__ import annotations

import os
import sqlite3

from backend.errors import StoreUnavailable

_SQLITE_BUSY, _SQLITE_LOCKED, _SQLITE_READONLY, _SQLITE_IOERR, _SQLITE_FULL = 5, 6, 8, 10, 13
_SQLITE_CANTOPEN = 14


def unavailable(exc: sqlite3.Error, path: str | None = None) -> StoreUnavailable:
    return StoreUnavailable(describe_failure(exc, path))


def describe_failure(exc: sqlite3.Error, path: str | None) -> str:
    """Say, for a person, why SQLite failed: a full disk, a read-only file system, no
    permission to write the files, a busy database, or a disk error. SQLite reports
    several of these as a plain "disk I/O error", so the file system is looked at."""
    text = str(exc)
    code = getattr(exc, "sqlite_errorcode", None)
    primary = code & 0xFF if isinstance(code, int) else None
    if primary in (_SQLITE_BUSY, _SQLITE_LOCKED) or "locked" in text or "busy" in text:
        return "the database is busy; try again in a moment"
    where = file_system_trouble(path) if path else None
    if primary == _SQLITE_FULL or "disk is full" in text or where == "full":
        return (
            "the database could not be written: the disk is full. Nothing was stored; "
            "free some space and try again"
        )
    if where == "read-only":
        return (
            "the database could not be written: its file system is read-only. Nothing "
            "was stored; make it writable and try again"
        )
    if primary in (_SQLITE_READONLY, _SQLITE_CANTOPEN) or where == "permission":
        return (
            f"the database could not be written: the server may not write {path} or its "
            "folder (permission denied, or a read-only file). Nothing was stored; check "
            "their owner and permissions"
        )
    if primary == _SQLITE_IOERR:
        return f"the disk failed to read or write the database ({text}); check the disk"
    return f"the database failed: {text}"


def file_system_trouble(path: str) -> str | None:
    """ "full", "read-only" or "permission" when the database's folder shows it."""
    folder = os.path.dirname(os.path.abspath(path))
    try:
        stats = os.statvfs(folder)
    except OSError:
        return None
    if stats.f_flag & os.ST_RDONLY:
        return "read-only"
    if stats.f_bavail == 0:
        return "full"
    writable = os.access(folder, os.W_OK) and all(
        os.access(name, os.W_OK)
        for name in (path, path + "-wal", path + "-shm")
        if os.path.exists(name)
    )
    return None if writable else "permission"
