"""Waits and their escalation steps as a state machine: any sequence of new chats,
visitor messages, replies, resolves, claims and clock jumps, run against the real
service on a real SQLite store, fires each step of each wait once, in time, never after
the wait, and keeps waiting_since and the queue where a plain model says."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from backend import escalation, protocol
from backend.bus import LocalBus
from backend.errors import Conflict
from backend.metrics import Metrics
from backend.service import Limits, Service
from backend.store.sqlite import SQLiteStore
from backend.store.waiting_sql import epoch_ms

STEPS = (10, 25)
AGENTS = ("ann@x.org", "bob@x.org")


@dataclass
class Chat:
    public_id: str
    waiting_since: str | None
    assignee: str | None = None
    fired: set[int] = field(default_factory=set)
    messages: int = 1


class Waits(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="deskbell-waits-"))
        self.store = SQLiteStore(self.folder / "deskbell.sqlite3")
        self.run(self.store.open())
        limits = Limits(visitor_starts_per_address=10**6, visitor_messages_per_minute=10**6)
        self.service = Service(self.store, LocalBus(), Metrics(), limits=limits)
        self.run(self.store.add_inbox("Support"))
        self.agents = {
            email: self.run(self.service.add_agent(email, email[:3], ["Support"], None))
            for email in AGENTS
        }
        self.run(
            self.service.waiting.set_policy(
                "Support",
                escalate=[str(s) for s in STEPS],
                unseen_after_s=protocol.MAX_STEP_SECONDS,
                clear=False,
            )
        )
        self.chats: list[Chat] = []
        self.offset_ms = 0
        self.fired_total: list[tuple[str, str, int]] = []

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.folder)

    @precondition(lambda self: len(self.chats) < 3)
    @rule()
    def new_chat(self) -> None:
        session = self.run(self.service.visitor_start("Support", "Dana", "Hello?", "127.0.0.1"))
        self.chats.append(Chat(session.facts.public_id, session.messages[0].created_at))

    @precondition(lambda self: self.chats)
    @rule(data=st.data())
    def visitor_message(self, data: st.DataObject) -> None:
        chat = data.draw(st.sampled_from(self.chats))
        facts = self.run(self.store.conversation_facts(chat.public_id))
        chat.messages += 1
        message = self.run(self.service.visitor_send(facts, "more", f"v{chat.messages}"))
        if chat.waiting_since is None:
            chat.waiting_since, chat.fired = message.created_at, set()

    @precondition(lambda self: self.chats)
    @rule(data=st.data(), email=st.sampled_from(AGENTS))
    def reply(self, data: st.DataObject, email: str) -> None:
        chat = data.draw(st.sampled_from(self.chats))
        chat.messages += 1
        self.run(self.service.reply(self.agents[email], chat.public_id, "hi", f"a{chat.messages}"))
        chat.waiting_since = None

    @precondition(lambda self: self.chats)
    @rule(data=st.data(), email=st.sampled_from(AGENTS))
    def resolve(self, data: st.DataObject, email: str) -> None:
        chat = data.draw(st.sampled_from(self.chats))
        self.run(self.service.resolve(self.agents[email], chat.public_id))
        chat.waiting_since = None

    @precondition(lambda self: self.chats)
    @rule(data=st.data(), email=st.sampled_from(AGENTS))
    def claim(self, data: st.DataObject, email: str) -> None:
        chat = data.draw(st.sampled_from(self.chats))
        try:
            self.run(self.service.claim(self.agents[email], chat.public_id))
        except Conflict:
            assert chat.assignee not in (None, email)
            return
        assert chat.assignee in (None, email)
        chat.assignee = email

    @rule(seconds=st.integers(min_value=0, max_value=30))
    def clock_jumps(self, seconds: int) -> None:
        self.offset_ms += seconds * 1000
        now_ms = int(time.time() * 1000) + self.offset_ms
        expected = 0
        for chat in self.chats:
            if chat.waiting_since is None:
                continue
            start = epoch_ms(chat.waiting_since)
            due = {k for k, after in enumerate(STEPS, 1) if start + after * 1000 <= now_ms}
            expected += len(due - chat.fired)
            chat.fired |= due
        assert self.run(escalation.fire_due(self.service, now_ms)) == expected

    @invariant()
    def waits_and_queue_match_the_model(self) -> None:
        queue = self.run(self.service.waiting.queue(self.agents[AGENTS[0]]))
        waiting = sorted(
            (c.waiting_since, c.public_id) for c in self.chats if c.waiting_since is not None
        )
        assert [(e.waiting_since, e.id) for e in queue] == waiting
        for chat in self.chats:
            facts = self.run(self.store.conversation_facts(chat.public_id))
            assert facts.waiting_since == chat.waiting_since

    @invariant()
    def no_step_fired_twice_in_one_wait(self) -> None:
        agent = self.agents[AGENTS[1]]
        items, _ = self.run(self.store.history(agent, None, 200, None, False))
        keys = [
            (n.conversation_id, n.data["waiting_since"], n.data["step"])
            for n in items
            if n.kind == protocol.KIND_CONVERSATION_WAITING
        ]
        assert len(keys) == len(set(keys))


TestWaits = Waits.TestCase
TestWaits.settings = settings(
    max_examples=25,
    stateful_step_count=25,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
