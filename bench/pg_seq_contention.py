"""How fast PostgreSQL commits fan-outs to one inbox when several writers compete.

    python bench/pg_seq_contention.py --agents 1000 --seconds 5

A fresh database (created here, dropped at the end; schema and agents made by the
backend's own CLI), ``--agents`` agents of one inbox, then ``--writers`` concurrent
asyncpg connections each committing events to all of them in a loop through a store's
own write path, publish keys included, then COMMIT. ``--writers`` stands for every
writer task of every node (a node runs pool_size / 2 of them). Variants, each for
``--seconds``:

- ``shipped``: the write path of ``--reference`` (a git revision, default the one
  before the batched bump: its ``backend/store/postgres.py`` is loaded beside this
  tree's other store modules), one change per transaction, as a writer that finds one
  change queued: claim the key, one statement that inserts the event, bumps every
  recipient's ``agent_seq`` row and inserts the notifications;
- ``shipped+gap``: the same with ``--gap-ms`` before COMMIT, standing in for a node
  whose event loop is busy (fanning out) when asyncpg's reply arrives: the
  ``agent_seq`` row locks are held across it;
- ``inbox-lock``: ``shipped`` with ``pg_advisory_xact_lock`` on the inbox first;
- ``batch``: ``--batch`` changes in one transaction through the reference's
  ``_apply_batch`` (each change bumps every row again);
- ``bump-once``: the sketch of fix 9 that docs/benchmarks.md measured first;
- ``store``: this tree's write path (``backend.store.pg_commit.apply_batch``: the
  recipient set's advisory lock, then the one bump), one change per transaction;
- ``store-batch``: the same with ``--batch`` changes per transaction, as this tree's
  writers batch what queued up for one inbox.

Prints events/s, commit latency and this process's CPU per event (the node's share of
the work: building the statements and the per-recipient results) per variant and
writer count. Needs only the PostgreSQL of ``--pg-url``, git, and the backend
importable (run from the repo's venv).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType

import asyncpg

sys.path.insert(0, str(Path(__file__).resolve().parent))
from processes import postgres_database, seed

COUNTER = [0]
"""Publish keys are unique over the whole run (every variant writes the same table)."""


DEFAULT_REFERENCE = "31857ef"
"""The last revision whose writers bumped every counter row once per event."""
REFERENCE = [DEFAULT_REFERENCE]
"""The revision the reference variants run (``--reference``)."""
BATCHED = ("batch", "bump-once", "store-batch")
_reference: list[ModuleType] = []


def reference_module(revision: str) -> ModuleType:
    """``backend/store/postgres.py`` as of ``revision``, loaded as its own module."""
    if not _reference:
        root = Path(__file__).resolve().parent.parent
        source = subprocess.run(
            ["git", "-C", str(root), "show", f"{revision}:backend/store/postgres.py"],
            check=True,
            capture_output=True,
            text=True,
        ).stdout
        folder = Path(tempfile.mkdtemp(prefix="deskbell-reference-"))
        path = folder / "reference_postgres.py"
        path.write_text(source)
        spec = importlib.util.spec_from_file_location("reference_postgres", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _reference.append(module)
    return _reference[0]


def change(agents: list[int], key: str) -> object:
    from backend.store.base import Change, NewEvent

    return Change(
        event=NewEvent(
            kind="ticket.assigned",
            title="Ticket assigned",
            body="x" * 200,
            conversation_public_id=None,
            url=None,
            data={},
            created_at="2026-12-02T00:00:00Z",
            recipients=tuple(agents),
        ),
        publish_key=(1, key),
    )


async def commit(
    conn: asyncpg.Connection,
    agents: list[int],
    variant: str,
    batch: int,
    gap: float,
    counter: list[int],
    public_ids: dict[int, str],
) -> None:
    """One transaction of a store's write path, as its writers run it: ``batch``
    changes for the batched variants, else one."""
    k = batch if variant in BATCHED else 1
    if variant == "bump-once":
        await bump_once(conn, agents, k, counter)
        if gap:
            await asyncio.sleep(gap)
        return
    changes = []
    for _ in range(k):
        counter[0] += 1
        changes.append(change(agents, f"k{os.getpid()}-{counter[0]}"))
    async with conn.transaction():
        if variant.startswith("store"):
            from backend.store.pg_commit import apply_batch

            await apply_batch(conn, changes, public_ids)
        else:
            if variant == "inbox-lock":
                await conn.execute("SELECT pg_advisory_xact_lock(42)")
            await reference_module(REFERENCE[0])._apply_batch(conn, changes, public_ids)
        if gap:
            await asyncio.sleep(gap)  # the node's loop busy before it sends COMMIT


BUMP_K = (
    "WITH bumped AS ("
    " INSERT INTO agent_seq AS s (agent_id, last_seq, unread)"
    " SELECT a, $3::bigint, jsonb_build_object($2::text, $3::bigint)"
    " FROM unnest($1::bigint[]) AS t(a) ORDER BY a"
    " ON CONFLICT (agent_id) DO UPDATE SET last_seq = s.last_seq + $3::bigint,"
    " unread = s.unread || jsonb_build_object("
    "  $2::text, COALESCE((s.unread ->> $2::text)::bigint, 0) + $3::bigint)"
    " RETURNING agent_id, last_seq, unread::text)"
    " SELECT agent_id, last_seq, unread FROM bumped"
)


async def bump_once(
    conn: asyncpg.Connection, agents: list[int], k: int, counter: list[int]
) -> None:
    """Fix 9 of docs/benchmarks.md, as a sketch (not the store's code): k events to the
    same recipients in one transaction, each ``agent_seq`` row bumped once by k, all
    k x N notification rows in one INSERT. Same tables, keys and rows as the store."""
    keys = []
    for _ in range(k):
        counter[0] += 1
        keys.append(f"k{os.getpid()}-{counter[0]}")
    async with conn.transaction():
        claimed = await conn.fetch(
            "INSERT INTO publish_keys (token_id, key, notifications, created_at) "
            "SELECT 1, key, $2, '2026-12-02T00:00:00Z' FROM unnest($1::text[]) AS t(key) "
            "ON CONFLICT DO NOTHING RETURNING key",
            keys,
            len(agents),
        )
        assert len(claimed) == k
        events = [
            r[0]
            for r in await conn.fetch(
                "INSERT INTO events (kind, category, title, body, conversation_id, url, data, "
                "created_at) SELECT 'ticket.assigned', 'tickets', 'Ticket assigned', $2, "
                "NULL, NULL, '{}', '2026-12-02T00:00:00Z' FROM generate_series(1, $1) "
                "RETURNING id",
                k,
                "x" * 200,
            )
        ]
        rows = await conn.fetch(BUMP_K, sorted(agents), "tickets", k)
        last = {r[0]: r[1] for r in rows}
        a_col, s_col, e_col = [], [], []
        for i, event_id in enumerate(events):
            for a in agents:
                a_col.append(a)
                s_col.append(last[a] - k + 1 + i)
                e_col.append(event_id)
        await conn.execute(
            "INSERT INTO notifications (agent_id, seq, event_id, category, conversation_id) "
            "SELECT a, s, e, 'tickets', NULL "
            "FROM unnest($1::bigint[], $2::bigint[], $3::bigint[]) AS t(a, s, e)",
            a_col,
            s_col,
            e_col,
        )


async def run_variant(
    url: str, agents: list[int], variant: str, writers: int, seconds: float, batch: int, gap: float
) -> tuple[float, float, float, int, float]:
    conns = [await asyncpg.connect(url) for _ in range(writers)]
    lat: list[float] = []
    done = [0]
    counter = COUNTER
    stop = time.monotonic() + seconds
    errors = [0]
    public_ids: dict[int, str] = {}

    async def writer(conn: asyncpg.Connection) -> None:
        while time.monotonic() < stop:
            t0 = time.monotonic()
            try:
                await commit(conn, agents, variant, batch, gap, counter, public_ids)
            except asyncpg.PostgresError:
                errors[0] += 1
                continue
            lat.append(time.monotonic() - t0)
            done[0] += batch if variant in BATCHED else 1

    t0 = time.monotonic()
    cpu0 = time.process_time()
    await asyncio.gather(*(writer(c) for c in conns))
    wall = time.monotonic() - t0
    cpu = time.process_time() - cpu0
    for c in conns:
        await c.close()
    lat.sort()
    p50 = statistics.median(lat) * 1e3 if lat else float("nan")
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))] * 1e3 if lat else float("nan")
    per_event_us = cpu / done[0] * 1e6 if done[0] else float("nan")
    return done[0] / wall, p50, p99, errors[0], per_event_us


async def main_async(args: argparse.Namespace, url: str) -> None:
    if any(not v.startswith(("store", "bump-once")) for v in args.variants.split(",")):
        reference_module(REFERENCE[0])  # loaded before the clock starts
    conn = await asyncpg.connect(url)
    agents = [r[0] for r in await conn.fetch("SELECT id FROM agents ORDER BY id")][: args.agents]
    await conn.close()
    print(
        "| variant | writers | events/s | commit p50 (ms) | commit p99 (ms) | errors "
        "| bench CPU per event (µs) |\n|---|---|---|---|---|---|---|"
    )
    # Writer counts outside, variants inside: the variants compared at one writer count
    # run back to back, on tables of about the same size and a machine of about the
    # same load (the notifications table grows with every line).
    for writers in [int(w) for w in args.writers.split(",")]:
        for variant in args.variants.split(","):
            if args.vacuum:
                # Every event leaves one dead agent_seq row version per recipient: clear
                # them, so that each variant starts from the same table, not from the
                # bloat of the ones before it.
                conn = await asyncpg.connect(url)
                await conn.execute("VACUUM ANALYZE agent_seq, notifications, events, publish_keys")
                await conn.close()
            gap = args.gap_ms / 1e3 if variant.endswith("+gap") else 0.0
            rate, p50, p99, errors, cpu = await run_variant(
                url,
                agents,
                variant.removesuffix("+gap"),
                writers,
                args.seconds,
                args.batch,
                gap,
            )
            print(
                f"| {variant} | {writers} | {rate:.1f} | {p50:.1f} | {p99:.1f} | {errors} "
                f"| {cpu:.0f} |",
                flush=True,
            )


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--agents", type=int, default=1000)
    p.add_argument("--seconds", type=float, default=5)
    p.add_argument("--writers", default="1,2,4,20")
    p.add_argument("--variants", default="shipped,batch,store,store-batch")
    p.add_argument(
        "--reference",
        default=DEFAULT_REFERENCE,
        help="git revision whose write path the shipped, inbox-lock and batch variants run",
    )
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--gap-ms", type=float, default=5.0)
    p.add_argument(
        "--vacuum",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="VACUUM the written tables before each variant and writer count",
    )
    p.add_argument("--pg-url", default="postgresql://postgres@127.0.0.1:5432/postgres")
    args = p.parse_args()
    REFERENCE[0] = args.reference
    started = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())
    print(f"# {' '.join(sys.argv)}\n# started {started}; load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp, postgres_database(args.pg_url, 4) as (url, _):
        seed(Path(tmp), args.agents, url)
        asyncio.run(main_async(args, url.split("?")[0]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
