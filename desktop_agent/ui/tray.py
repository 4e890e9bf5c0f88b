"""The tray icon, its menu and tooltip; a small window instead where no tray exists.

:class:`TrayController` only renders and asks: it shows the unread count and the
connection state it is given through :meth:`TrayController.set_state`, and turns
clicks into signals for the composition root.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime, time, timedelta
from time import monotonic as time_monotonic

import shiboken6
from PySide6.QtCore import QObject, Qt, QTimer, Signal
from PySide6.QtGui import QAction, QCloseEvent, QIcon
from PySide6.QtWidgets import (
    QLabel,
    QMainWindow,
    QMenu,
    QPushButton,
    QSystemTrayIcon,
    QVBoxLayout,
    QWidget,
)

from desktop_agent.ui.badge import ICON_SIZES, IconState, badge_text, make_tray_icon

Clock = Callable[[], datetime]

CONNECTION_TEXT = {
    "connected": "Connected",
    "connecting": "Connecting to the server…",
    "disconnected": "Offline: reconnecting automatically",
    "signed_out": "Signed out: open Deskbell to sign in",
}

TOMORROW_MORNING = time(8, 0)
RENDER_INTERVAL_MS = 150
"""Shortest time between two repaints of the tray icon."""
"""When "Until tomorrow" ends: the next day at this local time."""


def local_now() -> datetime:
    """The current local time, timezone-aware."""
    return datetime.now().astimezone()


def until_tomorrow(now: datetime, morning: time = TOMORROW_MORNING) -> datetime:
    """The end of a "Do not disturb until tomorrow": the next day at ``morning``."""
    tomorrow = (now + timedelta(days=1)).date()
    return datetime.combine(tomorrow, morning, tzinfo=now.tzinfo)


def icon_state(connection: str, dnd: bool, waiting: int = 0) -> IconState:
    """Which look the icon takes: anything but connected is "disconnected"; a visitor
    waiting past the first escalation step wins over DND (someone must answer)."""
    if connection != "connected":
        return "disconnected"
    if waiting:
        return "waiting"
    return "dnd" if dnd else "normal"


def tooltip_text(
    unread: int, connection: str, dnd: bool, counts: Mapping[str, int] | None = None
) -> str:
    """The tray tooltip: state, counts, and DND, each on its own line.

    ``counts`` is the server's unread object (``total``, ``chat``, per category); with
    it the tooltip splits chats from the rest, without it it shows ``unread``.
    """
    lines = [f"Deskbell: {CONNECTION_TEXT.get(connection, connection)}"]
    if counts is not None:
        chats = counts.get("chat", 0)
        others = max(0, counts.get("total", chats) - chats)
        lines.append(_plural(chats, "unread chat", "No unread chats"))
        if others:
            lines.append(_plural(others, "other unread notification", ""))
    else:
        lines.append(_plural(unread, "unread notification", "No unread notifications"))
    if dnd:
        lines.append("Do not disturb is on: no pop-ups")
    return "\n".join(lines)


def waiting_line(escalated: int) -> str:
    """The tooltip line for visitors waiting past the first escalation step."""
    if escalated <= 0:
        return ""
    who = "A visitor has" if escalated == 1 else f"{escalated} visitors have"
    return f"{who} waited past the first escalation: see Waiting visitors"


def _plural(count: int, noun: str, none: str) -> str:
    if count == 0:
        return none
    return f"{count} {noun}{'s' if count != 1 else ''}"


class FallbackWindow(QMainWindow):
    """A small window standing in for the tray (GNOME without the AppIndicator extension).

    Closing it hides it (like a tray app); Quit is in its menu.
    """

    def __init__(self, menu: QMenu, open_action: QAction) -> None:
        super().__init__()
        self.setObjectName("deskbellFallbackWindow")
        self.menuBar().addMenu(menu)
        central = QWidget()
        layout = QVBoxLayout(central)
        self.state_label = QLabel()
        self.state_label.setTextFormat(Qt.TextFormat.PlainText)
        self.state_label.setWordWrap(True)
        self.open_button = QPushButton(open_action.text())
        self.open_button.clicked.connect(open_action.trigger)
        layout.addWidget(self.state_label)
        layout.addWidget(self.open_button)
        self.setCentralWidget(central)
        self.resize(320, 140)

    def closeEvent(self, event: QCloseEvent) -> None:
        """Hide instead of closing: the app keeps running, like it would in the tray."""
        event.ignore()
        self.hide()


class TrayController(QObject):
    """Tray icon with badge, tooltip and menu.

    Args:
        allow_sign_out: False when the DisableSignOut policy is set: Sign out is hidden.
        tray_available: whether a system tray exists; None asks
            ``QSystemTrayIcon.isSystemTrayAvailable()``. Without a tray a
            :class:`FallbackWindow` shows the same actions and the count in its title.
        clock: "now" for the timed do-not-disturb choices.
        tray_icon: an icon already on show (the launcher puts one up first, so the
            person sees Deskbell start at once); it is taken over.

    Signals:
        openNotifications(): left click, or "Open notifications".
        dndRequested(object): "on", a ``datetime`` until which DND lasts, or None (off).
        settingsRequested(), statusRequested() ("About Deskbell…": the status window),
        openWaiting(): "Waiting visitors".
        awayRequested(bool): "Away" ticked or unticked.
        signOutRequested(), quitRequested().
    """

    openNotifications = Signal()
    openWaiting = Signal()
    awayRequested = Signal(bool)
    dndRequested = Signal(object)
    settingsRequested = Signal()
    statusRequested = Signal()
    signOutRequested = Signal()
    quitRequested = Signal()

    def __init__(
        self,
        *,
        allow_sign_out: bool = True,
        tray_available: bool | None = None,
        clock: Clock = local_now,
        tray_icon: QSystemTrayIcon | None = None,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self._clock = clock
        self._unread = 0
        self._connection = "connecting"
        self._dnd = False
        self._counts: dict[str, int] | None = None
        self._escalated = 0
        # Drawing the icon's fourteen pixmaps takes milliseconds: a burst of new chats
        # would spend a core on repaints. Icons are kept per (badge text, look), and
        # repaints happen at most every RENDER_INTERVAL_MS: the first change at once,
        # the last one of a burst when the interval is over.
        self._icons: dict[tuple[str, IconState], QIcon] = {}
        self._last_render = -1e9
        self._render_timer = QTimer(self)
        self._render_timer.setSingleShot(True)
        self._render_timer.timeout.connect(self._render_icon)
        if tray_available is None:
            tray_available = QSystemTrayIcon.isSystemTrayAvailable()

        self.menu = QMenu("Deskbell")
        self.open_action = self.menu.addAction("Open notifications")
        self.open_action.triggered.connect(self.openNotifications)
        self.waiting_action = self.menu.addAction("Waiting visitors")
        self.waiting_action.triggered.connect(self.openWaiting)
        self.away_action = self.menu.addAction("Away")
        self.away_action.setCheckable(True)
        self.away_action.toggled.connect(self.awayRequested)
        self.dnd_menu = self.menu.addMenu("Do not disturb")
        self.dnd_on_action = self.dnd_menu.addAction("On")
        self.dnd_hour_action = self.dnd_menu.addAction("For 1 hour")
        self.dnd_tomorrow_action = self.dnd_menu.addAction("Until tomorrow")
        self.dnd_off_action = self.dnd_menu.addAction("Off")
        self.dnd_on_action.triggered.connect(lambda: self.dndRequested.emit("on"))
        self.dnd_hour_action.triggered.connect(
            lambda: self.dndRequested.emit(self._clock() + timedelta(hours=1))
        )
        self.dnd_tomorrow_action.triggered.connect(
            lambda: self.dndRequested.emit(until_tomorrow(self._clock()))
        )
        self.dnd_off_action.triggered.connect(lambda: self.dndRequested.emit(None))
        self.menu.addSeparator()
        self.settings_action = self.menu.addAction("Settings…")
        self.settings_action.triggered.connect(self.settingsRequested)
        self.status_action = self.menu.addAction("About Deskbell…")
        self.status_action.triggered.connect(self.statusRequested)
        self.sign_out_action = self.menu.addAction("Sign out")
        self.sign_out_action.triggered.connect(self.signOutRequested)
        self.sign_out_action.setVisible(allow_sign_out)
        self.sign_out_action.setEnabled(allow_sign_out)
        self.menu.addSeparator()
        self.quit_action = self.menu.addAction("Quit Deskbell")
        self.quit_action.triggered.connect(self.quitRequested)

        self.tray: QSystemTrayIcon | None = None
        self.fallback_window: FallbackWindow | None = None
        if tray_available:
            if tray_icon is not None:
                # Shown by the launcher before the app was built: keep that icon, so
                # the tray never shows two or loses its place.
                tray_icon.setParent(self)
                self.tray = tray_icon
            else:
                self.tray = QSystemTrayIcon(self)
            self.tray.setContextMenu(self.menu)
            self.tray.activated.connect(self._on_activated)
        else:
            self.fallback_window = FallbackWindow(self.menu, self.open_action)
        self._render()

    def show(self) -> None:
        """Show the tray icon, or the fallback window when there is no tray."""
        if self.tray is not None:
            self.tray.show()
        elif self.fallback_window is not None:
            self.fallback_window.show()

    def hide(self) -> None:
        """Remove the tray icon (or hide the fallback window), before quitting."""
        if self.tray is not None:
            self.tray.hide()
        if self.fallback_window is not None:
            self.fallback_window.hide()

    def set_state(
        self,
        unread: int,
        connection: str,
        dnd: bool,
        counts: Mapping[str, int] | None = None,
    ) -> None:
        """Show a new badge count, connection state ("connecting", "connected",
        "disconnected", "signed_out") and do-not-disturb flag.

        ``counts`` (optional) is the server's unread object, for a fuller tooltip.
        """
        state = (max(0, unread), connection, dnd, dict(counts) if counts is not None else None)
        if state == (self._unread, self._connection, self._dnd, self._counts):
            return  # nothing to repaint: fourteen pixmaps are not free
        self._unread, self._connection, self._dnd, self._counts = state
        self._render()

    def set_escalated(self, count: int) -> None:
        """How many visitors wait past the first escalation step (0: none)."""
        count = max(0, count)
        if count != self._escalated:
            self._escalated = count
            self._render()

    @property
    def escalated(self) -> int:
        return self._escalated

    def icon(self) -> QIcon:
        """The icon for the current state."""
        look = icon_state(self._connection, self._dnd, self._escalated)
        # The largest size shows the most (up to "99+"): counts that look alike there
        # look alike at every size.
        key = (badge_text(self._unread, max(ICON_SIZES) * 2), look)
        icon = self._icons.get(key)
        if icon is None:
            if len(self._icons) > 256:
                self._icons.clear()
            icon = self._icons[key] = make_tray_icon(self._unread, look)
        return icon

    def tooltip(self) -> str:
        """The tooltip currently shown."""
        tip = tooltip_text(self._unread, self._connection, self._dnd, self._counts)
        line = waiting_line(self._escalated) if self._connection == "connected" else ""
        return f"{tip}\n{line}" if line else tip

    def _render(self) -> None:
        """Show the current state: text at once, the icon at most every
        RENDER_INTERVAL_MS (the first change at once, the last of a burst when the
        interval is over)."""
        tip = self.tooltip()
        self.dnd_on_action.setEnabled(not self._dnd)
        self.dnd_off_action.setEnabled(self._dnd)
        if self.tray is not None:
            self.tray.setToolTip(tip)
        if self.fallback_window is not None:
            window = self.fallback_window
            window.setWindowTitle(f"Deskbell ({self._unread})" if self._unread else "Deskbell")
            window.state_label.setText(tip)
        if self._render_timer.isActive():
            return  # the pending repaint will draw this state
        wait_ms = RENDER_INTERVAL_MS - (time_monotonic() - self._last_render) * 1000
        if wait_ms <= 0:
            self._render_icon()
        else:
            self._render_timer.start(int(wait_ms) + 1)

    def _render_icon(self) -> None:
        self._last_render = time_monotonic()
        icon = self.icon()
        # A delayed repaint can come after shutdown deleted the window or the icon.
        if self.tray is not None and shiboken6.isValid(self.tray):
            self.tray.setIcon(icon)
        if self.fallback_window is not None and shiboken6.isValid(self.fallback_window):
            self.fallback_window.setWindowIcon(icon)

    def _on_activated(self, reason: QSystemTrayIcon.ActivationReason) -> None:
        if reason in (
            QSystemTrayIcon.ActivationReason.Trigger,
            QSystemTrayIcon.ActivationReason.DoubleClick,
        ):
            self.openNotifications.emit()
