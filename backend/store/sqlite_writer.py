"""The SQLite store's writer thread: the one connection that writes, batching commits.

Every change that queued up while the writer was busy is committed in one transaction,
each in its own savepoint (so one bad change fails alone): under load, thousands of
small commits become a few large ones. The writer also keeps each agent's last seq and
unread counts in memory (see :mod:`backend.store.sqlite`), moves fan-out rows from
``fanout`` into ``notifications`` in the background, and checkpoints the WAL on a
thread of its own so that a commit never waits for one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from backend.store.sqlite_failures import unavailable

log = logging.getLogger("backend.store.sqlite")
T = TypeVar("T")

_MAX_BATCH = 2000
CHECKPOINT_SECONDS = 1.0
INDEX_DELAY = 1.0
"""Longest a committed fan-out row waits in `fanout` before it moves. A move writes every
recipient's page once, whatever the number of rows: the more events it carries, the less
each row costs (1,000 agents: 15-23 us a row at 3 events per move, 3-4 us at 48; see
docs/benchmarks.md). Reads move what is pending first, so this is cost, not staleness."""
INDEX_ROWS = 50_000
"""Rows waiting in `fanout` that make the writer move them at once."""
INDEX_SLICE_ROWS = 10_000
"""About how many rows one step of a background move carries. A move goes by ranges of
agents, each agent's rows in one step, and commits run between its steps: a commit
waits for one step (~30 ms), not for the whole move (~150 ms for 50,000 rows)."""
_BUSY_TIMEOUT_MS = 10_000


def connect(path: str, *, durable: bool, readonly: bool = False) -> sqlite3.Connection:
    conn = sqlite3.connect(
        path, isolation_level=None, check_same_thread=False, timeout=_BUSY_TIMEOUT_MS / 1000
    )
    conn.execute(f"PRAGMA busy_timeout = {_BUSY_TIMEOUT_MS}")
    conn.execute("PRAGMA foreign_keys = ON")
    conn.execute(f"PRAGMA synchronous = {'FULL' if durable else 'NORMAL'}")
    # Checkpoint the WAL less often (each checkpoint syncs the database file) and keep
    # the hot pages of the notification index in memory.
    conn.execute("PRAGMA wal_autocheckpoint = 4000")
    conn.execute("PRAGMA cache_size = -32768")
    if readonly:
        conn.execute("PRAGMA query_only = ON")
    return conn


_ALL_AGENTS = (
    "SELECT a.id, a.public_id, "
    "(SELECT COALESCE(MAX(n.seq), 0) FROM notifications n WHERE n.agent_id = a.id) "
    "FROM agents a"
)
_ALL_UNREAD = (
    "SELECT agent_id, category, COUNT(*) FROM notifications WHERE read = 0 "
    "GROUP BY agent_id, category"
)


_MOVE_RANGE = (
    "INSERT INTO notifications (agent_id, seq, event_id, category, conversation_id) "
    "SELECT f.agent_id, f.seq, f.event_id, e.category, e.conversation_id "
    "FROM fanout f JOIN events e ON e.id = f.event_id "
    "WHERE f.agent_id >= ? AND f.agent_id < ? ORDER BY f.agent_id, f.seq"
)
_NO_AGENT_ABOVE = 2**63 - 1


class Writer:
    """The thread that owns the write connection and batches commits."""

    def __init__(self, path: str, durable: bool):
        self._path = path
        self._durable = durable
        self._queue: queue.SimpleQueue[
            tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]] | None
        ] = queue.SimpleQueue()
        self._thread = threading.Thread(
            target=self._run, name="deskbell-sqlite-writer", daemon=True
        )
        self._stopping = threading.Event()
        self._checkpointer = threading.Thread(
            target=self._checkpoint_loop, name="deskbell-sqlite-checkpoint", daemon=True
        )
        self._conn: sqlite3.Connection | None = None
        self.last_seq: dict[int, int] = {}
        self.unread: dict[int, dict[str, int]] = {}
        self.public_ids: dict[int, str] = {}
        self.warmed = False
        """The caches were loaded for every agent since they were last emptied."""
        self._data_version = -1
        self.batches = 0
        # Rows in `fanout` not yet moved into `notifications` (see migrations_sqlite).
        # Unknown at start (a crash may have left some), so the first move runs soon.
        self.pending = 1
        self.pending_since: float | None = time.monotonic()
        self._slices: list[int] = []
        """The background move under way: the exclusive upper agent-id bound of each of
        its steps still to run (empty: none under way)."""
        self._slice_from = 0
        self.problem: str | None = None
        """Why the last write failed, until one succeeds (for /healthz and the log)."""

    def start(self) -> None:
        self._conn = connect(self._path, durable=self._durable)
        # Checkpoints (copying the WAL into the database, with an fsync) run on their
        # own thread and connection, so a commit never waits for one.
        self._conn.execute("PRAGMA wal_autocheckpoint = 0")
        self._thread.start()
        self._checkpointer.start()

    def _checkpoint_loop(self) -> None:
        conn = connect(self._path, durable=self._durable)
        try:
            while not self._stopping.wait(CHECKPOINT_SECONDS):
                try:
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
                except sqlite3.Error as exc:  # busy or a full disk: the next round retries
                    log.warning("event=checkpoint_failed reason=%r", str(exc))
        finally:
            conn.close()

    def submit(self, fn: Callable[[sqlite3.Connection], T]) -> asyncio.Future[T]:
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._queue.put((fn, future))
        return future

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join()
        self._stopping.set()
        if self._checkpointer.is_alive():
            self._checkpointer.join()
        if self._conn is not None:
            with contextlib.suppress(sqlite3.Error):
                self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            self._conn.close()

    def _run(self) -> None:
        conn = self._conn
        assert conn is not None
        stopping = False
        while not stopping:
            timeout = None
            if self._slices:  # a move under way: commit what is queued, else move on
                timeout = 0.0
            elif self.pending_since is not None:
                timeout = max(0.0, self.pending_since + INDEX_DELAY - time.monotonic())
            try:
                item = self._queue.get(timeout=timeout)
            except queue.Empty:
                self._move_step(conn)
                continue
            if item is None:
                break
            batch = [item]
            while len(batch) < _MAX_BATCH:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is None:
                    stopping = True
                    break
                batch.append(more)
            self._commit_batch(conn, batch)
            if (
                self._slices
                or self.pending >= INDEX_ROWS
                or (
                    self.pending_since is not None
                    and time.monotonic() - self.pending_since >= INDEX_DELAY
                )
            ):
                self._move_step(conn)
        if self.pending:
            self._index_now(conn)

    def _commit_batch(
        self,
        conn: sqlite3.Connection,
        batch: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]],
    ) -> None:
        results: list[tuple[bool, Any]] = []
        try:
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA data_version").fetchone()[0]
            if version != self._data_version:
                # Someone else wrote since our last commit: cached counters may be stale,
                # and an agent may have been removed (its rowid can be reused).
                self.last_seq.clear()
                self.unread.clear()
                self.public_ids.clear()
                self.warmed = False
                self._data_version = version
            for fn, _ in batch:
                conn.execute("SAVEPOINT change")
                try:
                    results.append((True, fn(conn)))
                    conn.execute("RELEASE change")
                except Exception as exc:  # one change fails alone
                    conn.execute("ROLLBACK TO change")
                    conn.execute("RELEASE change")
                    self._forget_caches()
                    results.append((False, exc))
            conn.execute("COMMIT")
            self.batches += 1
            self._wrote()
        except sqlite3.Error as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._forget_caches()
            failure = unavailable(exc, self._path)
            self._failed(failure.message, f"commit of {len(batch)} changes")
            results = [(False, failure)] * len(batch)
        if batch:
            loop = batch[0][1].get_loop()
            # A closed loop raises RuntimeError: then nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, batch, results)

    def _forget_caches(self) -> None:
        self.last_seq.clear()
        self.unread.clear()
        self.warmed = False
        # A rolled-back change may have moved or added fan-out rows: look again.
        self.pending = max(self.pending, 1)
        if self.pending_since is None:
            self.pending_since = time.monotonic()

    def index_pending(self, conn: sqlite3.Connection) -> None:
        """Move committed fan-out rows into `notifications`, in agent order, inside the
        caller's transaction. Every read of notifications calls this first."""
        if not self.pending:
            return
        conn.execute(
            "INSERT INTO notifications (agent_id, seq, event_id, category, conversation_id) "
            "SELECT f.agent_id, f.seq, f.event_id, e.category, e.conversation_id "
            "FROM fanout f JOIN events e ON e.id = f.event_id ORDER BY f.agent_id, f.seq"
        )
        conn.execute("DELETE FROM fanout")
        self.pending = 0
        self.pending_since = None
        self._slices.clear()

    def _move_step(self, conn: sqlite3.Connection) -> None:
        """One step of the background move: the pending rows of one range of agents, in
        a transaction of its own. The first step plans the ranges (agents split into as
        many ranges as the pending rows make steps of :data:`INDEX_SLICE_ROWS`); rows
        committed meanwhile for agents already passed wait for the next move."""
        if not self._slices:
            if not self.pending:
                return
            steps = max(1, -(-self.pending // INDEX_SLICE_ROWS))
            ids = [row[0] for row in conn.execute("SELECT id FROM agents ORDER BY id")]
            bounds = [ids[len(ids) * k // steps] for k in range(1, steps)] if ids else []
            self._slices = [*dict.fromkeys(bounds), _NO_AGENT_ABOVE]
            self._slice_from = 0
        low, high = self._slice_from, self._slices[0]
        try:
            conn.execute("BEGIN IMMEDIATE")
            moved = conn.execute(_MOVE_RANGE, (low, high)).rowcount
            conn.execute("DELETE FROM fanout WHERE agent_id >= ? AND agent_id < ?", (low, high))
            if len(self._slices) == 1:  # the last step: what is left came meanwhile
                left = conn.execute("SELECT COUNT(*) FROM fanout").fetchone()[0]
            conn.execute("COMMIT")
            self._wrote()
        except sqlite3.Error as exc:  # a full disk, say: the rows wait in fanout
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self._slices.clear()
            self.pending = max(self.pending, 1)
            self.pending_since = time.monotonic()
            self._failed(unavailable(exc, self._path).message, "moving notifications")
            return
        self._slices.pop(0)
        self._slice_from = high
        self.pending = max(0, self.pending - moved)
        if not self._slices:
            self.pending = left
            self.pending_since = time.monotonic() if left else None

    def _index_now(self, conn: sqlite3.Connection) -> None:
        try:
            conn.execute("BEGIN IMMEDIATE")
            self.index_pending(conn)
            conn.execute("COMMIT")
            self._wrote()
        except sqlite3.Error as exc:  # a full disk, say: the rows wait in fanout
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            self.pending = max(self.pending, 1)
            self.pending_since = time.monotonic()
            self._failed(unavailable(exc, self._path).message, "moving notifications")

    def _failed(self, reason: str, what: str) -> None:
        # Logged when the trouble starts or changes, not at every retry.
        if reason != self.problem:
            log.error("event=store_write_failed during=%r reason=%r", what, reason)
        self.problem = reason

    def _wrote(self) -> None:
        if self.problem is not None:
            log.info("event=store_writable_again")
            self.problem = None

    # -- cached counters, used only on the writer thread ------------------------------
    def _warm(self, conn: sqlite3.Connection) -> None:
        """Load every agent's last seq, unread counts and public id in two statements, in
        the caller's transaction, at the first miss since the caches were emptied. After
        a restart every agent reconnects at once, and each welcome would otherwise read
        its own counters here; a CLI command that fans nothing out loads nothing."""
        self.warmed = True
        self.index_pending(conn)
        unread: dict[int, dict[str, int]] = {}
        for agent_id, category, count in conn.execute(_ALL_UNREAD):
            unread.setdefault(agent_id, {})[category] = count
        for agent_id, public_id, last_seq in conn.execute(_ALL_AGENTS):
            self.public_ids[agent_id] = public_id
            self.last_seq.setdefault(agent_id, last_seq)
            self.unread.setdefault(agent_id, unread.get(agent_id, {}))

    def seq_of(self, conn: sqlite3.Connection, agent_id: int) -> int:
        value = self.last_seq.get(agent_id)
        if value is None and not self.warmed:
            self._warm(conn)
            value = self.last_seq.get(agent_id)
        if value is None:
            self.index_pending(conn)
            value = conn.execute(
                "SELECT COALESCE(MAX(seq), 0) FROM notifications WHERE agent_id = ?", (agent_id,)
            ).fetchone()[0]
            self.last_seq[agent_id] = value
        return value

    def unread_of(self, conn: sqlite3.Connection, agent_id: int) -> dict[str, int]:
        counts = self.unread.get(agent_id)
        if counts is None and not self.warmed:
            self._warm(conn)
            counts = self.unread.get(agent_id)
        if counts is None:
            self.index_pending(conn)
            counts = dict(
                conn.execute(
                    "SELECT category, COUNT(*) FROM notifications "
                    "WHERE agent_id = ? AND read = 0 GROUP BY category",
                    (agent_id,),
                ).fetchall()
            )
            self.unread[agent_id] = counts
        return counts

    def public_id_of(self, conn: sqlite3.Connection, agent_ids: Iterable[int]) -> None:
        missing = [a for a in agent_ids if a not in self.public_ids]
        for start in range(0, len(missing), 500):
            chunk = missing[start : start + 500]
            marks = ",".join("?" * len(chunk))
            for agent_id, public_id in conn.execute(
                f"SELECT id, public_id FROM agents WHERE id IN ({marks})",  # noqa: S608
                chunk,
            ):
                self.public_ids[agent_id] = public_id


def _resolve(
    batch: list[tuple[Callable[[sqlite3.Connection], Any], asyncio.Future[Any]]],
    results: list[tuple[bool, Any]],
) -> None:
    for (_, future), (ok, value) in zip(batch, results, strict=True):
        if future.done():
            continue
        if ok:
            future.set_result(value)
        else:
            future.set_exception(value)
