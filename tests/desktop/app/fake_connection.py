"""A stand-in for ConnectionService with the same signals, recording every request.

For controller tests that need exact control over what the server "says"; the real
service against a real server is covered by the end-to-end tests.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from backend.protocol import (
    AgentInfo,
    AgentRef,
    Author,
    Conversation,
    HistoryOk,
    InboxRef,
    Message,
    Notification,
    ServerInfo,
    Visitor,
    Welcome,
)
from desktop_agent.errors import DeskbellError, NotConnected

AGENT = AgentInfo(id="a_1", name="Alex Morgan", email="alex@example.org")


def chat(seq: int, conversation_id: str = "c_1", visitor: str = "Dana Smith") -> Notification:
    return Notification(
        id=f"n_{seq}",
        seq=seq,
        kind="chat.message.created",
        category="chat",
        title=visitor,
        body=f"message {seq}",
        conversation_id=conversation_id,
        url=None,
        created_at="2026-12-01T10:00:00Z",
        read=False,
        data={"visitor_name": visitor, "inbox_name": "Support"},
    )


def other(seq: int) -> Notification:
    return Notification(
        id=f"n_{seq}",
        seq=seq,
        kind="ticket.assigned",
        category="ticket",
        title="Ticket #12",
        body="assigned to you",
        conversation_id=None,
        url=None,
        created_at="2026-12-01T10:00:00Z",
        read=False,
    )


def conversation(conversation_id: str = "c_1") -> Conversation:
    return Conversation(
        id=conversation_id,
        inbox=InboxRef(id="i_1", name="Support"),
        status="open",
        assignee=None,
        visitor=Visitor(name="Dana Smith"),
        messages=[
            Message(
                id="m_1",
                author=Author(kind="visitor", id=None, name="Dana Smith"),
                body="Hello",
                created_at="2026-12-01T10:00:00Z",
            )
        ],
    )


class FakeConnection(QObject):
    """Signals like ConnectionService; coroutines record their calls and answer."""

    stateChanged = Signal(str)
    welcomed = Signal(object)
    notificationReceived = Signal(object)
    resumed = Signal(object)
    unreadChanged = Signal(dict)
    readChanged = Signal(list)
    messageReceived = Signal(str, object)
    authFailed = Signal(str)
    queueChanged = Signal(object, bool)
    withdrawn = Signal(object)

    def __init__(self) -> None:
        super().__init__()
        self.state = "connecting"
        self.calls: list[tuple[str, Any]] = []
        self.history_pages: list[HistoryOk] = []
        self.fail_with: DeskbellError | None = None
        self.queue_entries: list[Any] = []
        self.claim_error: DeskbellError | None = None

    def network_changed(self) -> None:
        self.calls.append(("network_changed", None))

    def connect_now(self) -> None:
        """Say what a fresh connection says: connected, welcome, counts."""
        self.state = "connected"
        self.stateChanged.emit("connected")
        self.welcomed.emit(
            Welcome(
                agent=AGENT,
                last_seq=0,
                unread={"total": 0, "chat": 0},
                server=ServerInfo(version="test", node="n1"),
            )
        )

    def _answer(self, name: str, args: Any) -> None:
        self.calls.append((name, args))
        if self.state != "connected":
            raise NotConnected()
        if self.fail_with is not None:
            raise self.fail_with

    async def history(
        self,
        before_seq: int | None = None,
        limit: int = 50,
        category: str | None = None,
        unread_only: bool = False,
    ) -> HistoryOk:
        self._answer("history", before_seq)
        if self.history_pages:
            return self.history_pages.pop(0)
        return HistoryOk(id=0, items=[], more=False)

    async def mark_read(
        self, *, ids: list[str] | None = None, conversation_id: str | None = None
    ) -> dict[str, int]:
        self._answer("mark_read", ids if ids is not None else conversation_id)
        return {"total": 0, "chat": 0}

    async def mark_all_read(self, category: str | None = None) -> dict[str, int]:
        self._answer("mark_all_read", category)
        return {"total": 0, "chat": 0}

    async def conversation(self, conversation_id: str) -> Conversation:
        self._answer("conversation", conversation_id)
        return conversation(conversation_id)

    async def reply(self, conversation_id: str, body: str, client_msg_id: str) -> Message:
        self._answer("reply", (conversation_id, body, client_msg_id))
        return Message(
            id="m_2",
            author=Author(kind="agent", id=AGENT.id, name=AGENT.name),
            body=body,
            created_at="2026-12-01T10:01:00Z",
        )

    async def assign(self, conversation_id: str, agent_id: str) -> None:
        self._answer("assign", (conversation_id, agent_id))

    async def presence(self, status: Any) -> None:
        self._answer("presence", status)

    async def queue(self) -> list[Any]:
        self._answer("queue", None)
        return list(self.queue_entries)

    async def claim(self, conversation_id: str) -> Conversation:
        self._answer("claim", conversation_id)
        if self.claim_error is not None:
            raise self.claim_error
        return conversation(conversation_id)

    async def seen(self, ids: list[str], how: str) -> None:
        self._answer("seen", (list(ids), how))


def agent_ref() -> AgentRef:
    return AgentRef(id=AGENT.id, name=AGENT.name)
