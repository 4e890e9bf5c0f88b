from datetime import UTC, datetime, timedelta
from typing import Any

from core_factories import notification
from hypothesis import given
from hypothesis import strategies as st

from backend.protocol import MAX_NAME_CHARS
from desktop_agent.core.dnd import DoNotDisturb
from desktop_agent.core.toast_policy import ShowToast, SummaryToast, ToastPolicy, offers_accept

T0 = datetime(2026, 11, 25, 10, 0, tzinfo=UTC)


def secs(n: float) -> datetime:
    return T0 + timedelta(seconds=n)


def chat(seq: int, conversation: str = "c_1", visitor: str = "Dana Smith", **kw: Any) -> Any:
    return notification(seq, conversation_id=conversation, title=visitor, **kw)


def test_a_chat_message_toasts_with_visitor_and_inbox_and_a_plain_preview() -> None:
    decision = ToastPolicy().on_notification(chat(1, body="Hi,\n  my order\t#1234"), T0)
    assert decision == ShowToast(
        key="conversation:c_1",
        title="Dana Smith · Support",
        body="Hi, my order #1234",
        conversation_id="c_1",
        replaces=None,
        notification_ids=("n_1",),
        inbox="Support",
        kind="chat.message.created",
    )


def test_a_long_preview_is_shortened_with_an_ellipsis() -> None:
    decision = ToastPolicy().on_notification(chat(1, body="word " * 100), T0)
    assert isinstance(decision, ShowToast)
    assert len(decision.body) <= 160 and decision.body.endswith("…")


def test_the_longest_names_are_shortened_in_the_title_and_the_inbox_stays() -> None:
    name = ("Maximiliana Wolfeschlegelsteinhausen " * 4)[:MAX_NAME_CHARS]
    inbox = {"inbox": {"id": "i_1", "name": "Customer Success " * 7}}
    decision = ToastPolicy().on_notification(chat(1, visitor=name, data=inbox), T0)
    assert isinstance(decision, ShowToast)
    visitor, _, shown_inbox = decision.title.partition(" · ")
    assert len(visitor) <= 48 and visitor.endswith("…")
    assert shown_inbox.startswith("Customer Success") and len(shown_inbox) <= 32


def test_markup_in_visitor_text_is_passed_on_as_text_not_interpreted() -> None:
    decision = ToastPolicy().on_notification(chat(1, body="<b>hi</b> &amp;"), T0)
    assert isinstance(decision, ShowToast)
    assert decision.body == "<b>hi</b> &amp;"


def test_a_burst_in_one_conversation_updates_one_toast_with_a_count() -> None:
    policy = ToastPolicy()
    first = policy.on_notification(chat(1), secs(0))
    second = policy.on_notification(chat(2), secs(5))
    third = policy.on_notification(chat(3, body="Any news?"), secs(9))
    assert isinstance(first, ShowToast) and first.replaces is None
    assert isinstance(third, ShowToast)
    assert third.key == second.key == first.key  # type: ignore[union-attr]
    assert third.replaces == first.key
    assert third.body.startswith("3 new messages from Dana Smith")
    assert third.body.endswith("Any news?")


def test_after_a_quiet_spell_the_count_starts_again_but_replaces_the_old_toast() -> None:
    policy = ToastPolicy(burst_window=timedelta(minutes=2))
    policy.on_notification(chat(1), secs(0))
    later = policy.on_notification(chat(2, body="Hello again"), secs(600))
    assert isinstance(later, ShowToast)
    assert later.body == "Hello again"
    assert later.replaces == "conversation:c_1"


def test_a_read_conversation_starts_a_fresh_count() -> None:
    policy = ToastPolicy()
    policy.on_notification(chat(1), secs(0))
    policy.conversation_read("c_1")
    again = policy.on_notification(chat(2, body="Still there?"), secs(1))
    assert isinstance(again, ShowToast) and again.body == "Still there?"


def test_a_closed_toast_is_not_replaced_but_shown_anew() -> None:
    policy = ToastPolicy()
    policy.on_notification(chat(1), secs(0))
    policy.toast_closed("conversation:c_1")
    again = policy.on_notification(chat(2), secs(1))
    assert isinstance(again, ShowToast) and again.replaces is None


