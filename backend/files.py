"""Files and folders the server creates hold transcripts, emails, password hashes and
tokens: they are made readable by their owner only, whatever the umask."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import platformdirs

PRIVATE_DIR = 0o700
PRIVATE_FILE = 0o600


def data_dir() -> Path:
    """Deskbell's folder in the platform's data folder for this user."""
    return Path(platformdirs.user_data_dir("deskbell", appauthor=False))


def make_private_dirs(folder: Path) -> None:
    """Create ``folder`` and any missing parents, each ``0700``. Folders that exist
    already are left as they are (they may be shared on purpose), except Deskbell's own
    data folder, which is made ``0700`` (older releases made it ``0755``).

    Raises:
        OSError: a folder cannot be created.
    """
    missing = []
    for level in (folder, *folder.parents):
        if level.exists():
            break
        missing.append(level)
    for level in reversed(missing):
        try:
            level.mkdir(mode=PRIVATE_DIR)
        except FileExistsError:
            continue  # made meanwhile by another process: theirs to set
        # mkdir's mode is filtered by the umask; this is not.
        os.chmod(level, PRIVATE_DIR)
    own = folder.absolute() == data_dir().absolute()
    if own and stat.S_IMODE(folder.stat().st_mode) & ~PRIVATE_DIR:
        os.chmod(folder, PRIVATE_DIR)


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode ``0600`` unless it exists (then nothing changes)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, PRIVATE_FILE)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, PRIVATE_FILE)
    finally:
        os.close(fd)
