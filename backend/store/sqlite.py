"""The SQLite store: one file in WAL mode, the zero-set-up default.

Writes never block the event loop: one writer thread owns the write connection and
commits every change that queued up while it was busy in one transaction (each change
in its own savepoint, so one bad change fails alone). Under load that turns thousands
of small commits into a few large ones. Reads run on a small thread pool with their
own connections, which WAL lets proceed while the writer commits.

Durability: ``synchronous=NORMAL`` in WAL mode. A commit is in the OS before a future
resolves, so killing the process at any moment loses nothing acknowledged; a power
cut may lose the last commits (``durable=True`` selects ``synchronous=FULL``).

The writer keeps each agent's last seq and unread counts in memory. They stay right
because this writer is the only one that writes notifications; ``PRAGMA
data_version`` tells it when another connection wrote anything, and then it reloads.
"""

from __future__ import annotations

import asyncio
import contextlib
import getpass
import logging
import os
import sqlite3
import stat
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from itertools import repeat
from pathlib import Path
from typing import Any, Literal, TypeVar

from backend import ids, protocol
from backend.errors import Conflict, DeskbellError, NotFound, StoreUnavailable
from backend.files import PRIVATE_FILE, create_private_file, make_private_dirs
from backend.store import lifecycle, queries, rows, waiting_sql
from backend.store.base import (
    SCHEMA_VERSION,
    Agent,
    AgentRemoved,
    Change,
    ClientVersion,
    Committed,
    ConversationFacts,
    DueStep,
    ImportResult,
    ImportRow,
    Inbox,
    InboxRemoved,
    InboxSummary,
    NewEvent,
    NewMessage,
    PolicyRow,
    QueueRow,
    ReadResult,
    Store,
    Token,
    delivered,
    service_name_taken,
)
from backend.store.common import migration_files, migrations, now_iso, precise_now
from backend.store.read_batches import ReadBatches
from backend.store.rows import group_client_versions, message, new_message, notification
from backend.store.sqlite_failures import describe_failure, file_system_trouble, unavailable
from backend.store.sqlite_writer import Writer, connect

log = logging.getLogger(__name__)
T = TypeVar("T")

DIRECT_ROWS = 16
"""Events with at most this many recipients skip `fanout`."""


def sqlite_migrations() -> list[tuple[int, str]]:
    """SQLite-only additions to the shared migrations, as (version, SQL)."""
    return [(version, entry.read_text()) for version, entry in migration_files("migrations_sqlite")]


SQLITE_ONLY_TABLES = frozenset({"fanout"})
"""Tables of the SQLite store that PostgreSQL does not need (see migrations_sqlite)."""


