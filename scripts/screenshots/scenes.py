"""The data the screenshots show: a believable afternoon of one helpdesk agent.

Plain ``backend.protocol`` objects and a fixed clock, so every run draws the same
pictures. Visitor text includes characters a markup-reading notification server would
eat (``<``, ``&``) on purpose: the pictures show them literally.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from backend.protocol import (
    AgentRef,
    Author,
    Conversation,
    InboxRef,
    Message,
    Notification,
    QueueEntry,
    Visitor,
)

NOW = datetime(2026, 3, 10, 14, 30, tzinfo=UTC)
"""The frozen "now" of every picture."""

SELF_AGENT = AgentRef(id="agent-ana", name="Ana Ortega")
SUPPORT = InboxRef(id="inbox-support", name="Support")
SALES = InboxRef(id="inbox-sales", name="Sales")

BACKDROP = "#4c566a"
"""The screen's colour behind the panel and the toast."""

TOAST_TITLE = "Dana Smith · Support"
LONG_NAME = (
    "Maximiliana Wolfeschlegelsteinhausen-Bergdorff de la Fuente y Castellanos "
    "(ordering for the Lisbon office)"
)
"""A visitor name near the protocol's 120-character limit."""
MIXED_NAME = "فاطمة الزهراء 李小龙"
"""Arabic then Chinese: must not turn the English around it right-to-left."""
CONVERSATION_VISITOR = (
    f"{MIXED_NAME} (Fatima Li), buying for the Lisbon office of Castellanos-Bergdorff Logistics"
)
"""The conversation window's visitor: mixed directions and near the 120-character limit."""
TOAST_BODY = "My order #4821 still says <label created> & the parcel was due Friday"


def at(minutes_ago: float) -> str:
    """An ISO 8601 timestamp ``minutes_ago`` before :data:`NOW`."""
    return (NOW - timedelta(minutes=minutes_ago)).isoformat()


def _chat(
    seq: int, visitor: str, inbox: InboxRef, body: str, minutes_ago: float, *, read: bool
) -> Notification:
    return Notification(
        id=f"n-{seq}",
        seq=seq,
        kind="chat.message.created",
        category="chat",
        title=visitor,  # as the server sends it, with the names in data
        body=body,
        conversation_id=f"conv-{seq}",
        url=None,
        created_at=at(minutes_ago),
        read=read,
        data={"inbox": inbox.name, "visitor_name": visitor},
    )


def _other(
    seq: int, kind: str, title: str, body: str, minutes_ago: float, *, read: bool
) -> Notification:
    return Notification(
        id=f"n-{seq}",
        seq=seq,
        kind=kind,
        category=kind.split(".", 1)[0],
        title=title,
        body=body,
        conversation_id=None,
        url=f"https://helpdesk.example.com/{kind.split('.', 1)[0]}s/{seq}",
        created_at=at(minutes_ago),
        read=read,
    )


def notifications() -> list[Notification]:
    """Chat and ticket notifications, newest first, some unread."""
    return [
        _chat(
            215,
            "Dana Smith",
            SUPPORT,
            "My order #4821 still says <label created> & the parcel was due Friday",
            0.5,
            read=False,
        ),
        _chat(
            214,
            MIXED_NAME,
            SALES,
            "مرحبا، هل يمكنني تغيير عنوان الشحن؟ 我想更改送货地址。",
            2,
            read=False,
        ),
        _chat(
            213,
            LONG_NAME,
            SUPPORT,
            "We need 40 standing desks delivered to two floors; can you split the shipment?",
            3,
            read=False,
        ),
        _chat(
            212, "Marcus Lee", SALES, "Do you offer a discount for 25 seats or more?", 4, read=False
        ),
        _other(
            210,
            "ticket.assigned",
            "Ticket #1193 assigned to you",
            "Refund request: espresso machine arrived with a cracked water tank",
            9,
            read=False,
        ),
        _chat(
            209,
            "Priya Natarajan",
            SUPPORT,
            "Thanks, the password reset link worked!",
            17,
            read=False,
        ),
        _chat(
            208,
            "Tomás Ferreira",
            SUPPORT,
            "The invoice PDF opens blank in Firefox, Chrome is fine",
            42,
            read=True,
        ),
        _other(
            207,
            "ticket.updated",
            "Ticket #1187 reopened by the customer",
            "“Still waiting for the replacement part, any news?”",
            65,
            read=True,
        ),
        _chat(
            206, "Olivia Brown", SALES, "Can we switch our plan to yearly billing?", 130, read=True
        ),
        _chat(
            205,
            "Kenji Watanabe",
            SUPPORT,
            "Is there an API limit on exports? We hit an error at 10,000 rows",
            250,
            read=True,
        ),
        _other(
            204,
            "system.maintenance",
            "Maintenance tonight 22:00 to 22:30 UTC",
            "Chat stays up; ticket search may be slow for a few minutes.",
            300,
            read=True,
        ),
        _chat(
            203,
            "Sara Kowalski",
            SUPPORT,
            "How do I add a second shipping address?",
            1500,
            read=True,
        ),
    ]


