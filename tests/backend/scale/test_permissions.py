"""Changes of who may see what take effect on connections already open, on every node
(DESIGN.md guarantee 8): two nodes on one PostgreSQL and one Redis, the change made
with the real CLI in its own process, as an operator does."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from backend import ids
from backend.app import Backend, running_backend
from backend.config import Config
from tests.support.backend import BackendHarness, WsClient, seed_db, service_token
from tests.support.server_cli import run_server_cli


@contextlib.asynccontextmanager
async def two_nodes(db: str, bus: str) -> AsyncIterator[tuple[BackendHarness, BackendHarness]]:
    def config(node: str) -> Config:
        return Config(db=db, bus=bus, host="127.0.0.1", port=0, node=node)

    async with running_backend(config("a")) as a, running_backend(config("b")) as b:
        yield harness(a, db), harness(b, db)


def harness(backend: Backend, db: str) -> BackendHarness:
    return BackendHarness(backend, backend.server.port, db)


async def cli(*args: str) -> dict[str, Any]:
    """Run ``deskbell-server ARGS --json`` in its own process; its JSON result."""
    done = await asyncio.to_thread(run_server_cli, *args, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


async def messages_seen(client: WsClient) -> list[str]:
    return [f["message"]["body"] for f in client.frames if f["type"] == "message"]


@pytest.mark.parametrize("how", ["agent import", "agent update"])
async def test_an_agent_removed_from_an_inbox_stops_getting_its_messages_at_once(
    pg_url: str, bus_url: str, tmp_path: Path, how: str
) -> None:
    tokens = await seed_db(
        pg_url,
        {"ann@x.org": ["support"], "bob@x.org": ["support"], "cid@x.org": ["support"]},
    )
    async with two_nodes(pg_url, bus_url) as (a, b):
        visitor, started = await a.visitor_start("support", "Dana", "one")
        conversation = started["conversation"]["id"]
        ann = await b.agent(tokens["ann@x.org"])  # on node b, like cid
        cid = await b.agent(tokens["cid@x.org"])
        bob = await a.agent(tokens["bob@x.org"])
        for client in (ann, bob, cid):
            opened = await client.request({"type": "conversation", "conversation_id": conversation})
            assert opened["type"] == "ok", opened
        sent = await visitor.request({"type": "send", "text": "two", "client_msg_id": "v2"})
        assert sent["type"] == "ok", sent
        for client in (ann, bob, cid):
            assert (await client.push("message"))["message"]["body"] == "two"

        if how == "agent import":
            rows = tmp_path / "agents.csv"
            rows.write_text("email,name,inboxes\nann@x.org,Ann,sales\n")
            assert (await cli("agent", "import", str(rows), "--db", pg_url))["updated"] == 1
        else:  # the operator's own command for it
            await cli("inbox", "add", "sales", "--db", pg_url)
            updated = await cli("agent", "update", "ann@x.org", "--inbox", "sales", "--db", pg_url)
            assert updated["inboxes"] == ["sales"]

        for text in ("three", "four"):
            sent = await visitor.request({"type": "send", "text": text, "client_msg_id": text})
            assert sent["type"] == "ok", sent
        # cid is on ann's node: once cid has "four", that node has handled "three" too.
        for client in (bob, cid):
            assert (await client.push("message"))["message"]["body"] == "three"
            assert (await client.push("message"))["message"]["body"] == "four"
        assert await messages_seen(ann) == ["two"]
        titles = [f["notification"]["body"] for f in ann.frames if f["type"] == "notification"]
        assert "three" not in titles and "four" not in titles
        refused = await ann.request({"type": "conversation", "conversation_id": conversation})
        assert refused["type"] == "error" and refused["code"] == "not_found"
        for client in (ann, bob, cid, visitor):
            await client.close()


async def test_revoking_a_service_token_closes_its_connections_on_every_node(
    pg_url: str, bus_url: str
) -> None:
    await seed_db(pg_url, {"ann@x.org": ["support"]})
    token = await service_token(pg_url, "crm")
    async with two_nodes(pg_url, bus_url) as (a, b):
        links = [await node.channel("/service", token) for node in (a, b)]
        event = {
            "kind": "ticket.assigned",
            "recipients": ["inbox:support"],
            "title": "t",
            "body": "",
            "url": None,
        }
        for link in links:
            assert (await link.request({"type": "publish", "event": event}))["type"] == "ok"
        assert (await cli("token", "revoke", token, "--db", pg_url)) == {"revoked": True}
        for link in links:
            await asyncio.wait_for(link.closed.wait(), 15)
            assert link.ws.close_code == 4001
        stored = await a.service.store.agent_state(
            (await a.service.store.agent_by_email("ann@x.org")).id
        )
        assert stored[0] == 2


async def test_nothing_is_served_after_a_4001_close(pg_url: str, bus_url: str) -> None:
    tokens = await seed_db(pg_url, {"ann@x.org": ["support"]})
    async with two_nodes(pg_url, bus_url) as (a, _):
        visitor, started = await a.visitor_start("support", "Dana", "hello")
        conversation = started["conversation"]["id"]
        ann = await a.agent(tokens["ann@x.org"])
        # The revocation reaches the node (closing the socket with 4001) just before the
        # agent's reply arrives: the reply must not be stored.
        a.backend.gateway.revoke([ids.token_hash(tokens["ann@x.org"])])  # type: ignore[union-attr]
        await ann.ws.send(
            json.dumps(
                {
                    "type": "reply",
                    "id": "late",
                    "conversation_id": conversation,
                    "body": "after the close",
                    "client_msg_id": "late-1",
                }
            )
        )
        await asyncio.wait_for(ann.closed.wait(), 10)
        assert ann.ws.close_code == 4001
        facts = await a.service.store.conversation_facts(conversation)
        bodies = [m.body for m in await a.service.store.messages(facts.id)]
        assert bodies == ["hello"]
        await visitor.close()
