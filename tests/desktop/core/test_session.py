from core_factories import notification
from hypothesis import given
from hypothesis import strategies as st

from desktop_agent.core.session import Decision, SessionCursor


def test_a_first_start_resumes_after_the_servers_last_seq() -> None:
    cursor = SessionCursor()
    assert cursor.on_welcome(server_last_seq=41) == 41
    assert cursor.last_seq == 41


def test_a_known_cursor_resumes_where_it_stopped() -> None:
    assert SessionCursor(last_seq=10).on_welcome(server_last_seq=41) == 10


def test_a_cursor_ahead_of_a_reset_server_starts_again_at_the_servers_seq() -> None:
    cursor = SessionCursor(last_seq=500)
    assert cursor.on_welcome(server_last_seq=3) == 3
    assert cursor.accept(notification(4)) is Decision.ACCEPT


def test_the_next_seq_is_accepted_and_moves_the_cursor() -> None:
    cursor = SessionCursor(last_seq=5)
    assert cursor.accept(notification(6)) is Decision.ACCEPT
    assert cursor.last_seq == 6


def test_an_old_or_repeated_seq_is_a_duplicate() -> None:
    cursor = SessionCursor(last_seq=5)
    assert cursor.accept(notification(5)) is Decision.DUPLICATE
    assert cursor.accept(notification(2)) is Decision.DUPLICATE
    assert cursor.last_seq == 5


def test_a_seq_that_skips_ahead_is_a_gap_and_is_not_delivered() -> None:
    cursor = SessionCursor(last_seq=5)
    assert cursor.accept(notification(7)) is Decision.GAP
    assert cursor.last_seq == 5


def test_a_replay_is_released_in_order_when_its_ok_arrives() -> None:
    cursor = SessionCursor(last_seq=5)
    assert cursor.start_resume(limit=500) == 5
    for seq in (6, 7, 8):
        assert cursor.accept(notification(seq)) is Decision.BUFFERED
    outcome = cursor.finish_resume(server_last_seq=8, truncated=False)
    assert [n.seq for n in outcome.notifications] == [6, 7, 8]
    assert not outcome.gap and not outcome.truncated
    assert cursor.last_seq == 8 and not cursor.resuming


def test_live_frames_in_flight_during_a_resume_are_neither_lost_nor_doubled() -> None:
    cursor = SessionCursor(last_seq=5)
    assert cursor.accept(notification(7)) is Decision.GAP
    cursor.start_resume(limit=500)
    # Frames the server sent before it read the resume, then the replay itself.
    for seq in (8, 6, 7, 8, 9):
        cursor.accept(notification(seq))
    outcome = cursor.finish_resume(server_last_seq=9, truncated=False)
    assert [n.seq for n in outcome.notifications] == [6, 7, 8, 9]


def test_a_truncated_replay_starts_at_the_newest_limit_without_a_gap() -> None:
    cursor = SessionCursor(last_seq=0)
    cursor.start_resume(limit=3)
    for seq in (8, 9, 10):
        cursor.accept(notification(seq))
    outcome = cursor.finish_resume(server_last_seq=10, truncated=True)
    assert [n.seq for n in outcome.notifications] == [8, 9, 10]
    assert outcome.truncated and not outcome.gap


def test_a_replay_missing_a_frame_reports_a_gap_and_keeps_the_cursor_before_it() -> None:
    cursor = SessionCursor(last_seq=5)
    cursor.start_resume(limit=500)
    for seq in (6, 8):
        cursor.accept(notification(seq))
    outcome = cursor.finish_resume(server_last_seq=8, truncated=False)
    assert [n.seq for n in outcome.notifications] == [6]
    assert outcome.gap
    assert cursor.last_seq == 6


def test_an_empty_replay_at_the_servers_seq_is_complete() -> None:
    cursor = SessionCursor(last_seq=5)
    cursor.start_resume(limit=500)
    outcome = cursor.finish_resume(server_last_seq=5, truncated=False)
    assert outcome.notifications == [] and not outcome.gap


# --- properties ------------------------------------------------------------------

# A server stream as the client might see it: each step delivers seq s, drops it,
# or repeats an earlier one; the client resumes on every gap, and the "server" then
# replays everything after the cursor (possibly after more live frames in flight).


@given(
    start=st.integers(min_value=0, max_value=50),
    steps=st.lists(st.sampled_from(["send", "drop", "repeat", "reorder"]), max_size=80),
)
def test_a_cursor_never_accepts_a_seq_twice_and_flags_every_gap(
    start: int, steps: list[str]
) -> None:
    cursor = SessionCursor(last_seq=start)
    server_last = start
    delivered: list[int] = []
    wire: list[int] = []
    for step in steps:
        server_last += 1
        if step == "send":
            wire.append(server_last)
        elif step == "repeat":
            wire.extend([server_last, server_last - 1])
        elif step == "reorder":
            wire.extend([server_last, server_last])
        # "drop": the frame never arrives.
    for seq in wire:
        before = cursor.last_seq
        decision = cursor.accept(notification(seq))
        if decision is Decision.ACCEPT:
            assert seq == before + 1
            delivered.append(seq)
        elif decision is Decision.DUPLICATE:
            assert seq <= before
        else:
            assert decision is Decision.GAP
            assert seq > before + 1
    # Every seq delivered exactly once, in order, with no hole before the cursor.
    assert delivered == list(range(start + 1, cursor.last_seq + 1))
    # A dropped frame always stops the cursor before it: nothing after a hole leaks through.
    dropped = {s for s in range(start + 1, server_last + 1) if s not in wire}
    if dropped:
        assert cursor.last_seq < min(dropped)


@given(
    start=st.integers(min_value=0, max_value=30),
    in_flight=st.lists(st.integers(min_value=0, max_value=1000), max_size=10),
    missed=st.integers(min_value=0, max_value=40),
    limit=st.integers(min_value=1, max_value=50),
)
def test_a_resume_delivers_each_missed_seq_once_in_order(
    start: int, in_flight: list[int], missed: int, limit: int
) -> None:
    cursor = SessionCursor(last_seq=start)
    server_last = start + missed
    cursor.start_resume(limit=limit)
    # Live frames the server sent before it read the resume: any already-stored seqs,
    # old ones included, in any order.
    for offset in in_flight:
        cursor.accept(notification(offset % (server_last + 1) or 1))
    first = max(start + 1, server_last - limit + 1)
    for seq in range(first, server_last + 1):
        cursor.accept(notification(seq))
    outcome = cursor.finish_resume(server_last_seq=server_last, truncated=missed > limit)
    seqs = [n.seq for n in outcome.notifications]
    assert seqs == list(range(first, server_last + 1))
    assert not outcome.gap
    assert cursor.last_seq == server_last
