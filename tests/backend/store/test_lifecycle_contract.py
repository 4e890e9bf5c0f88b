"""The operator's lifecycle commands in the store, against SQLite and PostgreSQL alike:
disable and enable, set a password, update, remove an agent; list and remove inboxes."""

from __future__ import annotations

import pytest

from backend.errors import Conflict, NotFound
from backend.store.base import Change, ImportRow, Store
from tests.backend.store.conftest import make_store
from tests.backend.store.test_store_contract import (
    all_seqs,
    event,
    message,
    notify,
    seed,
    start_conversation,
)

EPOCH = "2000-01-01T00:00:00.000000Z"


async def test_disabling_revokes_every_live_token_and_leaves_the_agent_out_of_routing(
    store: Store,
) -> None:
    world = await seed(store)
    for name in ("h1", "h2"):
        await store.add_token(name, "agent", agent_id=world.bob.id)
    await store.add_token("other", "agent", agent_id=world.alice.id)
    await notify(store, world.bob.id)

    revoked = await store.set_agent_disabled(world.bob.id, True)

    assert sorted(revoked) == ["h1", "h2"]
    assert await store.token("h1") is None and await store.token("other") is not None
    assert sorted((await store.revoked_since(EPOCH))[0]) == ["h1", "h2"]
    bob = await store.agent(world.bob.id)
    assert bob.disabled and bob.inboxes == ("sales", "support")  # memberships stay
    assert [a.disabled for a in await store.list_agents()] == [False, True, False]
    assert await store.inbox_member_ids("support") == {world.alice.id}
    _, public_id = await start_conversation(store, world.sales)
    assert (await store.conversation_facts(public_id)).inbox_members == {world.carol.id}
    assert await all_seqs(store, bob) == [1]  # history stays

    assert await store.set_agent_disabled(world.bob.id, False) == []
    assert not (await store.agent(world.bob.id)).disabled
    assert await store.inbox_member_ids("support") == {world.alice.id, world.bob.id}


async def test_disabling_an_unknown_agent_is_not_found(store: Store) -> None:
    with pytest.raises(NotFound):
        await store.set_agent_disabled(999, True)
    with pytest.raises(NotFound):
        await store.set_password(999, "scrypt$x")


async def test_a_new_password_revokes_the_tokens_signed_in_with_the_old_one(
    store: Store,
) -> None:
    world = await seed(store)
    await store.add_token("h1", "agent", agent_id=world.alice.id)
    assert await store.set_password(world.alice.id, "scrypt$new") == ["h1"]
    alice = await store.agent_by_email("alice@x.org")
    assert alice is not None and alice.password_hash == "scrypt$new"
    assert await store.token("h1") is None
    assert await store.set_password(world.alice.id, "scrypt$newer") == []


async def test_update_renames_and_replaces_the_inboxes(store: Store) -> None:
    world = await seed(store)
    await store.add_inbox("billing")
    updated = await store.update_agent(world.bob.id, inboxes=["billing", "support"])
    assert (updated.name, updated.inboxes) == ("Bob", ("billing", "support"))
    assert world.bob.id not in await store.inbox_member_ids("sales")
    renamed = await store.update_agent(world.bob.id, name="Robert")
    assert (renamed.name, renamed.inboxes) == ("Robert", ("billing", "support"))
    emptied = await store.update_agent(world.bob.id, inboxes=[])
    assert emptied.inboxes == ()


async def test_update_with_an_unknown_inbox_changes_nothing(store: Store) -> None:
    world = await seed(store)
    with pytest.raises(NotFound, match="no inbox named nowhere"):
        await store.update_agent(world.bob.id, name="Robert", inboxes=["sales", "nowhere"])
    bob = await store.agent(world.bob.id)
    assert (bob.name, bob.inboxes) == ("Bob", ("sales", "support"))
    with pytest.raises(NotFound):
        await store.update_agent(999, name="Nobody")


async def test_removing_an_agent_deletes_its_own_rows_and_keeps_what_it_wrote(
    store: Store,
) -> None:
    world = await seed(store)
    await store.add_token("h1", "agent", agent_id=world.bob.id)
    conversation, public_id = await start_conversation(
        store, world.support, (world.alice.id, world.bob.id)
    )
    await store.commit(Change(message=message(conversation, "on it", author=world.bob)))
    await store.commit(Change(assign=(conversation, world.bob.id)))
    await notify(store, world.alice.id, world.bob.id)

    removed = await store.remove_agent(world.bob.id)

    assert removed.revoked == ["h1"]
    assert (removed.notifications, removed.memberships) == (2, 2)
    assert (removed.unassigned, removed.messages_kept) == (1, 1)
    assert await store.agent_by_email("bob@x.org") is None
    assert await store.token("h1") is None
    assert (await store.revoked_since(EPOCH))[0] == ["h1"]  # every node sees it
    facts = await store.conversation_facts(public_id)
    assert facts.assignee is None and facts.inbox_members == {world.alice.id}
    bodies = [
        (m.body, m.author.kind, m.author.name, m.author.id)
        for m in await store.messages(conversation)
    ]
    assert bodies == [("first", "visitor", "Vera", None), ("on it", "agent", "Bob", None)]
    assert await all_seqs(store, world.alice) == [1, 2]  # the others' streams are intact
    with pytest.raises(NotFound):
        await store.remove_agent(world.bob.id)


