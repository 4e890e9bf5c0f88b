"""Render the app icon (the tray's bell, without a badge) as PNGs for the hicolor theme.

    python packaging/render_icons.py OUT_DIR

writes ``OUT_DIR/<n>x<n>/apps/deskbell.png`` for every size in :data:`SIZES`, drawn by
the same code as the tray icon, so the launcher and the tray always match.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

SIZES = (16, 22, 24, 32, 48, 64, 128, 256)


def render(out_dir: Path) -> list[Path]:
    """Write the PNGs; return their paths.

    Raises:
        OSError: a file could not be written.
    """
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PySide6.QtGui import QGuiApplication

    from desktop_agent.ui.badge import render_tray_icon

    _app = QGuiApplication.instance() or QGuiApplication([])
    written = []
    for size in SIZES:
        target = out_dir / f"{size}x{size}" / "apps" / "deskbell.png"
        target.parent.mkdir(parents=True, exist_ok=True)
        if not render_tray_icon(0, "normal", size).save(str(target), "PNG"):
            raise OSError(f"could not write {target}")
        written.append(target)
    return written


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: render_icons.py OUT_DIR")
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
    for path in render(Path(sys.argv[1])):
        print(path)
