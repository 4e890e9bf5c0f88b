"""The operator's agent and inbox lifecycle through the real ``deskbell-server`` CLI,
against a real server process, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import json
import os
import pty
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.backend.store.conftest import store_kind, store_url
from tests.support.backend import BackendHarness, ServerProcess, WsClient
from tests.support.server_cli import run_server_cli

pytestmark = pytest.mark.slow

PASSWORD = "first pass"


__all__ = ["store_kind", "store_url"]


@pytest.fixture
def db(store_url: str) -> str:
    """A fresh store of each kind (``store_url``): a file, or a PostgreSQL database."""
    return store_url


@pytest.fixture
def server(db: str) -> Iterator[ServerProcess]:
    """A ``deskbell-server serve`` process on ``db``, started by the test."""
    process = ServerProcess(db)
    yield process
    process.stop()


async def cli(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_server_cli, *args, stdin=stdin, inherit_deskbell_env=False)


async def ok(*args: str, stdin: str | None = None) -> dict[str, Any]:
    """Run a command with ``--json``; it must succeed and print one JSON object."""
    result = await cli(*args, "--json", stdin=stdin)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


async def one_line_error(*args: str, stdin: str | None = None) -> str:
    result = await cli(*args, "--json", stdin=stdin)
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert result.stdout == ""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("deskbell-server: error: "), result.stderr
    return lines[0]


async def seed(db: str) -> str:
    """Inboxes Support and Billing, agents ann (Support, a password) and bo; ann's token."""
    await ok("inbox", "add", "Support", "--db", db)
    await ok("inbox", "add", "Billing", "--db", db)
    await ok(
        "agent", "add", "ann@x.org", "--name", "Ann", "--inbox", "Support",
        "--password-stdin", "--db", db, stdin=PASSWORD + "\n",
    )  # fmt: skip
    await ok("agent", "add", "bo@x.org", "--name", "Bo", "--inbox", "Support", "--db", db)
    return str((await ok("token", "issue", "ann@x.org", "--db", db))["token"])


async def sign_in(server: ServerProcess, email: str, password: str) -> dict[str, Any]:
    auth = await BackendHarness(None, server.port, server.db).channel("/auth")
    reply = await auth.request(
        {"type": "login", "email": email, "password": password, "device": "test"}
    )
    await auth.close()
    return reply


async def connect(server: ServerProcess, token: str) -> WsClient:
    return await BackendHarness(None, server.port, server.db).agent(token)


async def closed_with(client: WsClient) -> int | None:
    await asyncio.wait_for(client.closed.wait(), 15)
    return client.ws.close_code


async def test_disable_closes_sessions_refuses_sign_in_and_tokens_and_enable_undoes_it(
    db: str, server: ServerProcess
) -> None:
    token = await seed(db)
    server.start()
    ann = await connect(server, token)

    disabled = await ok("agent", "disable", "ann@x.org", "--db", db)

    assert disabled == {"email": "ann@x.org", "disabled": True, "tokens_revoked": 1}
    assert await closed_with(ann) == 4001
    refused = await sign_in(server, "ann@x.org", PASSWORD)
    assert refused["code"] == "forbidden" and "disabled" in refused["message"]
    wrong = await sign_in(server, "ann@x.org", "not the password")
    assert wrong["code"] == "unauthorized"  # nobody learns it is disabled without it
    line = await one_line_error("token", "issue", "ann@x.org", "--db", db)
    assert "ann@x.org is disabled" in line and "agent enable ann@x.org" in line
    listed = {a["email"]: a for a in (await ok("agent", "list", "--db", db))["agents"]}
    assert listed["ann@x.org"]["disabled"] is True and listed["bo@x.org"]["disabled"] is False
    assert listed["ann@x.org"]["inboxes"] == ["Support"]  # kept for when it comes back

    assert await ok("agent", "enable", "ann@x.org", "--db", db) == {
        "email": "ann@x.org",
        "disabled": False,
    }
    again = await sign_in(server, "ann@x.org", PASSWORD)
    assert again["type"] == "ok" and again["agent"]["email"] == "ann@x.org"


async def test_a_running_server_routes_by_what_the_cli_changed_since_its_last_publish(
    db: str, server: ServerProcess
) -> None:
    """The server remembers an inbox's members between publishes; every change the
    operator makes from another process is seen by the next publish."""
    await seed(db)
    crm_token = (await ok("service-token", "issue", "crm", "--db", db))["token"]
    server.start()
    crm = await BackendHarness(None, server.port, server.db).channel("/service", crm_token)

    async def recipients() -> int:
        event = {"kind": "ticket.assigned", "recipients": ["inbox:Support"], "title": "T"}
        reply = await crm.request({"type": "publish", "event": event})
        assert reply["type"] == "ok", reply
        return int(reply["notifications"])

    assert await recipients() == 2
    assert await recipients() == 2  # remembered, unchanged
    await ok("agent", "update", "bo@x.org", "--inbox", "Billing", "--db", db)
    assert await recipients() == 1
    await ok("agent", "add", "cy@x.org", "--name", "Cy", "--inbox", "Support", "--db", db)
    assert await recipients() == 2
    await ok("agent", "disable", "ann@x.org", "--db", db)
    assert await recipients() == 1
    await ok("agent", "enable", "ann@x.org", "--db", db)
    assert await recipients() == 2
    await ok("agent", "remove", "cy@x.org", "--db", db)
    assert await recipients() == 1


