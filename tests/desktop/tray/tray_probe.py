"""A stand-in app for the tray tests: a real TrayController on a real display.

The test process runs Qt offscreen (no tray there, ever), so the tray under Xvfb lives
in this child process. It speaks a line protocol:

- it prints ``ready tray=<0|1>`` once the icon is shown (1: Qt found a system tray);
- ``state <unread> <connection> <dnd 0|1> <chat> <total>`` on stdin calls
  ``TrayController.set_state`` and answers ``state <unread>`` once it is applied;
- it prints ``open-notifications`` whenever ``openNotifications`` fires;
- ``quit`` (or end of stdin) ends it.

Run with QT_QPA_PLATFORM=xcb, DISPLAY and DBUS_SESSION_BUS_ADDRESS of the session.
"""

from __future__ import annotations

import os
import sys

from PySide6.QtCore import QSocketNotifier
from PySide6.QtWidgets import QApplication

from desktop_agent.ui.tray import TrayController

APP_NAME = "deskbell-tray-probe"
"""Also the X11 WM_CLASS of the XEmbed icon window, so tests can find it."""


def say(line: str) -> None:
    """Write one protocol line and flush it at once."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


class Probe:
    """Applies stdin commands to a TrayController and reports its signals."""

    def __init__(self, app: QApplication) -> None:
        self.app = app
        self.tray = TrayController()
        self.tray.openNotifications.connect(lambda: say("open-notifications"))
        self.tray.show()
        self._pending = b""
        self._notifier = QSocketNotifier(0, QSocketNotifier.Type.Read)
        self._notifier.activated.connect(self._on_stdin)
        say(f"ready tray={int(self.tray.tray is not None)}")

    def _on_stdin(self) -> None:
        # os.read, not sys.stdin: a buffered reader could swallow several lines at
        # once and the notifier would not fire again for the rest.
        chunk = os.read(0, 4096)
        if not chunk:
            self.app.quit()
            return
        self._pending += chunk
        while b"\n" in self._pending:
            line, self._pending = self._pending.split(b"\n", 1)
            self._command(line.decode().split())

    def _command(self, words: list[str]) -> None:
        if not words:
            return
        if words[0] == "quit":
            self.tray.hide()
            self.app.quit()
        elif words[0] == "state":
            unread, connection, dnd, chat, total = words[1:6]
            self.tray.set_state(
                int(unread),
                connection,
                dnd == "1",
                counts={"chat": int(chat), "total": int(total)},
            )
            say(f"state {unread}")
        else:
            say(f"error unknown command {words[0]!r}")


def main() -> int:
    """Run the probe until ``quit`` or end of stdin; the exit status is Qt's."""
    app = QApplication([APP_NAME])
    app.setApplicationName(APP_NAME)
    app.setQuitOnLastWindowClosed(False)
    probe = Probe(app)
    status = app.exec()
    del probe
    return status


if __name__ == "__main__":
    raise SystemExit(main())
