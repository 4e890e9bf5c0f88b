"""The bus: how a committed change reaches the nodes that have the affected sockets.

A node publishes every committed change as a :data:`BusEvent`; every node (including
the publisher) hands what it receives to its gateway. :class:`LocalBus` is the
single-node bus, a direct call on the same event loop; the Redis bus of the scale-out
work sends the same structs, encoded with msgspec, over pub/sub.

Bus events never carry secrets: only token hashes, ids and what agents may see.
"""

from __future__ import annotations

import abc
from collections.abc import Callable
from typing import Any

import msgspec

from backend import protocol
from backend.presence import PresenceReport


class NotificationsStored(msgspec.Struct, tag="notifications"):
    """One event stored for several agents: the shared content once, then per agent
    ``(agent id, agent public id, seq, unread counts after)``."""

    kind: str
    category: str
    title: str
    body: str
    conversation_id: str | None
    url: str | None
    data: dict[str, Any]
    created_at: str
    deliveries: list[tuple[int, str, int, dict[str, int]]]
    accepted_at: float
    """time.time() when the event was accepted, for the delivery latency metric."""


class ReadChanged(msgspec.Struct, tag="read"):
    agent_id: int
    ids: list[str]
    unread: dict[str, int]


class MessageAdded(msgspec.Struct, tag="message"):
    conversation_id: str
    message: protocol.Message


class TokensRevoked(msgspec.Struct, tag="revoked"):
    token_hashes: list[str]


class QueueChanged(msgspec.Struct, tag="queue"):
    """v1.1: a conversation of ``inbox_id`` started or stopped waiting, changed
    assignee, or got a visitor message while waiting."""

    inbox_id: int
    conversation: protocol.QueueEntry
    waiting: bool
    members: list[int] = []
    """The inbox's agents when it was sent: a watcher removed from the inbox since
    its ``queue`` request gets nothing more of it."""


class Withdrawn(msgspec.Struct, tag="withdraw"):
    """v1.1: ``agent_id``'s notifications ``ids`` are taken care of by ``by``."""

    agent_id: int
    ids: list[str]
    reason: protocol.WithdrawReason
    by: protocol.AgentRef


class VisitorStatus(msgspec.Struct, tag="visitor_status"):
    """What the visitor of conversation ``conversation_id`` (public id) is told: its
    ``status`` changed, or whether the team is ``busy``; None: not part of this news."""

    conversation_id: str
    status: protocol.ConversationStatus | None = None
    busy: bool | None = None


BusEvent = (
    NotificationsStored
    | ReadChanged
    | MessageAdded
    | TokensRevoked
    | QueueChanged
    | Withdrawn
    | VisitorStatus
    | PresenceReport
)
Deliver = Callable[[BusEvent], None]
Resync = Callable[[], None]
"""Called on the loop when events may have been lost (a bus reconnect): the receiver
catches its sockets up from the store."""


class Bus(abc.ABC):
    """Publish committed changes to every node."""

    @abc.abstractmethod
    async def start(self, deliver: Deliver, resync: Resync | None = None) -> None:
        """Begin delivering received events to ``deliver`` (called on the loop), and
        call ``resync`` whenever events from other nodes may have been missed."""

    @abc.abstractmethod
    async def publish(self, event: BusEvent) -> None:
        """Send ``event`` to every node. Never raises: a lost event is caught up from
        the store by the receiving side."""

    @abc.abstractmethod
    async def close(self) -> None: ...

    @property
    def healthy(self) -> bool:
        """False while the bus cannot deliver to other nodes."""
        return True


class LocalBus(Bus):
    """The single-node bus: events go straight to this node's gateway, in order."""

    def __init__(self) -> None:
        self._deliver: Deliver | None = None

    async def start(self, deliver: Deliver, resync: Resync | None = None) -> None:
        # In-process delivery cannot lose an event: ``resync`` is never needed.
        self._deliver = deliver

    async def publish(self, event: BusEvent) -> None:
        if self._deliver is not None:
            self._deliver(event)

    async def close(self) -> None:
        self._deliver = None


def open_bus(url: str) -> Bus:
    """Return the bus for ``url``: ``local`` or ``redis://…``.

    Raises:
        ConfigError: an unknown kind of bus, or Redis support not installed.
    """
    from backend.errors import SCALE_EXTRA_HINT, ConfigError

    if url in ("", "local"):
        return LocalBus()
    if url.startswith(("redis://", "rediss://", "unix://")):
        try:
            from backend.redis_bus import RedisBus  # type: ignore[import-not-found]
        except ImportError as exc:
            raise ConfigError(f"Redis support is not installed: {SCALE_EXTRA_HINT}") from exc
        bus: Bus = RedisBus(url)
        return bus
    from backend.redact import redact_url

    raise ConfigError(f"unknown bus {redact_url(url)!r}: use `local` or redis://host:port")