async def test_an_agent_added_after_a_removal_starts_its_own_stream(store: Store) -> None:
    world = await seed(store)
    await store.remove_agent(world.carol.id)  # the newest agent: SQLite may reuse its id
    await notify(store, world.alice.id)
    dora = await store.add_agent("dora@x.org", "Dora", ["sales"], None)
    committed = await store.commit(Change(event=event(dora.id)))
    assert [(d.agent_public_id, d.seq) for d in committed.deliveries] == [(dora.public_id, 1)]
    assert await store.agent_state(dora.id) == (1, {"chat": 1})


async def test_inboxes_are_listed_with_their_agent_and_conversation_counts(
    store: Store,
) -> None:
    world = await seed(store)
    await store.add_inbox("Billing")
    await start_conversation(store, world.support)
    await start_conversation(store, world.support)
    summaries = [(s.inbox.name, s.agents, s.conversations) for s in await store.list_inboxes()]
    assert summaries == [("Billing", 0, 0), ("sales", 2, 0), ("support", 2, 2)]


async def test_an_inbox_with_conversations_is_removed_only_when_forced(store: Store) -> None:
    world = await seed(store)
    conversation, public_id = await start_conversation(
        store, world.support, (world.alice.id, world.bob.id)
    )
    await store.commit(Change(message=message(conversation, "more")))
    await notify(store, world.alice.id)  # not about the conversation

    with pytest.raises(Conflict, match=r"still has 1 conversation \(2 messages\).*--force"):
        await store.remove_inbox("support", force=False)
    assert (await store.conversation_facts(public_id)).inbox.name == "support"

    removed = await store.remove_inbox("support", force=True)

    assert (removed.conversations, removed.messages) == (1, 2)
    assert (removed.memberships, removed.notifications) == (2, 2)
    with pytest.raises(NotFound):
        await store.conversation_facts(public_id)
    with pytest.raises(NotFound):
        await store.inbox_by_name("support")
    assert (await store.agent(world.bob.id)).inboxes == ("sales",)
    # The notifications stay in each stream, read and unlinked; seq never goes back.
    assert await store.agent_state(world.alice.id) == (2, {"chat": 1})
    history, _ = await store.history(world.alice, None, 10, None, False)
    assert [(n.seq, n.read, n.conversation_id) for n in history] == [
        (2, False, None),
        (1, True, None),
    ]
    assert await notify(store, world.bob.id) == [2]


async def test_an_empty_inbox_is_removed_and_an_unknown_one_is_not_found(store: Store) -> None:
    await seed(store)
    await store.add_inbox("Billing")
    removed = await store.remove_inbox("Billing", force=False)
    assert (removed.conversations, removed.memberships) == (0, 0)
    with pytest.raises(NotFound):
        await store.remove_inbox("Billing", force=False)


async def test_the_membership_version_moves_with_every_routing_change_from_any_process(
    store: Store, store_url: str
) -> None:
    """Nodes remember an inbox's members while this number stands, so every change that
    routing sees must move it, made by this store or by another process (the CLI)."""
    world = await seed(store)
    operator = make_store(store_url)
    await operator.open()
    try:
        seen = [await store.membership_version()]

        async def moved() -> bool:
            now = await store.membership_version()
            changed = now != seen[-1]
            seen.append(now)
            return changed

        # What routing does not see leaves it alone.
        await notify(store, world.alice.id, world.bob.id)
        await operator.update_agent(world.bob.id, name="Robert")
        await operator.set_password(world.bob.id, "scrypt$new")
        await operator.add_token("h1", "agent", agent_id=world.alice.id)
        await operator.add_inbox("billing")
        assert not await moved()

        await operator.add_agent("dora@x.org", "Dora", ["billing"], None)
        assert await moved()
        await operator.update_agent(world.bob.id, inboxes=["billing"])
        assert await moved()
        await operator.set_agent_disabled(world.alice.id, True)
        assert await moved()
        assert await store.inbox_member_ids("support") == frozenset()
        await operator.set_agent_disabled(world.alice.id, False)
        assert await moved()
        await operator.import_agents([ImportRow("erin@x.org", "Erin", ("support",))])
        assert await moved()
        await operator.remove_agent(world.carol.id)
        assert await moved()
        await operator.add_inbox("empty")
        await operator.remove_inbox("empty", force=False)
        assert await moved()  # an inbox gone is an inbox with no members to route to
    finally:
        await operator.close()
