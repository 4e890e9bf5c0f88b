"""Passwords in database and bus URLs never reach a log line, stdout or an error."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.backend.bus.redis_server import RedisServer
from tests.backend.store.tcp_proxy import TcpProxy
from tests.support.backend import ServerProcess
from tests.support.server_cli import run_server_cli

SECRET = "hunter2-never-shown"


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return run_server_cli(*args, inherit_deskbell_env=False)


def with_query_password(url: str) -> str:
    """``url`` with the password given as a query option (trust auth ignores it)."""
    return f"{url}{'&' if '?' in url else '?'}password={SECRET}"


def test_check_hides_a_password_given_as_a_query_option_when_the_database_is_down() -> None:
    with TcpProxy.free_port() as port:
        url = f"postgresql://deskbell@127.0.0.1:{port}/deskbell?password={SECRET}"
        result = run("check", "--db", url, "--json")
    assert result.returncode == 1
    assert SECRET not in result.stdout + result.stderr
    assert json.loads(result.stdout)["database"]["url"].endswith("?password=***")


def test_check_hides_a_password_given_as_a_query_option_when_all_is_up(pg_url: str) -> None:
    result = run("check", "--db", with_query_password(pg_url))
    assert result.returncode == 0, result.stderr
    assert SECRET not in result.stdout + result.stderr
    assert "password=***" in result.stdout


def test_serve_with_the_database_down_names_it_without_the_password(tmp_path: Path) -> None:
    with TcpProxy.free_port() as port:
        url = f"postgresql://deskbell:{SECRET}@127.0.0.1:{port}/x?sslpassword={SECRET}2"
        result = run("serve", "--db", url, "--port", "0")
    assert result.returncode == 1
    assert SECRET not in result.stdout + result.stderr
    assert "deskbell:***@127.0.0.1" in result.stderr


async def test_serve_logs_no_redis_or_database_password(
    pg_url: str, private_redis: RedisServer
) -> None:
    await private_redis.command("CONFIG", "SET", "requirepass", SECRET)
    bus = f"redis://:{SECRET}@127.0.0.1:{private_redis.port}/0"
    server = ServerProcess(with_query_password(pg_url), extra=["--bus", bus])
    server.start()
    try:
        code = server.terminate()
    finally:
        server.stop()
    log = "".join(server.log)
    assert code == 0, log
    listening = next(line for line in server.log if "event=listening" in line)
    assert f"bus=redis://:***@127.0.0.1:{private_redis.port}/0" in listening
    assert "password=***" in listening
    assert SECRET not in log