async def test_disable_and_enable_say_what_they_did(db: str) -> None:
    await seed(db)
    text = await cli("agent", "disable", "ann@x.org", "--db", db)
    assert text.returncode == 0, text.stderr
    assert "1 token revoked" in text.stdout and "history stays" in text.stdout
    text = await cli("agent", "enable", "ann@x.org", "--db", db)
    assert text.stdout.strip() == "ann@x.org is enabled: it can sign in again"
    assert "no agent ghost@x.org" in await one_line_error(
        "agent", "disable", "ghost@x.org", "--db", db
    )


async def test_set_password_ends_the_sessions_of_the_old_one(
    db: str, server: ServerProcess
) -> None:
    token = await seed(db)
    server.start()
    ann = await connect(server, token)

    result = await cli(
        "agent", "set-password", "ann@x.org", "--password-stdin", "--db", db,
        stdin="second pass\n",
    )  # fmt: skip

    assert result.returncode == 0, result.stderr
    assert "1 token revoked" in result.stdout and "sign in again" in result.stdout
    assert await closed_with(ann) == 4001
    assert (await sign_in(server, "ann@x.org", PASSWORD))["code"] == "unauthorized"
    assert (await sign_in(server, "ann@x.org", "second pass"))["type"] == "ok"
    # Without --password-stdin a pipe is read all the same; an empty line changes nothing.
    assert await ok("agent", "set-password", "ann@x.org", "--db", db, stdin="third\n") == {
        "email": "ann@x.org",
        "tokens_revoked": 1,
    }
    line = await one_line_error("agent", "set-password", "ann@x.org", "--db", db, stdin="\n")
    assert "no password given; nothing was changed" in line


def test_set_password_asks_twice_without_echo_on_a_terminal(tmp_path: Path) -> None:
    db = str(tmp_path / "deskbell.sqlite3")
    assert run_server_cli("inbox", "add", "Support", "--db", db).returncode == 0
    assert (
        run_server_cli(
            "agent", "add", "ann@x.org", "--name", "Ann", "--inbox", "Support", "--db", db
        ).returncode
        == 0
    )

    def on_a_terminal(*answers: str) -> tuple[int, str]:
        pid, fd = pty.fork()
        if pid == 0:  # the child: the terminal is its stdin, stdout and /dev/tty
            os.execv(
                sys.executable,
                [sys.executable, "-W", "error", "-m", "backend", "agent", "set-password",
                 "ann@x.org", "--db", db],
            )  # fmt: skip
        screen = b""
        pending = list(answers)
        while True:
            try:
                chunk = os.read(fd, 1024)
            except OSError:  # the child exited and closed the terminal
                break
            if not chunk:
                break
            screen += chunk
            if pending and chunk.rstrip().endswith(b":"):  # a prompt, with echo off
                os.write(fd, pending.pop(0).encode() + b"\n")
        _, status = os.waitpid(pid, 0)
        os.close(fd)
        return os.waitstatus_to_exitcode(status), screen.decode(errors="replace")

    code, screen = on_a_terminal("new secret", "new secret")
    assert code == 0, screen
    assert "New password:" in screen and "Repeat it:" in screen
    assert "new secret" not in screen  # not echoed
    assert "password of ann@x.org changed" in screen

    code, screen = on_a_terminal("one thing", "another")
    assert code == 1
    assert "the two passwords differ; nothing was changed" in screen


async def test_update_renames_and_replaces_inboxes_and_a_new_sign_in_sees_it(
    db: str, server: ServerProcess
) -> None:
    await seed(db)
    server.start()

    updated = await ok(
        "agent", "update", "ann@x.org", "--name", "Ann Lee", "--inbox", "Billing",
        "--inbox", "Support", "--db", db,
    )  # fmt: skip

    assert updated["name"] == "Ann Lee" and updated["inboxes"] == ["Billing", "Support"]
    login = await sign_in(server, "ann@x.org", PASSWORD)
    ann = await connect(server, login["token"])
    assert ann.welcome["agent"]["name"] == "Ann Lee"  # type: ignore[attr-defined]
    harness = BackendHarness(None, server.port, db)
    visitor, _ = await harness.visitor_start("Billing", "Dana", "Invoice?")
    pushed = await ann.push("notification")
    assert pushed["notification"]["data"]["inbox"] == "Billing"
    await visitor.close()
    await ann.close()

    only_billing = await ok("agent", "update", "ann@x.org", "--inbox", "Billing", "--db", db)
    assert only_billing["inboxes"] == ["Billing"] and only_billing["name"] == "Ann Lee"


