"""The store interface: what the service layer needs from a database.

Two implementations: :mod:`backend.store.sqlite` (the default) and the PostgreSQL one
of the scale-out work. Both pass the same test suite (tests/backend/store).

Every method is a coroutine and may raise :class:`~backend.errors.StoreUnavailable`
when the database cannot be reached or written (a full disk, for instance); nothing is
half-written then. Ids passed in and out are the internal integer ids unless a name
says ``public_id``.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple, cast

from backend import protocol
from backend.errors import NotFound

SCHEMA_VERSION = 6


@dataclass(frozen=True, slots=True)
class Inbox:
    id: int
    public_id: str
    name: str


@dataclass(frozen=True, slots=True)
class Agent:
    id: int
    public_id: str
    email: str
    name: str
    inboxes: tuple[str, ...] = ()
    password_hash: str | None = None
    disabled: bool = False
    """Disabled by an operator: no sign-in, no tokens, left out of routing."""

    def info(self) -> protocol.AgentInfo:
        return protocol.AgentInfo(id=self.public_id, name=self.name, email=self.email)

    def ref(self) -> protocol.AgentRef:
        return protocol.AgentRef(id=self.public_id, name=self.name)


@dataclass(frozen=True, slots=True)
class InboxSummary:
    """An inbox with how many agents and conversations it has."""

    inbox: Inbox
    agents: int
    conversations: int


@dataclass(frozen=True, slots=True)
class AgentRemoved:
    """What removing an agent deleted, and what it kept.

    Attributes:
        revoked: hashes of the tokens revoked (their rows stay, unlinked, so that every
            node sees the revocation and closes the agent's sessions).
        notifications: the agent's notifications, deleted.
        memberships: inbox memberships, deleted.
        unassigned: conversations that were assigned to the agent, now unassigned.
        messages_kept: the agent's messages, kept with the author's name.
    """

    revoked: list[str]
    notifications: int
    memberships: int
    unassigned: int
    messages_kept: int


@dataclass(frozen=True, slots=True)
class InboxRemoved:
    """What removing an inbox deleted.

    Attributes:
        conversations, messages: deleted with it.
        memberships: agents' memberships of it, deleted (the agents stay).
        notifications: notifications about its conversations, marked read and unlinked
            from the deleted conversation (they keep their place in each agent's stream,
            whose seq numbers are never reused).
    """

    conversations: int
    messages: int
    memberships: int
    notifications: int


@dataclass(frozen=True, slots=True)
class Token:
    id: int
    hash: str
    kind: Literal["agent", "service"]
    agent_id: int | None
    name: str | None


@dataclass(frozen=True, slots=True)
class ClientVersion:
    """A tray app version and OS one agent connected with, and when last."""

    version: str
    os: str
    seen_at: str


@dataclass(frozen=True, slots=True)
class ConversationFacts:
    """A conversation's state plus what routing needs to know about it."""

    id: int
    public_id: str
    inbox: Inbox
    visitor_name: str
    status: protocol.ConversationStatus
    assignee: Agent | None
    inbox_members: frozenset[int]
    waiting_since: str | None = None
    """v1.1: see :attr:`backend.protocol.Conversation.waiting_since`."""


@dataclass(frozen=True, slots=True)
class NewConversation:
    public_id: str
    inbox_id: int
    visitor_name: str
    visitor_token_hash: str | None = None
    external_id: str | None = None


@dataclass(frozen=True, slots=True)
class NewMessage:
    """A message to store; ``conversation_id`` None means the change's new conversation."""

    public_id: str
    conversation_id: int | None
    author_kind: protocol.AuthorKind
    author_agent_id: int | None
    author_agent_public_id: str | None
    author_name: str
    body: str
    client_msg_id: str | None
    created_at: str


@dataclass(frozen=True, slots=True)
class NewEvent:
    """Something to notify ``recipients`` of; stored once, one notification each."""

    kind: str
    title: str
    body: str
    conversation_public_id: str | None
    url: str | None
    data: dict[str, Any]
    created_at: str
    recipients: tuple[int, ...]
    conversation_id: int | None = None
    """Internal id; None with a ``conversation_public_id`` of the change's new conversation."""

    @property
    def category(self) -> str:
        return protocol.category_of(self.kind)


@dataclass(frozen=True, slots=True)
class Change:
    """One atomic unit of work: everything in it is committed together or not at all."""

    new_conversation: NewConversation | None = None
    message: NewMessage | None = None
    assign: tuple[int, int] | None = None
    """(conversation id, agent id)"""
    event: NewEvent | None = None
    publish_key: tuple[int, str] | None = None
    """(service token id, idempotency key): a key seen before makes the change a no-op."""
    claim: tuple[int, int] | None = None
    """(conversation id, agent id): assign unless another agent has it (else Conflict)."""
    resolve: int | None = None
    """A conversation id: its status becomes resolved and its wait ends."""
    withdraw: tuple[int, int] | None = None
    """(conversation id, agent id): after the rest, mark every other agent's unread
    notifications of the conversation read (a claim's or an assignment's withdraw);
    :attr:`Committed.withdrawn` says what for whom."""


class Delivered(NamedTuple):
    """One stored notification of one agent, with that agent's counts after it.

    A named tuple, not a dataclass: one is built per recipient of every fan-out (a frozen
    dataclass costs four ``object.__setattr__`` calls each), and it is already the
    ``(agent id, agent public id, seq, unread)`` that :class:`backend.bus.NotificationsStored`
    carries."""

    agent_id: int
    agent_public_id: str
    seq: int
    unread: dict[str, int]


delivered = cast(
    "Callable[[tuple[int, str, int, dict[str, int]]], Delivered]",
    functools.partial(tuple.__new__, Delivered),
)
"""``Delivered`` from its four fields as one tuple, all in C: the named tuple's own
``__new__`` is a Python function (~2,000 instructions per recipient in the writer)."""


@dataclass(slots=True)
class Committed:
    """What a :class:`Change` stored.

    ``duplicate`` is True when the change was a retry (same client_msg_id or publish
    key) and nothing new was stored; ``message`` is then the first one stored.
    """

    conversation_id: int | None = None
    message: protocol.Message | None = None
    deliveries: list[Delivered] = field(default_factory=list)
    notifications: int = 0
    duplicate: bool = False
    wait_started: str | None = None
    """The message started a wait (its created_at)."""
    wait_ended: str | None = None
    """The change ended a wait that had started then (an agent reply, a resolve)."""
    withdrawn: list[tuple[int, ReadResult]] = field(default_factory=list)
    """:attr:`Change.withdraw`: (agent id, what was marked read) for every agent whose
    notifications it marked read, in agent-id order."""


@dataclass(frozen=True, slots=True)
class QueueRow:
    """A conversation as the queue shows it (see :class:`protocol.QueueEntry`)."""

    id: int
    inbox_id: int
    entry: protocol.QueueEntry


@dataclass(frozen=True, slots=True)
class DueStep:
    """An escalation step that fell due, claimed by this node with its conversation."""

    conversation_id: int
    step: int
    waiting_since: str
    due_ms: int
    target: str
    early: bool
    facts: ConversationFacts
    last: bool = False
    """No step of this wait is left once this one fired."""


@dataclass(frozen=True, slots=True)
class PolicyRow:
    steps: tuple[tuple[int, str], ...]
    """(after_s, target) in step order."""
    unseen_after_s: int


@dataclass(frozen=True, slots=True)
class ReadResult:
    """Notifications newly marked read for one agent, and the counts after."""

    ids: list[str]
    unread: dict[str, int]


@dataclass(frozen=True, slots=True)
class ImportRow:
    email: str
    name: str
    inboxes: tuple[str, ...]
    token_hash: str | None = None
    """When set, a new agent token with this hash is stored in the same transaction."""


@dataclass(frozen=True, slots=True)
class ImportResult:
    created: int
    updated: int
    agents: list[Agent]


def service_name_taken(name: str) -> str:
    """The one-line reason a second live service token of ``name`` is refused."""
    return (
        f"a service token named {name} exists already; pass --replace to revoke it and "
        "issue a new one, or choose another name"
    )


class Store(abc.ABC):
    """Persistent state of the service. See the module docstring for the contract."""

    node_name: str = "local"

    @abc.abstractmethod
    async def open(self) -> None:
        """Connect and create or upgrade the schema."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Finish in-flight commits and disconnect."""

    @abc.abstractmethod
    async def schema_version(self) -> int: ...

    @abc.abstractmethod
    async def ping(self) -> None:
        """Raise StoreUnavailable unless the database answers."""

    async def last_seqs(self, agent_ids: list[int]) -> dict[int, int]:
        """Each of these agents' newest stored seq (an agent with none may be missing)."""
        return {agent_id: (await self.agent_state(agent_id))[0] for agent_id in agent_ids}

    async def write_problem(self) -> str | None:
        """Why the store cannot write right now (for a person), or None. Cheap while
        writes succeed; a store that saw a write fail may try a small write here."""
        return None

    # -- inboxes and agents --------------------------------------------------------
    @abc.abstractmethod
    async def add_inbox(self, name: str) -> Inbox:
        """Raises Conflict when the name exists."""

    @abc.abstractmethod
    async def inbox_by_name(self, name: str) -> Inbox:
        """Raises NotFound."""

    @abc.abstractmethod
    async def add_agent(
        self, email: str, name: str, inboxes: list[str], password_hash: str | None
    ) -> Agent:
        """Raises Conflict for a known email, NotFound for an unknown inbox."""

    @abc.abstractmethod
    async def import_agents(self, rows: list[ImportRow]) -> ImportResult:
        """Create or update agents in one transaction; missing inboxes are created."""

    @abc.abstractmethod
    async def list_agents(self) -> list[Agent]: ...

    @abc.abstractmethod
    async def _agent_where(self, column: str, value: object) -> Agent | None:
        """The agent whose ``column`` (``id``, ``email`` or ``public_id``) is ``value``."""

    async def agent(self, agent_id: int) -> Agent:
        """Raises NotFound."""
        found = await self._agent_where("id", agent_id)
        if found is None:
            raise NotFound("no such agent")
        return found

    async def agent_by_email(self, email: str) -> Agent | None:
        return await self._agent_where("email", email)

    async def agent_by_public_id(self, public_id: str) -> Agent | None:
        return await self._agent_where("public_id", public_id)

    @abc.abstractmethod
    async def inbox_member_ids(self, inbox_name: str) -> frozenset[int]:
        """Raises NotFound for an unknown inbox."""

    @abc.abstractmethod
    async def membership_version(self) -> int:
        """A number that moves whenever any inbox's routed members may have changed (a
        membership added or removed, an agent disabled or enabled, an inbox removed), by
        whichever process: while it stands, :meth:`inbox_member_ids` would answer the same."""

    @abc.abstractmethod
    async def agent_inbox_ids(self, agent_id: int) -> frozenset[int]: ...

    # -- the operator's lifecycle commands ----------------------------------------------
    @abc.abstractmethod
    async def list_inboxes(self) -> list[InboxSummary]:
        """Every inbox by name (byte order), with its agent and conversation counts."""

    @abc.abstractmethod
    async def remove_inbox(self, name: str, *, force: bool) -> InboxRemoved:
        """Delete an inbox, its memberships and (only with ``force``) its conversations.

        Raises:
            NotFound: no such inbox.
            Conflict: it has conversations and ``force`` is False; nothing changed.
        """

    @abc.abstractmethod
    async def set_agent_disabled(self, agent_id: int, disabled: bool) -> list[str]:
        """Disable (revoking every live token of the agent in the same transaction) or
        enable an agent. Returns the revoked token hashes. Raises NotFound."""

    @abc.abstractmethod
    async def set_password(self, agent_id: int, password_hash: str) -> list[str]:
        """Replace the password hash and revoke every live token of the agent, in one
        transaction. Returns the revoked token hashes. Raises NotFound."""

    @abc.abstractmethod
    async def update_agent(
        self, agent_id: int, *, name: str | None = None, inboxes: list[str] | None = None
    ) -> Agent:
        """Rename the agent and/or replace its set of inboxes.

        Raises:
            NotFound: no such agent, or an unknown inbox (nothing changed).
        """

    @abc.abstractmethod
    async def remove_agent(self, agent_id: int) -> AgentRemoved:
        """Delete an agent: its tokens are revoked (and unlinked), its notifications and
        memberships deleted, conversations assigned to it unassigned; messages it wrote
        stay, with its name. Raises NotFound."""

    # -- tokens --------------------------------------------------------------------
    @abc.abstractmethod
    async def add_token(
        self,
        token_hash: str,
        kind: Literal["agent", "service"],
        *,
        agent_id: int | None = None,
        name: str | None = None,
        device: str | None = None,
        replace: bool = False,
    ) -> list[str]:
        """Store a new token; returns the hashes of tokens it replaced.

        A service token's ``name`` is held by one live token at a time: another one of
        that name raises Conflict, unless ``replace``, which revokes it in the same
        transaction.
        """

    @abc.abstractmethod
    async def token(self, token_hash: str) -> Token | None:
        """The token if it exists and is neither revoked nor expired."""

    @abc.abstractmethod
    async def revoke_token(self, token_hash: str) -> bool:
        """Revoke; False when no such live token existed."""

    @abc.abstractmethod
    async def revoked_since(self, since: str) -> tuple[list[str], str]:
        """Token hashes revoked after ``since`` (ISO time) and the new watermark."""

    # -- single sign-on and client versions -------------------------------------------
    @abc.abstractmethod
    async def claim_sso_nonce(self, nonce_hash: str, expires_at: str) -> bool:
        """Record an exchanged ID token's nonce until ``expires_at`` (ISO time).

        Returns:
            True the first time; False when it was claimed before (a replay). Nonces
            past their expiry are forgotten on the way.
        """

    @abc.abstractmethod
    async def record_client_version(
        self, agent_id: int, version: str, os: str, seen_at: str
    ) -> None:
        """Note that ``agent_id`` connected with this app version and OS at ``seen_at``."""

    @abc.abstractmethod
    async def client_versions_since(self, since: str) -> dict[int, list[ClientVersion]]:
        """Per agent id, the versions seen at or after ``since`` (ISO time), newest first."""

    # -- conversations -------------------------------------------------------------
    @abc.abstractmethod
    async def _conversation_where(self, column: str, value: object) -> ConversationFacts | None:
        """The conversation whose ``column`` (a key of ``rows.FACTS_COLUMNS``) is ``value``."""

    async def conversation_facts(self, public_id: str) -> ConversationFacts:
        """Raises NotFound."""
        facts = await self._conversation_where("c.public_id", public_id)
        if facts is None:
            raise NotFound("no such conversation")
        return facts

    async def conversation_by_visitor_token(self, token_hash: str) -> ConversationFacts | None:
        return await self._conversation_where("c.visitor_token_hash", token_hash)

    async def conversation_by_external_id(self, external_id: str) -> ConversationFacts | None:
        return await self._conversation_where("c.external_id", external_id)

    @abc.abstractmethod
    async def messages(self, conversation_id: int, limit: int = 500) -> list[protocol.Message]:
        """The newest ``limit`` messages, oldest first."""

    @abc.abstractmethod
    async def publish_result(self, service_token_id: int, key: str) -> int | None:
        """The notification count stored by an earlier publish with this key."""

    # -- the write path ------------------------------------------------------------
    @abc.abstractmethod
    async def commit(self, change: Change) -> Committed:
        """Store a change atomically and return what it stored.

        Raises:
            NotFound / Conflict: the change refers to something that is not there.
            StoreUnavailable: nothing was stored.
        """

    # -- notifications -------------------------------------------------------------
    @abc.abstractmethod
    async def agent_state(self, agent_id: int) -> tuple[int, dict[str, int]]:
        """(last seq, unread counts by category) of an agent."""

    @abc.abstractmethod
    async def notifications_after(
        self, agent: Agent, after_seq: int, limit: int
    ) -> tuple[list[protocol.Notification], bool]:
        """The newest ``limit`` notifications with seq > after_seq, oldest first, and
        whether older ones were left out."""

    @abc.abstractmethod
    async def history(
        self,
        agent: Agent,
        before_seq: int | None,
        limit: int,
        category: str | None,
        unread_only: bool,
    ) -> tuple[list[protocol.Notification], bool]:
        """Notifications newest first, and whether there are more."""

    @abc.abstractmethod
    async def mark_read(
        self,
        agent: Agent,
        *,
        seqs: list[int] | None = None,
        conversation_id: int | None = None,
        category: str | None = None,
        everything: bool = False,
    ) -> ReadResult:
        """Mark notifications read by seq, by conversation, or all (of a category)."""

    # -- v1.1: waiting visitors ------------------------------------------------------------
    @abc.abstractmethod
    async def queue_rows(
        self, *, inbox_ids: frozenset[int] | None = None, conversation_id: int | None = None
    ) -> list[QueueRow]:
        """Waiting conversations of ``inbox_ids``, longest wait first; or the one
        ``conversation_id`` whether it waits or not (empty when it does not exist)."""

    @abc.abstractmethod
    async def set_policy(
        self, inbox_id: int, steps: list[tuple[int, str]] | None, unseen_after_s: int | None
    ) -> PolicyRow:
        """Replace the steps (None: keep) and/or unseen_after_s (None: keep)."""

    @abc.abstractmethod
    async def policy(self, inbox_id: int) -> PolicyRow: ...

    @abc.abstractmethod
    async def fire_due_steps(
        self,
        now_ms: int,
        limit: int,
        event: Callable[[DueStep, tuple[int, ...]], NewEvent],
    ) -> list[tuple[DueStep, NewEvent, Committed]]:
        """Fire up to ``limit`` steps due at ``now_ms``: each claimed row is deleted and
        its notifications stored in one transaction, so a step fires once whichever
        node runs this, and never after its wait ended. ``event`` builds the
        notification from the step and the agent ids its target names now."""

    @abc.abstractmethod
    async def mark_seen(self, agent_id: int, seqs: list[int]) -> None:
        """The agent's desktop showed these notifications (unknown seqs are ignored)."""

    @abc.abstractmethod
    async def check_unseen(
        self, now_ms: int, limit: int, available: Callable[[frozenset[int]], bool]
    ) -> int:
        """Settle up to ``limit`` seen checks due at ``now_ms``: for each whose
        conversation still waits the same wait, unassigned, and whose notification
        nobody saw (or whose recipients are not ``available``), make the next unfired
        step due now, marked early. Returns how many steps were brought forward."""
