"""Who is notified of what: PROTOCOL.md's routing table as a pure function.

No I/O: the caller looks up inbox members and the assignee and passes them in, so
these rules are tested on their own.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from backend.protocol import (
    KIND_CONVERSATION_ASSIGNED,
    KIND_CONVERSATION_CREATED,
    KIND_MESSAGE_CREATED,
)


@dataclass(frozen=True, slots=True)
class ConversationCreated:
    inbox_members: frozenset[int]
    kind: str = KIND_CONVERSATION_CREATED


@dataclass(frozen=True, slots=True)
class VisitorMessage:
    inbox_members: frozenset[int]
    assignee: int | None
    kind: str = KIND_MESSAGE_CREATED


@dataclass(frozen=True, slots=True)
class ConversationAssigned:
    new_assignee: int
    kind: str = KIND_CONVERSATION_ASSIGNED


@dataclass(frozen=True, slots=True)
class AgentReply:
    """An agent's reply notifies nobody: the visitor sees it in the widget."""

    kind: str = "chat.message.replied"


@dataclass(frozen=True, slots=True)
class DirectEvent:
    """Any other kind, with recipients already expanded to agent ids."""

    recipients: frozenset[int]
    kind: str = "other"


RoutedEvent = ConversationCreated | VisitorMessage | ConversationAssigned | AgentReply | DirectEvent


def recipients(event: RoutedEvent, actor: int | None) -> list[int]:
    """Return the agents to notify of ``event``, sorted, never including ``actor``.

    Args:
        event: what happened, with the facts routing needs.
        actor: the agent who caused it, or None for visitors and integrations.
    """
    targets: Iterable[int]
    match event:
        case ConversationCreated(inbox_members=members):
            targets = members
        case VisitorMessage(inbox_members=members, assignee=assignee):
            # An assignee who has since left the inbox no longer sees its chats.
            targets = (assignee,) if assignee is not None and assignee in members else members
        case ConversationAssigned(new_assignee=assignee):
            targets = (assignee,)
        case AgentReply():
            targets = ()
        case DirectEvent(recipients=listed):
            targets = listed
    return sorted(agent for agent in set(targets) if agent != actor)
