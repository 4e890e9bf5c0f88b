"""What ``deskbell-server`` says when it cannot do what it was asked: each message names
what went wrong (the port, the path) and what to do, in one line, with the right exit
status (DESIGN.md, "Operator interface")."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path

import pytest
from websockets.exceptions import InvalidStatus

from backend.config import Config
from tests.support.backend import BackendHarness, ServerProcess
from tests.support.server_cli import run_server_cli

ROOT = Path(__file__).resolve().parents[2]


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run_server_cli(*args, env=env, inherit_deskbell_env=False)


def one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 1, (result.stdout, result.stderr)
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deskbell-server: error: "), result.stderr
    return lines[0]


@pytest.fixture
def busy_port() -> Iterator[int]:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


def test_a_port_in_use_is_named_with_what_to_do(tmp_path: Path, busy_port: int) -> None:
    result = run("serve", "--port", str(busy_port), "--db", str(tmp_path / "d.sqlite3"))
    line = one_line_error(result)
    assert f"port {busy_port} on 127.0.0.1 is already in use" in line
    assert "choose another port with --port" in line
    assert "unexpected" not in line


@pytest.mark.parametrize("command", ["serve", "demo"])
def test_a_port_out_of_range_is_bad_usage(tmp_path: Path, command: str) -> None:
    result = run(command, "--port", "99999", "--db", str(tmp_path / "d.sqlite3"))
    assert result.returncode == 2
    assert "usage:" in result.stderr
    assert "99999 is not a port number (0 to 65535)" in result.stderr
    assert "Traceback" not in result.stderr and "Overflow" not in result.stderr


def test_a_port_out_of_range_in_the_environment_is_a_one_line_error(tmp_path: Path) -> None:
    result = run("serve", "--db", str(tmp_path / "d.sqlite3"), env={"DESKBELL_PORT": "99999"})
    assert "port 99999 is not a port number: use 1 to 65535" in one_line_error(result)


def _without_file_permissions() -> list[str]:
    """A command prefix under which file permissions apply (root passes them by)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: permissions cannot be tested")
    return [setpriv, "--bounding-set=-all", "--inh-caps=-all"]


@pytest.mark.parametrize("locked", ["folder", "file"])
def test_a_database_it_may_not_write_is_called_a_permissions_problem(
    tmp_path: Path, locked: str
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    db = folder / "deskbell.sqlite3"
    assert run("migrate", "--db", str(db)).returncode == 0
    blocked = folder if locked == "folder" else db
    for leftover in folder.glob("deskbell.sqlite3-*"):
        leftover.unlink()
    blocked.chmod(0o555 if locked == "folder" else 0o444)
    try:
        result = subprocess.run(
            [*_without_file_permissions(), sys.executable, "-W", "error", "-m", "backend",
             "inbox", "add", "Support", "--db", str(db)],
            capture_output=True, text=True, timeout=60,
        )  # fmt: skip
    finally:
        blocked.chmod(0o755 if locked == "folder" else 0o644)
    line = one_line_error(result)
    assert f"cannot open the database {db}: permission denied" in line
    assert f"cannot write to the {locked} {blocked}" in line
    assert "Give it write access" in line and "choose another --db" in line


def test_a_mistyped_db_folder_is_not_created(tmp_path: Path) -> None:
    db = tmp_path / "typo" / "deskbell" / "deskbell.sqlite3"
    line = one_line_error(run("agent", "list", "--db", str(db)))
    assert f"the folder {tmp_path / 'typo'} does not exist" in line
    assert f"mkdir -p {db.parent}" in line
    assert not (tmp_path / "typo").exists()


def test_only_the_files_own_folder_is_made_and_it_says_so(tmp_path: Path) -> None:
    db = tmp_path / "deskbell" / "deskbell.sqlite3"
    result = run("agent", "list", "--db", str(db), "--json")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == '{"agents": []}'
    assert result.stderr.strip() == (
        f"deskbell-server: created the folder {db.parent} for the database"
    )
    assert db.exists()
    assert run("agent", "list", "--db", str(db)).stderr == ""  # only the first time


def test_several_inboxes_in_one_value_are_told_to_repeat_the_flag(tmp_path: Path) -> None:
    db = str(tmp_path / "d.sqlite3")
    for name in ("Support", "Billing"):
        assert run("inbox", "add", name, "--db", db).returncode == 0
    result = run(
        "agent", "add", "ann@x.org", "--name", "Ann", "--inbox", "Support;Billing", "--db", db
    )
    line = one_line_error(result)
    assert "for several inboxes, repeat --inbox: --inbox Support --inbox Billing" in line
    assert "inbox add" not in line  # not the advice to create an inbox "Support;Billing"
    # An inbox whose name has a comma is still one inbox.
    assert run("inbox", "add", "Sales, EMEA", "--db", db).returncode == 0
    added = run("agent", "add", "bo@x.org", "--name", "Bo", "--inbox", "Sales, EMEA", "--db", db)
    assert added.returncode == 0, added.stderr


def test_missing_scale_support_says_how_to_install_it(tmp_path: Path) -> None:
    script = (
        "import sys; sys.modules['asyncpg'] = None; sys.modules['redis'] = None\n"
        "from backend.cli import main\n"
        "sys.exit(main(sys.argv[1:]))\n"
    )
    for args in (
        ["agent", "list", "--db", "postgresql://127.0.0.1:1/x"],
        ["check", "--db", str(tmp_path / "d.sqlite3"), "--bus", "redis://127.0.0.1:1/0"],
    ):
        result = subprocess.run(
            [sys.executable, "-W", "error", "-c", script, *args],
            capture_output=True, text=True, timeout=60, cwd=ROOT,
        )  # fmt: skip
        assert "support is not installed" in result.stderr, result.stderr
        assert "uv sync --frozen --extra scale" in result.stderr
        assert "deskbell[scale]" not in result.stderr


def test_every_config_key_is_a_serve_flag_and_in_the_operations_guide() -> None:
    help_text = run("serve", "--help").stdout
    guide = (ROOT / "docs" / "operations.md").read_text()
    for key in (f.name for f in fields(Config)):
        assert f"--{key.replace('_', '-')}" in help_text, key
        assert f"`{key}`" in guide, key


async def test_serve_flags_take_effect(tmp_path: Path) -> None:
    db = str(tmp_path / "d.sqlite3")
    assert run("inbox", "add", "Support", "--db", db).returncode == 0
    assert run("agent", "add", "a@x.org", "--name", "A", "--inbox", "Support", "--db", db)
    token = run("token", "issue", "a@x.org", "--db", db).stdout.strip()
    server = ServerProcess(
        db, extra=["--node", "n7", "--visitor-origins", "https://shop.example,https://b.example"]
    )
    server.start()
    try:
        harness = BackendHarness(None, server.port, db)
        agent = await harness.agent(token, resume=False)
        assert agent.welcome["server"]["node"] == "n7"  # type: ignore[attr-defined]
        await agent.close()
        allowed = await harness.channel("/visitor", origin="https://b.example")  # type: ignore[arg-type]
        await allowed.close()
        with pytest.raises(InvalidStatus) as refused:
            await harness.channel("/visitor", origin="https://evil.example")  # type: ignore[arg-type]
        assert refused.value.response.status_code == 403
    finally:
        server.stop()