async def test_update_refuses_bad_usage_and_unknown_inboxes(db: str) -> None:
    await seed(db)
    nothing = await cli("agent", "update", "ann@x.org", "--db", db)
    assert nothing.returncode == 2
    assert "usage:" in nothing.stderr and "say what to change" in nothing.stderr
    line = await one_line_error("agent", "update", "ann@x.org", "--inbox", "Nope", "--db", db)
    assert "no inbox named Nope" in line
    line = await one_line_error(
        "agent", "update", "ann@x.org", "--inbox", "Support;Billing", "--db", db
    )
    assert "repeat --inbox: --inbox Support --inbox Billing" in line
    listed = (await ok("agent", "list", "--db", db))["agents"]
    assert [a["inboxes"] for a in listed if a["email"] == "ann@x.org"] == [["Support"]]


async def test_remove_closes_sessions_deletes_its_rows_and_keeps_its_messages(
    db: str, server: ServerProcess
) -> None:
    token = await seed(db)
    server.start()
    ann = await connect(server, token)
    harness = BackendHarness(None, server.port, db)
    visitor, started = await harness.visitor_start("Support", "Dana", "Hello?")
    conversation = started["conversation"]["id"]
    await ann.push("notification")
    reply = await ann.request(
        {"type": "reply", "conversation_id": conversation, "body": "Hi Dana", "client_msg_id": "1"}
    )
    assert reply["type"] == "ok"
    await visitor.close()

    removed = await cli("agent", "remove", "ann@x.org", "--db", db)

    assert removed.returncode == 0, removed.stderr
    assert removed.stdout.splitlines() == [
        "removed agent ann@x.org.",
        "  deleted: 1 notification, 1 inbox membership; 1 token revoked, so its open "
        "sessions close within seconds",
        "  kept: 1 message it wrote, in their conversations under its name; "
        "0 conversations assigned to it are now unassigned",
    ]
    assert await closed_with(ann) == 4001
    assert (await sign_in(server, "ann@x.org", PASSWORD))["code"] == "unauthorized"
    agents = (await ok("agent", "list", "--db", db))["agents"]
    assert [a["email"] for a in agents] == ["bo@x.org"]
    bo_token = (await ok("token", "issue", "bo@x.org", "--db", db))["token"]
    bo = await connect(server, bo_token)
    seen = await bo.request({"type": "conversation", "conversation_id": conversation})
    authors = [(m["author"]["name"], m["body"]) for m in seen["conversation"]["messages"]]
    assert authors == [("Dana", "Hello?"), ("Ann", "Hi Dana")]
    await bo.close()
    assert "no agent ann@x.org" in await one_line_error("agent", "remove", "ann@x.org", "--db", db)


async def test_remove_answers_one_json_object(db: str) -> None:
    await seed(db)
    assert await ok("agent", "remove", "bo@x.org", "--db", db) == {
        "removed": "bo@x.org",
        "tokens_revoked": 0,
        "notifications_deleted": 0,
        "memberships_deleted": 1,
        "conversations_unassigned": 0,
        "messages_kept": 0,
    }


async def test_inbox_list_counts_and_remove_refuses_to_lose_conversations_unless_forced(
    db: str, server: ServerProcess
) -> None:
    await seed(db)
    server.start()
    visitor, _ = await BackendHarness(None, server.port, db).visitor_start(
        "Support", "Dana", "Hello?"
    )
    await visitor.close()

    listed = await ok("inbox", "list", "--db", db)
    assert [(i["name"], i["agents"], i["conversations"]) for i in listed["inboxes"]] == [
        ("Billing", 0, 0),
        ("Support", 2, 1),
    ]
    text = await cli("inbox", "list", "--db", db)
    assert text.stdout.splitlines()[1].startswith("Support\t2 agents\t1 conversation\ti_")

    line = await one_line_error("inbox", "remove", "Support", "--db", db)
    assert "inbox Support still has 1 conversation (1 message)" in line
    assert "deletes them for good" in line and "inbox remove Support --force" in line

    forced = await ok("inbox", "remove", "Support", "--force", "--db", db)
    assert forced == {
        "removed": "Support",
        "conversations": 1,
        "messages": 1,
        "memberships": 2,
        "notifications_unlinked": 2,
    }
    names = [i["name"] for i in (await ok("inbox", "list", "--db", db))["inboxes"]]
    assert names == ["Billing"]
    empty = await cli("inbox", "remove", "Billing", "--db", db)
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.startswith("removed inbox Billing: deleted 0 conversations")
    assert "no inbox named Billing" in await one_line_error(
        "inbox", "remove", "Billing", "--db", db
    )
