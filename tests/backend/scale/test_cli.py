"""``deskbell-server migrate`` and ``check``, end to end, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import asyncpg
import pytest

from backend.store.base import SCHEMA_VERSION
from tests.backend.store.conftest import store_kind, store_url
from tests.backend.store.tcp_proxy import TcpProxy
from tests.support.server_cli import run_server_cli


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_server_cli(*args, inherit_deskbell_env=False)


__all__ = ["store_kind", "store_url"]


@pytest.fixture
def db(store_url: str) -> str:
    """A fresh store of each kind (``store_url``): a file, or a PostgreSQL database."""
    return store_url


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deskbell-server: error: "), result.stderr
    return lines[0]


def test_migrate_creates_the_schema_and_prints_its_version(db: str) -> None:
    first = run("migrate", "--db", db, "--json")
    assert first.returncode == 0, first.stderr
    assert json.loads(first.stdout) == {"db": db, "schema_version": SCHEMA_VERSION}
    again = run("migrate", "--db", db)  # nothing left to do: same version, still 0
    assert again.returncode == 0, again.stderr
    assert f"schema_version: {SCHEMA_VERSION}" in again.stdout.splitlines()


async def test_migrate_refuses_a_schema_newer_than_this_release(pg_url: str) -> None:
    assert run("migrate", "--db", pg_url).returncode == 0
    conn = await asyncpg.connect(pg_url)
    try:
        await conn.execute("UPDATE deskbell_schema SET version = $1", SCHEMA_VERSION + 1)
    finally:
        await conn.close()
    line = one_line_error(run("migrate", "--db", pg_url))
    assert "newer than this deskbell-server knows" in line and "upgrade" in line


def test_check_reports_schema_database_and_bus(db: str, bus_url: str) -> None:
    local = run("check", "--db", db, "--json")
    assert local.returncode == 0, local.stderr
    assert json.loads(local.stdout) == {
        "ok": True,
        "database": {
            "url": db,
            "status": "ok",
            "schema_version": SCHEMA_VERSION,
            "expected_schema_version": SCHEMA_VERSION,
        },
        "bus": {"url": "local", "status": "ok"},
    }
    redis = run("check", "--db", db, "--bus", bus_url)
    assert redis.returncode == 0, redis.stderr
    assert redis.stdout.splitlines() == [
        f"database: ok ({db}; schema version {SCHEMA_VERSION})",
        f"bus: ok ({bus_url})",
    ]


def test_check_exits_1_with_one_line_when_the_database_is_down(tmp_path: Path) -> None:
    with TcpProxy.free_port() as port:
        url = f"postgresql://postgres@127.0.0.1:{port}/deskbell"
        result = run("check", "--db", url, "--json")
    line = one_line_error(result)
    assert f"127.0.0.1:{port}" in line and "cannot be reached" in line
    report = json.loads(result.stdout)  # --json still gives the whole picture
    assert report["ok"] is False
    assert report["database"]["status"] == "unavailable"
    assert report["database"]["schema_version"] is None
    assert report["bus"]["status"] == "ok"


def test_check_exits_1_with_one_line_when_redis_is_down(tmp_path: Path) -> None:
    db = str(tmp_path / "deskbell.sqlite3")
    with TcpProxy.free_port() as port:
        result = run("check", "--db", db, "--bus", f"redis://127.0.0.1:{port}/0")
    line = one_line_error(result)
    assert f"Redis at redis://127.0.0.1:{port}/0 cannot be reached" in line
    assert result.stdout.splitlines()[0] == (
        f"database: ok ({db}; schema version {SCHEMA_VERSION})"
    )
    assert result.stdout.splitlines()[1].startswith("bus: unavailable")


def test_check_hides_the_database_password(tmp_path: Path) -> None:
    with TcpProxy.free_port() as port:
        url = f"postgresql://deskbell:s3cret@127.0.0.1:{port}/deskbell"
        result = run("check", "--db", url, "--json")
    assert result.returncode == 1
    assert "s3cret" not in result.stdout + result.stderr
    assert json.loads(result.stdout)["database"]["url"].startswith("postgresql://deskbell:***@")


def test_service_token_issue_refuses_a_taken_name_unless_told_to_replace(db: str) -> None:
    first = run("service-token", "issue", "crm", "--db", db, "--json")
    assert first.returncode == 0, first.stderr
    old = json.loads(first.stdout)["token"]
    line = one_line_error(run("service-token", "issue", "crm", "--db", db))
    assert line == (
        "deskbell-server: error: a service token named crm exists already; pass --replace "
        "to revoke it and issue a new one, or choose another name"
    )
    replaced = run("service-token", "issue", "crm", "--replace", "--db", db, "--json")
    assert replaced.returncode == 0, replaced.stderr
    new = json.loads(replaced.stdout)
    assert new["name"] == "crm" and new["token"] != old
    # The old token was revoked by the replacement; the new one is live.
    assert "already revoked" in one_line_error(run("token", "revoke", old, "--db", db))
    assert run("token", "revoke", new["token"], "--db", db).returncode == 0
