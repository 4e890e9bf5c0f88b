"""The visitor is told honestly when nobody can answer: no agent who could (the inbox's
agents, the assignee) has an online session. On each store, with one node; across
nodes in tests/backend/waiting/test_nodes.py."""

from __future__ import annotations

from tests.backend.bus.redis_server import wait_until
from tests.support.backend import BackendHarness, WsClient

AGENTS = {"ann@x.org": ["Support"], "lee@x.org": ["Leads"]}


async def _attach(server: BackendHarness, token: str) -> dict[str, object]:
    client = await server.channel("/visitor")
    reply = await client.request({"type": "attach", "token": token})
    assert reply["type"] == "ok", reply
    await client.close()
    return dict(reply["conversation"])


async def _answer(agent: WsClient, conversation_id: str) -> None:
    reply = await agent.request(
        {"type": "reply", "conversation_id": conversation_id, "body": "Hi!", "client_msg_id": "1"}
    )
    assert reply["type"] == "ok", reply


async def _say(client: WsClient, text: str, msg_id: str) -> None:
    sent = await client.request({"type": "send", "text": text, "client_msg_id": msg_id})
    assert sent["type"] == "ok", sent


async def test_a_visitor_who_starts_while_nobody_is_online_is_told_at_once(
    server: BackendHarness,
) -> None:
    tokens = await server.seed(AGENTS)
    lee = await server.agent(tokens["lee@x.org"])  # online, but in another inbox
    _, started = await server.visitor_start("Support", "Dana", "Hello?")
    assert started["conversation"]["busy"] is True
    assert (await _attach(server, started["token"]))["busy"] is True

    ann = await server.agent(tokens["ann@x.org"])
    assert (await _attach(server, started["token"]))["busy"] is False
    _, second = await server.visitor_start("Support", "Kim", "Anyone?")
    assert second["conversation"]["busy"] is False
    await ann.close()
    await lee.close()


async def test_an_agent_who_is_away_or_in_dnd_cannot_answer_soon(server: BackendHarness) -> None:
    tokens = await server.seed(AGENTS)
    ann = await server.agent(tokens["ann@x.org"])
    for status, busy in (("away", True), ("dnd", True), ("online", False)):
        reply = await ann.request({"type": "presence", "status": status})
        assert reply["type"] == "ok"
        _, started = await server.visitor_start("Support", f"Dana {status}", "Hello?")
        assert started["conversation"]["busy"] is busy, status
    await ann.close()


async def _answered_then_nobody_online(server: BackendHarness) -> tuple[WsClient, str, str]:
    """Dana starts a chat, Ann answers it and signs out. Returns Dana's client, her
    visitor token and the conversation id."""
    tokens = await server.seed(AGENTS)
    ann = await server.agent(tokens["ann@x.org"])
    visitor, started = await server.visitor_start("Support", "Dana", "Hello?")
    conversation_id = started["conversation"]["id"]
    assert started["conversation"]["busy"] is False
    await _answer(ann, conversation_id)
    await ann.close()
    gateway = server.backend.gateway  # type: ignore[union-attr]
    await wait_until(lambda: gateway.agent_count == 0, what="Ann's session to close")
    return visitor, started["token"], conversation_id


async def test_an_answered_conversation_is_not_busy_while_nobody_is_online(
    server: BackendHarness,
) -> None:
    _, token, _ = await _answered_then_nobody_online(server)
    # Nobody online, but nobody waits either: the last word was the agent's.
    assert (await _attach(server, token))["busy"] is False


async def test_a_new_wait_while_nobody_is_online_pushes_team_status_busy(
    server: BackendHarness,
) -> None:
    visitor, _, conversation_id = await _answered_then_nobody_online(server)
    # The `send` ok comes after the pushes its message caused.
    await _say(visitor, "One more thing", "v2")
    assert {"type": "team_status", "conversation_id": conversation_id, "busy": True} in _drain(
        visitor
    )
    # A message inside the same wait tells nothing new.
    await _say(visitor, "Hello again?", "v3")
    assert [f["type"] for f in _drain(visitor)] == ["message"]


def _drain(client: WsClient) -> list[dict[str, object]]:
    frames = []
    while not client.pushes.empty():
        frames.append(client.pushes.get_nowait())
    return frames
