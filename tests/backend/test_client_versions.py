"""The tray app's version and OS, from the /agent handshake to `agent list`."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from websockets.asyncio.client import connect

from backend.protocol import CLIENT_OS_HEADER, CLIENT_VERSION_HEADER
from desktop_agent.core.client_info import client_headers, os_description
from tests.support.backend import SUBPROTOCOL, BackendHarness, WsClient, in_process_backend
from tests.support.server_cli import run_server_cli

EMAIL = "ann@x.org"


async def connect_agent(server: BackendHarness, token: str, headers: dict[str, str]) -> WsClient:
    ws = await connect(
        f"{server.url}/agent",
        subprotocols=[SUBPROTOCOL],  # type: ignore[list-item]
        additional_headers={"Authorization": f"Bearer {token}", **headers},
    )
    client = WsClient(ws)
    await client.push("welcome")
    return client


def listed_versions(db: str) -> list[dict[str, Any]]:
    done = run_server_cli("agent", "list", "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    agents = json.loads(done.stdout)["agents"]
    return next(a for a in agents if a["email"] == EMAIL)["app_versions"]  # type: ignore[no-any-return]


async def recorded(server: BackendHarness) -> dict[int, list[Any]]:
    return await server.service.client_versions("2000-01-01T00:00:00.000Z")  # type: ignore[no-any-return]


async def wait_recorded(server: BackendHarness, count: int) -> list[Any]:
    """The recorded versions once there are ``count`` (the server writes them in the
    background, off the handshake's path)."""
    async with asyncio.timeout(10):
        while True:
            seen = await recorded(server)
            versions = [v for vs in seen.values() for v in vs]
            if len(versions) >= count:
                return versions
            await asyncio.sleep(0.005)  # polling the store: nothing signals the write


def test_the_app_names_its_version_and_os_in_two_headers() -> None:
    headers = client_headers("1.2.3", "Windows 10 AMD64")
    assert headers == {CLIENT_VERSION_HEADER: "1.2.3", CLIENT_OS_HEADER: "Windows 10 AMD64"}
    assert os_description("Linux", "6.1.0-18-amd64", "x86_64") == "Linux 6.1.0-18-amd64 x86_64"
    assert os_description("", "", "") == "unknown"


async def test_agent_list_shows_the_app_versions_each_agent_connected_with(
    tmp_path: Path,
) -> None:
    async with in_process_backend(tmp_path) as server:
        token = (await server.seed({EMAIL: ["Support"]}))[EMAIL]
        first = await connect_agent(server, token, client_headers("0.3.0", "Linux 6.1.0 x86_64"))
        second = await connect_agent(server, token, client_headers("0.2.9", "Windows 10 AMD64"))
        await wait_recorded(server, 2)
        # A sighting from two days ago is past the window `agent list` shows.
        agent = await server.service.store.agent_by_email(EMAIL)
        old = (datetime.now(UTC) - timedelta(days=2)).isoformat(timespec="milliseconds")
        await server.service.store.record_client_version(
            agent.id, "0.1.0", "Darwin 23.4.0 arm64", old.replace("+00:00", "Z")
        )
        await first.close()
        await second.close()

    versions = listed_versions(server.db)
    assert sorted((v["version"], v["os"]) for v in versions) == [
        ("0.2.9", "Windows 10 AMD64"),
        ("0.3.0", "Linux 6.1.0 x86_64"),
    ]
    assert all(v["last_seen"].endswith("Z") for v in versions)
    text = run_server_cli("agent", "list", "--db", server.db).stdout
    assert "0.3.0 (Linux 6.1.0 x86_64)" in text


async def test_header_values_are_cut_and_cleaned_before_they_are_kept(tmp_path: Path) -> None:
    async with in_process_backend(tmp_path) as server:
        token = (await server.seed({EMAIL: ["Support"]}))[EMAIL]
        headers = {CLIENT_VERSION_HEADER: "9.9-\u00fcber\t  " + "x" * 300, CLIENT_OS_HEADER: " "}
        client = await connect_agent(server, token, headers)
        (version,) = await wait_recorded(server, 1)
        await client.close()
    assert version.version.startswith("9.9-ber xxx") and len(version.version) == 100
    assert version.version.isascii()
    assert version.os == "unknown"


async def test_a_client_that_names_no_version_connects_and_is_not_listed(
    tmp_path: Path,
) -> None:
    async with in_process_backend(tmp_path) as server:
        token = (await server.seed({EMAIL: ["Support"]}))[EMAIL]
        tools = await server.agent(token)  # a script on the wire protocol: no headers
        app = await connect_agent(server, token, client_headers("0.3.0", "Linux"))
        # The app's sighting is written after anything the first connection caused.
        (only,) = await wait_recorded(server, 1)
        await tools.close()
        await app.close()
    assert only.version == "0.3.0"
    assert [v["version"] for v in listed_versions(server.db)] == ["0.3.0"]