def test_more_than_five_new_toasts_in_ten_seconds_become_one_summary() -> None:
    policy = ToastPolicy()
    decisions = [
        policy.on_notification(chat(i, conversation=f"c_{i}", visitor=f"Visitor {i}"), secs(i))
        for i in range(1, 9)
    ]
    assert all(isinstance(d, ShowToast) for d in decisions[:5])
    summaries = decisions[5:]
    assert all(isinstance(d, SummaryToast) and d.key == "summary" for d in summaries)
    assert summaries[0].replaces is None  # type: ignore[union-attr]
    assert summaries[-1].replaces == "summary"  # type: ignore[union-attr]
    assert summaries[-1].title == "3 more new notifications"
    assert "Visitor 6, Visitor 7 and Visitor 8" in summaries[-1].body


def test_once_the_flood_is_over_single_toasts_come_back() -> None:
    policy = ToastPolicy()
    for i in range(1, 8):
        policy.on_notification(chat(i, conversation=f"c_{i}"), secs(i))
    calm = policy.on_notification(chat(20, conversation="c_20"), secs(30))
    assert isinstance(calm, ShowToast)


def test_other_categories_do_not_toast_unless_chosen() -> None:
    ticket = notification(1, kind="ticket.assigned", conversation_id=None, title="Ticket #9")
    assert ToastPolicy().on_notification(ticket, T0) is None
    decision = ToastPolicy(categories={"chat", "ticket"}).on_notification(ticket, T0)
    assert decision == ShowToast("notification:n_1", "Ticket #9", ticket.body, None, None, ("n_1",))


def test_nothing_toasts_during_do_not_disturb() -> None:
    dnd = DoNotDisturb()
    policy = ToastPolicy(dnd=dnd)
    dnd.turn_on(until=secs(60))
    assert policy.on_notification(chat(1), secs(10)) is None
    assert policy.on_resumed([chat(2), chat(3)], secs(20)) is None
    assert policy.on_notification(chat(4), secs(61)) is not None


def test_the_open_and_focused_conversation_does_not_toast() -> None:
    policy = ToastPolicy()
    policy.set_focused_conversation("c_1")
    assert policy.on_notification(chat(1), T0) is None
    assert policy.on_notification(chat(2, conversation="c_2"), T0) is not None
    policy.set_focused_conversation(None)
    assert policy.on_notification(chat(3), T0) is not None


def test_what_the_agent_did_does_not_toast() -> None:
    policy = ToastPolicy(self_agent_id="a_1")
    own = chat(1, data={"actor_id": "a_1"})
    assert policy.on_notification(own, T0) is None
    policy.note_own_action("c_2", T0)
    assigned = chat(2, conversation="c_2", kind="chat.conversation.assigned")
    assert policy.on_notification(assigned, secs(3)) is None
    # A visitor writing in that conversation right after is not the agent's doing.
    assert policy.on_notification(chat(3, conversation="c_2"), secs(4)) is not None


def test_read_notifications_do_not_toast() -> None:
    assert ToastPolicy().on_notification(chat(1, read=True), T0) is None


def test_a_resume_brings_one_summary_of_what_arrived_while_away() -> None:
    policy = ToastPolicy()
    missed = [
        chat(1),
        chat(2),
        chat(3, conversation="c_2", visitor="Bob"),
        notification(4, kind="ticket.assigned", conversation_id=None),
    ]
    decision = policy.on_resumed(missed, T0)
    assert decision == SummaryToast(
        key="resume",
        title="3 new messages while you were away",
        body="From Dana Smith (2) and Bob. Open Deskbell to read them.",
        replaces=None,
        notification_ids=("n_1", "n_2", "n_3"),
    )


def test_a_truncated_resume_says_there_were_more() -> None:
    decision = ToastPolicy().on_resumed([chat(1), chat(2)], T0, truncated=True)
    assert isinstance(decision, SummaryToast) and decision.title.startswith("2+ new")


def test_an_empty_resume_shows_nothing() -> None:
    assert ToastPolicy().on_resumed([], T0) is None
    assert ToastPolicy().on_resumed([chat(1, read=True)], T0) is None


def test_a_single_notification_recovered_after_a_gap_toasts_like_a_live_one() -> None:
    decision = ToastPolicy().on_resumed([chat(1)], T0, after_gap=True)
    assert isinstance(decision, ShowToast) and decision.key == "conversation:c_1"


