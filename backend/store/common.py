"""What both stores share that is neither SQL nor a row: the clock, and the migration
scripts shipped in the package."""

from __future__ import annotations

from datetime import UTC, datetime
from importlib import resources
from importlib.abc import Traversable


def now_iso() -> str:
    """The current UTC time as stored and sent: ``2026-11-25T10:15:03.120Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def precise_now() -> str:
    """The same to the microsecond (revocations, compared as text)."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def migration_files(folder_name: str) -> list[tuple[int, Traversable]]:
    """The ``.sql`` files of one migrations folder of this package, as (version, file),
    sorted by version and then by name (a version may have several files)."""
    folder = resources.files("backend.store") / folder_name
    return sorted(
        (
            (int(entry.name.split("_", 1)[0]), entry)
            for entry in folder.iterdir()
            if entry.name.endswith(".sql")
        ),
        key=lambda found: (found[0], found[1].name),
    )


def migrations() -> list[tuple[int, str]]:
    """The schema migrations shipped with the package, as (version, SQL), in order."""
    return [(version, entry.read_text()) for version, entry in migration_files("migrations")]
