"""Waiting visitors, the service side: the queue, claim, resolve, withdraw, policies.

The store decides (a claim is one conditional UPDATE; a wait starts and ends in the
transaction of its message); this module then tells the nodes on the bus.
"""

from __future__ import annotations

import logging
import time

from backend import ids, protocol, waiting
from backend.bus import Bus, QueueChanged, ReadChanged, VisitorStatus, Withdrawn
from backend.errors import BadRequest, NotFound
from backend.metrics import Metrics
from backend.store.base import (
    Agent,
    Change,
    Committed,
    ConversationFacts,
    Store,
)
from backend.store.waiting_sql import epoch_ms

log = logging.getLogger(__name__)


class WaitingDesk:
    """The v1.1 operations. Built by :class:`backend.service.Service`, which owns it."""

    def __init__(self, store: Store, bus: Bus, metrics: Metrics):
        self.store = store
        self.bus = bus
        self.metrics = metrics

    async def queue(self, agent: Agent) -> list[protocol.QueueEntry]:
        """Every waiting conversation of the agent's inboxes, longest wait first."""
        inboxes = await self.store.agent_inbox_ids(agent.id)
        return [row.entry for row in await self.store.queue_rows(inbox_ids=inboxes)]

    async def after_commit(self, change: Change, committed: Committed) -> None:
        """Tell queue watchers what a committed change did to its conversation's wait,
        and count a reply's wait (DESIGN: pushed only after the commit)."""
        if committed.duplicate:
            return
        conversation_id = committed.conversation_id
        message = change.message
        if message is not None and message.conversation_id is not None:
            conversation_id = message.conversation_id
        for touched in (change.assign, change.claim):
            if touched is not None:
                conversation_id = touched[0]
        if change.resolve is not None:
            conversation_id = change.resolve
        if conversation_id is None:
            return
        if (
            committed.wait_ended is not None
            and message is not None
            and message.author_kind == "agent"
        ):
            waited = (epoch_ms(message.created_at) - epoch_ms(committed.wait_ended)) / 1000
            self.metrics.wait_until_reply.observe(max(0.0, waited))
        visitor_message = message is not None and message.author_kind == "visitor"
        if (
            visitor_message
            or committed.wait_ended is not None
            or change.assign is not None
            or change.claim is not None
        ):
            await self.queue_changed(conversation_id)

    async def queue_changed(self, conversation_id: int) -> None:
        rows = await self.store.queue_rows(conversation_id=conversation_id)
        for row in rows:
            facts = await self.store.conversation_facts(row.entry.id)
            await self.bus.publish(
                QueueChanged(
                    inbox_id=row.inbox_id,
                    conversation=row.entry,
                    waiting=row.entry.waiting_since is not None,
                    members=sorted(facts.inbox_members),
                )
            )

    async def tell_withdrawn(
        self, committed: Committed, by: Agent, reason: protocol.WithdrawReason
    ) -> None:
        """What a change's withdraw marked read (:attr:`Change.withdraw`, done in its
        transaction), told to each agent it concerned: ``withdraw``, then ``read`` (and
        its counts). A node that dies before this leaves the store right; only these
        pushes are lost (the badges are right again at the next connection)."""
        for agent_id, result in committed.withdrawn:
            if not result.ids:
                continue
            await self.bus.publish(
                Withdrawn(agent_id=agent_id, ids=result.ids, reason=reason, by=by.ref())
            )
            await self.bus.publish(
                ReadChanged(agent_id=agent_id, ids=result.ids, unread=result.unread)
            )

    async def claim(self, agent: Agent, facts: ConversationFacts) -> None:
        """Assign ``facts`` to ``agent`` unless another agent has it.

        Raises:
            Conflict: another agent has it (the message names them).
        """
        change = Change(claim=(facts.id, agent.id), withdraw=(facts.id, agent.id))
        committed = await self.store.commit(change)
        await self.tell_withdrawn(committed, agent, "claimed")
        await self.after_commit(change, committed)

    async def resolve(self, facts: ConversationFacts) -> None:
        change = Change(resolve=facts.id)
        await self.after_commit(change, await self.store.commit(change))
        await self.bus.publish(VisitorStatus(facts.public_id, status="resolved"))

    async def seen(self, agent: Agent, notification_ids: list[str], how: str) -> None:
        """The agent's desktop showed (``how``: or the agent clicked) these
        notifications; ids that are not the agent's are ignored."""
        seqs = []
        for value in notification_ids:
            parsed = ids.parse_notification_id(value)
            if parsed is not None and parsed[0] == agent.public_id and parsed[1] >= 1:
                seqs.append(parsed[1])
        if seqs:
            await self.store.mark_seen(agent.id, seqs)
        log.debug("event=seen agent=%s how=%s count=%d", agent.public_id, how, len(seqs))

    # -- policies ----------------------------------------------------------------------
    async def policy(self, inbox_name: str) -> protocol.InboxPolicy:
        inbox = await self.store.inbox_by_name(inbox_name)
        return waiting.policy_view(inbox.name, await self.store.policy(inbox.id))

    async def set_policy(
        self,
        inbox_name: str,
        *,
        escalate: list[str] | None,
        unseen_after_s: int | None,
        clear: bool,
    ) -> protocol.InboxPolicy:
        """Replace an inbox's steps and/or unseen_after_s (see PROTOCOL.md v1.1).

        Raises:
            BadRequest: a malformed step, or --clear with --escalate.
            NotFound: the inbox, or a step's target inbox or agent, does not exist.
        """
        if clear and escalate is not None:
            raise BadRequest("--clear removes every step; give it without --escalate")
        inbox = await self.store.inbox_by_name(inbox_name)
        steps: list[tuple[int, str]] | None = None
        if escalate is not None:
            try:
                parsed = [waiting.parse_step(text) for text in escalate]
            except waiting.PolicyError as exc:
                raise BadRequest(str(exc)) from None
            for step in parsed:
                await self._check_target(step.to)
            steps = waiting.ordered_steps(parsed)
        if unseen_after_s is not None and not 1 <= unseen_after_s <= protocol.MAX_STEP_SECONDS:
            raise BadRequest(
                f"--unseen-after must be between 1 and {protocol.MAX_STEP_SECONDS} seconds"
            )
        if clear:
            steps, unseen_after_s = [], protocol.DEFAULT_UNSEEN_AFTER_S
        row = await self.store.set_policy(inbox.id, steps, unseen_after_s)
        return waiting.policy_view(inbox.name, row)

    async def _check_target(self, target: str) -> None:
        if target == "inbox":
            return
        if target.startswith("inbox:"):
            name = target.removeprefix("inbox:")
            try:
                await self.store.inbox_by_name(name)
            except NotFound:
                raise NotFound(
                    f"there is no inbox named {name}; create it first "
                    f"(deskbell-server inbox add {name}) or name another"
                ) from None
            return
        if await self.store.agent_by_email(target) is None:
            raise NotFound(
                f"there is no agent {target}; add the agent first or name another target"
            )


def now_ms() -> int:
    return int(time.time() * 1000)
