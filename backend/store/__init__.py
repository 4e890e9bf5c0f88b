"""Persistence: the :class:`Store` interface and the way to open one from a URL."""

from __future__ import annotations

from pathlib import Path

from backend.errors import SCALE_EXTRA_HINT, ConfigError
from backend.redact import redact_url
from backend.store.base import Store


def open_store(url: str, *, make_folders: bool = False) -> Store:
    """Return an unopened store for ``url``.

    ``url`` is a file path, ``sqlite:///path``, or ``postgresql://…``. A SQLite file's
    missing folders are all made with ``make_folders`` (the default location), else
    only its own folder when that folder's parent exists.

    Raises:
        ConfigError: the URL names a database kind this build cannot use.
    """
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from backend.store.postgres import PostgresStore  # type: ignore[import-not-found]
        except ImportError as exc:
            raise ConfigError(f"PostgreSQL support is not installed: {SCALE_EXTRA_HINT}") from exc
        store: Store = PostgresStore(url)
        return store
    if url.startswith("sqlite:///"):
        path = url.removeprefix("sqlite:///")
        if not path.startswith("/"):
            path = "/" + path if url.startswith("sqlite:////") else path
        url = path
    elif "://" in url:
        raise ConfigError(
            f"unknown database URL {redact_url(url)!r}: use a file path, sqlite:///… "
            "or postgresql://…"
        )
    from backend.store.sqlite import SQLiteStore

    return SQLiteStore(Path(url).expanduser(), make_folders=make_folders)


__all__ = ["Store", "open_store"]
