"""The store contract: every Store method, run against SQLite and PostgreSQL alike.

This is the project's store suite (DESIGN.md: "the same test suite runs against both").
A behaviour that one store has and the other lacks fails here.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from backend import ids, protocol
from backend.errors import Conflict, NotFound, StoreUnavailable
from backend.store.base import (
    SCHEMA_VERSION,
    Agent,
    Change,
    ImportRow,
    Inbox,
    NewConversation,
    NewEvent,
    NewMessage,
    Store,
)
from backend.store.common import now_iso
from tests.backend.store.conftest import make_store


@dataclass
class World:
    support: Inbox
    sales: Inbox
    alice: Agent
    bob: Agent
    carol: Agent


async def seed(store: Store) -> World:
    support = await store.add_inbox("support")
    sales = await store.add_inbox("sales")
    alice = await store.add_agent("alice@x.org", "Alice", ["support"], "scrypt$alice")
    bob = await store.add_agent("bob@x.org", "Bob", ["support", "sales"], None)
    carol = await store.add_agent("carol@x.org", "Carol", ["sales"], None)
    return World(support, sales, alice, bob, carol)


def event(
    *recipients: int,
    kind: str = "chat.message.created",
    conversation_id: int | None = None,
    conversation_public_id: str | None = None,
    data: dict[str, Any] | None = None,
    title: str = "New message",
) -> NewEvent:
    return NewEvent(
        kind=kind,
        title=title,
        body="body text",
        conversation_public_id=conversation_public_id,
        url=None,
        data={} if data is None else data,
        created_at=now_iso(),
        recipients=tuple(recipients),
        conversation_id=conversation_id,
    )


def message(
    conversation_id: int | None,
    body: str = "hello",
    client_msg_id: str | None = None,
    author: Agent | None = None,
) -> NewMessage:
    return NewMessage(
        public_id=ids.new_id("m"),
        conversation_id=conversation_id,
        author_kind="agent" if author else "visitor",
        author_agent_id=author.id if author else None,
        author_agent_public_id=author.public_id if author else None,
        author_name=author.name if author else "Vera",
        body=body,
        client_msg_id=client_msg_id,
        created_at=now_iso(),
    )


async def start_conversation(
    store: Store,
    inbox: Inbox,
    recipients: tuple[int, ...] = (),
    *,
    visitor_token_hash: str | None = None,
    external_id: str | None = None,
) -> tuple[int, str]:
    public_id = ids.new_id("c")
    committed = await store.commit(
        Change(
            new_conversation=NewConversation(
                public_id=public_id,
                inbox_id=inbox.id,
                visitor_name="Vera",
                visitor_token_hash=visitor_token_hash,
                external_id=external_id,
            ),
            message=message(None, "first"),
            event=event(
                *recipients,
                kind="chat.conversation.created",
                conversation_public_id=public_id,
            ),
        )
    )
    assert committed.conversation_id is not None
    return committed.conversation_id, public_id


async def notify(store: Store, *recipients: int, kind: str = "chat.message.created") -> list[int]:
    committed = await store.commit(Change(event=event(*recipients, kind=kind)))
    return [d.seq for d in committed.deliveries]


async def all_seqs(store: Store, agent: Agent) -> list[int]:
    items, truncated = await store.notifications_after(agent, 0, 1000)
    assert not truncated
    return [n.seq for n in items]


# -- life cycle ------------------------------------------------------------------------
async def test_a_new_store_has_the_current_schema_version_and_answers_ping(store: Store) -> None:
    assert await store.schema_version() == SCHEMA_VERSION
    await store.ping()


async def test_reopening_a_store_keeps_its_data_and_version(store_url: str) -> None:
    first = make_store(store_url)
    await first.open()
    await first.add_inbox("support")
    await first.close()
    second = make_store(store_url)
    await second.open()
    try:
        assert (await second.inbox_by_name("support")).name == "support"
        assert await second.schema_version() == SCHEMA_VERSION
    finally:
        await second.close()


async def test_a_closed_store_raises_store_unavailable(store_url: str) -> None:
    closed = make_store(store_url)
    await closed.open()
    await closed.close()
    with pytest.raises(StoreUnavailable):
        await closed.commit(Change())


# -- inboxes and agents ----------------------------------------------------------------
async def test_an_added_inbox_is_found_by_name(store: Store) -> None:
    inbox = await store.add_inbox("support")
    assert inbox.public_id.startswith("i_")
    assert await store.inbox_by_name("support") == inbox


async def test_adding_an_inbox_twice_is_a_conflict(store: Store) -> None:
    await store.add_inbox("support")
    with pytest.raises(Conflict, match="already exists"):
        await store.add_inbox("support")


async def test_an_unknown_inbox_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.inbox_by_name("nope")
    with pytest.raises(NotFound):
        await store.inbox_member_ids("nope")


async def test_an_added_agent_is_found_by_id_email_and_public_id(store: Store) -> None:
    world = await seed(store)
    alice = world.alice
    assert alice.public_id.startswith("a_")
    assert alice.inboxes == ("support",)
    for found in (
        await store.agent(alice.id),
        await store.agent_by_email("alice@x.org"),
        await store.agent_by_public_id(alice.public_id),
    ):
        assert found == alice
        assert found is not None and found.password_hash == "scrypt$alice"
    assert (await store.agent(world.bob.id)).inboxes == ("sales", "support")
    assert await store.agent_by_email("nobody@x.org") is None
    assert await store.agent_by_public_id("a_nobody") is None
    with pytest.raises(NotFound):
        await store.agent(987654)


async def test_adding_a_known_email_is_a_conflict(store: Store) -> None:
    await seed(store)
    with pytest.raises(Conflict, match=r"alice@x\.org already exists"):
        await store.add_agent("alice@x.org", "Other Alice", ["support"], None)


async def test_adding_an_agent_to_an_unknown_inbox_stores_nothing(store: Store) -> None:
    await store.add_inbox("support")
    with pytest.raises(NotFound, match="inbox add billing"):
        await store.add_agent("dan@x.org", "Dan", ["support", "billing"], None)
    assert await store.agent_by_email("dan@x.org") is None
    assert await store.inbox_member_ids("support") == frozenset()


async def test_agents_are_listed_by_email_in_byte_order_with_their_inboxes(store: Store) -> None:
    await store.add_inbox("support")
    await store.add_inbox("Billing")
    await store.add_agent("zed@x.org", "Zed", ["support"], "secret-hash")
    await store.add_agent("Yann@x.org", "Yann", ["support", "Billing"], None)
    await store.add_agent("amy@x.org", "Amy", [], None)
    agents = await store.list_agents()
    # Byte order as SQLite compares text ("Y" < "a"), whatever the database's locale.
    assert [a.email for a in agents] == ["Yann@x.org", "amy@x.org", "zed@x.org"]
    assert [a.inboxes for a in agents] == [("Billing", "support"), (), ("support",)]
    assert all(a.password_hash is None for a in agents)


async def test_inbox_members_and_agent_inboxes(store: Store) -> None:
    world = await seed(store)
    assert await store.inbox_member_ids("support") == {world.alice.id, world.bob.id}
    assert await store.inbox_member_ids("sales") == {world.bob.id, world.carol.id}
    assert await store.agent_inbox_ids(world.bob.id) == {world.support.id, world.sales.id}
    assert await store.agent_inbox_ids(987654) == frozenset()


async def test_import_creates_and_updates_agents_and_creates_missing_inboxes(
    store: Store,
) -> None:
    world = await seed(store)
    result = await store.import_agents(
        [
            ImportRow("alice@x.org", "Alice Liddell", ("sales", "billing")),
            ImportRow("dan@x.org", "Dan", ("support",)),
            ImportRow("erin@x.org", "Erin", ("billing", "vip")),
        ]
    )
    assert (result.created, result.updated) == (2, 1)
    assert [a.email for a in result.agents] == ["alice@x.org", "dan@x.org", "erin@x.org"]
    assert result.agents[0].id == world.alice.id
    assert result.agents[0].public_id == world.alice.public_id
    assert result.agents[0].password_hash == "scrypt$alice"  # an update keeps the password
    alice = await store.agent(world.alice.id)
    assert (alice.name, alice.inboxes) == ("Alice Liddell", ("billing", "sales"))
    assert (await store.inbox_by_name("vip")).public_id.startswith("i_")
    assert await store.inbox_member_ids("billing") == {world.alice.id, result.agents[2].id}
    assert await store.inbox_member_ids("support") == {world.bob.id, result.agents[1].id}
    dan = await store.agent_by_email("dan@x.org")
    assert dan == result.agents[1]


async def test_import_of_one_email_twice_creates_then_updates(store: Store) -> None:
    result = await store.import_agents(
        [ImportRow("dan@x.org", "Dan", ("a",)), ImportRow("dan@x.org", "Daniel", ("b",))]
    )
    assert (result.created, result.updated) == (1, 1)
    assert result.agents[0].id == result.agents[1].id
    dan = await store.agent(result.agents[0].id)
    assert (dan.name, dan.inboxes) == ("Daniel", ("b",))


async def test_import_issues_tokens_in_the_same_transaction(store: Store) -> None:
    await seed(store)
    result = await store.import_agents(
        [
            ImportRow("alice@x.org", "Alice", ("support",), token_hash="h-alice"),
            ImportRow("dan@x.org", "Dan", ("support",), token_hash="h-dan"),
            ImportRow("erin@x.org", "Erin", ("support",)),
        ]
    )
    alice_token = await store.token("h-alice")
    dan_token = await store.token("h-dan")
    assert alice_token is not None and alice_token.agent_id == result.agents[0].id
    assert dan_token is not None and dan_token.agent_id == result.agents[1].id
    assert dan_token.kind == "agent"


async def test_a_failing_import_stores_nothing(store: Store) -> None:
    await seed(store)
    await store.add_token("taken", "service", name="crm")
    with pytest.raises(Conflict):
        await store.import_agents(
            [
                ImportRow("dan@x.org", "Dan", ("newbox",)),
                ImportRow("erin@x.org", "Erin", ("support",), token_hash="taken"),
            ]
        )
    assert await store.agent_by_email("dan@x.org") is None
    with pytest.raises(NotFound):
        await store.inbox_by_name("newbox")


async def test_import_of_thousands_of_agents(store: Store) -> None:
    rows = [
        ImportRow(f"agent{i}@x.org", f"Agent {i}", ("support", f"team{i % 7}"), f"t{i}")
        for i in range(3000)
    ]
    result = await store.import_agents(rows)
    assert (result.created, result.updated) == (3000, 0)
    assert len(await store.inbox_member_ids("support")) == 3000
    assert len(await store.list_agents()) == 3000
    token = await store.token("t2999")
    assert token is not None and token.agent_id == result.agents[-1].id


# -- tokens ----------------------------------------------------------------------------
async def test_a_token_is_found_until_it_is_revoked(store: Store) -> None:
    world = await seed(store)
    await store.add_token("h1", "agent", agent_id=world.alice.id, device="laptop")
    await store.add_token("h2", "service", name="crm")
    token = await store.token("h1")
    assert token is not None
    assert (token.hash, token.kind, token.agent_id, token.name) == (
        "h1",
        "agent",
        world.alice.id,
        None,
    )
    service = await store.token("h2")
    assert service is not None and (service.kind, service.name) == ("service", "crm")
    assert await store.revoke_token("h1") is True
    assert await store.token("h1") is None
    assert await store.revoke_token("h1") is False
    assert await store.revoke_token("unknown") is False
    assert await store.token("unknown") is None


async def test_a_token_hash_is_stored_once(store: Store) -> None:
    await store.add_token("h1", "service", name="crm")
    with pytest.raises(Conflict):
        await store.add_token("h1", "service", name="other")


async def test_a_service_token_name_is_held_by_one_live_token(store: Store) -> None:
    world = await seed(store)
    assert await store.add_token("h1", "service", name="crm") == []
    with pytest.raises(Conflict, match="--replace"):
        await store.add_token("h2", "service", name="crm")
    assert await store.token("h2") is None
    assert await store.add_token("h2", "service", name="crm", replace=True) == ["h1"]
    assert await store.token("h1") is None
    fresh = await store.token("h2")
    assert fresh is not None and fresh.name == "crm"
    revoked, _ = await store.revoked_since("2000-01-01T00:00:00.000000Z")
    assert revoked == ["h1"]
    # A revoked token's name is free; agent tokens have no name to hold.
    await store.revoke_token("h2")
    assert await store.add_token("h3", "service", name="crm") == []
    await store.add_token("a1", "agent", agent_id=world.alice.id)
    await store.add_token("a2", "agent", agent_id=world.alice.id)


async def test_publish_keys_are_scoped_by_the_service_token_id(store: Store) -> None:
    world = await seed(store)
    await store.add_token("h1", "service", name="crm")
    first = await store.token("h1")
    await store.add_token("h2", "service", name="crm", replace=True)
    second = await store.token("h2")
    assert first is not None and second is not None and first.id != second.id
    old_id = first.id
    ticket = event(world.alice.id, kind="ticket.assigned")
    assert not (await store.commit(Change(event=ticket, publish_key=(old_id, "k1")))).duplicate
    assert not (await store.commit(Change(event=ticket, publish_key=(second.id, "k1")))).duplicate
    assert (await store.commit(Change(event=ticket, publish_key=(second.id, "k1")))).duplicate
    assert await all_seqs(store, world.alice) == [1, 2]


async def test_revoked_since_reports_each_revocation_once(store: Store) -> None:
    world = await seed(store)
    for name in ("h1", "h2", "h3"):
        await store.add_token(name, "agent", agent_id=world.alice.id)
    start = "2000-01-01T00:00:00.000000Z"
    assert await store.revoked_since(start) == ([], start)
    await store.revoke_token("h1")
    await store.revoke_token("h2")
    hashes, watermark = await store.revoked_since(start)
    assert hashes == ["h1", "h2"]
    assert watermark > start
    assert await store.revoked_since(watermark) == ([], watermark)
    await store.revoke_token("h3")
    hashes, later = await store.revoked_since(watermark)
    assert (hashes, later > watermark) == (["h3"], True)


# -- conversations and messages --------------------------------------------------------
async def test_a_new_conversation_is_stored_with_its_first_message_and_event(
    store: Store,
) -> None:
    world = await seed(store)
    public_id = ids.new_id("c")
    first = message(None, "Hi <b>there</b>")
    committed = await store.commit(
        Change(
            new_conversation=NewConversation(
                public_id, world.support.id, "Vera", "vt-hash", "ext-1"
            ),
            message=first,
            event=event(
                world.alice.id,
                world.bob.id,
                kind="chat.conversation.created",
                conversation_public_id=public_id,
            ),
        )
    )
    assert committed.conversation_id is not None and not committed.duplicate
    assert committed.message is not None
    assert (committed.message.id, committed.message.body) == (first.public_id, first.body)
    assert committed.message.author == protocol.Author(kind="visitor", id=None, name="Vera")
    assert committed.notifications == 2
    facts = await store.conversation_facts(public_id)
    assert facts.id == committed.conversation_id
    assert (facts.visitor_name, facts.status, facts.assignee) == ("Vera", "open", None)
    assert facts.inbox == world.support
    assert facts.inbox_members == {world.alice.id, world.bob.id}
    assert await store.conversation_by_visitor_token("vt-hash") == facts
    assert await store.conversation_by_external_id("ext-1") == facts
    assert await store.messages(facts.id) == [committed.message]
    items, _ = await store.notifications_after(world.alice, 0, 10)
    assert items[0].conversation_id == public_id
    assert items[0].kind == "chat.conversation.created"


async def test_unknown_conversations_are_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.conversation_facts("c_nope")
    assert await store.conversation_by_visitor_token("nope") is None
    assert await store.conversation_by_external_id("nope") is None


async def test_messages_are_the_newest_ones_oldest_first(store: Store) -> None:
    world = await seed(store)
    conversation_id, _ = await start_conversation(store, world.support)
    for i in range(5):
        await store.commit(Change(message=message(conversation_id, f"m{i}", author=world.bob)))
    bodies = [m.body for m in await store.messages(conversation_id)]
    assert bodies == ["first", "m0", "m1", "m2", "m3", "m4"]
    latest = await store.messages(conversation_id, limit=2)
    assert [m.body for m in latest] == ["m3", "m4"]
    assert latest[0].author == protocol.Author(kind="agent", id=world.bob.public_id, name="Bob")


async def test_assign_sets_the_assignee(store: Store) -> None:
    world = await seed(store)
    conversation_id, public_id = await start_conversation(store, world.support)
    await store.commit(Change(assign=(conversation_id, world.bob.id), event=event(world.bob.id)))
    facts = await store.conversation_facts(public_id)
    assert facts.assignee is not None
    assert (facts.assignee.id, facts.assignee.public_id, facts.assignee.name) == (
        world.bob.id,
        world.bob.public_id,
        "Bob",
    )


async def test_a_claim_marks_the_others_notifications_of_its_conversation_read_in_one_commit(
    store: Store,
) -> None:
    # The withdraw is part of the claim's transaction: when commit() returns, the store
    # already holds it, whatever happens to the node before it pushes `withdraw`.
    world = await seed(store)
    cid, public_id = await start_conversation(
        store, world.support, (world.alice.id, world.bob.id, world.carol.id)
    )
    other, _ = await start_conversation(store, world.sales, (world.bob.id,))
    await store.commit(
        Change(event=event(world.bob.id, world.carol.id, conversation_id=cid, title="Again"))
    )
    await store.mark_read(world.carol, conversation_id=cid)  # read by Carol before the claim

    committed = await store.commit(
        Change(claim=(cid, world.alice.id), withdraw=(cid, world.alice.id))
    )

    bob_ids = [ids.notification_id(world.bob.public_id, seq) for seq in (1, 3)]
    assert [(agent, r.ids) for agent, r in committed.withdrawn] == [(world.bob.id, bob_ids)]
    assert committed.withdrawn[0][1].unread == {"total": 1, "chat": 1}  # the sales chat
    assert await store.agent_state(world.bob.id) == (3, {"chat": 1})
    items, _ = await store.notifications_after(world.bob, 0, 10)
    assert [(n.seq, n.read) for n in items] == [(1, True), (2, False), (3, True)]
    assert items[1].conversation_id != public_id and other != cid
    # The claimer's own notification stays as it was: she opens it herself.
    assert await store.agent_state(world.alice.id) == (1, {"chat": 1})
    assert (await store.conversation_facts(public_id)).assignee.id == world.alice.id  # type: ignore[union-attr]


async def test_an_assignment_withdraws_the_others_notifications_and_notifies_the_assignee(
    store: Store,
) -> None:
    world = await seed(store)
    cid, _ = await start_conversation(store, world.support, (world.alice.id, world.bob.id))
    assigned = event(world.bob.id, kind="chat.conversation.assigned", conversation_id=cid)
    committed = await store.commit(
        Change(assign=(cid, world.bob.id), event=assigned, withdraw=(cid, world.bob.id))
    )
    alice_ids = [ids.notification_id(world.alice.public_id, 1)]
    assert [(agent, r.ids, r.unread) for agent, r in committed.withdrawn] == [
        (world.alice.id, alice_ids, {"total": 0, "chat": 0})
    ]
    assert [(d.agent_id, d.seq) for d in committed.deliveries] == [(world.bob.id, 2)]
    assert await store.agent_state(world.alice.id) == (1, {})
    assert await store.agent_state(world.bob.id) == (2, {"chat": 2})


async def test_a_claim_that_loses_marks_nothing_read(store: Store) -> None:
    world = await seed(store)
    cid, _ = await start_conversation(store, world.support, (world.alice.id, world.bob.id))
    await store.commit(Change(claim=(cid, world.bob.id), withdraw=(cid, world.bob.id)))
    await notify(store, world.bob.id)  # unrelated
    cid2, _ = await start_conversation(store, world.support, (world.alice.id, world.bob.id))
    await store.commit(Change(claim=(cid2, world.bob.id), withdraw=(cid2, world.bob.id)))
    await store.commit(Change(event=event(world.alice.id, conversation_id=cid2)))

    with pytest.raises(Conflict, match="Bob"):
        await store.commit(Change(claim=(cid2, world.alice.id), withdraw=(cid2, world.alice.id)))

    # Alice's notification of the lost chat, and Bob's, are as they were.
    assert (await store.agent_state(world.alice.id))[1] == {"chat": 1}
    assert (await store.agent_state(world.bob.id))[1] == {"chat": 3}


async def test_withdraws_fan_outs_and_reads_at_once_all_commit_and_leave_counts_right(
    store: Store,
) -> None:
    # A claim or an assignment locks its conversation, then the others' counters;
    # fan-outs lock theirs at the end of a batch; reads lock one agent's. Together, at
    # once, none may deadlock, and every count must match the rows.
    world = await seed(store)
    agents = [world.alice, world.bob]
    everyone = tuple(a.id for a in agents)
    chats = [(await start_conversation(store, world.support, everyone))[0] for _ in range(12)]

    async def claim_or_assign(k: int) -> None:
        chat, agent = chats[k], agents[k % 2]
        if k % 3:
            with contextlib.suppress(Conflict):
                await store.commit(Change(claim=(chat, agent.id), withdraw=(chat, agent.id)))
        else:
            assigned = event(agent.id, kind="chat.conversation.assigned", conversation_id=chat)
            await store.commit(
                Change(assign=(chat, agent.id), event=assigned, withdraw=(chat, agent.id))
            )

    async def visitor_writes(k: int) -> None:
        await store.commit(
            Change(message=message(chats[k]), event=event(*everyone, conversation_id=chats[k]))
        )

    async def reads(k: int) -> None:
        await store.mark_read(agents[k % 2], conversation_id=chats[(k + 5) % 12])

    work = [job(k) for k in range(12) for job in (claim_or_assign, visitor_writes, reads)]
    await asyncio.gather(*work)

    for agent in agents:
        last_seq, counts = await store.agent_state(agent.id)
        items, _ = await store.notifications_after(agent, 0, 1000)
        assert [n.seq for n in items] == list(range(1, last_seq + 1))
        unread = sum(not n.read for n in items)
        assert counts == ({"chat": unread} if unread else {})


async def test_a_message_to_an_unknown_conversation_is_refused(store: Store) -> None:
    await seed(store)
    with pytest.raises(Conflict):
        await store.commit(Change(message=message(987654)))


# -- commit: seq, idempotency, atomicity -----------------------------------------------
async def test_seq_starts_at_one_and_grows_by_one_per_agent(store: Store) -> None:
    world = await seed(store)
    assert await notify(store, world.alice.id, world.bob.id) == [1, 1]
    assert await notify(store, world.bob.id) == [2]
    assert await notify(store, world.alice.id, world.bob.id, world.carol.id) == [2, 3, 1]
    assert await all_seqs(store, world.bob) == [1, 2, 3]


async def test_deliveries_name_the_agent_and_carry_the_counts_after_the_commit(
    store: Store,
) -> None:
    world = await seed(store)
    await notify(store, world.alice.id, kind="ticket.assigned")
    committed = await store.commit(Change(event=event(world.alice.id, world.bob.id)))
    alice, bob = committed.deliveries
    assert (alice.agent_id, alice.agent_public_id, alice.seq) == (
        world.alice.id,
        world.alice.public_id,
        2,
    )
    assert alice.unread == {"total": 2, "chat": 1, "ticket": 1}
    assert (bob.agent_public_id, bob.unread) == (world.bob.public_id, {"total": 1, "chat": 1})


async def test_an_event_without_recipients_stores_no_notification(store: Store) -> None:
    world = await seed(store)
    committed = await store.commit(Change(event=event()))
    assert (committed.notifications, committed.deliveries) == (0, [])
    assert await store.agent_state(world.alice.id) == (0, {})


async def test_concurrent_commits_get_gap_free_seqs_in_commit_order(store: Store) -> None:
    world = await seed(store)
    everyone = (world.alice.id, world.bob.id, world.carol.id)
    results = await asyncio.gather(
        *(store.commit(Change(event=event(*everyone, title=f"e{i}"))) for i in range(60))
    )
    for index, agent in enumerate((world.alice, world.bob, world.carol)):
        seqs = sorted(r.deliveries[index].seq for r in results)
        assert seqs == list(range(1, 61))
        items, _ = await store.notifications_after(agent, 0, 100)
        assert [n.seq for n in items] == list(range(1, 61))
    # Every event got the same position in each agent's stream: one commit order.
    for result in results:
        assert len({d.seq for d in result.deliveries}) == 1


async def test_a_retried_message_returns_the_first_and_stores_nothing(store: Store) -> None:
    world = await seed(store)
    conversation_id, _ = await start_conversation(store, world.support)
    first = await store.commit(
        Change(
            message=message(conversation_id, "reply", "cm-1", author=world.bob),
            event=event(world.alice.id),
        )
    )
    again = await store.commit(
        Change(
            message=message(conversation_id, "reply", "cm-1", author=world.bob),
            event=event(world.alice.id),
        )
    )
    assert not first.duplicate and again.duplicate
    assert again.message == first.message
    assert (again.notifications, again.deliveries) == (0, [])
    assert len(await store.messages(conversation_id)) == 2
    assert await store.agent_state(world.alice.id) == (1, {"chat": 1})
    # The same client_msg_id from the visitor is another message.
    visitor = await store.commit(Change(message=message(conversation_id, "hi", "cm-1")))
    assert not visitor.duplicate


async def test_concurrent_retries_of_a_message_store_it_once(store: Store) -> None:
    world = await seed(store)
    conversation_id, _ = await start_conversation(store, world.support)
    results = await asyncio.gather(
        *(
            store.commit(
                Change(
                    message=message(conversation_id, "reply", "cm-9", author=world.bob),
                    event=event(world.alice.id),
                )
            )
            for _ in range(8)
        )
    )
    assert sum(not r.duplicate for r in results) == 1
    assert len({r.message.id for r in results if r.message}) == 1
    assert await all_seqs(store, world.alice) == [1]


async def test_a_repeated_publish_key_is_a_no_op(store: Store) -> None:
    world = await seed(store)
    key = (1, "evt-1")
    assert await store.publish_result(*key) is None
    first = await store.commit(
        Change(event=event(world.alice.id, world.bob.id, kind="ticket.assigned"), publish_key=key)
    )
    again = await store.commit(
        Change(event=event(world.alice.id, world.bob.id, kind="ticket.assigned"), publish_key=key)
    )
    assert (first.duplicate, first.notifications) == (False, 2)
    assert (again.duplicate, again.notifications, again.deliveries) == (True, 2, [])
    assert await store.publish_result(*key) == 2
    assert await store.publish_result(2, "evt-1") is None
    assert await all_seqs(store, world.alice) == [1]
    other = await store.commit(
        Change(event=event(world.alice.id, kind="ticket.assigned"), publish_key=(2, "evt-1"))
    )
    assert not other.duplicate


async def test_a_publish_key_without_recipients_is_remembered(store: Store) -> None:
    await seed(store)
    await store.commit(Change(event=event(), publish_key=(1, "k")))
    assert await store.publish_result(1, "k") == 0
    assert (await store.commit(Change(event=event(), publish_key=(1, "k")))).duplicate


async def test_concurrent_publishes_with_one_key_store_once(store: Store) -> None:
    world = await seed(store)
    results = await asyncio.gather(
        *(
            store.commit(Change(event=event(world.alice.id), publish_key=(1, "same")))
            for _ in range(8)
        )
    )
    assert sum(not r.duplicate for r in results) == 1
    assert all(r.notifications == 1 for r in results)
    assert await all_seqs(store, world.alice) == [1]


async def test_a_failing_change_fails_alone(store: Store) -> None:
    world = await seed(store)
    good = [Change(event=event(world.alice.id, title=f"ok{i}")) for i in range(5)]
    bad = Change(
        message=message(None, "no conversation to attach to"),
        event=event(world.alice.id, title="bad"),
        publish_key=(1, "bad"),
    )
    results = await asyncio.gather(
        *(store.commit(c) for c in [*good[:2], bad, *good[2:]]), return_exceptions=True
    )
    assert isinstance(results[2], Conflict)
    assert sum(not isinstance(r, BaseException) for r in results) == 5
    items, _ = await store.notifications_after(world.alice, 0, 100)
    assert [n.seq for n in items] == [1, 2, 3, 4, 5]
    assert "bad" not in [n.title for n in items]
    assert await store.publish_result(1, "bad") is None
    assert await store.agent_state(world.alice.id) == (5, {"chat": 5})
    assert await notify(store, world.alice.id) == [6]


async def test_a_notification_for_an_unknown_agent_is_refused_and_stores_nothing(
    store: Store,
) -> None:
    world = await seed(store)
    with pytest.raises(Conflict):
        await store.commit(Change(event=event(world.alice.id, 987654)))
    assert await store.agent_state(world.alice.id) == (0, {})
    assert await notify(store, world.alice.id) == [1]


# -- reading notifications -------------------------------------------------------------
async def test_a_notification_reads_back_as_it_was_stored(store: Store) -> None:
    world = await seed(store)
    data = {"ticket": 42, "tags": ["a", "<b>"], "nested": {"x": None}}
    await store.commit(Change(event=event(world.alice.id, kind="ticket.assigned", data=data)))
    await store.commit(Change(event=event(world.alice.id, kind="system.announcement")))
    items, truncated = await store.notifications_after(world.alice, 0, 10)
    assert not truncated
    first = items[0]
    assert first.id == ids.notification_id(world.alice.public_id, 1)
    assert (first.seq, first.kind, first.category) == (1, "ticket.assigned", "ticket")
    assert (first.title, first.body, first.url, first.read) == (
        "New message",
        "body text",
        None,
        False,
    )
    assert first.conversation_id is None
    assert first.data == data
    assert items[1].data == {}


async def test_notifications_after_returns_the_newest_within_the_limit(store: Store) -> None:
    world = await seed(store)
    for _ in range(10):
        await notify(store, world.alice.id)
    items, truncated = await store.notifications_after(world.alice, 3, 100)
    assert ([n.seq for n in items], truncated) == (list(range(4, 11)), False)
    items, truncated = await store.notifications_after(world.alice, 3, 7)
    assert ([n.seq for n in items], truncated) == (list(range(4, 11)), False)
    items, truncated = await store.notifications_after(world.alice, 3, 4)
    assert ([n.seq for n in items], truncated) == ([7, 8, 9, 10], True)
    assert await store.notifications_after(world.alice, 10, 5) == ([], False)
    assert await store.notifications_after(world.bob, 0, 5) == ([], False)


async def test_history_pages_newest_first_by_category_and_unread(store: Store) -> None:
    world = await seed(store)
    kinds = ["chat.message.created", "ticket.assigned"] * 5  # seq 1..10, odd = chat
    for kind in kinds:
        await notify(store, world.alice.id, kind=kind)
    await store.mark_read(world.alice, seqs=[1, 2, 9])
    items, more = await store.history(world.alice, None, 4, None, False)
    assert ([n.seq for n in items], more) == ([10, 9, 8, 7], True)
    items, more = await store.history(world.alice, 7, 10, None, False)
    assert ([n.seq for n in items], more) == ([6, 5, 4, 3, 2, 1], False)
    items, more = await store.history(world.alice, None, 10, "chat", False)
    assert ([n.seq for n in items], more) == ([9, 7, 5, 3, 1], False)
    assert {n.category for n in items} == {"chat"}
    items, more = await store.history(world.alice, None, 3, "chat", True)
    assert ([n.seq for n in items], more) == ([7, 5, 3], False)
    items, more = await store.history(world.alice, 8, 2, None, True)
    assert ([n.seq for n in items], more) == ([7, 6], True)
    assert [n.read for n in (await store.history(world.alice, 3, 5, None, False))[0]] == [
        True,
        True,
    ]
    assert await store.history(world.bob, None, 5, None, False) == ([], False)


# -- marking read and counts -----------------------------------------------------------
async def test_mark_read_by_seq_reports_what_changed_and_the_counts(store: Store) -> None:
    world = await seed(store)
    for kind in ["chat.message.created", "ticket.assigned", "chat.message.created"]:
        await notify(store, world.alice.id, kind=kind)
    await notify(store, world.bob.id)
    result = await store.mark_read(world.alice, seqs=[3, 1, 99])
    assert result.ids == [
        ids.notification_id(world.alice.public_id, 1),
        ids.notification_id(world.alice.public_id, 3),
    ]
    assert result.unread == {"total": 1, "chat": 0, "ticket": 1}
    again = await store.mark_read(world.alice, seqs=[1])
    assert (again.ids, again.unread) == ([], {"total": 1, "chat": 0, "ticket": 1})
    assert await store.agent_state(world.alice.id) == (3, {"ticket": 1})
    assert await store.agent_state(world.bob.id) == (1, {"chat": 1})  # untouched


async def test_mark_read_by_conversation(store: Store) -> None:
    world = await seed(store)
    first, _ = await start_conversation(store, world.support, (world.alice.id,))
    second, _ = await start_conversation(store, world.support, (world.alice.id,))
    await store.commit(Change(event=event(world.alice.id, conversation_id=first)))
    await notify(store, world.alice.id, kind="ticket.assigned")
    result = await store.mark_read(world.alice, conversation_id=first)
    assert [ids.parse_notification_id(i) for i in result.ids] == [
        (world.alice.public_id, 1),
        (world.alice.public_id, 3),
    ]
    assert result.unread == {"total": 2, "chat": 1, "ticket": 1}
    items, _ = await store.history(world.alice, None, 10, None, True)
    assert [n.seq for n in items] == [4, 2]
    assert items[1].conversation_id is not None
    assert (await store.mark_read(world.alice, conversation_id=second)).unread["chat"] == 0


async def test_mark_all_read_in_a_category_or_everything(store: Store) -> None:
    world = await seed(store)
    for kind in ["chat.message.created", "ticket.assigned", "ticket.mention", "system.x"]:
        await notify(store, world.alice.id, kind=kind)
    tickets = await store.mark_read(world.alice, category="ticket", everything=True)
    assert len(tickets.ids) == 2
    assert tickets.unread == {"total": 2, "chat": 1, "system": 1}
    rest = await store.mark_read(world.alice, everything=True)
    assert len(rest.ids) == 2
    assert rest.unread == {"total": 0, "chat": 0}
    assert await store.agent_state(world.alice.id) == (4, {})
    assert await store.history(world.alice, None, 10, None, True) == ([], False)


async def test_mark_read_without_a_selector_changes_nothing(store: Store) -> None:
    world = await seed(store)
    await notify(store, world.alice.id)
    result = await store.mark_read(world.alice)
    assert (result.ids, result.unread) == ([], {"total": 1, "chat": 1})


async def test_counts_stay_right_when_reads_and_commits_interleave(store: Store) -> None:
    world = await seed(store)
    for _ in range(20):
        await notify(store, world.alice.id)
    work = [store.mark_read(world.alice, seqs=[seq]) for seq in range(1, 21)]
    work += [store.commit(Change(event=event(world.alice.id))) for _ in range(20)]
    await asyncio.gather(*work)
    last_seq, unread = await store.agent_state(world.alice.id)
    assert (last_seq, unread) == (40, {"chat": 20})
    items, _ = await store.history(world.alice, None, 100, None, True)
    assert [n.seq for n in items] == list(range(40, 20, -1))


async def test_agent_state_starts_empty_and_follows_commits_and_reads(store: Store) -> None:
    world = await seed(store)
    assert await store.agent_state(world.carol.id) == (0, {})
    await notify(store, world.carol.id, kind="ticket.assigned")
    await notify(store, world.carol.id)
    assert await store.agent_state(world.carol.id) == (2, {"ticket": 1, "chat": 1})
    await store.mark_read(world.carol, seqs=[2])
    assert await store.agent_state(world.carol.id) == (2, {"ticket": 1})


async def test_a_store_opened_by_another_process_sees_the_same_state(
    store_url: str, tmp_path: Path
) -> None:
    writer = make_store(store_url)
    await writer.open()
    try:
        world = await seed(writer)
        await notify(writer, world.alice.id)
        other = make_store(store_url)
        await other.open()
        try:
            assert await other.agent_state(world.alice.id) == (1, {"chat": 1})
            assert await notify(other, world.alice.id) == [2]
            await other.mark_read(world.alice, everything=True)
        finally:
            await other.close()
        assert await notify(writer, world.alice.id) == [3]
        assert await writer.agent_state(world.alice.id) == (3, {"chat": 1})
    finally:
        await writer.close()


# -- single sign-on and client versions ------------------------------------------------


async def test_an_sso_nonce_is_claimed_once(store: Store) -> None:
    later = "2999-01-01T00:00:00.000Z"
    assert await store.claim_sso_nonce("nonce-a", later) is True
    assert await store.claim_sso_nonce("nonce-a", later) is False
    assert await store.claim_sso_nonce("nonce-b", later) is True


async def test_an_expired_sso_nonce_is_forgotten(store: Store) -> None:
    assert await store.claim_sso_nonce("old", "2000-01-01T00:00:00.000Z") is True
    # Past its token's expiry the token itself is refused; the row is cleared away.
    assert await store.claim_sso_nonce("old", "2999-01-01T00:00:00.000Z") is True


async def test_client_versions_keep_the_last_sighting_per_version_and_os(store: Store) -> None:
    world = await seed(store)
    await store.record_client_version(
        world.alice.id, "0.1.0", "Linux 6.1 x86_64", "2026-12-01T10:00:00.000Z"
    )
    await store.record_client_version(
        world.alice.id, "0.2.0", "Windows 10 AMD64", "2026-12-02T09:00:00.000Z"
    )
    await store.record_client_version(
        world.alice.id, "0.1.0", "Linux 6.1 x86_64", "2026-12-02T11:00:00.000Z"
    )
    # An older sighting arriving late (another node) does not move it back.
    await store.record_client_version(
        world.alice.id, "0.1.0", "Linux 6.1 x86_64", "2026-12-01T08:00:00.000Z"
    )
    await store.record_client_version(
        world.bob.id, "0.1.0", "Darwin 23.4.0 arm64", "2026-11-20T10:00:00.000Z"
    )

    seen = await store.client_versions_since("2026-12-01T00:00:00.000Z")
    assert set(seen) == {world.alice.id}
    assert [(v.version, v.os, v.seen_at) for v in seen[world.alice.id]] == [
        ("0.1.0", "Linux 6.1 x86_64", "2026-12-02T11:00:00.000Z"),
        ("0.2.0", "Windows 10 AMD64", "2026-12-02T09:00:00.000Z"),
    ]
    everything = await store.client_versions_since("2000-01-01T00:00:00.000Z")
    assert [v.os for v in everything[world.bob.id]] == ["Darwin 23.4.0 arm64"]
