"""Persistence: the :class:`Store` interface and the way to open one from a URL."""

from __future__ import annotations

from pathlib import Path

from backend.errors import ConfigError
from backend.redact import redact_url
from backend.store.base import Store


def open_store(url: str) -> Store:
    """Return an unopened store for ``url``.

    ``url`` is a file path, ``sqlite:///path``, or ``postgresql://…``.

    Raises:
        ConfigError: the URL names a database kind this build cannot use.
    """
    if url.startswith(("postgresql://", "postgres://")):
        try:
            from backend.store.postgres import PostgresStore  # type: ignore[import-not-found]
        except ImportError as exc:
            raise ConfigError(
                "PostgreSQL support is not installed: pip install 'deskbell[scale]'"
            ) from exc
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

    return SQLiteStore(Path(url).expanduser())


__all__ = ["Store", "open_store"]