@given(
    gaps=st.lists(st.floats(min_value=0.0, max_value=6.0), min_size=1, max_size=60),
)
def test_never_more_than_five_new_toasts_in_any_ten_seconds_and_nothing_dropped(
    gaps: list[float],
) -> None:
    policy = ToastPolicy()
    now = T0
    shown: list[datetime] = []
    for i, gap in enumerate(gaps):
        now += timedelta(seconds=gap)
        decision = policy.on_notification(chat(i + 1, conversation=f"c_{i}"), now)
        assert decision is not None  # every notification is shown or summarised
        if isinstance(decision, ShowToast):
            shown.append(now)
    for start in shown:
        in_window = [t for t in shown if start <= t <= start + timedelta(seconds=10)]
        assert len(in_window) <= 5


@given(count=st.integers(min_value=1, max_value=40), step=st.floats(min_value=0, max_value=100))
def test_a_burst_of_any_length_is_one_toast_with_the_right_count(count: int, step: float) -> None:
    policy = ToastPolicy()
    decisions = [policy.on_notification(chat(i + 1), secs(i * step)) for i in range(count)]
    assert all(isinstance(d, ShowToast) and d.key == "conversation:c_1" for d in decisions)
    last = decisions[-1]
    assert isinstance(last, ShowToast)
    if count > 1:
        assert last.body.startswith(f"{count} new messages from Dana Smith")


def test_the_backends_flat_data_shape_gives_the_same_title() -> None:
    flat = chat(
        1,
        visitor="Dana Smith was assigned to you",
        data={"inbox": "Support", "visitor_name": "Dana Smith"},
    )
    decision = ToastPolicy().on_notification(flat, T0)
    assert isinstance(decision, ShowToast) and decision.title == "Dana Smith · Support"


def escalation(seq: int, conversation: str = "c_1", step: int = 1, waited: int = 300) -> Any:
    return notification(
        seq,
        conversation_id=conversation,
        kind="chat.conversation.waiting",
        title="Dana Smith is waiting",
        body="Nobody has answered Dana Smith for 5 minutes.",
        data={
            "inbox": {"id": "i_1", "name": "Support"},
            "visitor_name": "Dana Smith",
            "waiting_since": "2026-11-25T09:55:00Z",
            "step": step,
            "waited_s": waited,
        },
    )


def test_an_escalation_is_urgent_and_replaces_the_conversations_toast() -> None:
    policy = ToastPolicy()
    policy.on_notification(chat(1), secs(0))
    decision = policy.on_notification(escalation(2), secs(1))
    assert isinstance(decision, ShowToast)
    assert decision.urgent and decision.replaces == "conversation:c_1"
    assert decision.title == "Still waiting (5 min): Dana Smith · Support"
    assert decision.notification_ids == ("n_2",)
    # The next message starts a new toast count, not "2 new messages".
    after = policy.on_notification(chat(3, body="Hello?"), secs(2))
    assert isinstance(after, ShowToast) and after.body == "Hello?" and not after.urgent


def test_an_escalation_is_never_folded_into_a_summary() -> None:
    policy = ToastPolicy(rate_limit=2)
    for seq, conversation in enumerate(["c_1", "c_2", "c_3"], start=1):
        policy.on_notification(chat(seq, conversation=conversation), secs(seq))
    decision = policy.on_notification(escalation(9, conversation="c_9"), secs(5))
    assert isinstance(decision, ShowToast) and decision.urgent


def test_a_muted_inbox_does_not_toast_but_its_escalations_do() -> None:
    policy = ToastPolicy()
    policy.muted_inboxes = frozenset({"Support"})
    assert policy.on_notification(chat(1), T0) is None
    assert isinstance(policy.on_notification(escalation(2), T0), ShowToast)
    other = chat(3, conversation="c_2", data={"inbox": {"id": "i_2", "name": "Sales"}})
    assert isinstance(policy.on_notification(other, T0), ShowToast)


def test_an_escalation_during_dnd_stays_quiet() -> None:
    dnd = DoNotDisturb()
    dnd.turn_on()
    assert ToastPolicy(dnd=dnd).on_notification(escalation(1), T0) is None


def test_accept_is_offered_on_unassigned_chats_only() -> None:
    assert offers_accept("chat.conversation.created", assigned=False)
    assert offers_accept("chat.message.created", assigned=False)
    assert offers_accept("chat.conversation.waiting", assigned=False)
    assert not offers_accept("chat.message.created", assigned=True)
    assert not offers_accept("chat.conversation.assigned", assigned=False)
    assert not offers_accept("ticket.assigned", assigned=False)
