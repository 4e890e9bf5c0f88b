"""The chat and notification service: what every channel and the CLI ask for.

It turns requests into store changes, routes chat events with :mod:`backend.routing`,
commits, and only then publishes what was stored on the bus (DESIGN.md guarantee 1:
a notification is committed before it is pushed and before a publisher's ``ok``).
Errors are :class:`~backend.errors.DeskbellError` subclasses with a message for a person.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from backend import ids, protocol, routing
from backend.bus import (
    Bus,
    MessageAdded,
    NotificationsStored,
    ReadChanged,
    TokensRevoked,
    VisitorStatus,
)
from backend.errors import (
    BadRequest,
    Conflict,
    DeskbellError,
    Forbidden,
    NotFound,
    RateLimited,
    Unauthorized,
)
from backend.metrics import Metrics
from backend.password_pool import PasswordPool
from backend.rate_limits import RateLimiter, Rule, wait_text
from backend.sso import IdTokenVerifier
from backend.store.base import (
    Agent,
    AgentRemoved,
    Change,
    ClientVersion,
    Committed,
    ConversationFacts,
    ImportResult,
    ImportRow,
    NewConversation,
    NewEvent,
    NewMessage,
    Store,
    Token,
)
from backend.store.common import now_iso
from backend.waiting_desk import WaitingDesk

log = logging.getLogger(__name__)

_MEMBER_CACHE_INBOXES = 1024
"""Inboxes whose members a node remembers (all of them, in any real help desk)."""


@dataclass(frozen=True)
class Limits:
    """Abuse limits; the defaults suit a public website. Every one counts attempts
    when they start, whatever their outcome (see :mod:`backend.rate_limits`)."""

    login_attempts_per_email: int = 10
    login_attempts_per_address: int = 50
    login_window: int = 600
    visitor_messages_per_minute: int = 20
    visitor_starts_per_address: int = 10
    visitor_start_window: int = 600
    token_checks_per_minute: int = 60
    """Anonymous look-ups of a token (visitor ``attach``, ``logout``) per address."""

    def rules(self) -> _Rules:
        return _Rules(
            login_email=Rule("login-email", self.login_attempts_per_email, self.login_window),
            login_address=Rule("login-address", self.login_attempts_per_address, self.login_window),
            visitor_start=Rule(
                "visitor-start", self.visitor_starts_per_address, self.visitor_start_window
            ),
            visitor_message=Rule("visitor-message", self.visitor_messages_per_minute, 60),
            token_check=Rule("token-check", self.token_checks_per_minute, 60),
        )


@dataclass(frozen=True)
class _Rules:
    login_email: Rule
    login_address: Rule
    visitor_start: Rule
    visitor_message: Rule
    token_check: Rule


SomeoneOnline = Callable[[frozenset[int]], bool | None]
"""Whether any of these agents has an online session, on any node; None: cannot be
known now (see :mod:`backend.presence`)."""


def _unknown(_: frozenset[int]) -> bool | None:
    return None


@dataclass(frozen=True)
class VisitorSession:
    token: str | None
    facts: ConversationFacts
    messages: list[protocol.Message]
    busy: bool = False
    """The visitor waits and nobody who could answer is online."""

    def view(self) -> protocol.VisitorConversation:
        return protocol.VisitorConversation(
            id=self.facts.public_id,
            inbox=self.facts.inbox.name,
            status=self.facts.status,
            messages=self.messages,
            busy=self.busy,
        )


class Service:
    """The backend's operations. Built once per process by the composition root."""

    def __init__(
        self,
        store: Store,
        bus: Bus,
        metrics: Metrics,
        *,
        limits: Limits | None = None,
        limiter: RateLimiter | None = None,
        passwords: PasswordPool | None = None,
        sso: IdTokenVerifier | None = None,
        password_sign_in: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.store = store
        self.clock = clock
        self.sso = sso
        self.password_sign_in = password_sign_in
        self._clients_noted: dict[tuple[int, str, str], float] = {}
        self._members: dict[str, tuple[int, frozenset[int]]] = {}
        """Inbox name -> (the store's membership version before reading, its members)."""
        self.bus = bus
        self.metrics = metrics
        self.limits = limits or Limits()
        self.limiter = limiter or RateLimiter()
        self.passwords = passwords or PasswordPool()
        self._rules = self.limits.rules()
        self.waiting = WaitingDesk(store, bus, metrics)
        self.someone_online: SomeoneOnline = _unknown
        """Set by the composition root from the gateway and the other nodes' presence."""

    async def inbox_members(self, inbox_name: str) -> frozenset[int]:
        """An inbox's routed members: read from the store only when membership changed.

        The version is read before the members, so a change between the two reads leaves
        an older version beside newer members, which the next call reads again; never the
        reverse. Raises NotFound for an unknown inbox (not remembered)."""
        version = await self.store.membership_version()
        known = self._members.get(inbox_name)
        if known is not None and known[0] == version:
            return known[1]
        members = await self.store.inbox_member_ids(inbox_name)
        if len(self._members) >= _MEMBER_CACHE_INBOXES:
            self._members.clear()
        self._members[inbox_name] = (version, members)
        return members

    async def _reserve(self, rule: Rule, key: str, refusal: str) -> None:
        """Count one attempt; raise :class:`RateLimited` (``refusal``, with the wait
        filled in for ``{wait}``) when the window is full. Call it before any other
        await of the guarded action, so simultaneous attempts cannot all pass."""
        wait = await self.limiter.reserve(rule, key)
        if wait is not None:
            self.metrics.rate_limited.labels(rule.name).inc()
            raise RateLimited(refusal.format(wait=wait_text(wait)))

    # -- identity ---------------------------------------------------------------------
    async def agent_for_token(self, token: str) -> tuple[Agent, str]:
        """The agent of a live agent token and the token's hash.

        Raises:
            Unauthorized: unknown, revoked or expired token, or one of another kind.
        """
        token_hash = ids.token_hash(token)
        found = await self.store.token(token_hash)
        if found is None or found.kind != "agent" or found.agent_id is None:
            raise Unauthorized("this token is not a valid agent token; sign in again")
        agent = await self.store.agent(found.agent_id)
        if agent.disabled:  # its tokens were revoked with it; this closes any race
            raise Unauthorized("this account is disabled; ask your Deskbell administrator")
        return agent, token_hash

    async def service_for_token(self, token: str) -> Token:
        """A live service token (its id scopes the idempotency keys of its publishes).

        Raises:
            Unauthorized: anything else.
        """
        found = await self.store.token(ids.token_hash(token))
        if found is None or found.kind != "service" or found.name is None:
            raise Unauthorized("this token is not a valid service token")
        return found

    async def issue_agent_token(self, email: str, device: str | None = None) -> tuple[str, Agent]:
        agent = await self._agent(email)
        if agent.disabled:
            raise Forbidden(
                f"agent {email} is disabled; enable it first: deskbell-server agent enable {email}"
            )
        token = ids.new_token(protocol.AGENT_TOKEN_PREFIX)
        await self.store.add_token(ids.token_hash(token), "agent", agent_id=agent.id, device=device)
        return token, agent

    async def issue_service_token(self, name: str, *, replace: bool = False) -> str:
        """A new service token named ``name``.

        Raises:
            Conflict: a live token has that name and ``replace`` is not set; with it,
                that token is revoked (its connections close) in the same transaction.
        """
        token = ids.new_token(protocol.SERVICE_TOKEN_PREFIX)
        replaced = await self.store.add_token(
            ids.token_hash(token), "service", name=name, replace=replace
        )
        if replaced:
            await self.bus.publish(TokensRevoked(token_hashes=replaced))
        return token

    async def logout(self, token: str, address: str) -> bool:
        """Revoke a token presented by an anonymous client (``/auth`` ``logout``).

        Raises:
            RateLimited: too many token look-ups from this address.
        """
        await self._reserve(
            self._rules.token_check, address, "too many requests; try again in {wait}"
        )
        return await self.revoke_token(token)

    async def revoke_token(self, token: str) -> bool:
        token_hash = ids.token_hash(token)
        revoked = await self.store.revoke_token(token_hash)
        if revoked:
            await self.bus.publish(TokensRevoked(token_hashes=[token_hash]))
        return revoked

    async def login(
        self, email: str, password: str, device: str | None, address: str
    ) -> tuple[str, Agent]:
        """Check credentials and issue a token.

        Raises:
            Forbidden: the operator turned password sign-in off.
            RateLimited: too many attempts for this email or from this address, or
                too many sign-ins under way on this server.
            Unauthorized: wrong email or password (the same for both).
        """
        if not self.password_sign_in:
            label = self.sso.settings.label if self.sso else "your company account"
            raise Forbidden(
                f"This server does not accept passwords; use Sign in with {label} instead."
            )
        email_key = email.strip().lower()
        refusal = "too many sign-in attempts; try again in {wait}"
        # The address first: an address over its limit spends none of the email's.
        await self._reserve(self._rules.login_address, address, refusal)
        await self._reserve(self._rules.login_email, email_key, refusal)
        agent = await self.store.agent_by_email(email.strip())
        # scrypt takes tens of milliseconds: off the event loop. The same work is done
        # for unknown emails, so the reply and its timing tell nothing.
        ok = await self.passwords.verify(password, agent.password_hash if agent else None)
        self.metrics.password_checks.inc()
        if not ok or agent is None:
            raise Unauthorized("wrong email or password")
        if agent.disabled:
            # Said only to whoever knows the password, so it tells a stranger nothing.
            raise Forbidden(
                "this account is disabled, so it cannot sign in; ask your Deskbell "
                "administrator to enable it"
            )
        # The owner is back in: their typos no longer count against them. (Attempts
        # from the address still do, so one account cannot reset a guessing budget.)
        await self.limiter.forget(self._rules.login_email, email_key)
        token = ids.new_token(protocol.AGENT_TOKEN_PREFIX)
        await self.store.add_token(ids.token_hash(token), "agent", agent_id=agent.id, device=device)
        return token, agent

    def sign_in_options(self, request_id: protocol.RequestId) -> protocol.SignInOptionsOk:
        """How agents sign in here: password or not, and the OpenID provider if any."""
        return protocol.SignInOptionsOk(
            id=request_id,
            password=self.password_sign_in,
            sso=self.sso.settings.info() if self.sso else None,
        )

    async def sso_login(
        self, id_token: str, nonce_secret: str, device: str | None, address: str
    ) -> tuple[str, Agent]:
        """Exchange a verified ID token for an agent token (once per token).

        Raises:
            Forbidden: single sign-on is not configured here, or the agent is disabled.
            RateLimited: too many sign-in attempts from this address (password and
                single sign-on count together).
            Unauthorized: the token fails a check (sso.IdTokenVerifier.verify), was
                exchanged before, or names an email no agent has (and agents are not
                created on sign-in).
            ProviderUnavailable, StoreUnavailable: the provider or the store cannot be
                reached.
        """
        if self.sso is None:
            raise Forbidden("This server does not offer single sign-on; sign in with a password.")
        # Counted when it starts, like a password attempt: each one may cost the
        # provider a key fetch, so a stranger's forged tokens run out quickly.
        await self._reserve(
            self._rules.login_address, address, "too many sign-in attempts; try again in {wait}"
        )
        identity = await self.sso.verify(id_token, nonce_secret)
        if not await self.store.claim_sso_nonce(identity.nonce_hash, identity.expires_at):
            log.info("event=sso_refused check=replay email=%s", identity.email)
            raise Unauthorized(
                "This company sign-in was already used. Sign in again to get a new one."
            )
        agent = await self._sso_agent(identity.email, identity.name, identity.groups)
        if agent.disabled:
            log.info("event=sso_refused check=disabled agent=%s", agent.public_id)
            raise Forbidden(
                "this account is disabled, so it cannot sign in; ask your Deskbell "
                "administrator to enable it"
            )
        token = ids.new_token(protocol.AGENT_TOKEN_PREFIX)
        await self.store.add_token(ids.token_hash(token), "agent", agent_id=agent.id, device=device)
        return token, agent

    async def _sso_agent(self, email: str, name: str, groups: tuple[str, ...]) -> Agent:
        agent = await self.store.agent_by_email(email)
        if agent is not None:
            return agent
        assert self.sso is not None
        if not self.sso.settings.create_agents:
            log.info("event=sso_refused check=unknown_email email=%s", email)
            raise Unauthorized(
                f"{email} signed in with your company, but has no Deskbell account on this "
                "server. Ask your Deskbell administrator to add you."
            )
        inboxes = []
        for group in groups:
            try:
                inboxes.append((await self.store.inbox_by_name(group)).name)
            except NotFound:
                continue
        try:
            agent = await self.store.add_agent(email, name, inboxes, None)
        except Conflict:
            # Two first sign-ins at once: the other one created the agent.
            found = await self.store.agent_by_email(email)
            if found is None:
                raise
            return found
        log.info("event=sso_agent_created agent=%s inboxes=%d", agent.public_id, len(inboxes))
        return agent

    # -- app versions --------------------------------------------------------------------
    CLIENT_NOTE_INTERVAL = 600.0
    """A node writes the same agent, version and OS at most this often (seconds)."""

    async def note_client(self, agent: Agent, version: str, os: str) -> None:
        """Remember that ``agent`` connected with this app version and OS (never raises)."""
        key = (agent.id, version, os)
        now = self.clock()
        last = self._clients_noted.get(key)
        if last is not None and now - last < self.CLIENT_NOTE_INTERVAL:
            return
        if len(self._clients_noted) >= 100_000:
            self._clients_noted.clear()
        self._clients_noted[key] = now
        try:
            await self.store.record_client_version(agent.id, version, os, now_iso())
        except DeskbellError as exc:
            self._clients_noted.pop(key, None)
            log.warning("event=client_version_not_saved reason=%r", exc.message)

    async def client_versions(self, since: str) -> dict[int, list[ClientVersion]]:
        """Per agent id, the app versions seen since ``since`` (ISO time), newest first."""
        return await self.store.client_versions_since(since)

    # -- administration ----------------------------------------------------------------
    async def add_agent(
        self, email: str, name: str, inboxes: list[str], password: str | None
    ) -> Agent:
        password_hash = None
        if password is not None:
            password_hash = await self.passwords.hash(password)
        try:
            return await self.store.add_agent(email, name, inboxes, password_hash)
        except Conflict as exc:
            raise Conflict(
                f"{exc.message}; to change it: deskbell-server agent update {email} "
                f"(name, inboxes) or agent set-password {email}"
            ) from None

    async def import_agents(
        self, rows: list[ImportRow], issue_tokens: bool
    ) -> tuple[ImportResult, dict[str, str]]:
        tokens: dict[str, str] = {}
        if issue_tokens:
            disabled = {a.email for a in await self.store.list_agents() if a.disabled}
            refused = [row.email for row in rows if row.email in disabled]
            if refused:
                raise Forbidden(
                    f"agent {refused[0]} is disabled, so it gets no token; enable it first "
                    f"(deskbell-server agent enable {refused[0]}) or import without "
                    "--issue-tokens"
                )
            prepared = []
            for row in rows:
                token = ids.new_token(protocol.AGENT_TOKEN_PREFIX)
                tokens[row.email] = token
                prepared.append(ImportRow(row.email, row.name, row.inboxes, ids.token_hash(token)))
            rows = prepared
        return await self.store.import_agents(rows), tokens

    # -- the operator's lifecycle commands ----------------------------------------------
    async def _agent(self, email: str) -> Agent:
        agent = await self.store.agent_by_email(email)
        if agent is None:
            raise NotFound(f"there is no agent {email}")
        return agent

    async def _revoked(self, hashes: list[str]) -> int:
        """Close the sessions of revoked tokens on this node at once (other processes'
        nodes see the revocation in the store within seconds, app.py)."""
        if hashes:
            await self.bus.publish(TokensRevoked(token_hashes=hashes))
        return len(hashes)

    async def set_agent_disabled(self, email: str, disabled: bool) -> tuple[Agent, int]:
        """Disable (closing every session of the agent: its tokens are revoked) or enable
        an agent. Returns the agent as it is now and how many tokens were revoked."""
        agent = await self._agent(email)
        revoked = await self.store.set_agent_disabled(agent.id, disabled)
        return await self.store.agent(agent.id), await self._revoked(revoked)

    async def set_password(self, email: str, password: str) -> tuple[Agent, int]:
        """Set a new password and revoke every token of the agent, so that sessions
        signed in with the old one end. Returns the agent and the count revoked."""
        if not password:
            raise BadRequest("the password must not be empty")
        agent = await self._agent(email)
        password_hash = await self.passwords.hash(password)
        revoked = await self.store.set_password(agent.id, password_hash)
        return agent, await self._revoked(revoked)

    async def update_agent(
        self, email: str, *, name: str | None, inboxes: list[str] | None
    ) -> Agent:
        agent = await self._agent(email)
        return await self.store.update_agent(agent.id, name=name, inboxes=inboxes)

    async def remove_agent(self, email: str) -> tuple[Agent, AgentRemoved]:
        """Delete an agent, closing its sessions first (see Store.remove_agent)."""
        agent = await self._agent(email)
        removed = await self.store.remove_agent(agent.id)
        await self._revoked(removed.revoked)
        return agent, removed

    # -- agent channel -------------------------------------------------------------------
    async def welcome(self, agent: Agent, node: str, version: str) -> protocol.Welcome:
        last_seq, counts = await self.store.agent_state(agent.id)
        return protocol.Welcome(
            agent=agent.info(),
            last_seq=last_seq,
            unread=protocol.unread_object(counts),
            server=protocol.ServerInfo(version=version, node=node),
        )

    async def mark_read(
        self,
        agent: Agent,
        *,
        notification_ids: list[str] | None = None,
        conversation_id: str | None = None,
        all_in: str | Literal[False] | None = False,
    ) -> dict[str, int]:
        """Mark read by ids, by conversation, or everything (``all_in`` = a category or
        None for all categories). Every session of the agent is told.

        Raises:
            NotFound: an id that is not one of this agent's notifications, or a
                conversation the agent cannot see.
        """
        if notification_ids is not None:
            seqs = []
            for value in notification_ids:
                parsed = ids.parse_notification_id(value)
                if parsed is None or parsed[0] != agent.public_id:
                    raise NotFound(f"no such notification: {value}")
                seqs.append(parsed[1])
            last_seq, _ = await self.store.agent_state(agent.id)
            unknown = [
                v for v, s in zip(notification_ids, seqs, strict=True) if s < 1 or s > last_seq
            ]
            if unknown:
                raise NotFound(f"no such notification: {unknown[0]}")
            result = await self.store.mark_read(agent, seqs=seqs)
        elif conversation_id is not None:
            facts = await self._visible_conversation(agent, conversation_id)
            result = await self.store.mark_read(agent, conversation_id=facts.id)
        elif all_in is not False:
            result = await self.store.mark_read(agent, everything=True, category=all_in)
        else:
            raise BadRequest("say which notifications to mark read")
        await self.bus.publish(ReadChanged(agent_id=agent.id, ids=result.ids, unread=result.unread))
        return result.unread

    async def _visible_conversation(self, agent: Agent, conversation_id: str) -> ConversationFacts:
        """The conversation if it is in one of the agent's inboxes; else NotFound (the
        same answer as for an id that does not exist, so ids cannot be probed)."""
        try:
            facts = await self.store.conversation_facts(conversation_id)
        except NotFound:
            raise NotFound(f"no such conversation: {conversation_id}") from None
        if agent.id not in facts.inbox_members:
            raise NotFound(f"no such conversation: {conversation_id}")
        return facts

    async def conversation(self, agent: Agent, conversation_id: str) -> protocol.Conversation:
        facts = await self._visible_conversation(agent, conversation_id)
        messages = await self.store.messages(facts.id)
        return protocol.Conversation(
            id=facts.public_id,
            inbox=protocol.InboxRef(id=facts.inbox.public_id, name=facts.inbox.name),
            status=facts.status,
            assignee=facts.assignee.ref() if facts.assignee else None,
            visitor=protocol.Visitor(name=facts.visitor_name),
            messages=messages,
            waiting_since=facts.waiting_since,
        )

    # -- v1.1: waiting visitors -----------------------------------------------------------
    async def claim(self, agent: Agent, conversation_id: str) -> protocol.Conversation:
        """Take an unassigned (or already my) conversation; the others' notifications
        of it are withdrawn. Raises Conflict when another agent has it."""
        facts = await self._visible_conversation(agent, conversation_id)
        await self.waiting.claim(agent, facts)
        return await self.conversation(agent, conversation_id)

    async def resolve(self, agent: Agent, conversation_id: str) -> None:
        await self.waiting.resolve(await self._visible_conversation(agent, conversation_id))

    async def reply(
        self, agent: Agent, conversation_id: str, body: str, client_msg_id: str
    ) -> protocol.Message:
        """Store an agent's reply; the visitor and open windows get it live. A retry
        with the same ``client_msg_id`` stores nothing new and returns the first."""
        facts = await self._visible_conversation(agent, conversation_id)
        change = Change(
            message=NewMessage(
                public_id=ids.new_id("m"),
                conversation_id=facts.id,
                author_kind="agent",
                author_agent_id=agent.id,
                author_agent_public_id=agent.public_id,
                author_name=agent.name,
                body=body,
                client_msg_id=client_msg_id,
                created_at=now_iso(),
            )
        )
        committed = await self.store.commit(change)
        assert committed.message is not None
        if not committed.duplicate:
            await self.bus.publish(
                MessageAdded(conversation_id=facts.public_id, message=committed.message)
            )
            await self.waiting.after_commit(change, committed)
        return committed.message

    async def assign(self, agent: Agent, conversation_id: str, assignee_id: str) -> None:
        facts = await self._visible_conversation(agent, conversation_id)
        assignee = await self.store.agent_by_public_id(assignee_id)
        if assignee is None:
            raise NotFound(f"no such agent: {assignee_id}")
        if assignee.disabled:
            raise Forbidden(f"{assignee.name}'s account is disabled")
        if assignee.id not in facts.inbox_members:
            raise Forbidden(f"{assignee.name} is not an agent of the {facts.inbox.name} inbox")
        recipients = routing.recipients(routing.ConversationAssigned(assignee.id), actor=agent.id)
        event = NewEvent(
            kind=protocol.KIND_CONVERSATION_ASSIGNED,
            title=f"{facts.visitor_name} was assigned to you",
            body=f"{agent.name} assigned you the conversation with {facts.visitor_name}.",
            conversation_public_id=facts.public_id,
            conversation_id=facts.id,
            url=None,
            data=_chat_data(facts.inbox.name, facts.visitor_name),
            created_at=now_iso(),
            recipients=tuple(recipients),
        )
        committed = await self._commit_and_publish(
            Change(
                assign=(facts.id, assignee.id),
                event=event,
                withdraw=(facts.id, assignee.id),
            )
        )
        await self.waiting.tell_withdrawn(committed, assignee, "assigned")

    # -- visitors ------------------------------------------------------------------------
    async def visitor_start(
        self, inbox_name: str, visitor_name: str, text: str, address: str
    ) -> VisitorSession:
        await self._reserve(
            self._rules.visitor_start,
            address,
            "too many new conversations from your address; try again in {wait}",
        )
        try:
            inbox = await self.store.inbox_by_name(inbox_name)
        except NotFound:
            raise NotFound(f"this help desk ({inbox_name}) does not exist") from None
        token = ids.new_token(protocol.VISITOR_TOKEN_PREFIX)
        members = await self.inbox_members(inbox_name)
        public_id = ids.new_id("c")
        message, event = self._visitor_message_parts(
            None,
            public_id,
            inbox.name,
            visitor_name,
            text,
            None,
            routing.ConversationCreated(members),
            protocol.KIND_CONVERSATION_CREATED,
        )
        committed = await self._commit_and_publish(
            Change(
                new_conversation=NewConversation(
                    public_id, inbox.id, visitor_name, visitor_token_hash=ids.token_hash(token)
                ),
                message=message,
                event=event,
            )
        )
        facts = await self.store.conversation_facts(public_id)
        assert committed.message is not None
        return VisitorSession(token, facts, [committed.message], self._nobody_online(facts))

    async def visitor_attach(
        self,
        token: str,
        address: str,
        before_reading: Callable[[ConversationFacts], None] = lambda _: None,
    ) -> VisitorSession:
        """The visitor's conversation and transcript. ``before_reading`` runs between the
        look-up and reading the messages, so a caller can subscribe to new messages
        first and miss none stored in between.

        Raises:
            RateLimited: too many token look-ups from this address.
            NotFound: no conversation has this token.
        """
        await self._reserve(
            self._rules.token_check, address, "too many requests; try again in {wait}"
        )
        facts = await self.store.conversation_by_visitor_token(ids.token_hash(token))
        if facts is None:
            raise NotFound("this conversation is no longer available; start a new one")
        before_reading(facts)
        messages = await self.store.messages(facts.id)
        waits = facts.waiting_since is not None and facts.status == "open"
        return VisitorSession(None, facts, messages, waits and self._nobody_online(facts))

    async def visitor_send(
        self, facts: ConversationFacts, text: str, client_msg_id: str | None
    ) -> protocol.Message:
        await self._reserve(
            self._rules.visitor_message,
            facts.public_id,
            "you are sending messages too fast; wait {wait} and send again",
        )
        fresh = await self.store.conversation_facts(facts.public_id)
        assignee = fresh.assignee.id if fresh.assignee else None
        message, event = self._visitor_message_parts(
            fresh.id,
            fresh.public_id,
            fresh.inbox.name,
            fresh.visitor_name,
            text,
            client_msg_id,
            routing.VisitorMessage(fresh.inbox_members, assignee),
            protocol.KIND_MESSAGE_CREATED,
        )
        committed = await self._commit_and_publish(Change(message=message, event=event))
        assert committed.message is not None
        if committed.wait_started is not None and self._nobody_online(fresh):
            # A new wait with nobody to answer it: the visitor is told so at once.
            await self.bus.publish(VisitorStatus(fresh.public_id, busy=True))
        return committed.message

    def _nobody_online(self, facts: ConversationFacts) -> bool:
        """No agent who could answer the conversation (its inbox's agents, its assignee)
        has an online session, for sure (unknown is not "nobody")."""
        agents = facts.inbox_members
        if facts.assignee is not None:
            agents = agents | {facts.assignee.id}
        return self.someone_online(agents) is False

    def _visitor_message_parts(
        self,
        conversation_id: int | None,
        conversation_public_id: str,
        inbox: str,
        visitor_name: str,
        text: str,
        client_msg_id: str | None,
        routed: routing.RoutedEvent,
        kind: str,
    ) -> tuple[NewMessage, NewEvent]:
        created_at = now_iso()
        message = NewMessage(
            public_id=ids.new_id("m"),
            conversation_id=conversation_id,
            author_kind="visitor",
            author_agent_id=None,
            author_agent_public_id=None,
            author_name=visitor_name,
            body=text,
            client_msg_id=client_msg_id,
            created_at=created_at,
        )
        event = NewEvent(
            kind=kind,
            title=visitor_name,
            body=text,
            conversation_public_id=conversation_public_id,
            conversation_id=conversation_id,
            url=None,
            data=_chat_data(inbox, visitor_name) | {"message_id": message.public_id},
            created_at=created_at,
            recipients=tuple(routing.recipients(routed, actor=None)),
        )
        return message, event

    # -- integrations --------------------------------------------------------------------
    async def publish(
        self, service_token_id: int, event: protocol.ServiceEvent, key: str | None
    ) -> int:
        """Store a published event; returns how many notifications were stored (the
        first result again for a repeated key of the same service token).

        Raises:
            NotFound: an unknown inbox, conversation or recipient.
        """
        if key is not None and not isinstance(event, protocol.GenericEvent):
            # A repeated chat event would fail its own checks (the conversation exists
            # now), so its key is looked up first. For other kinds the commit itself
            # finds a repeated key, in the same transaction: no extra read per publish.
            earlier = await self.store.publish_result(service_token_id, key)
            if earlier is not None:
                return earlier
        publish_key = (service_token_id, key) if key is not None else None
        match event:
            case protocol.ConversationCreatedEvent():
                change = await self._external_conversation(event, publish_key)
            case protocol.MessageCreatedEvent():
                change = await self._external_message(event, publish_key)
            case protocol.GenericEvent():
                change = await self._direct_event(event, publish_key)
        committed = await self._commit_and_publish(change)
        self.metrics.publishes.inc()
        return committed.notifications

    async def _external_conversation(
        self, event: protocol.ConversationCreatedEvent, key: tuple[int, str] | None
    ) -> Change:
        external_id = event.conversation.external_id
        if await self.store.conversation_by_external_id(external_id) is not None:
            raise BadRequest(f"conversation {external_id} was already created")
        inbox = await self.store.inbox_by_name(event.inbox)
        members = await self.inbox_members(event.inbox)
        public_id = ids.new_id("c")
        name = event.conversation.visitor_name
        message, stored_event = self._visitor_message_parts(
            None,
            public_id,
            inbox.name,
            name,
            event.text,
            None,
            routing.ConversationCreated(members),
            protocol.KIND_CONVERSATION_CREATED,
        )
        return Change(
            new_conversation=NewConversation(public_id, inbox.id, name, external_id=external_id),
            message=message,
            event=stored_event,
            publish_key=key,
        )

    async def _external_message(
        self, event: protocol.MessageCreatedEvent, key: tuple[int, str] | None
    ) -> Change:
        facts = await self.store.conversation_by_external_id(event.conversation.external_id)
        if facts is None:
            raise NotFound(
                f"no conversation {event.conversation.external_id}; publish "
                f"{protocol.KIND_CONVERSATION_CREATED} first"
            )
        assignee = facts.assignee.id if facts.assignee else None
        message, stored_event = self._visitor_message_parts(
            facts.id,
            facts.public_id,
            facts.inbox.name,
            event.author.name,
            event.text,
            None,
            routing.VisitorMessage(facts.inbox_members, assignee),
            protocol.KIND_MESSAGE_CREATED,
        )
        return Change(message=message, event=stored_event, publish_key=key)

    async def _direct_event(
        self, event: protocol.GenericEvent, key: tuple[int, str] | None
    ) -> Change:
        recipients: set[int] = set()
        for entry in event.recipients:
            if entry.startswith("inbox:"):
                recipients |= await self.inbox_members(entry.removeprefix("inbox:"))
                continue
            agent = (
                await self.store.agent_by_public_id(entry)
                if entry.startswith("a_")
                else await self.store.agent_by_email(entry)
            )
            if agent is None:
                raise NotFound(f"unknown recipient {entry}")
            recipients.add(agent.id)
        return Change(
            event=NewEvent(
                kind=event.kind,
                title=event.title,
                body=event.body,
                conversation_public_id=None,
                url=event.url,
                data=event.data,
                created_at=now_iso(),
                recipients=tuple(
                    routing.recipients(routing.DirectEvent(frozenset(recipients)), None)
                ),
            ),
            publish_key=key,
        )

    async def _commit_and_publish(self, change: Change) -> Committed:
        accepted_at = time.time()
        committed = await self.store.commit(change)
        if committed.duplicate:
            return committed
        if committed.message is not None and change.event is not None:
            conversation = change.event.conversation_public_id
            if conversation is not None:
                await self.bus.publish(
                    MessageAdded(conversation_id=conversation, message=committed.message)
                )
        if change.event is not None:
            await self.publish_stored(change.event, committed, accepted_at)
        await self.waiting.after_commit(change, committed)
        return committed

    async def publish_stored(
        self, event: NewEvent, committed: Committed, accepted_at: float
    ) -> None:
        """Push the notifications ``committed`` stored for ``event`` to every node."""
        if committed.deliveries:
            self.metrics.notifications_stored.inc(len(committed.deliveries))
            await self.bus.publish(
                NotificationsStored(
                    kind=event.kind,
                    category=event.category,
                    title=event.title,
                    body=event.body,
                    conversation_id=event.conversation_public_id,
                    url=event.url,
                    data=event.data,
                    created_at=event.created_at,
                    deliveries=[*committed.deliveries],
                    accepted_at=accepted_at,
                )
            )


def _chat_data(inbox: str, visitor_name: str) -> dict[str, str]:
    return {"inbox": inbox, "visitor_name": visitor_name}