class SQLiteStore(Store):
    """The default store. ``path`` is a file path or ``:memory:``-free temp file."""

    def __init__(
        self,
        path: str | Path,
        *,
        durable: bool = False,
        readers: int = 2,
        make_folders: bool = False,
    ):
        """``make_folders``: create every missing folder of ``path`` (for the default
        location); otherwise only the file's own folder is made, when its parent exists,
        so a mistyped path is an error instead of a new tree of folders."""
        self.path = str(path)
        self._make_folders = make_folders
        self.created_folder: Path | None = None
        """The folder :meth:`open` created for the file, if it made one."""
        self._durable = durable
        self._writer = Writer(self.path, durable)
        self._readers = ThreadPoolExecutor(readers, thread_name_prefix="deskbell-sqlite-read")
        self._read_batches = ReadBatches(
            self._readers, lambda: StoreUnavailable("the store is closed")
        )
        self._local = threading.local()
        self._reader_conns: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self._opened = False

    # -- life cycle ------------------------------------------------------------------
    async def open(self) -> None:
        path = Path(self.path)
        try:
            self.created_folder = await asyncio.to_thread(self._create_private)
            await asyncio.to_thread(self._migrate)
        except (sqlite3.Error, OSError) as exc:
            raise _cannot_open(path, exc) from exc
        self._writer.start()
        self._opened = True

    def _create_private(self) -> Path | None:
        """The database, its -wal and -shm (SQLite gives them the database's mode) and
        any folder made for them: readable by this user only. Returns the folder made
        for the file, if one was (see ``make_folders``).

        Raises:
            StoreUnavailable: the folder's parent is missing too.
            PermissionError: this user may not write the database or its folder.
        """
        path = Path(self.path)
        created = _prepare_folder(path, self._make_folders)
        _check_writable(path)
        create_private_file(path)
        mode = stat.S_IMODE(path.stat().st_mode)
        if mode & ~PRIVATE_FILE:
            log.warning(
                "event=database_readable_by_others path=%s mode=%o: it holds transcripts "
                "and password hashes; run chmod 600 on it",
                path,
                mode,
            )
        return created

    def _migrate(self) -> None:
        try:
            conn = connect(self.path, durable=self._durable)
        except sqlite3.DatabaseError as exc:
            if "file is not a database" in str(exc):
                raise StoreUnavailable(f"{self.path} is not a Deskbell database") from exc
            raise
        try:
            if conn.execute("PRAGMA journal_mode = WAL").fetchone()[0] != "wal":
                raise StoreUnavailable(f"{self.path}: the database cannot use WAL mode")
            conn.execute("BEGIN IMMEDIATE")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                conn.execute("ROLLBACK")
                raise StoreUnavailable(
                    f"{self.path} has schema version {version}, newer than this "
                    f"deskbell-server knows ({SCHEMA_VERSION}); upgrade deskbell-server"
                )
            extras = dict(sqlite_migrations())
            for number, sql in migrations():
                if number > version:
                    for statement in _statements(sql + ";\n" + extras.get(number, "")):
                        conn.execute(statement)
                    conn.execute(f"PRAGMA user_version = {number}")
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            with contextlib.suppress(sqlite3.Error):
                conn.execute("ROLLBACK")
            if "file is not a database" in str(exc):
                raise StoreUnavailable(f"{self.path} is not a Deskbell database") from exc
            raise
        finally:
            conn.close()

    async def close(self) -> None:
        if self._opened:
            await asyncio.to_thread(self._writer.stop)
            self._opened = False
        self._readers.shutdown(wait=True)
        with self._lock:
            for conn in self._reader_conns:
                conn.close()
            self._reader_conns.clear()

    async def schema_version(self) -> int:
        version: int = await self._read(lambda c: c.execute("PRAGMA user_version").fetchone()[0])
        return version

    async def ping(self) -> None:
        await self._read(lambda c: c.execute("SELECT 1").fetchone())

    async def write_problem(self) -> str | None:
        if self._writer.problem is None:
            return None

        # Known trouble: try a small real write (rewriting the schema version), which
        # clears it once the disk has room or the files are writable again.
        def probe(conn: sqlite3.Connection) -> None:
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            conn.execute(f"PRAGMA user_version = {int(version)}")

        with contextlib.suppress(StoreUnavailable):
            await self._write(probe)
        return self._writer.problem

    # -- plumbing --------------------------------------------------------------------
    def _reader(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is None:
            conn = connect(self.path, durable=self._durable, readonly=True)
            self._local.conn = conn
            with self._lock:
                self._reader_conns.append(conn)
        return conn

    async def _read(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        def run() -> T:
            try:
                return fn(self._reader())
            except sqlite3.Error as exc:
                raise unavailable(exc, self.path) from exc

        return await self._read_batches.read(run)

    async def _index_pending(self) -> None:
        """Before reading notifications: move committed fan-out rows into place, so a
        read sees everything committed before it."""
        if self._writer.pending:
            await self._write(self._writer.index_pending)

    async def _write(self, fn: Callable[[sqlite3.Connection], T]) -> T:
        if not self._opened:
            raise StoreUnavailable("the store is closed")
        try:
            return await self._writer.submit(fn)
        except sqlite3.IntegrityError as exc:
            raise Conflict(f"that would break a uniqueness rule: {exc}") from exc
        except sqlite3.Error as exc:
            raise unavailable(exc, self.path) from exc

    # -- inboxes and agents ----------------------------------------------------------
    async def add_inbox(self, name: str) -> Inbox:
        def run(conn: sqlite3.Connection) -> Inbox:
            if conn.execute("SELECT 1 FROM inboxes WHERE name = ?", (name,)).fetchone():
                raise Conflict(f"inbox {name} already exists")
            return _insert_inbox(conn, name)

        return await self._write(run)

    async def inbox_by_name(self, name: str) -> Inbox:
        row = await self._read(lambda c: c.execute(queries.INBOX_BY_NAME, (name,)).fetchone())
        if row is None:
            raise NotFound(f"there is no inbox named {name}")
        return Inbox(*row)

    async def add_agent(
        self, email: str, name: str, inboxes: list[str], password_hash: str | None
    ) -> Agent:
        def run(conn: sqlite3.Connection) -> Agent:
            if conn.execute("SELECT 1 FROM agents WHERE email = ?", (email,)).fetchone():
                raise Conflict(f"agent {email} already exists")
            inbox_ids = _inbox_ids(conn, inboxes)
            public_id = ids.new_id("a")
            agent_id = conn.execute(
                "INSERT INTO agents (public_id, email, name, password_hash, created_at) "
                "VALUES (?, ?, ?, ?, ?)",
                (public_id, email, name, password_hash, now_iso()),
            ).lastrowid
            assert agent_id is not None
            conn.executemany(
                "INSERT OR IGNORE INTO inbox_members (inbox_id, agent_id) VALUES (?, ?)",
                [(inbox_id, agent_id) for inbox_id in inbox_ids],
            )
            return Agent(agent_id, public_id, email, name, tuple(inboxes), password_hash)

        return await self._write(run)

    async def import_agents(self, rows: list[ImportRow]) -> ImportResult:
        def run(conn: sqlite3.Connection) -> ImportResult:
            inbox_ids = dict(conn.execute("SELECT name, id FROM inboxes").fetchall())
            existing = {
                email: (agent_id, public_id, password_hash)
                for agent_id, public_id, email, password_hash in conn.execute(
                    "SELECT id, public_id, email, password_hash FROM agents"
                )
            }
            created = updated = 0
            agents = []
            now = now_iso()
            for row in rows:
                for inbox in row.inboxes:
                    if inbox not in inbox_ids:
                        inbox_ids[inbox] = _insert_inbox(conn, inbox).id
                known = existing.get(row.email)
                if known is None:
                    public_id = ids.new_id("a")
                    agent_id = conn.execute(
                        "INSERT INTO agents (public_id, email, name, created_at) "
                        "VALUES (?, ?, ?, ?)",
                        (public_id, row.email, row.name, now),
                    ).lastrowid
                    assert agent_id is not None
                    existing[row.email] = (agent_id, public_id, None)
                    password_hash = None
                    created += 1
                else:
                    agent_id, public_id, password_hash = known
                    conn.execute("UPDATE agents SET name = ? WHERE id = ?", (row.name, agent_id))
                    conn.execute("DELETE FROM inbox_members WHERE agent_id = ?", (agent_id,))
                    updated += 1
                conn.executemany(
                    "INSERT OR IGNORE INTO inbox_members (inbox_id, agent_id) VALUES (?, ?)",
                    [(inbox_ids[inbox], agent_id) for inbox in row.inboxes],
                )
                if row.token_hash is not None:
                    conn.execute(
                        "INSERT INTO tokens (hash, kind, agent_id, device, created_at) "
                        "VALUES (?, 'agent', ?, 'import', ?)",
                        (row.token_hash, agent_id, now),
                    )
                agents.append(
                    Agent(agent_id, public_id, row.email, row.name, row.inboxes, password_hash)
                )
            return ImportResult(created, updated, agents)

        return await self._write(run)

    async def list_agents(self) -> list[Agent]:
        def run(conn: sqlite3.Connection) -> list[Agent]:
            inboxes: dict[int, list[str]] = {}
            for agent_id, inbox in conn.execute(queries.ALL_MEMBERSHIPS):
                inboxes.setdefault(agent_id, []).append(inbox)
            return [
                rows.agent(row, tuple(inboxes.get(row[0], ())), with_password=False)
                for row in conn.execute(queries.ALL_AGENTS)
            ]

        return await self._read(run)

    async def _agent_where(self, column: str, value: object) -> Agent | None:
        def run(conn: sqlite3.Connection) -> Agent | None:
            row = conn.execute(queries.agent_where(column), (value,)).fetchone()
            if row is None:
                return None
            inboxes = tuple(name for (name,) in conn.execute(queries.AGENT_INBOX_NAMES, (row[0],)))
            return rows.agent(row, inboxes)

        return await self._read(run)

    async def inbox_member_ids(self, inbox_name: str) -> frozenset[int]:
        def run(conn: sqlite3.Connection) -> frozenset[int] | None:
            row = conn.execute("SELECT id FROM inboxes WHERE name = ?", (inbox_name,)).fetchone()
            if row is None:
                return None
            return _members(conn, row[0])

        members = await self._read(run)
        if members is None:
            raise NotFound(f"there is no inbox named {inbox_name}")
        return members

    async def membership_version(self) -> int:
        version: int = await self._read(
            lambda c: c.execute(queries.MEMBERSHIP_VERSION).fetchone()[0]
        )
        return version

    async def agent_inbox_ids(self, agent_id: int) -> frozenset[int]:
        return await self._read(
            lambda c: frozenset(r[0] for r in c.execute(queries.AGENT_INBOX_IDS, (agent_id,)))
        )

    # -- the operator's lifecycle commands ----------------------------------------------
    async def list_inboxes(self) -> list[InboxSummary]:
        rows = await self._read(lambda c: c.execute(lifecycle.INBOX_SUMMARIES).fetchall())
        return [InboxSummary(Inbox(r[0], r[1], r[2]), r[3], r[4]) for r in rows]

    async def remove_inbox(self, name: str, *, force: bool) -> InboxRemoved:
        writer = self._writer

        def run(conn: sqlite3.Connection) -> InboxRemoved:
            row = conn.execute(lifecycle.INBOX_ID, (name,)).fetchone()
            if row is None:
                raise NotFound(f"there is no inbox named {name}")
            inbox_id = row[0]
            conversations, messages = conn.execute(
                lifecycle.INBOX_CONTENT, (inbox_id, inbox_id)
            ).fetchone()
            if conversations and not force:
                raise lifecycle.inbox_in_use(name, conversations, messages)
            writer.index_pending(conn)
            for (agent_id,) in conn.execute(lifecycle.READ_INBOX_NOTIFICATIONS, (inbox_id,)):
                writer.unread.pop(agent_id, None)  # recounted on next use
            counts = {
                what: conn.execute(sql, (inbox_id,)).rowcount
                for what, sql in lifecycle.REMOVE_INBOX
            }
            return InboxRemoved(
                conversations, messages, counts["memberships"], counts["notifications"]
            )

        return await self._write(run)

    async def set_agent_disabled(self, agent_id: int, disabled: bool) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            stamp = precise_now() if disabled else None
            if conn.execute(lifecycle.SET_DISABLED, (stamp, agent_id)).rowcount == 0:
                raise NotFound("no such agent")
            return _revoke_all(conn, agent_id) if disabled else []

        return await self._write(run)

    async def set_password(self, agent_id: int, password_hash: str) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            if conn.execute(lifecycle.SET_PASSWORD, (password_hash, agent_id)).rowcount == 0:
                raise NotFound("no such agent")
            return _revoke_all(conn, agent_id)

        return await self._write(run)

    async def update_agent(
        self, agent_id: int, *, name: str | None = None, inboxes: list[str] | None = None
    ) -> Agent:
        def run(conn: sqlite3.Connection) -> None:
            if not conn.execute("SELECT 1 FROM agents WHERE id = ?", (agent_id,)).fetchone():
                raise NotFound("no such agent")
            if name is not None:
                conn.execute(lifecycle.RENAME, (name, agent_id))
            if inboxes is not None:
                inbox_ids = _inbox_ids(conn, inboxes)
                conn.execute(lifecycle.DROP_AGENT_MEMBERSHIPS, (agent_id,))
                conn.executemany(
                    lifecycle.ADD_MEMBERSHIP, [(i, agent_id) for i in dict.fromkeys(inbox_ids)]
                )

        await self._write(run)
        return await self.agent(agent_id)

    async def remove_agent(self, agent_id: int) -> AgentRemoved:
        writer = self._writer

        def run(conn: sqlite3.Connection) -> AgentRemoved:
            if not conn.execute("SELECT 1 FROM agents WHERE id = ?", (agent_id,)).fetchone():
                raise NotFound("no such agent")
            revoked = _revoke_all(conn, agent_id)
            writer.index_pending(conn)
            counts = {
                what: conn.execute(sql, (agent_id,)).rowcount
                for what, sql in lifecycle.REMOVE_AGENT
            }
            conn.execute(lifecycle.DELETE_AGENT, (agent_id,))
            for cache in (writer.last_seq, writer.unread, writer.public_ids):
                cache.pop(agent_id, None)
            return lifecycle.agent_removed(revoked, counts)

        return await self._write(run)

    # -- tokens ----------------------------------------------------------------------
    async def add_token(
        self,
        token_hash: str,
        kind: Literal["agent", "service"],
        *,
        agent_id: int | None = None,
        name: str | None = None,
        device: str | None = None,
        replace: bool = False,
    ) -> list[str]:
        def run(conn: sqlite3.Connection) -> list[str]:
            replaced: list[str] = []
            if kind == "service":
                replaced = [
                    r[0]
                    for r in conn.execute(
                        "SELECT hash FROM tokens WHERE kind = 'service' AND name = ? "
                        "AND revoked_at IS NULL",
                        (name,),
                    )
                ]
                if replaced and not replace:
                    raise Conflict(service_name_taken(str(name)))
                conn.executemany(
                    "UPDATE tokens SET revoked_at = ? WHERE hash = ?",
                    [(precise_now(), h) for h in replaced],
                )
            conn.execute(
                queries.INSERT_TOKEN,
                (token_hash, kind, agent_id, name, device, now_iso()),
            )
            return replaced

        return await self._write(run)

    async def token(self, token_hash: str) -> Token | None:
        now = now_iso()
        row = await self._read(
            lambda c: c.execute(queries.LIVE_TOKEN, (token_hash, now)).fetchone()
        )
        return None if row is None else Token(*row)

    async def revoke_token(self, token_hash: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            cursor = conn.execute(
                "UPDATE tokens SET revoked_at = ? WHERE hash = ? AND revoked_at IS NULL",
                (precise_now(), token_hash),
            )
            return cursor.rowcount > 0

        return await self._write(run)

    async def revoked_since(self, since: str) -> tuple[list[str], str]:
        def run(conn: sqlite3.Connection) -> tuple[list[str], str]:
            rows = conn.execute(queries.REVOKED_SINCE, (since,)).fetchall()
            return [r[0] for r in rows], (rows[-1][1] if rows else since)

        return await self._read(run)

    # -- single sign-on and client versions ---------------------------------------------
    async def claim_sso_nonce(self, nonce_hash: str, expires_at: str) -> bool:
        def run(conn: sqlite3.Connection) -> bool:
            conn.execute(queries.DROP_EXPIRED_NONCES, (now_iso(),))
            cursor = conn.execute(queries.CLAIM_NONCE, (nonce_hash, expires_at))
            return cursor.rowcount > 0

        return await self._write(run)

    async def record_client_version(
        self, agent_id: int, version: str, os: str, seen_at: str
    ) -> None:
        await self._write(
            lambda c: c.execute(
                "INSERT INTO client_versions (agent_id, version, os, seen_at) "
                "VALUES (?, ?, ?, ?) ON CONFLICT (agent_id, version, os) "
                "DO UPDATE SET seen_at = max(client_versions.seen_at, excluded.seen_at)",
                (agent_id, version, os, seen_at),
            )
        )

    async def client_versions_since(self, since: str) -> dict[int, list[ClientVersion]]:
        rows = await self._read(
            lambda c: c.execute(queries.CLIENT_VERSIONS_SINCE, (since,)).fetchall()
        )
        return group_client_versions(rows)

    # -- conversations ---------------------------------------------------------------
    async def _conversation_where(self, column: str, value: object) -> ConversationFacts | None:
        return await self._read(lambda c: _facts(c, column, value))

    async def messages(self, conversation_id: int, limit: int = 500) -> list[protocol.Message]:
        def run(conn: sqlite3.Connection) -> list[protocol.Message]:
            rows = conn.execute(queries.RECENT_MESSAGES, (conversation_id, limit)).fetchall()
            return [message(row) for row in reversed(rows)]

        return await self._read(run)

    async def publish_result(self, service_token_id: int, key: str) -> int | None:
        row = await self._read(
            lambda c: c.execute(queries.PUBLISH_RESULT, (service_token_id, key)).fetchone()
        )
        return None if row is None else int(row[0])

    # -- the write path --------------------------------------------------------------
    async def commit(self, change: Change) -> Committed:
        return await self._write(lambda conn: self._apply(conn, change))

    def _apply(self, conn: sqlite3.Connection, change: Change) -> Committed:
        writer = self._writer
        result = Committed()
        if change.publish_key is not None:
            row = conn.execute(queries.PUBLISH_RESULT, change.publish_key).fetchone()
            if row is not None:
                return Committed(notifications=row[0], duplicate=True)
        conversation_id: int | None = None
        if change.new_conversation is not None:
            new = change.new_conversation
            conversation_id = conn.execute(
                queries.INSERT_CONVERSATION, queries.conversation_params(new)
            ).lastrowid
            result.conversation_id = conversation_id
        if change.message is not None:
            msg = change.message
            target = msg.conversation_id if msg.conversation_id is not None else conversation_id
            if msg.client_msg_id is not None:
                row = conn.execute(
                    queries.MESSAGE_BY_CLIENT_ID, (target, msg.author_kind, msg.client_msg_id)
                ).fetchone()
                if row is not None:
                    return Committed(message=message(row), duplicate=True)
            conn.execute(queries.INSERT_MESSAGE, queries.message_params(msg, target))
            result.message = new_message(msg)
            _wait_transition(conn, target, msg, result)
        if change.assign is not None:
            conn.execute(queries.ASSIGN, (change.assign[1], change.assign[0]))
        if change.claim is not None:
            _claim(conn, *change.claim)
        if change.resolve is not None:
            state = conn.execute(waiting_sql.WAIT_STATE, (change.resolve,)).fetchone()
            if state is None:
                raise NotFound("no such conversation")
            conn.execute(waiting_sql.RESOLVE, (change.resolve,))
            conn.execute(waiting_sql.DROP_STEPS, (change.resolve,))
            conn.execute(waiting_sql.DROP_CHECKS, (change.resolve,))
            result.wait_ended = state[0]
        if change.withdraw is not None:
            result.withdrawn = _withdraw(conn, writer, *change.withdraw)
        pending: tuple[tuple[int, ...], list[int], list[dict[str, int]]] | None = None
        if change.event is not None and change.event.recipients:
            event = change.event
            event_conversation = (
                event.conversation_id if event.conversation_id is not None else conversation_id
            )
            event_id = conn.execute(
                "INSERT INTO events (kind, category, title, body, conversation_id, url, data, "
                "created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    event.kind,
                    event.category,
                    event.title,
                    event.body,
                    event_conversation,
                    event.url,
                    protocol.encode(event.data).decode(),
                    event.created_at,
                ),
            ).lastrowid
            # `fanout` has no foreign keys (checking one per row is a B-tree search):
            # recipients are checked here, against the cache of known agents.
            recipients = event.recipients
            public_ids = writer.public_ids
            missing = [a for a in recipients if a not in public_ids]
            if missing:
                writer.public_id_of(conn, missing)
                unknown = [a for a in missing if a not in public_ids]
                if unknown:
                    raise Conflict(f"no agent with id {unknown[0]}: nothing was stored")
            # Each recipient's next seq and its counts, loaded now and moved below once
            # every statement succeeded; straight from the caches when all are there.
            try:
                seqs = [writer.last_seq[a] + 1 for a in recipients]
                counts_of = [writer.unread[a] for a in recipients]
            except KeyError:
                seqs = [writer.seq_of(conn, a) + 1 for a in recipients]
                counts_of = [writer.unread_of(conn, a) for a in recipients]
            pending = (recipients, seqs, counts_of)
            rows = list(zip(repeat(event_id), recipients, seqs))
            if len(rows) <= DIRECT_ROWS:
                # A few rows touch a few pages wherever they go: straight into place.
                conn.executemany(
                    "INSERT INTO notifications (agent_id, seq, event_id, category, "
                    "conversation_id) VALUES (?, ?, ?, ?, ?)",
                    [(a, q, e, event.category, event_conversation) for e, a, q in rows],
                )
            else:
                conn.executemany(
                    "INSERT INTO fanout (event_id, agent_id, seq) VALUES (?, ?, ?)", rows
                )
                if writer.pending_since is None:
                    writer.pending_since = time.monotonic()
                writer.pending += len(rows)
            result.notifications = len(rows)
            if event.kind in waiting_sql.CHECKED_KINDS:
                conn.execute(
                    waiting_sql.ADD_CHECK,
                    (event_id, waiting_sql.epoch_ms(event.created_at), event_conversation),
                )
        if change.publish_key is not None:
            conn.execute(
                "INSERT INTO publish_keys (token_id, key, notifications, created_at) "
                "VALUES (?, ?, ?, ?)",
                (*change.publish_key, result.notifications, now_iso()),
            )
        # Every statement succeeded: only now move the cached counters. This loop runs
        # once per recipient of every fan-out, so it builds each wire object directly.
        if pending is not None:
            category = change.event.category  # type: ignore[union-attr]
            last_seq, public_ids = writer.last_seq, writer.public_ids
            append = result.deliveries.append
            for agent_id, seq, counts in zip(*pending, strict=True):
                last_seq[agent_id] = seq
                counts[category] = counts.get(category, 0) + 1
                wire = {"total": 0, "chat": 0, **counts}
                wire["total"] = sum(counts.values())
                append(delivered((agent_id, public_ids[agent_id], seq, wire)))
        return result

    # -- notifications ---------------------------------------------------------------
    async def agent_state(self, agent_id: int) -> tuple[int, dict[str, int]]:
        writer = self._writer
        return await self._write(
            lambda c: (writer.seq_of(c, agent_id), dict(writer.unread_of(c, agent_id)))
        )

    async def notifications_after(
        self, agent: Agent, after_seq: int, limit: int
    ) -> tuple[list[protocol.Notification], bool]:
        def run(conn: sqlite3.Connection) -> tuple[list[protocol.Notification], bool]:
            rows = conn.execute(
                queries.NOTIFICATIONS_AFTER, (agent.id, after_seq, limit + 1)
            ).fetchall()
            truncated = len(rows) > limit
            return [notification(agent.public_id, r) for r in reversed(rows[:limit])], truncated

        await self._index_pending()
        return await self._read(run)

    async def history(
        self,
        agent: Agent,
        before_seq: int | None,
        limit: int,
        category: str | None,
        unread_only: bool,
    ) -> tuple[list[protocol.Notification], bool]:
        sql, params = queries.history(agent.id, before_seq, limit, category, unread_only)

        def run(conn: sqlite3.Connection) -> tuple[list[protocol.Notification], bool]:
            rows = conn.execute(sql, params).fetchall()
            return [notification(agent.public_id, r) for r in rows[:limit]], len(rows) > limit

        await self._index_pending()
        return await self._read(run)

    async def mark_read(
        self,
        agent: Agent,
        *,
        seqs: list[int] | None = None,
        conversation_id: int | None = None,
        category: str | None = None,
        everything: bool = False,
    ) -> ReadResult:
        writer = self._writer

        def run(conn: sqlite3.Connection) -> ReadResult:
            writer.index_pending(conn)
            changed: list[tuple[int, str]] = []
            if seqs is not None:
                for start in range(0, len(seqs), 500):
                    chunk = seqs[start : start + 500]
                    marks = ",".join("?" * len(chunk))
                    changed += _mark(conn, agent.id, f" AND seq IN ({marks})", chunk)
            elif conversation_id is not None:
                changed = _mark(conn, agent.id, " AND conversation_id = ?", [conversation_id])
            elif everything and category is not None:
                changed = _mark(conn, agent.id, " AND category = ?", [category])
            elif everything:
                changed = _mark(conn, agent.id, "", [])
            return _read_result(conn, writer, agent.id, agent.public_id, changed)

        return await self._write(run)

    # -- v1.1: waiting visitors -------------------------------------------------------
    async def queue_rows(
        self, *, inbox_ids: frozenset[int] | None = None, conversation_id: int | None = None
    ) -> list[QueueRow]:
        if conversation_id is not None:
            sql = waiting_sql.QUEUE_SELECT + " WHERE c.id = ?"
            params: tuple[Any, ...] = (conversation_id,)
        else:
            marks = ",".join("?" * len(inbox_ids or ()))
            if not marks:
                return []
            sql = (
                waiting_sql.QUEUE_SELECT
                + f" WHERE c.waiting_since IS NOT NULL AND c.inbox_id IN ({marks})"
                + waiting_sql.QUEUE_ORDER
            )
            params = tuple(sorted(inbox_ids or ()))
        rows = await self._read(lambda c: c.execute(sql, params).fetchall())
        return [waiting_sql.queue_row(row) for row in rows]

    async def set_policy(
        self, inbox_id: int, steps: list[tuple[int, str]] | None, unseen_after_s: int | None
    ) -> PolicyRow:
        def run(conn: sqlite3.Connection) -> PolicyRow:
            current = _policy(conn, inbox_id)
            unseen = current.unseen_after_s if unseen_after_s is None else unseen_after_s
            conn.execute(waiting_sql.UPSERT_POLICY, (inbox_id, unseen, now_iso()))
            if steps is not None:
                conn.execute(waiting_sql.CLEAR_STEPS, (inbox_id,))
                conn.executemany(
                    waiting_sql.ADD_STEP,
                    [(inbox_id, k, after, to) for k, (after, to) in enumerate(steps, 1)],
                )
            return _policy(conn, inbox_id)

        return await self._write(run)

    async def policy(self, inbox_id: int) -> PolicyRow:
        return await self._read(lambda c: _policy(c, inbox_id))

    async def fire_due_steps(
        self,
        now_ms: int,
        limit: int,
        event: Callable[[DueStep, tuple[int, ...]], NewEvent],
    ) -> list[tuple[DueStep, NewEvent, Committed]]:
        def run(conn: sqlite3.Connection) -> list[tuple[DueStep, NewEvent, Committed]]:
            fired = []
            for row in conn.execute(waiting_sql.DUE, (now_ms, limit)).fetchall():
                conn.execute(waiting_sql.DELETE_STEP, (row[0], row[1]))
                facts = _facts(conn, "c.id", row[0])
                if facts is None or facts.waiting_since != row[2]:
                    continue  # a step of a wait that is over (never left behind, but safe)
                (left,) = conn.execute(waiting_sql.STEPS_LEFT, (row[0], row[2])).fetchone()
                step = DueStep(
                    row[0], row[1], row[2], row[3], row[4], bool(row[5]), facts, left == 0
                )
                new_event = event(step, _step_recipients(conn, step))
                fired.append((step, new_event, self._apply(conn, Change(event=new_event))))
            return fired

        return await self._write(run)

    async def mark_seen(self, agent_id: int, seqs: list[int]) -> None:
        writer = self._writer

        def run(conn: sqlite3.Connection) -> None:
            # Moving the fan-out rows into place costs per agent page, so it is not done
            # for a report that has no check to mark (the usual case).
            if conn.execute(waiting_sql.ANY_UNSEEN_CHECK).fetchone() is None:
                return
            writer.index_pending(conn)
            conn.executemany(waiting_sql.MARK_SEEN, [(agent_id, seq) for seq in seqs])

        await self._write(run)

    async def check_unseen(
        self, now_ms: int, limit: int, available: Callable[[frozenset[int]], bool]
    ) -> int:
        writer = self._writer

        def run(conn: sqlite3.Connection) -> int:
            due = conn.execute(waiting_sql.DUE_CHECKS, (now_ms, limit)).fetchall()
            if due:  # their recipients are read from notifications: move what is pending
                writer.index_pending(conn)
            moved = 0
            for event_id, conversation_id, since, seen in due:
                conn.execute(waiting_sql.DELETE_CHECK, (event_id,))
                if not conn.execute(
                    waiting_sql.STILL_UNCLAIMED, (conversation_id, since)
                ).fetchone():
                    continue
                if seen:
                    recipients = conn.execute(waiting_sql.EVENT_RECIPIENTS, (event_id,))
                    if available(frozenset(r[0] for r in recipients)):
                        continue
                moved += conn.execute(
                    waiting_sql.BRING_FORWARD, (now_ms, conversation_id, conversation_id, since)
                ).rowcount
            return moved

        return await self._write(run)


def _wait_transition(
    conn: sqlite3.Connection, conversation_id: int | None, msg: NewMessage, result: Committed
) -> None:
    """Start a wait at a visitor message, end it at an agent reply (with its steps)."""
    state = conn.execute(waiting_sql.WAIT_STATE, (conversation_id,)).fetchone()
    if state is None:
        return
    waiting_since, inbox_id, _ = state
    if msg.author_kind == "visitor":
        if waiting_since is None:
            conn.execute(waiting_sql.START_WAIT, (msg.created_at, conversation_id))
            conn.execute(
                waiting_sql.SCHEDULE,
                (conversation_id, msg.created_at, waiting_sql.epoch_ms(msg.created_at), inbox_id),
            )
            result.wait_started = msg.created_at
    elif msg.author_kind == "agent" and waiting_since is not None:
        conn.execute(waiting_sql.END_WAIT, (conversation_id,))
        conn.execute(waiting_sql.DROP_STEPS, (conversation_id,))
        conn.execute(waiting_sql.DROP_CHECKS, (conversation_id,))
        result.wait_ended = waiting_since


def _mark(
    conn: sqlite3.Connection, agent_id: int, where: str, params: list[Any]
) -> list[tuple[int, str]]:
    """Mark the agent's unread notifications that match ``where`` read: (seq, category)
    of each."""
    sql = f"{queries.MARK_READ}{where} RETURNING seq, category"
    rows: list[tuple[int, str]] = conn.execute(sql, (agent_id, *params)).fetchall()
    return rows


def _read_result(
    conn: sqlite3.Connection,
    writer: Writer,
    agent_id: int,
    public_id: str,
    changed: list[tuple[int, str]],
) -> ReadResult:
    """Move the agent's cached unread counts past ``changed``; what was marked read."""
    counts = queries.unread_after_read(writer.unread_of(conn, agent_id), (c for _, c in changed))
    writer.unread[agent_id] = counts
    changed.sort()
    return ReadResult(
        [ids.notification_id(public_id, seq) for seq, _ in changed],
        protocol.unread_object(counts),
    )


def _claim(conn: sqlite3.Connection, conversation_id: int, agent_id: int) -> None:
    if conn.execute(waiting_sql.CLAIM, (agent_id, conversation_id, agent_id)).fetchone():
        return
    holder = conn.execute(waiting_sql.HOLDER, (conversation_id,)).fetchone()
    if holder is None:
        raise NotFound("no such conversation")
    raise Conflict(f"{holder[0]} has taken this conversation already")


def _withdraw(
    conn: sqlite3.Connection, writer: Writer, conversation_id: int, agent_id: int
) -> list[tuple[int, ReadResult]]:
    """Mark every agent but ``agent_id``'s unread notifications of the conversation read."""
    writer.index_pending(conn)
    others = conn.execute(waiting_sql.OTHER_UNREAD_HOLDERS, (conversation_id, agent_id))
    withdrawn = []
    for other, public_id in others.fetchall():
        changed = _mark(conn, other, " AND conversation_id = ?", [conversation_id])
        withdrawn.append((other, _read_result(conn, writer, other, public_id, changed)))
    return withdrawn


def _policy(conn: sqlite3.Connection, inbox_id: int) -> PolicyRow:
    row = conn.execute(waiting_sql.POLICY, (inbox_id,)).fetchone()
    steps = conn.execute(waiting_sql.POLICY_STEPS, (inbox_id,)).fetchall()
    unseen = protocol.DEFAULT_UNSEEN_AFTER_S if row is None else row[0]
    return PolicyRow(tuple((after, to) for after, to in steps), unseen)


def _step_recipients(conn: sqlite3.Connection, step: DueStep) -> tuple[int, ...]:
    """The agents a step's target names now (see protocol.EscalationStep)."""
    target, facts = step.target, step.facts
    if target == "inbox":
        if facts.assignee is not None:
            return (facts.assignee.id,)
        return tuple(sorted(facts.inbox_members))
    if target.startswith("inbox:"):
        row = conn.execute(waiting_sql.INBOX_BY_NAME, (target.removeprefix("inbox:"),)).fetchone()
        return () if row is None else tuple(sorted(_members(conn, row[0])))
    row = conn.execute(waiting_sql.AGENT_BY_EMAIL, (target,)).fetchone()
    return () if row is None else (row[0],)


def _prepare_folder(path: Path, make_folders: bool) -> Path | None:
    """Make the database file's folder if it is missing; return it when made.

    Raises:
        StoreUnavailable: the folder's parent is missing too (and ``make_folders`` is
            False): most likely a typo in the path.
    """
    folder = path.parent
    if folder.is_dir():
        make_private_dirs(folder)  # Deskbell's own data folder is made private
        return None
    if not make_folders and not folder.parent.is_dir():
        raise StoreUnavailable(
            f"cannot create the database {path}: the folder {folder.parent} does not exist. "
            f"Check the --db path for a typo, or create the folder first: mkdir -p {folder}"
        )
    make_private_dirs(folder)
    return folder


def _check_writable(path: Path) -> None:
    """Raise PermissionError unless this user may write the database (WAL mode writes
    two files beside it, so the folder too): SQLite itself would open a read-only file
    and fail only at the first write."""
    if not os.access(path.parent, os.W_OK | os.X_OK) or (
        path.exists() and not os.access(path, os.R_OK | os.W_OK)
    ):
        raise PermissionError(f"{path} is not writable")


def _cannot_open(path: Path, exc: BaseException) -> StoreUnavailable:
    """Why the database file cannot be opened, naming the path and what to do."""
    text = str(exc)
    # Not a matter of permissions when the file system is read-only or full.
    trouble = file_system_trouble(str(path))
    if trouble == "read-only":
        return StoreUnavailable(
            f"cannot open the database {path}: its file system is read-only; make it "
            "writable (remount it) or choose another --db"
        )
    if trouble == "full":
        return StoreUnavailable(
            f"cannot open the database {path}: the disk is full; free some space"
        )
    denied = isinstance(exc, PermissionError) or any(
        words in text for words in ("unable to open database file", "readonly database")
    )
    if denied:
        folder = path.parent
        # SQLite in WAL mode writes two files beside the database: the folder must be
        # writable too, not only the file.
        if not os.access(folder, os.W_OK | os.X_OK):
            blocked = f"the folder {folder}"
        elif path.exists() and not os.access(path, os.R_OK | os.W_OK):
            blocked = f"the file {path}"
        else:
            blocked = None
        if blocked is not None:
            return StoreUnavailable(
                f"cannot open the database {path}: permission denied: this user "
                f"({_user()}) cannot write to {blocked}. Give it write access (chown or "
                "chmod), or choose another --db"
            )
    if isinstance(exc, sqlite3.Error):
        return StoreUnavailable(
            f"cannot open the database {path}: {describe_failure(exc, str(path))}"
        )
    return StoreUnavailable(f"cannot open the database {path}: {text}")


def _user() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # a uid without a name
        return f"uid {os.getuid()}"


def _revoke_all(conn: sqlite3.Connection, agent_id: int) -> list[str]:
    sql = lifecycle.revoke_agent_tokens("?")
    return [r[0] for r in conn.execute(sql, (precise_now(), agent_id)).fetchall()]


def _statements(sql: str) -> Iterable[str]:
    """Split a migration file into statements (no semicolons inside our literals; a
    trigger's body, which has its own, stays whole)."""
    lines = [line for line in sql.splitlines() if not line.lstrip().startswith("--")]
    pending = ""
    for part in "\n".join(lines).split(";"):
        pending += part + ";"
        if sqlite3.complete_statement(pending):
            if pending.strip(" \n;"):
                yield pending
            pending = ""


def _insert_inbox(conn: sqlite3.Connection, name: str) -> Inbox:
    public_id = ids.new_id("i")
    inbox_id = conn.execute(
        "INSERT INTO inboxes (public_id, name, created_at) VALUES (?, ?, ?)",
        (public_id, name, now_iso()),
    ).lastrowid
    assert inbox_id is not None
    return Inbox(inbox_id, public_id, name)


def _members(conn: sqlite3.Connection, inbox_id: int) -> frozenset[int]:
    return frozenset(r[0] for r in conn.execute(lifecycle.MEMBERS, (inbox_id,)))


def _inbox_ids(conn: sqlite3.Connection, names: list[str]) -> list[int]:
    found = []
    for name in names:
        row = conn.execute(lifecycle.INBOX_ID, (name,)).fetchone()
        if row is None:
            raise lifecycle.unknown_inbox(name)
        found.append(row[0])
    return found


def _facts(conn: sqlite3.Connection, column: str, value: object) -> ConversationFacts | None:
    row = conn.execute(rows.FACTS_COLUMNS[column], (value,)).fetchone()
    if row is None:
        return None
    return rows.conversation_facts(row, _members(conn, row[2]))


__all__ = ["DeskbellError", "SQLiteStore", "migrations", "now_iso"]
