"""Presence: dnd, away by hand, away from idle time, and one frame per change."""

from __future__ import annotations

from desktop_agent.core.presence import PresenceTracker, presence_status


def test_idle_past_the_setting_is_away_and_input_brings_online_back() -> None:
    def status(idle: float) -> str:
        return presence_status(
            dnd=False, away_by_hand=False, idle_seconds=idle, away_after_seconds=300
        )

    assert status(299) == "online"
    assert status(300) == "away"
    assert status(2) == "online"


def test_idle_never_means_away_when_the_setting_is_off_or_idle_is_unknown() -> None:
    for after in (None, 0):
        assert (
            presence_status(
                dnd=False, away_by_hand=False, idle_seconds=1e6, away_after_seconds=after
            )
            == "online"
        )
    assert (
        presence_status(dnd=False, away_by_hand=False, idle_seconds=None, away_after_seconds=60)
        == "online"
    )


def test_dnd_wins_over_away_and_away_by_hand_over_activity() -> None:
    assert (
        presence_status(dnd=True, away_by_hand=True, idle_seconds=1e6, away_after_seconds=1)
        == "dnd"
    )
    assert (
        presence_status(dnd=False, away_by_hand=True, idle_seconds=0, away_after_seconds=1)
        == "away"
    )


def test_the_tracker_sends_each_change_once_and_again_after_a_reconnect() -> None:
    tracker = PresenceTracker()
    assert tracker.update("online") == "online"
    assert tracker.update("online") is None
    assert tracker.update("away") == "away"
    assert tracker.update("away") is None
    tracker.reconnected()
    assert tracker.update("away") == "away"
    tracker.reconnected()
    assert tracker.update("online") is None
