"""PROTOCOL.md's routing table, as the pure core implements it."""

from backend.routing import (
    AgentReply,
    ConversationAssigned,
    ConversationCreated,
    DirectEvent,
    VisitorMessage,
    recipients,
)

INBOX = frozenset({1, 2, 3})


def test_new_conversation_notifies_every_agent_of_the_inbox() -> None:
    assert recipients(ConversationCreated(INBOX), actor=None) == [1, 2, 3]


def test_visitor_message_notifies_assignee_only() -> None:
    assert recipients(VisitorMessage(INBOX, assignee=2), actor=None) == [2]


def test_visitor_message_without_assignee_notifies_the_whole_inbox() -> None:
    assert recipients(VisitorMessage(INBOX, assignee=None), actor=None) == [1, 2, 3]


def test_assignee_who_left_the_inbox_is_not_notified_the_inbox_is() -> None:
    assert recipients(VisitorMessage(INBOX, assignee=9), actor=None) == [1, 2, 3]


def test_assignment_notifies_the_new_assignee() -> None:
    assert recipients(ConversationAssigned(new_assignee=3), actor=1) == [3]


def test_nobody_is_notified_of_their_own_assignment() -> None:
    assert recipients(ConversationAssigned(new_assignee=1), actor=1) == []


def test_agent_reply_notifies_nobody() -> None:
    assert recipients(AgentReply(), actor=1) == []


def test_other_kinds_go_to_listed_recipients_without_the_actor() -> None:
    assert recipients(DirectEvent(frozenset({5, 1, 7})), actor=7) == [1, 5]


def test_actor_is_never_a_recipient_of_a_new_conversation() -> None:
    assert recipients(ConversationCreated(INBOX), actor=2) == [1, 3]
