"""Throw-away PostgreSQL databases for tests, on the server the machine runs.

``DESKBELL_TEST_PG`` names the server (default: the local one, trust auth). Every test
gets a database of its own, created empty and dropped afterwards, so tests never see
each other's rows and can run in any order.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import AsyncIterator
from urllib.parse import urlsplit, urlunsplit

import asyncpg

SERVER_URL = os.environ.get("DESKBELL_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


def database_url(name: str, server_url: str = SERVER_URL) -> str:
    """``server_url`` with its database replaced by ``name``."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def server_reachable(server_url: str = SERVER_URL) -> str | None:
    """None when the server answers, else why not."""
    try:
        conn = await asyncpg.connect(server_url, timeout=3)
    except (OSError, asyncpg.PostgresError) as exc:
        return f"PostgreSQL at {server_url} is not reachable: {exc}"
    await conn.close()
    return None


@contextlib.asynccontextmanager
async def fresh_database(server_url: str = SERVER_URL) -> AsyncIterator[str]:
    """Create an empty database, yield its URL, drop it (and its sessions) after."""
    name = f"deskbell_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(server_url, timeout=5)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield database_url(name, server_url)
    finally:
        admin = await asyncpg.connect(server_url, timeout=5)
        try:
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()
