"""Tell the app when IT's policy may have changed, so it applies without a restart.

Folders and files (``/etc/deskbell/policies``, a managed preferences plist) are watched
with QFileSystemWatcher, which reports at once. The registry has no such signal in Qt,
and a configuration profile may create a file that did not exist, so every source is
also read again on a slow timer. Either way :attr:`PolicyWatcher.changed` only says
"read again": ``Settings.reload()`` tells what really changed.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from PySide6.QtCore import QFileSystemWatcher, QObject, QTimer, Signal

RECHECK_MS = 5 * 60 * 1000
SETTLE_MS = 200
"""Editors and deployment tools write in several steps: wait for them to finish."""


class PolicyWatcher(QObject):
    """Emits :attr:`changed` when a watched path changes, and every ``recheck_ms``.

    Args:
        paths: folders and files to watch; missing ones are watched through their
            nearest existing parent, so a folder created later is noticed too.
        recheck_ms: the slow re-read for what cannot be watched (0: none).

    Signals:
        changed(): read the policy again.
    """

    changed = Signal()

    def __init__(
        self,
        paths: Iterable[Path],
        *,
        recheck_ms: int = RECHECK_MS,
        settle_ms: int = SETTLE_MS,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._paths = [Path(p) for p in paths]
        self._watcher = QFileSystemWatcher(self)
        self._watcher.directoryChanged.connect(self._touched)
        self._watcher.fileChanged.connect(self._touched)
        self._settle = QTimer(self)
        self._settle.setSingleShot(True)
        self._settle.setInterval(settle_ms)
        self._settle.timeout.connect(self._settled)
        self._recheck = QTimer(self)
        self._recheck.setInterval(recheck_ms)
        self._recheck.timeout.connect(self.changed)
        if recheck_ms > 0:
            self._recheck.start()
        self._watch()

    def watched(self) -> list[str]:
        """What is being watched right now (folders and files)."""
        return sorted(self._watcher.directories() + self._watcher.files())

    def _watch(self) -> None:
        wanted: set[str] = set()
        for path in self._paths:
            target = path
            while not target.exists() and target.parent != target:
                target = target.parent
            wanted.add(str(target))
            if path.is_dir():
                wanted.update(str(p) for p in path.iterdir() if p.is_file())
        current = set(self._watcher.directories() + self._watcher.files())
        stale = sorted(current - wanted)
        new = sorted(wanted - current)
        if stale:
            self._watcher.removePaths(stale)
        if new:
            self._watcher.addPaths(new)

    def _touched(self, _path: str) -> None:
        self._settle.start()

    def _settled(self) -> None:
        # Files come and go (and editors replace them): watch what is there now.
        self._watch()
        self.changed.emit()
