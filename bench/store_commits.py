"""PostgreSQL store commit throughput, on a fresh database of the machine's server.

    python bench/store_commits.py [--agents 1000] [--fanout 40]
        [--singles 4000] [--concurrency 64] [--pool 10]

Two workloads, each through :meth:`PostgresStore.commit` as the service calls it:

- fan-out: one event to every one of ``--agents`` agents, ``--fanout`` times, one
  commit at a time (a whole inbox notified at once);
- singles: ``--singles`` publishes of one event to one random agent, each with an
  idempotency key (as ``/service`` publishes carry), ``--concurrency`` in flight at
  once (many integrations publishing to one node).

It prints commits/s and notifications/s for both, with the command line. SQLite on the
same workload is printed beside it as the reference (it batches commits in one writer
thread). A benchmark, not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import sys
import tempfile
import time
from pathlib import Path

from backend.store.base import Change, ImportRow, NewEvent, Store
from backend.store.common import now_iso
from backend.store.postgres import PostgresStore
from backend.store.sqlite import SQLiteStore
from tests.backend.store.postgres_server import fresh_database


def _event(recipients: tuple[int, ...], title: str) -> NewEvent:
    return NewEvent(
        kind="ticket.assigned",
        title=title,
        body="benchmark",
        conversation_public_id=None,
        url=None,
        data={},
        created_at=now_iso(),
        recipients=recipients,
    )


async def _run(store: Store, args: argparse.Namespace) -> dict[str, float]:
    result = await store.import_agents(
        [ImportRow(f"a{i}@x.org", f"A{i}", ("bench",)) for i in range(args.agents)]
    )
    everyone = tuple(a.id for a in result.agents)
    figures: dict[str, float] = {}

    start = time.perf_counter()
    for n in range(args.fanout):
        await store.commit(Change(event=_event(everyone, f"f{n}")))
    elapsed = time.perf_counter() - start
    figures["fanout_commits_per_s"] = args.fanout / elapsed
    figures["fanout_notifications_per_s"] = args.fanout * len(everyone) / elapsed
    figures["fanout_ms_per_commit"] = 1000 * elapsed / args.fanout

    rng = random.Random(1)
    singles = iter(range(args.singles))

    async def publisher() -> None:
        for n in singles:
            change = Change(
                event=_event((rng.choice(everyone),), f"s{n}"), publish_key=(1, f"k{n}")
            )
            await store.commit(change)

    start = time.perf_counter()
    await asyncio.gather(*(publisher() for _ in range(args.concurrency)))
    elapsed = time.perf_counter() - start
    figures["singles_commits_per_s"] = args.singles / elapsed
    return figures


async def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--agents", type=int, default=1000)
    parser.add_argument("--fanout", type=int, default=40)
    parser.add_argument("--singles", type=int, default=4000)
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--pool", type=int, default=10)
    args = parser.parse_args(argv)
    print("command: python bench/store_commits.py " + " ".join(argv))
    async with fresh_database() as url:
        store: Store = PostgresStore(f"{url}?pool_size={args.pool}")
        await store.open()
        try:
            pg = await _run(store, args)
        finally:
            await store.close()
    with tempfile.TemporaryDirectory() as folder:
        store = SQLiteStore(Path(folder) / "bench.sqlite3")
        await store.open()
        try:
            lite = await _run(store, args)
        finally:
            await store.close()
    print(f"{'figure':<28}{'PostgreSQL':>12}{'SQLite':>12}")
    for key, value in pg.items():
        print(f"{key:<28}{value:>12.1f}{lite[key]:>12.1f}")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
