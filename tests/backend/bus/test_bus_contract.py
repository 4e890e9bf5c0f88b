"""The bus contract, run on LocalBus and RedisBus alike."""

from __future__ import annotations

from backend import protocol
from backend.bus import (
    BusEvent,
    LocalBus,
    MessageAdded,
    NotificationsStored,
    ReadChanged,
    TokensRevoked,
)
from tests.backend.bus.conftest import NodeFactory
from tests.backend.bus.redis_server import wait_until


def sample_events() -> list[BusEvent]:
    """One event of every kind, with the awkward values (markup, None, nesting)."""
    return [
        NotificationsStored(
            kind="chat.message.created",
            category="chat",
            title="Vera <script>",
            body="Hello\nthere",
            conversation_id="c_01",
            url=None,
            data={"inbox": "support", "n": 3, "tags": ["a", None], "x": {"y": 1.5}},
            created_at="2026-12-01T10:00:00.000Z",
            deliveries=[(1, "a_1", 7, {"total": 2, "chat": 2}), (2, "a_2", 1, {"total": 1})],
            accepted_at=1764583200.25,
        ),
        ReadChanged(agent_id=1, ids=["n_1_7"], unread={"total": 1, "chat": 1}),
        MessageAdded(
            conversation_id="c_01",
            message=protocol.Message(
                id="m_1",
                author=protocol.Author(kind="agent", id="a_1", name="Alice"),
                body="<b>hi</b>",
                created_at="2026-12-01T10:00:01.000Z",
            ),
        ),
        TokensRevoked(token_hashes=["ab" * 32]),
    ]


async def test_published_events_reach_the_node_intact_and_in_order(
    make_node: NodeFactory,
) -> None:
    node = await make_node()
    events = sample_events() * 50
    for event in events:
        await node.bus.publish(event)
    await wait_until(lambda: len(node.received) >= len(events), what="every event")
    assert node.received == events


async def test_every_node_gets_every_event_once_in_publish_order(
    make_node: NodeFactory,
) -> None:
    first = await make_node()
    # LocalBus is one process: its only subscriber is its own node.
    others = [] if isinstance(first.bus, LocalBus) else [await make_node() for _ in range(2)]
    events = [ReadChanged(agent_id=i, ids=[], unread={"total": i}) for i in range(200)]
    for event in events:
        await first.bus.publish(event)
    for node in (first, *others):
        await wait_until(lambda node=node: len(node.received) >= len(events), what="delivery")
    for node in (first, *others):
        assert node.received == events


async def test_a_running_bus_is_healthy(make_node: NodeFactory) -> None:
    node = await make_node()
    assert node.bus.healthy
    assert node.resyncs <= 1  # a first subscription may ask; nothing was missed


async def test_a_closed_bus_delivers_nothing_and_publish_does_not_raise(
    make_node: NodeFactory,
) -> None:
    node = await make_node()
    await node.bus.publish(sample_events()[1])
    await wait_until(lambda: len(node.received) == 1, what="the first event")
    await node.bus.close()
    await node.bus.publish(sample_events()[1])
    assert len(node.received) == 1
    await node.bus.close()  # closing twice is harmless
