"""Hostile input on every channel and on plain HTTP: a clear 4xx or ``bad_request``,
never ``internal``, a 500 or a traceback in the log (DESIGN.md guarantee 5)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator, Sequence
from pathlib import Path

import pytest

from backend import protocol
from tests.support.backend import BackendHarness, in_process_backend

DEEP = 30_000


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[BackendHarness]:
    async with in_process_backend(tmp_path) as harness:
        yield harness


def errors_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]


async def http(
    server: BackendHarness,
    method: str,
    path: str,
    headers: Sequence[tuple[str, str]] = (),
) -> tuple[int, dict[str, str]]:
    """Send one raw HTTP/1.1 request (any method, repeated headers) and read the status
    line and headers of the answer."""
    reader, writer = await asyncio.open_connection("127.0.0.1", server.port)
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{server.port}"]
    lines += [f"{name}: {value}" for name, value in headers]
    writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    writer.close()
    status_line, *header_lines = head.decode().split("\r\n")
    answer = {}
    for line in header_lines:
        if line:
            name, _, value = line.partition(":")
            answer[name.strip().lower()] = value.strip()
    return int(status_line.split()[1]), answer


WS_HEADERS = [
    ("Upgrade", "websocket"),
    ("Connection", "Upgrade"),
    ("Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ("Sec-WebSocket-Version", "13"),
    ("Sec-WebSocket-Protocol", protocol.SUBPROTOCOL),
]


# -- JSON nesting ------------------------------------------------------------------------


async def test_deeply_nested_json_on_visitor_is_bad_request_without_a_traceback(
    server: BackendHarness, caplog: pytest.LogCaptureFixture
) -> None:
    visitor = await server.channel("/visitor")
    frame = '{"type":"start","id":"deep","x":' + "[" * DEEP + "]" * DEEP + "}"
    await visitor.send_raw(frame)
    error = await visitor.push("error")
    assert error["code"] == "bad_request"
    assert "nested" in error["message"]
    # The connection stays usable.
    reply = await visitor.request({"type": "attach", "token": "dbvt_nope"})
    assert reply["code"] == "not_found"
    assert errors_logged(caplog) == []


@pytest.mark.parametrize(
    "data",
    [
        "[" * DEEP + "]" * DEEP,
        "[" * DEEP + "}" * DEEP,
        '{"type":"start","id":1,"x":' + '{"a":' * DEEP + "1" + "}" * DEEP + "}",
    ],
)
def test_every_decoder_refuses_deep_nesting_with_bad_request(data: str) -> None:
    for decoder in (protocol.visitor_decoder, protocol.agent_decoder, protocol.service_decoder):
        with pytest.raises(protocol.ProtocolError) as refused:
            decoder.decode(data)
        assert refused.value.code == "bad_request"
    for read in (protocol.peek, protocol.decode_object):
        with pytest.raises(protocol.ProtocolError):
            read(data)


def test_nesting_up_to_the_limit_is_accepted_and_brackets_in_strings_do_not_count() -> None:
    data = {"v": "[" * 1000}
    for _ in range(protocol.MAX_JSON_DEPTH - 3):
        data = {"d": data}
    frame = {"type": "publish", "id": 1, "event": {"kind": "x.y", "data": data}}
    decoded = protocol.service_decoder.decode(json.dumps(frame))
    assert decoded.event["kind"] == "x.y"
    too_deep = {"type": "publish", "id": 1, "event": {"kind": "x.y", "data": {"d": data}}}
    with pytest.raises(protocol.ProtocolError, match="nested"):
        protocol.service_decoder.decode(json.dumps(too_deep))


# -- integer ranges -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame",
    [
        {"type": "history", "id": 1, "before_seq": 2**63},
        {"type": "history", "id": 1, "before_seq": 2**53},
        {"type": "resume", "id": 1, "after_seq": 2**64},
        {"type": "resume", "id": 1, "after_seq": -1},
        {"type": "history", "id": 1, "limit": 2**70},
    ],
)
async def test_integers_out_of_range_are_bad_request(
    server: BackendHarness, caplog: pytest.LogCaptureFixture, frame: dict[str, object]
) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    ann = await server.agent(tokens["ann@x.org"])
    reply = await ann.request(dict(frame))
    assert reply["type"] == "error" and reply["code"] == "bad_request", reply
    assert reply["id"] == 1
    assert errors_logged(caplog) == []


async def test_the_largest_seq_accepted_is_answered(server: BackendHarness) -> None:
    tokens = await server.seed({"ann@x.org": ["Support"]})
    ann = await server.agent(tokens["ann@x.org"])
    reply = await ann.request({"type": "history", "before_seq": protocol.MAX_SAFE_INTEGER})
    assert reply["type"] == "ok"
    reply = await ann.request({"type": "resume", "after_seq": protocol.MAX_SAFE_INTEGER})
    assert reply["type"] == "ok"


async def test_an_id_out_of_range_is_not_echoed_but_answered(server: BackendHarness) -> None:
    visitor = await server.channel("/visitor")
    await visitor.send_raw(json.dumps({"type": "attach", "id": 2**80, "token": "x"}))
    error = await visitor.push("error")
    assert error["code"] == "bad_request" and error["id"] is None


@pytest.mark.parametrize("bad_type", [5, None, ["start"], {"t": 1}, True])
async def test_a_frame_whose_type_is_not_a_string_still_echoes_its_id(
    server: BackendHarness, bad_type: object
) -> None:
    visitor = await server.channel("/visitor")
    await visitor.send_raw(json.dumps({"type": bad_type, "id": "mine"}))
    error = await visitor.push("error")
    assert error == {
        "type": "error",
        "id": "mine",
        "code": "bad_request",
        "message": "every frame needs a string field `type`",
    }


# -- HTTP ---------------------------------------------------------------------------------


@pytest.mark.parametrize("header", ["Origin", "Authorization", "Host"])
@pytest.mark.parametrize("path", ["/visitor", "/agent", "/service", "/healthz"])
async def test_a_repeated_header_is_400(
    server: BackendHarness, caplog: pytest.LogCaptureFixture, header: str, path: str
) -> None:
    values = {
        "Origin": ["https://a.example", "https://b.example"],
        "Authorization": ["Bearer dbat_one", "Bearer dbat_two"],
        "Host": ["a.example", "b.example"],
    }[header]
    status, _ = await http(server, "GET", path, [*WS_HEADERS, *((header, v) for v in values)])
    assert status == 400
    assert errors_logged(caplog) == []


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
@pytest.mark.parametrize("path", ["/healthz", "/metrics", "/widget/", "/widget/widget.js"])
async def test_other_methods_than_get_are_405_with_allow(
    server: BackendHarness, method: str, path: str
) -> None:
    status, headers = await http(server, method, path, [("Content-Length", "0")])
    assert status == 405
    assert headers["allow"] == "GET"


async def test_other_methods_on_a_channel_are_405_and_unknown_paths_404(
    server: BackendHarness,
) -> None:
    assert (await http(server, "POST", "/visitor", WS_HEADERS))[0] == 405
    assert (await http(server, "POST", "/nope"))[0] == 404
    assert (await http(server, "GET", "/healthz"))[0] == 200
