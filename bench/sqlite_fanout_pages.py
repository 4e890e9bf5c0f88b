"""Why storing a fan-out costs what it costs in SQLite: pages written per commit.

    python bench/sqlite_fanout_pages.py --agents 1000 --events 400

Inserts ``events`` events, each stored for every one of ``agents`` agents (one
transaction per event, as the writer does when events come one at a time), into

- the schema shipped in backend/store/migrations (rows keyed by agent, then seq), and
- an event-major variant (rows keyed by event, then agent; no per-agent index),

and prints, once the tables have grown, the CPU per stored row and how many pages each
commit appends to the WAL. A key that starts with the agent puts every recipient's new
row on a different leaf page (once each agent has a page of its own), so one event to
1,000 agents dirties about 1,000 pages of every such B-tree; keyed by event, the same
rows fill a handful of adjacent pages.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import sys
import tempfile
import time


def shipped_schema() -> tuple[list[str], str]:
    """The installed backend's migrations, and where they come from."""
    import backend
    from backend.store.sqlite import _statements, migrations

    statements = [s for _, sql in migrations() for s in _statements(sql)]
    return statements, os.path.dirname(backend.__file__)


def event_major(statements: list[str]) -> list[str]:
    """The shipped schema with notifications keyed by (event_id, agent_id) and no
    per-agent index on them."""
    out = []
    for s in statements:
        if "CREATE TABLE notifications" in s:
            s = s.split("(", 1)[0] + (
                "(agent_id INTEGER NOT NULL, seq INTEGER NOT NULL, event_id INTEGER NOT NULL,"
                " category TEXT NOT NULL, conversation_id INTEGER,"
                " read INTEGER NOT NULL DEFAULT 0, PRIMARY KEY (event_id, agent_id))"
                " WITHOUT ROWID"
            )
        elif "INDEX" in s and " ON notifications " in s:
            continue
        out.append(s)
    return out


def measure(statements: list[str], agents: int, events: int) -> tuple[float, float]:
    folder = tempfile.mkdtemp(prefix="deskbell-pages-")
    path = os.path.join(folder, "x.sqlite3")
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    for s in statements:
        conn.execute(s)
    conn.execute("BEGIN")
    conn.executemany(
        "INSERT INTO agents (id, public_id, email, name, created_at) VALUES (?, ?, ?, ?, ?)",
        [(i, f"a_{i}", f"agent{i}@x", "n", "t") for i in range(1, agents + 1)],
    )
    conn.execute("COMMIT")
    conn.execute("PRAGMA wal_autocheckpoint = 0")
    window = min(20, events // 4)
    first = events - window
    cpu0 = 0.0
    wal0 = 0
    for ev in range(events):
        if ev == first:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            wal0 = os.path.getsize(path + "-wal")
            cpu0 = time.process_time()
        conn.execute("BEGIN IMMEDIATE")
        event_id = conn.execute(
            "INSERT INTO events (kind, category, title, body, conversation_id, url, data,"
            " created_at) VALUES ('ticket.assigned', 'ticket', 't', 'b', NULL, NULL, '{}', 'x')"
        ).lastrowid
        conn.executemany(
            "INSERT INTO notifications (agent_id, seq, event_id, category, conversation_id)"
            " VALUES (?, ?, ?, ?, ?)",
            [(a, ev + 1, event_id, "ticket", None) for a in range(1, agents + 1)],
        )
        conn.execute("COMMIT")
        if ev % 50 == 49 and ev < first:
            conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    cpu = time.process_time() - cpu0
    pages = (os.path.getsize(path + "-wal") - wal0) / 4096 / window
    conn.close()
    return cpu / (window * agents) * 1e6, pages


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--events", type=int, default=400)
    args = p.parse_args()
    print(f"# python bench/sqlite_fanout_pages.py --agents {args.agents} --events {args.events}")
    print(f"# SQLite {sqlite3.sqlite_version}; figures over the last events, tables grown")
    shipped, source = shipped_schema()
    print(f"# schema from {source}")
    print("| schema | CPU per stored row (µs) | WAL pages per commit (4 KiB) |")
    print("|---|---|---|")
    for name, statements in (
        ("shipped (agent, seq)", shipped),
        ("event-major (event, agent)", event_major(shipped)),
    ):
        cpu, pages = measure(statements, args.agents, args.events)
        print(f"| {name} | {cpu:.1f} | {pages:.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
