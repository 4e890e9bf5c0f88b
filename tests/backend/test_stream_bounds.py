"""The stream path is bounded and stays consistent on a real server (issue 10, item 3):
large replies are written at the reader's pace, a resume whose store read fails is
answered and can be asked again, and held frames are capped."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from backend import protocol
from backend.errors import StoreUnavailable
from backend.stream import Phase
from tests.support.backend import in_process_backend

EMOJI_BODY = "\U0001f600" * protocol.MAX_BODY_CHARS
"""The longest body, 4 bytes a character in UTF-8: 32 KB of JSON."""


async def test_a_long_conversation_reaches_its_reader_without_a_slow_client_close(
    tmp_path: Path,
) -> None:
    async with in_process_backend(tmp_path) as server:
        tokens = await server.seed({"ann@x.org": ["Support"]})
        _, started = await server.visitor_start("Support", "Dana", "Hello")
        conversation_id = started["conversation"]["id"]
        service = server.service
        ann = await service.store.agent_by_email("ann@x.org")
        for number in range(300):
            await service.reply(ann, conversation_id, EMOJI_BODY, f"m{number}")
        client = await server.agent(tokens["ann@x.org"])
        reply = await client.request(
            {"type": "conversation", "conversation_id": conversation_id}, timeout=60
        )
        assert reply["type"] == "ok", reply
        assert len(reply["conversation"]["messages"]) == 301
        size = len(protocol.encode(reply))
        assert size > 9_000_000, size  # far past the 4 MiB slow-client bound
        # Still connected, and nobody was dropped as slow.
        assert (await client.request({"type": "history", "limit": 1}))["type"] == "ok"
        metrics = server.backend.metrics  # type: ignore[union-attr]
        assert metrics.slow_disconnects._value.get() == 0


async def test_a_resume_whose_store_read_fails_is_answered_and_can_be_asked_again(
    tmp_path: Path,
) -> None:
    async with in_process_backend(tmp_path) as server:
        tokens = await server.seed({"ann@x.org": ["Support"]})
        store = server.service.store
        read = store.notifications_after
        failing = True

        async def flaky(*args: Any) -> Any:
            if failing:
                raise StoreUnavailable("the database cannot be read")
            return await read(*args)

        store.notifications_after = flaky
        client = await server.agent(tokens["ann@x.org"], resume=False)
        refused = await client.request({"type": "resume", "after_seq": 0})
        assert refused["type"] == "error" and refused["code"] == "unavailable", refused
        # A notification stored meanwhile is not pushed to a connection that has not
        # resumed; the next resume brings it, then the live stream flows.
        await _ticket(server, "first")
        # Nothing is held for it either (before, the socket stayed "replaying" and
        # held every live frame until the client resumed again, if ever).
        (sock,) = server.backend.gateway.agent_sockets()  # type: ignore[union-attr]
        assert sock.stream.phase is Phase.WAITING and not sock.stream.held
        failing = False
        resumed = await client.request({"type": "resume", "after_seq": 0})
        assert resumed == {"type": "ok", "id": resumed["id"], "last_seq": 1, "truncated": False}
        await _ticket(server, "second")
        seqs = [n["seq"] for n in await client.notifications(2)]
        assert seqs == [1, 2]


async def test_frames_held_past_the_cap_close_1013_and_the_client_resumes(
    tmp_path: Path,
) -> None:
    async with in_process_backend(tmp_path) as server:
        tokens = await server.seed({"ann@x.org": ["Support"]})
        store = server.service.store
        read = store.notifications_after
        release = asyncio.Event()

        async def slow(*args: Any) -> Any:
            await release.wait()
            return await read(*args)

        client = await server.agent(tokens["ann@x.org"], resume=False)
        (sock,) = server.backend.gateway.agent_sockets()  # type: ignore[union-attr]
        sock.stream.held_limit = 5
        store.notifications_after = slow
        resume = asyncio.create_task(client.request({"type": "resume", "after_seq": 0}))
        for number in range(7):
            await _ticket(server, f"t{number}")
        await asyncio.wait_for(client.closed.wait(), 10)
        assert client.ws.close_code == protocol.CLOSE_TRY_AGAIN_LATER
        release.set()
        resume.cancel()
        store.notifications_after = read
        again = await server.agent(tokens["ann@x.org"], after_seq=0)
        assert [
            f["notification"]["seq"] for f in again.frames if f["type"] == "notification"
        ] == list(range(1, 8))


async def _ticket(server: Any, title: str) -> None:
    event = protocol.decode_event(
        {
            "kind": "ticket.assigned",
            "recipients": ["inbox:Support"],
            "title": title,
            "body": "",
            "url": None,
        },
        None,
    )
    await server.service.publish("tests", event, None)