def _message(number: int, kind: str, name: str, body: str, minutes_ago: float) -> Message:
    author_id = SELF_AGENT.id if kind == "agent" and name == SELF_AGENT.name else None
    if kind == "visitor":
        author_id = "visitor-dana"
    return Message(
        id=f"m-{number}",
        author=Author(kind=kind, id=author_id, name=name),  # type: ignore[arg-type]
        body=body,
        created_at=at(minutes_ago),
    )


def conversation() -> Conversation:
    """Dana's conversation: the visitor, a system line, and the agent's replies."""
    return Conversation(
        id="conv-dana",
        inbox=SUPPORT,
        status="open",
        assignee=SELF_AGENT,
        visitor=Visitor(name=CONVERSATION_VISITOR),
        messages=[
            _message(
                1, "visitor", CONVERSATION_VISITOR, "Hi! I ordered a standing desk last week.", 9
            ),
            _message(
                2,
                "visitor",
                CONVERSATION_VISITOR,
                "My order #4821 still says <label created> & the parcel was due Friday",
                8.5,
            ),
            _message(3, "system", "Deskbell", "Ana Ortega joined the conversation", 6),
            _message(
                4,
                "agent",
                SELF_AGENT.name,
                "Hi Dana, sorry about the wait. Let me check with the warehouse.",
                5,
            ),
            _message(
                5,
                "visitor",
                CONVERSATION_VISITOR,
                "Thank you. I work from home,\nso I'm in all week.",
                4,
            ),
        ],
    )


SENT_REPLY = "The parcel left the warehouse this morning; tracking updates tonight."
FAILED_REPLY = "I've added a 10% voucher to your account for the delay."


# ------------------------------------------------------------ waiting visitors (v1.1)

ESCALATION_TOAST_TITLE = "Still waiting (5 min): Priya Raman · Support"
ESCALATION_TOAST_BODY = "Nobody has answered Priya Raman for 5 minutes. Accept to take the chat."


def _waiting(
    conversation_id: str,
    visitor: str,
    inbox: InboxRef,
    text: str,
    waited_s: float,
    assignee: AgentRef | None = None,
) -> QueueEntry:
    since = (NOW - timedelta(seconds=waited_s)).isoformat()
    return QueueEntry(
        id=conversation_id,
        inbox=inbox,
        visitor=Visitor(name=visitor),
        assignee=assignee,
        waiting_since=since,
        last_message=Message(
            id=f"m-{conversation_id}",
            author=Author(kind="visitor", id=None, name=visitor),
            body=text,
            created_at=since,
        ),
    )


def waiting_queue() -> list[QueueEntry]:
    """The Waiting view's afternoon: five visitors, one past its escalation step."""
    sam = AgentRef(id="agent-sam", name="Sam Lee")
    return [
        _waiting("conv-priya", "Priya Raman", SUPPORT, "Hello? My card was charged twice.", 412),
        _waiting(
            "conv-jonas", "Jonas Berg", SALES, "Do you ship to Norway? And is VAT included?", 185
        ),
        _waiting(
            "conv-li",
            MIXED_NAME,
            SUPPORT,
            "The <reset> link in the email does not open & I am locked out",
            96,
            assignee=sam,
        ),
        _waiting("conv-omar", "Omar Haddad", SUPPORT, "Can I change my delivery address?", 41),
        _waiting("conv-eve", "Eve Martin", SALES, "Hi!", 8),
    ]


def escalations() -> list[Notification]:
    """The escalation behind the orange row (step 1 after 5 minutes)."""
    since = (NOW - timedelta(seconds=412)).isoformat()
    return [
        Notification(
            id="n-esc-1",
            seq=900,
            kind="chat.conversation.waiting",
            category="chat",
            title="Priya Raman is waiting",
            body=ESCALATION_TOAST_BODY,
            conversation_id="conv-priya",
            url=None,
            created_at=at(412 / 60 - 5),
            read=False,
            data={"waiting_since": since, "step": 1, "waited_s": 300, "inbox": "Support"},
        )
    ]
