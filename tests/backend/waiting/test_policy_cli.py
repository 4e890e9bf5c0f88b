"""``deskbell-server inbox policy`` as an operator runs it (a child process)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.support.server_cli import run_server_cli


@pytest.fixture
def db(tmp_path: Path) -> str:
    path = str(tmp_path / "deskbell.sqlite3")
    for args in (
        ("inbox", "add", "Support"),
        ("inbox", "add", "Leads"),
        ("agent", "add", "lead@x.org", "--name", "Lee", "--inbox", "Leads"),
    ):
        done = run_server_cli(*args, "--db", path)
        assert done.returncode == 0, done.stderr
    return path


def policy(db: str, *flags: str) -> dict[str, object]:
    done = run_server_cli("inbox", "policy", "Support", *flags, "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    result: dict[str, object] = json.loads(done.stdout)
    return result


def test_no_flags_print_the_default_policy(db: str) -> None:
    assert policy(db) == {"inbox": "Support", "escalate": [], "unseen_after_s": 30}


def test_escalate_replaces_the_steps_and_keeps_unseen_after(db: str) -> None:
    policy(db, "--unseen-after", "45")
    set_ = policy(
        db, "--escalate", "300:lead@x.org", "--escalate", "60", "--escalate", "120:inbox:Leads"
    )
    assert set_ == {
        "inbox": "Support",
        "escalate": [
            {"after_s": 60, "to": "inbox"},
            {"after_s": 120, "to": "inbox:Leads"},
            {"after_s": 300, "to": "lead@x.org"},
        ],
        "unseen_after_s": 45,
    }
    assert policy(db) == set_
    assert policy(db, "--escalate", "10")["escalate"] == [{"after_s": 10, "to": "inbox"}]


def test_clear_removes_the_steps_and_resets_unseen_after(db: str) -> None:
    policy(db, "--escalate", "60", "--unseen-after", "90")
    assert policy(db, "--clear") == {"inbox": "Support", "escalate": [], "unseen_after_s": 30}


def test_the_sentence_without_json_says_what_the_policy_does(db: str) -> None:
    done = run_server_cli("inbox", "policy", "Support", "--escalate", "60", "--db", db)
    assert done.returncode == 0
    assert done.stdout.startswith("inbox Support: escalate after 60 s to inbox;")


@pytest.mark.parametrize(
    "flags",
    [
        ("--clear", "--escalate", "60"),
        ("--escalate", "0"),
        ("--escalate", "soon"),
        ("--escalate", "60:team"),
        ("--unseen-after", "0"),
    ],
)
def test_bad_usage_exits_2_and_changes_nothing(db: str, flags: tuple[str, ...]) -> None:
    done = run_server_cli("inbox", "policy", "Support", *flags, "--db", db)
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    assert policy(db)["escalate"] == []


@pytest.mark.parametrize(
    ("flags", "says"),
    [
        (("--escalate", "60:inbox:Nowhere"), "no inbox named Nowhere"),
        (("--escalate", "60:nobody@x.org"), "no agent nobody@x.org"),
    ],
)
def test_an_unknown_target_exits_1_with_one_line(
    db: str, flags: tuple[str, ...], says: str
) -> None:
    done = run_server_cli("inbox", "policy", "Support", *flags, "--db", db)
    assert done.returncode == 1
    assert says in done.stderr and len(done.stderr.strip().splitlines()) == 1
    assert policy(db)["escalate"] == []


def test_an_unknown_inbox_exits_1(db: str) -> None:
    done = run_server_cli("inbox", "policy", "Nowhere", "--db", db)
    assert done.returncode == 1 and "Nowhere" in done.stderr
