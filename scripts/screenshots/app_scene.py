"""The Qt half of the screenshots: the real tray icon and windows on the X display.

Started by ``make_screenshots.py`` with QT_QPA_PLATFORM=xcb on a private Xvfb. It
shows the TrayController's icon (docked into trayer by XEmbed), prints ``tray-ready``,
and on ``windows`` on stdin shows the notification, conversation and Waiting windows, saves
each one's picture into the output folder and prints ``windows-done``. ``quit`` (or
end of stdin) ends it.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

from PySide6.QtCore import QSocketNotifier, Qt
from PySide6.QtGui import QFont
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QApplication, QWidget

from desktop_agent.ui.badge import render_tray_icon
from desktop_agent.ui.conversation_window import ConversationWindow
from desktop_agent.ui.notification_model import NotificationListModel
from desktop_agent.ui.notification_window import NotificationWindow
from desktop_agent.ui.tray import TrayController
from desktop_agent.ui.waiting_model import WaitingListModel
from desktop_agent.ui.waiting_window import WaitingWindow
from scripts.screenshots import scenes

APP_NAME = "deskbell"


def fixed_clock() -> datetime:
    """The screenshots' frozen "now"."""
    return scenes.NOW


def say(line: str) -> None:
    """One line to the driver, flushed at once."""
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


def expose(window: QWidget) -> None:
    """Show ``window`` and wait until the X server has exposed it."""
    window.show()
    if not QTest.qWaitForWindowExposed(window, 10_000):
        raise RuntimeError(f"{window.objectName()} was never exposed on the X display")


def save_window(window: QWidget, path: Path) -> None:
    """Show ``window`` (if needed), let pending layout and paint run, save its picture."""
    expose(window)
    QApplication.processEvents()
    if not window.grab().save(str(path)):
        raise RuntimeError(f"could not write {path}")


def show_backdrop(color: str) -> QWidget:
    """A plain "desktop" behind everything (Xvfb's root is black and has no wallpaper)."""
    backdrop = QWidget()
    backdrop.setObjectName("deskbellScreenshotBackdrop")
    backdrop.setWindowFlag(Qt.WindowType.FramelessWindowHint)
    backdrop.setStyleSheet(f"background: {color}")
    backdrop.setGeometry(QApplication.primaryScreen().geometry())
    backdrop.show()
    # No window manager runs: X stacks windows in map order, so lower it explicitly
    # below trayer's panel (dunst's pop-up maps later and lands on top by itself).
    backdrop.lower()
    return backdrop


class Scene:
    """Holds the tray and windows alive while the driver takes its pictures."""

    def __init__(self, app: QApplication, out_dir: Path) -> None:
        self.app = app
        self.out_dir = out_dir
        self.model = NotificationListModel()
        self.model.upsert(scenes.notifications())
        chat_unread = self.model.unread_count("chat")
        self.backdrop = show_backdrop(scenes.BACKDROP)
        self.tray = TrayController(clock=fixed_clock)
        self.tray.set_state(
            chat_unread,
            "connected",
            False,
            counts={"chat": chat_unread, "total": self.model.unread_count()},
        )
        self.tray.show()
        self.windows: list[QWidget] = []
        self._pending = b""
        self._stdin = QSocketNotifier(0, QSocketNotifier.Type.Read)
        self._stdin.activated.connect(self._on_stdin)
        say(f"tray-ready tray={int(self.tray.tray is not None)} unread={chat_unread}")

    def render_windows(self) -> None:
        """Save notifications.png and conversation.png."""
        notifications = NotificationWindow(self.model, clock=fixed_clock)
        notifications.resize(460, 440)
        notifications.set_mode("chat")
        self.windows.append(notifications)
        save_window(notifications, self.out_dir / "notifications.png")
        notifications.hide()

        replies = iter(["reply-sent", "reply-failed"])
        conversation = ConversationWindow(
            "conv-dana",
            scenes.SELF_AGENT,
            clock=fixed_clock,
            make_client_msg_id=lambda: next(replies),
        )
        conversation.resize(520, 640)
        self.windows.append(conversation)
        # As in the app: the window opens first, the transcript arrives after.
        expose(conversation)
        conversation.show_conversation(scenes.conversation())
        conversation.reply_edit.setPlainText(scenes.SENT_REPLY)
        conversation.send_reply()
        conversation.set_reply_state("reply-sent", "sent")
        conversation.reply_edit.setPlainText(scenes.FAILED_REPLY)
        conversation.send_reply()
        conversation.set_reply_state("reply-failed", "failed")
        # The retry bar appearing shrinks the transcript and leaves its last row (the
        # failed reply and its "Failed" line) below the fold; scroll down as the agent
        # would. (ConversationWindow should keep the view pinned to the bottom.)
        QApplication.processEvents()
        conversation.view.scrollToBottom()
        save_window(conversation, self.out_dir / "conversation.png")
        conversation.hide()

        waiting_model = WaitingListModel()
        waiting_model.reset(scenes.waiting_queue())
        for escalation in scenes.escalations():
            waiting_model.note_notification(escalation)
        waiting = WaitingWindow(waiting_model, clock=fixed_clock)
        waiting.resize(460, 430)
        self.windows.append(waiting)
        save_window(waiting, self.out_dir / "waiting.png")
        waiting.hide()

    def _on_stdin(self) -> None:
        chunk = os.read(0, 4096)
        if not chunk:
            self.app.quit()
            return
        self._pending += chunk
        while b"\n" in self._pending:
            line, self._pending = self._pending.split(b"\n", 1)
            command = line.decode().strip()
            if command == "windows":
                self.render_windows()
                say("windows-done")
            elif command == "quit":
                self.tray.hide()
                self.app.quit()


def main() -> int:
    """Run until ``quit``; argv[1] is the output folder, argv[2] where the toast icon goes."""
    out_dir = Path(sys.argv[1])
    app = QApplication([APP_NAME])
    app.setApplicationName(APP_NAME)
    app.setApplicationDisplayName("Deskbell")
    app.setQuitOnLastWindowClosed(False)
    app.setStyle("Fusion")  # the same look on every machine that runs the script
    app.setFont(QFont("DejaVu Sans", 10))
    # The toast's app icon: the bell as the tray draws it, without a badge.
    render_tray_icon(0, "normal", 48).save(sys.argv[2])
    scene = Scene(app, out_dir)
    status = app.exec()
    del scene
    return status


if __name__ == "__main__":
    raise SystemExit(main())
