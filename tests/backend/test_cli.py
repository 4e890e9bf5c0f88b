"""``deskbell-server`` end to end, as operators and scripts call it."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from tests.support.server_cli import run_server_cli


def run(
    *args: str, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return run_server_cli(*args, stdin=stdin, env=env)


@pytest.fixture
def db(tmp_path: Path) -> str:
    return str(tmp_path / "cli.sqlite3")


def ok_json(result: subprocess.CompletedProcess[str]) -> dict[str, object]:
    assert result.returncode == 0, result.stderr
    data: dict[str, object] = json.loads(result.stdout)
    return data


def test_every_command_answers_one_json_object(db: str, tmp_path: Path) -> None:
    inbox = ok_json(run("inbox", "add", "Support", "--db", db, "--json"))
    assert inbox["name"] == "Support" and str(inbox["id"]).startswith("i_")
    agent = ok_json(
        run(
            "agent",
            "add",
            "ann@x.org",
            "--name",
            "Ann Lee",
            "--inbox",
            "Support",
            "--password-stdin",
            "--db",
            db,
            "--json",
            stdin="s3cret pass\n",
        )
    )
    assert agent == {
        "id": agent["id"],
        "email": "ann@x.org",
        "name": "Ann Lee",
        "inboxes": ["Support"],
        "disabled": False,
    }
    listed = ok_json(run("agent", "list", "--db", db, "--json"))
    # No tray app has connected yet: no app versions seen.
    assert listed == {"agents": [{**agent, "app_versions": []}]}
    token = ok_json(run("token", "issue", "ann@x.org", "--db", db, "--json"))
    assert str(token["token"]).startswith("dbat_") and token["agent_id"] == agent["id"]
    assert ok_json(run("token", "revoke", str(token["token"]), "--db", db, "--json")) == {
        "revoked": True
    }
    service = ok_json(run("service-token", "issue", "crm", "--db", db, "--json"))
    assert str(service["token"]).startswith("dbst_") and service["name"] == "crm"
    sqlite_url = ok_json(run("agent", "list", "--db", f"sqlite:///{db}", "--json"))
    assert sqlite_url == listed


def test_agent_import_creates_updates_and_issues_tokens(db: str, tmp_path: Path) -> None:
    ok_json(run("inbox", "add", "Support", "--db", db, "--json"))
    ok_json(
        run(
            "agent", "add", "ann@x.org", "--name", "Ann", "--inbox", "Support", "--db", db, "--json"
        )
    )
    csv_file = tmp_path / "agents.csv"
    csv_file.write_text(
        "email,name,inboxes\nann@x.org,Ann Lee,Support;Billing\nbo@x.org,Bo,Sales\n"
    )
    result = ok_json(run("agent", "import", str(csv_file), "--issue-tokens", "--db", db, "--json"))
    assert result["created"] == 1 and result["updated"] == 1
    tokens = result["tokens"]
    assert isinstance(tokens, dict) and set(tokens) == {"ann@x.org", "bo@x.org"}
    jsonl = tmp_path / "more.jsonl"
    jsonl.write_text('{"email": "cy@x.org", "name": "Cy", "inboxes": ["Sales"]}\n')
    assert ok_json(run("agent", "import", str(jsonl), "--db", db, "--json"))["created"] == 1
    agents = {a["email"]: a for a in ok_json(run("agent", "list", "--db", db, "--json"))["agents"]}  # type: ignore[union-attr]
    assert agents["ann@x.org"]["inboxes"] == ["Billing", "Support"]
    assert agents["ann@x.org"]["name"] == "Ann Lee"
    assert agents["cy@x.org"]["inboxes"] == ["Sales"]


def test_import_of_thousands_is_one_fast_transaction(db: str, tmp_path: Path) -> None:
    rows = "\n".join(f"agent{n}@x.org,Agent {n},Support" for n in range(3000))
    csv_file = tmp_path / "many.csv"
    csv_file.write_text("email,name,inboxes\n" + rows + "\n")
    result = ok_json(run("agent", "import", str(csv_file), "--issue-tokens", "--db", db, "--json"))
    assert result["created"] == 3000 and len(result["tokens"]) == 3000  # type: ignore[arg-type]


def test_broken_import_file_names_the_line_and_imports_nothing(db: str, tmp_path: Path) -> None:
    csv_file = tmp_path / "bad.csv"
    csv_file.write_text("email,name,inboxes\nann@x.org,Ann,Support\nnot-an-email,Bo,Support\n")
    result = run("agent", "import", str(csv_file), "--db", db, "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("deskbell-server: error: ")
    assert "line 3" in result.stderr
    assert ok_json(run("agent", "list", "--db", db, "--json")) == {"agents": []}


@pytest.mark.parametrize(
    ("setup", "args", "words"),
    [
        ([("inbox", "add", "Support")], ("inbox", "add", "Support"), "already exists"),
        (
            [
                ("inbox", "add", "Support"),
                ("agent", "add", "a@x.org", "--name", "A", "--inbox", "Support"),
            ],
            ("agent", "add", "a@x.org", "--name", "A", "--inbox", "Support"),
            "agent a@x.org already exists; to change it: deskbell-server agent update "
            "a@x.org (name, inboxes) or agent set-password a@x.org",
        ),
        ([], ("agent", "add", "a@x.org", "--name", "A", "--inbox", "Nope"), "no inbox named Nope"),
        ([], ("token", "issue", "ghost@x.org"), "no agent ghost@x.org"),
        ([], ("token", "revoke", "dbat_nothing"), "no such token"),
        ([], ("agent", "add", "not-an-email", "--name", "A", "--inbox", "S"), "not an email"),
    ],
)
def test_failures_exit_1_with_one_line_on_stderr(
    db: str, setup: list[tuple[str, ...]], args: tuple[str, ...], words: str
) -> None:
    for step in setup:
        assert run(*step, "--db", db).returncode == 0
    result = run(*args, "--db", db, "--json")
    assert result.returncode == 1
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deskbell-server: error: ")
    assert words in lines[0]


def test_bad_usage_exits_2_with_usage(db: str) -> None:
    for args in (
        ("bogus",),
        ("agent", "add", "a@x.org"),
        ("inbox",),
        ("serve", "--port", "notanumber"),
    ):
        result = run(*args)
        assert result.returncode == 2, args
        assert "usage:" in result.stderr


def test_unreadable_or_broken_config_is_a_one_line_error(db: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.toml"
    broken.write_text("port = [unterminated\n")
    result = run("agent", "list", "--config", str(broken), "--db", db)
    assert result.returncode == 1
    assert "not valid TOML" in result.stderr and "Traceback" not in result.stderr
    result = run("agent", "list", "--config", str(tmp_path / "missing.toml"), "--db", db)
    assert result.returncode == 1 and "cannot read config file" in result.stderr
    wrong = tmp_path / "wrong.toml"
    wrong.write_text('colour = "blue"\n')
    assert "unknown setting 'colour'" in run("agent", "list", "--config", str(wrong)).stderr


def test_flags_win_over_environment_over_config_file(tmp_path: Path) -> None:
    file_db = tmp_path / "file.sqlite3"
    env_db = tmp_path / "env.sqlite3"
    flag_db = tmp_path / "flag.sqlite3"
    config = tmp_path / "deskbell.toml"
    config.write_text(f'db = "{file_db}"\n')
    run("inbox", "add", "FromFile", "--config", str(config))
    run("inbox", "add", "FromEnv", "--config", str(config), env={"DESKBELL_DB": str(env_db)})
    run(
        "inbox",
        "add",
        "FromFlag",
        "--config",
        str(config),
        "--db",
        str(flag_db),
        env={"DESKBELL_DB": str(env_db)},
    )
    assert file_db.exists() and env_db.exists() and flag_db.exists()
    again = run("inbox", "add", "FromEnv", "--db", str(env_db))
    assert again.returncode == 1 and "already exists" in again.stderr


def test_a_file_that_is_not_a_database_is_a_clear_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.sqlite3"
    junk.write_bytes(b"this is not sqlite" * 100)
    result = run("agent", "list", "--db", str(junk))
    assert result.returncode == 1
    assert "not a Deskbell database" in result.stderr


def test_version_flag(db: str) -> None:
    result = run("--version")
    assert result.returncode == 0 and result.stdout.startswith("deskbell-server ")


def test_token_revoke_reads_the_token_from_stdin_with_a_dash(db: str) -> None:
    assert run("inbox", "add", "Support", "--db", db).returncode == 0
    assert (
        run("agent", "add", "a@x.org", "--name", "A", "--inbox", "Support", "--db", db).returncode
        == 0
    )
    first = str(ok_json(run("token", "issue", "a@x.org", "--db", db, "--json"))["token"])
    second = str(ok_json(run("token", "issue", "a@x.org", "--db", db, "--json"))["token"])
    assert ok_json(run("token", "revoke", "-", "--db", db, "--json", stdin=first + "\n")) == {
        "revoked": True
    }
    again = run("token", "revoke", "-", "--db", db, stdin=first + "\n")
    assert again.returncode == 1 and "already revoked" in again.stderr
    # The positional form keeps working.
    assert ok_json(run("token", "revoke", second, "--db", db, "--json")) == {"revoked": True}
    empty = run("token", "revoke", "-", "--db", db, stdin="")
    assert empty.returncode == 1
    assert empty.stderr.strip() == "deskbell-server: error: no token on stdin"
