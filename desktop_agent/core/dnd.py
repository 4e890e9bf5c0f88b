"""Do not disturb: manual (until turned off), timed (an hour, until tomorrow), scheduled.

DND changes what the desktop shows, never what the server stores: notifications still
arrive and count, they just do not toast. Times are compared in the timezone of the
``now`` the caller passes (the app passes local time).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import Any

ALL_DAYS = frozenset(range(7))
DEFAULT_MORNING = time(8, 0)


@dataclass(frozen=True)
class DndSchedule:
    """A daily quiet window, e.g. 18:00 to 08:00 on weekdays.

    Attributes:
        start, end: local wall-clock times; ``end`` before ``start`` runs past midnight;
            equal times make an empty window.
        days: weekdays (Monday 0 … Sunday 6) on which the window *starts*.
    """

    start: time
    end: time
    days: frozenset[int] = field(default=ALL_DAYS)

    def active(self, now: datetime) -> bool:
        """True when ``now`` falls inside the window."""
        clock = now.time().replace(tzinfo=None)
        if self.start == self.end:
            return False
        if self.start < self.end:
            return now.weekday() in self.days and self.start <= clock < self.end
        if clock >= self.start:
            return now.weekday() in self.days
        if clock < self.end:
            return (now.weekday() - 1) % 7 in self.days
        return False

    def to_setting(self) -> dict[str, Any]:
        """The settings-file form: ``{"start": "18:00", "end": "08:00", "days": [0, …]}``."""
        return {
            "start": self.start.strftime("%H:%M"),
            "end": self.end.strftime("%H:%M"),
            "days": sorted(self.days),
        }

    @classmethod
    def from_setting(cls, value: Any) -> DndSchedule:
        """Read the settings-file form.

        Raises:
            ValueError: not that shape; the message says what is expected.
        """
        if not isinstance(value, dict):
            raise ValueError('expected a table like {start = "18:00", end = "08:00"}')
        try:
            start = time.fromisoformat(str(value["start"]))
            end = time.fromisoformat(str(value["end"]))
        except (KeyError, ValueError):
            raise ValueError('start and end must be times like "18:00"') from None
        days_value = value.get("days", sorted(ALL_DAYS))
        if not isinstance(days_value, list) or not all(
            isinstance(d, int) and not isinstance(d, bool) and 0 <= d <= 6 for d in days_value
        ):
            raise ValueError("days must be a list of weekday numbers, Monday 0 to Sunday 6")
        return cls(start, end, frozenset(days_value))


class DoNotDisturb:
    """The agent's DND state: a manual switch (optionally timed) plus a schedule.

    Args:
        schedule: the daily window from settings, if any.
    """

    def __init__(self, schedule: DndSchedule | None = None) -> None:
        self.schedule = schedule
        self._manual = False
        self._until: datetime | None = None

    @property
    def manual_until(self) -> datetime | None:
        """When a timed manual DND ends (None: not timed, or off)."""
        return self._until if self._manual else None

    def turn_on(self, until: datetime | None = None) -> None:
        """Silence toasts until ``until``, or until :meth:`turn_off` when None."""
        self._manual = True
        self._until = until

    def turn_off(self) -> None:
        """End manual DND (a scheduled window still applies)."""
        self._manual = False
        self._until = None

    def apply_request(self, request: object) -> None:
        """Apply the tray's ``dndRequested`` value: None (off), "on", or a datetime.

        Raises:
            ValueError: any other value.
        """
        if request is None:
            self.turn_off()
        elif request == "on":
            self.turn_on()
        elif isinstance(request, datetime):
            self.turn_on(request)
        else:
            raise ValueError(f"unknown do-not-disturb request {request!r}")

    def manual_active(self, now: datetime) -> bool:
        """True while manual DND is on and (if timed) not yet over."""
        return self._manual and (self._until is None or now < self._until)

    def active(self, now: datetime) -> bool:
        """True when toasts must stay quiet at ``now``."""
        if self.manual_active(now):
            return True
        return self.schedule is not None and self.schedule.active(now)


def one_hour_from(now: datetime) -> datetime:
    """The end of "Do not disturb for 1 hour"."""
    return now + timedelta(hours=1)


def tomorrow_morning(now: datetime, at: time = DEFAULT_MORNING) -> datetime:
    """The end of "Do not disturb until tomorrow": the next day at ``at``, in ``now``'s zone."""
    next_day = (now + timedelta(days=1)).date()
    return datetime.combine(next_day, at, tzinfo=now.tzinfo)
