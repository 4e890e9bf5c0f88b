"""The agent lifecycle as a state machine: any sequence of add, token issue, sign-in,
disable, enable, set-password, update and remove, run against the real service on a
real SQLite store, keeps the store where a plain model says it must be."""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from backend import ids
from backend.bus import LocalBus
from backend.errors import Forbidden, NotFound, Unauthorized
from backend.metrics import Metrics
from backend.service import Service
from backend.store.sqlite import SQLiteStore

EMAILS = ("ann@x.org", "bo@x.org", "cy@x.org")
INBOXES = ("Support", "Billing")


@dataclass
class Model:
    password: str
    inboxes: tuple[str, ...]
    disabled: bool = False
    live: set[str] = field(default_factory=set)
    """Hashes of the tokens that must still work."""
    dead: set[str] = field(default_factory=set)
    """Hashes of the tokens that must not."""


class AgentLifecycle(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.folder = Path(tempfile.mkdtemp(prefix="deskbell-lifecycle-"))
        self.store = SQLiteStore(self.folder / "deskbell.sqlite3")
        self.run(self.store.open())
        for inbox in INBOXES:
            self.run(self.store.add_inbox(inbox))
        self.service = Service(self.store, LocalBus(), Metrics())
        self.agents: dict[str, Model] = {}
        self.gone: set[str] = set()
        """Hashes of tokens of removed agents."""
        self.passwords = 0

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def teardown(self) -> None:
        self.run(self.store.close())
        self.loop.close()
        shutil.rmtree(self.folder)

    def _new_password(self) -> str:
        self.passwords += 1
        return f"password {self.passwords}"

    @rule(email=st.sampled_from(EMAILS), inboxes=st.sets(st.sampled_from(INBOXES)))
    def add(self, email: str, inboxes: set[str]) -> None:
        if email in self.agents:
            return
        password = self._new_password()
        self.run(self.service.add_agent(email, email[:2], sorted(inboxes), password))
        self.agents[email] = Model(password, tuple(sorted(inboxes)))

    @precondition(lambda self: self.agents)
    @rule(data=st.data())
    def issue_token(self, data: st.DataObject) -> None:
        email = data.draw(st.sampled_from(sorted(self.agents)))
        model = self.agents[email]
        try:
            token, _ = self.run(self.service.issue_agent_token(email))
        except Forbidden:
            assert model.disabled
            return
        assert not model.disabled
        model.live.add(ids.token_hash(token))

    @precondition(lambda self: self.agents)
    @rule(data=st.data())
    def sign_in(self, data: st.DataObject) -> None:
        email = data.draw(st.sampled_from(sorted(self.agents)))
        model = self.agents[email]
        try:
            token, agent = self.run(self.service.login(email, model.password, "test", "1.2.3.4"))
        except Forbidden:
            assert model.disabled
            return
        assert not model.disabled and agent.email == email
        model.live.add(ids.token_hash(token))

    @precondition(lambda self: self.agents)
    @rule(data=st.data(), disabled=st.booleans())
    def set_disabled(self, data: st.DataObject, disabled: bool) -> None:
        email = data.draw(st.sampled_from(sorted(self.agents)))
        model = self.agents[email]
        _, revoked = self.run(self.service.set_agent_disabled(email, disabled))
        if disabled:
            assert revoked == len(model.live)
            model.dead |= model.live
            model.live = set()
        else:
            assert revoked == 0
        model.disabled = disabled

    @precondition(lambda self: self.agents)
    @rule(data=st.data())
    def set_password(self, data: st.DataObject) -> None:
        email = data.draw(st.sampled_from(sorted(self.agents)))
        model = self.agents[email]
        model.password = self._new_password()
        _, revoked = self.run(self.service.set_password(email, model.password))
        assert revoked == len(model.live)
        model.dead |= model.live
        model.live = set()

    @precondition(lambda self: self.agents)
    @rule(data=st.data(), inboxes=st.sets(st.sampled_from(INBOXES)))
    def update(self, data: st.DataObject, inboxes: set[str]) -> None:
        email = data.draw(st.sampled_from(sorted(self.agents)))
        agent = self.run(self.service.update_agent(email, name=None, inboxes=sorted(inboxes)))
        assert agent.inboxes == tuple(sorted(inboxes))
        self.agents[email].inboxes = tuple(sorted(inboxes))

    @precondition(lambda self: self.agents)
    @rule(data=st.data())
    def remove(self, data: st.DataObject) -> None:
        email = data.draw(st.sampled_from(sorted(self.agents)))
        model = self.agents.pop(email)
        _, removed = self.run(self.service.remove_agent(email))
        assert sorted(removed.revoked) == sorted(model.live)
        self.gone |= model.live | model.dead

    @rule(email=st.sampled_from(EMAILS))
    def unknown_agents_are_not_found(self, email: str) -> None:
        if email in self.agents:
            return
        try:
            self.run(self.service.set_agent_disabled(email, True))
        except NotFound:
            return
        raise AssertionError(f"{email} was disabled but does not exist")

    @invariant()
    def the_store_agrees_with_the_model(self) -> None:
        listed = {a.email: a for a in self.run(self.store.list_agents())}
        assert set(listed) == set(self.agents)
        for email, model in self.agents.items():
            agent = listed[email]
            assert agent.disabled == model.disabled
            assert agent.inboxes == model.inboxes
            for token_hash in model.live:
                assert self.run(self.store.token(token_hash)) is not None
            for token_hash in model.dead:
                assert self.run(self.store.token(token_hash)) is None
        for token_hash in self.gone:
            assert self.run(self.store.token(token_hash)) is None

    @invariant()
    def routing_counts_only_enabled_members(self) -> None:
        for inbox in INBOXES:
            members = self.run(self.store.inbox_member_ids(inbox))
            expected = {
                email
                for email, model in self.agents.items()
                if inbox in model.inboxes and not model.disabled
            }
            listed = {a.id: a.email for a in self.run(self.store.list_agents())}
            assert {listed[m] for m in members} == expected

    @invariant()
    def live_tokens_belong_to_their_agent(self) -> None:
        for email, model in self.agents.items():
            for token_hash in model.live:
                token = self.run(self.store.token(token_hash))
                assert token is not None and token.agent_id is not None
                assert self.run(self.store.agent(token.agent_id)).email == email


AgentLifecycle.TestCase.settings = settings(max_examples=25, stateful_step_count=15, deadline=None)
test_agent_lifecycle = AgentLifecycle.TestCase


def test_a_token_of_a_disabled_agent_is_refused_even_if_it_was_not_revoked(
    tmp_path: Path,
) -> None:
    async def scenario() -> None:
        store = SQLiteStore(tmp_path / "d.sqlite3")
        await store.open()
        try:
            service = Service(store, LocalBus(), Metrics())
            await store.add_inbox("Support")
            agent = await service.add_agent("ann@x.org", "Ann", ["Support"], None)
            token, _ = await service.issue_agent_token("ann@x.org")
            await store.set_agent_disabled(agent.id, True)
            await store.add_token(ids.token_hash("dbat_late"), "agent", agent_id=agent.id)
            for candidate in (token, "dbat_late"):
                try:
                    await service.agent_for_token(candidate)
                except Unauthorized:
                    continue
                raise AssertionError("a disabled agent's token opened a session")
        finally:
            await store.close()

    asyncio.run(scenario())
