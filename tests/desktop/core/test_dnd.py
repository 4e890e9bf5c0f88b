from datetime import UTC, datetime, time, timedelta

import pytest

from desktop_agent.core.dnd import DndSchedule, DoNotDisturb, one_hour_from, tomorrow_morning

MONDAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)


def at(day_offset: int, hour: int, minute: int = 0) -> datetime:
    return MONDAY_NOON.replace(hour=hour, minute=minute) + timedelta(days=day_offset)


def test_manual_dnd_stays_on_until_turned_off() -> None:
    dnd = DoNotDisturb()
    dnd.turn_on()
    assert dnd.active(MONDAY_NOON + timedelta(days=30))
    dnd.turn_off()
    assert not dnd.active(MONDAY_NOON)


def test_timed_dnd_ends_by_itself() -> None:
    dnd = DoNotDisturb()
    dnd.turn_on(until=one_hour_from(MONDAY_NOON))
    assert dnd.active(MONDAY_NOON + timedelta(minutes=59))
    assert not dnd.active(MONDAY_NOON + timedelta(hours=1))


def test_until_tomorrow_means_tomorrow_morning_in_the_same_zone() -> None:
    assert tomorrow_morning(MONDAY_NOON) == datetime(2026, 11, 24, 8, 0, tzinfo=UTC)
    assert tomorrow_morning(at(0, 23, 59), at=time(9)) == datetime(2026, 11, 24, 9, tzinfo=UTC)


def test_the_trays_requests_map_to_off_on_and_until() -> None:
    dnd = DoNotDisturb()
    dnd.apply_request("on")
    assert dnd.active(MONDAY_NOON) and dnd.manual_until is None
    until = MONDAY_NOON + timedelta(hours=1)
    dnd.apply_request(until)
    assert dnd.manual_until == until
    dnd.apply_request(None)
    assert not dnd.active(MONDAY_NOON)
    with pytest.raises(ValueError):
        dnd.apply_request("sometimes")


def test_a_daytime_schedule_covers_its_hours_on_its_days_only() -> None:
    lunch = DndSchedule(time(12), time(13), days=frozenset({0}))  # Mondays
    assert lunch.active(at(0, 12, 30))
    assert not lunch.active(at(0, 13))
    assert not lunch.active(at(1, 12, 30))  # Tuesday


def test_an_overnight_schedule_runs_past_midnight_into_the_next_day() -> None:
    nights = DndSchedule(time(18), time(8), days=frozenset({0}))  # Monday night only
    assert nights.active(at(0, 18))
    assert nights.active(at(1, 7, 59))  # Tuesday early morning, still Monday's night
    assert not nights.active(at(1, 8))
    assert not nights.active(at(1, 19))  # Tuesday night is not scheduled
    assert not nights.active(at(0, 7))  # Sunday night is not scheduled


def test_a_schedule_silences_without_a_manual_switch() -> None:
    dnd = DoNotDisturb(DndSchedule(time(18), time(8)))
    assert dnd.active(at(0, 22))
    assert not dnd.active(at(0, 10))


def test_a_schedule_round_trips_through_its_settings_form() -> None:
    schedule = DndSchedule(time(18, 30), time(7, 45), frozenset({0, 1, 2, 3, 4}))
    assert DndSchedule.from_setting(schedule.to_setting()) == schedule


@pytest.mark.parametrize(
    "value",
    [
        "18:00-08:00",
        {"start": "6pm", "end": "08:00"},
        {"start": "18:00"},
        {"start": "18:00", "end": "08:00", "days": [7]},
    ],
)
def test_a_malformed_schedule_is_refused_with_a_reason(value: object) -> None:
    with pytest.raises(ValueError, match=r"\w"):
        DndSchedule.from_setting(value)
