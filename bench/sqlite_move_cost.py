"""What the SQLite writer's move of fan-out rows costs per row, by events per move.

    python bench/sqlite_move_cost.py --agents 1000 --events-per-move 3,12,48

A fan-out is committed event-major into ``fanout`` and moved into ``notifications``
(keyed by agent, then seq) later, many events at once (backend/store/sqlite_writer.py).
A move writes every recipient's leaf page once, whatever the number of rows it carries
for that recipient, so the cost per row falls as more events share a move. This seeds
``--agents`` agents of one inbox with the operator CLI, grows ``notifications`` to
``--warm-events`` events, then for each value of ``--events-per-move`` commits that many
fan-outs (the rows the writer would commit) and moves them with the writer's own
statement, ``--rounds`` times, and prints the median CPU time per moved row. The
reference is the same machine's cost per row of committing the fan-out rows themselves
(the part every event pays whatever the move does).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from processes import seed


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--events-per-move", default="3,12,48")
    p.add_argument("--warm-events", type=int, default=200)
    p.add_argument("--rounds", type=int, default=5)
    args = p.parse_args()
    from backend.store.sqlite_writer import Writer, connect

    print(f"# python bench/sqlite_move_cost.py {shlex.join(sys.argv[1:])}")
    with tempfile.TemporaryDirectory() as tmp:
        seeded = seed(Path(tmp), args.agents)
        conn = connect(str(seeded.db), durable=False)
        agents = [r[0] for r in conn.execute("SELECT id FROM agents ORDER BY id")][: args.agents]
        writer = Writer(str(seeded.db), durable=False)  # its move, on this connection
        seq = [0]

        def commit(events: int) -> float:
            conn.execute("BEGIN IMMEDIATE")
            started = time.thread_time()
            for _ in range(events):
                seq[0] += 1
                event_id = conn.execute(
                    "INSERT INTO events (kind, category, title, body, conversation_id, url, "
                    "data, created_at) VALUES ('ticket.assigned', 'ticket', 'Ticket', ?, "
                    "NULL, NULL, '{}', '2026-12-07T00:00:00.000Z')",
                    ("x" * 200,),
                ).lastrowid
                conn.executemany(
                    "INSERT INTO fanout (event_id, agent_id, seq) VALUES (?, ?, ?)",
                    [(event_id, agent, seq[0]) for agent in agents],
                )
            spent = time.thread_time() - started
            conn.execute("COMMIT")
            return spent

        def move() -> float:
            writer.pending, writer.pending_since = 1, time.monotonic()
            started = time.thread_time()
            conn.execute("BEGIN IMMEDIATE")
            writer.index_pending(conn)
            conn.execute("COMMIT")
            return time.thread_time() - started

        commit(args.warm_events)
        move()
        print(f"{args.agents} agents, notifications grown to {args.warm_events} events first")
        for per in (int(n) for n in args.events_per_move.split(",")):
            rows = per * len(agents)
            commits, moves = [], []
            for _ in range(args.rounds):
                commits.append(commit(per) / rows)
                moves.append(move() / rows)
            moved, committed = statistics.median(moves), statistics.median(commits)
            print(
                f"  {per:3d} events per move: move {moved * 1e6:5.2f} µs per row; commit of "
                f"the fan-out rows {committed * 1e6:5.2f} µs per row (reference); "
                f"ratio {moved / committed:.2f}"
            )
        conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
