"""Protocol decoding under random and mutated frames: only ``bad_request`` comes out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from backend import protocol
from tests.support.backend import in_process_backend

DECODERS = [
    protocol.agent_decoder,
    protocol.auth_decoder,
    protocol.service_decoder,
    protocol.visitor_decoder,
]

VALID = [
    {"type": "resume", "id": 1, "after_seq": 0, "limit": 10},
    {
        "type": "history",
        "id": "h",
        "before_seq": None,
        "limit": 20,
        "category": "chat",
        "unread_only": True,
    },
    {"type": "mark_read", "id": 2, "ids": ["n_x_1"]},
    {"type": "mark_all_read", "id": 3, "category": None},
    {"type": "conversation", "id": 4, "conversation_id": "c_1"},
    {"type": "reply", "id": 5, "conversation_id": "c_1", "body": "hi", "client_msg_id": "m"},
    {"type": "assign", "id": 6, "conversation_id": "c_1", "agent_id": "a_1"},
    {"type": "presence", "status": "dnd"},
    {"type": "queue", "id": 10},
    {"type": "claim", "id": 11, "conversation_id": "c_1"},
    {"type": "resolve", "id": 12, "conversation_id": "c_1"},
    {"type": "seen", "ids": ["n_x_1"], "how": "shown"},
    {"type": "login", "id": 7, "email": "a@x", "password": "p"},
    {
        "type": "publish",
        "id": 8,
        "event": {"kind": "ticket.new", "recipients": ["a@x"], "title": "t"},
    },
    {"type": "start", "id": 9, "inbox": "S", "name": "N", "text": "t"},
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@st.composite
def mutated_frames(draw: st.DrawFn) -> str:
    frame: dict[str, Any] = dict(draw(st.sampled_from(VALID)))
    keys = list(frame)
    action = draw(st.sampled_from(["drop", "replace", "add", "retype"]))
    if action == "drop" and keys:
        frame.pop(draw(st.sampled_from(keys)))
    elif action == "replace" and keys:
        frame[draw(st.sampled_from(keys))] = draw(json_values)
    elif action == "add":
        frame[draw(st.text(max_size=10))] = draw(json_values)
    else:
        frame["type"] = draw(st.text(max_size=12) | st.integers())
    return json.dumps(frame)


def check_decoding(data: str | bytes) -> None:
    for decoder in DECODERS:
        try:
            frame = decoder.decode(data)
        except protocol.ProtocolError as exc:
            assert exc.code == "bad_request"
            assert exc.message
            continue
        if isinstance(frame, protocol.Publish):
            try:
                protocol.decode_event(frame.event, frame.id)
            except protocol.ProtocolError as exc:
                assert exc.code == "bad_request"


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=200) | st.text(max_size=200))
def test_random_input_only_ever_raises_bad_request(data: str | bytes) -> None:
    check_decoding(data)


@settings(max_examples=600, deadline=None)
@given(mutated_frames())
def test_mutated_frames_only_ever_raise_bad_request(data: str) -> None:
    check_decoding(data)


@settings(max_examples=400, deadline=None)
@given(json_values)
def test_any_json_value_only_ever_raises_bad_request(value: object) -> None:
    check_decoding(json.dumps(value))


def test_server_answers_every_fuzzed_frame_and_stays_usable(tmp_path: Path) -> None:
    samples: list[str] = []

    @settings(
        max_examples=150, deadline=None, suppress_health_check=list(HealthCheck), database=None
    )
    @given(mutated_frames() | st.text(max_size=60))
    def collect(data: str) -> None:
        samples.append(data)

    collect()

    async def scenario() -> None:
        async with in_process_backend(tmp_path) as server:
            tokens = await server.seed({"ann@x.org": ["Support"]})
            client = await server.agent(tokens["ann@x.org"])
            for data in samples:
                await client.send_raw(data)
                # Every frame gets exactly one answer: an error, an ok, or (for a
                # valid presence without id) nothing; a history request proves the
                # connection is still usable and flushes what came before it.
                reply = await client.request({"type": "history", "limit": 1})
                assert reply["type"] == "ok", (data, reply)
            errors = [f for f in client.frames if f["type"] == "error"]
            assert errors and all(e["code"] in protocol.ERROR_CODES for e in errors)
            assert not any(e["code"] == "internal" for e in errors), errors

    asyncio.run(scenario())
