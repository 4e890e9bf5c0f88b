"""Persisted runtime state: the stream cursor (last seq) per server and agent.

Kept apart from settings (runtime state, not choices). One small JSON file in the app's
data folder, replaced atomically so a crash mid-write never leaves half a file.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from pathlib import Path

log = logging.getLogger(__name__)

CURSOR_FILE = "cursors.json"


class CursorStore:
    """Last delivered seq per (server URL, agent id), saved in ``data_dir/cursors.json``.

    An unreadable file is logged and treated as empty: the worst outcome is that the
    next connection resumes from the server's current position.

    Args:
        data_dir: the app's data folder (created on first save).
    """

    def __init__(self, data_dir: Path) -> None:
        self._path = Path(data_dir) / CURSOR_FILE
        self._cursors: dict[str, int] | None = None

    @property
    def path(self) -> Path:
        return self._path

    @staticmethod
    def _key(server_url: str, agent_id: str) -> str:
        return f"{server_url.rstrip('/')} {agent_id}"

    def _read(self) -> dict[str, int]:
        if self._cursors is None:
            self._cursors = {}
            try:
                raw = json.loads(self._path.read_text(encoding="utf-8"))
            except FileNotFoundError:
                return self._cursors
            except (OSError, ValueError) as exc:
                log.warning("ignoring unreadable cursor file %s: %s", self._path, exc)
                return self._cursors
            if isinstance(raw, dict):
                self._cursors = {
                    k: v
                    for k, v in raw.items()
                    if isinstance(k, str)
                    and isinstance(v, int)
                    and not isinstance(v, bool)
                    and v >= 0
                }
        return self._cursors

    def load(self, server_url: str, agent_id: str) -> int | None:
        """Return the saved last seq for this server and agent, or None if never saved."""
        return self._read().get(self._key(server_url, agent_id))

    def save(self, server_url: str, agent_id: str, last_seq: int) -> None:
        """Persist ``last_seq``; writes only when it changed. Atomic replace.

        Raises:
            OSError: the data folder cannot be written.
        """
        if last_seq < 0:
            raise ValueError("last_seq cannot be negative")
        cursors = self._read()
        key = self._key(server_url, agent_id)
        if cursors.get(key) == last_seq:
            return
        cursors[key] = last_seq
        atomic_write_text(self._path, json.dumps(cursors, sort_keys=True, indent=1))


def atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` so readers see the old file or the new one, never half.

    Raises:
        OSError: the folder cannot be created or written.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
