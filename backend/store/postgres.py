"""The PostgreSQL store: several nodes share one database (the scale-out setup).

It behaves exactly like :class:`~backend.store.sqlite.SQLiteStore` (both pass
tests/backend/store/test_store_contract.py); what differs is how it stays right when
several processes write at once:

- Per-agent ``seq`` and unread counts live in one ``agent_seq`` row per agent
  (migrations_pg/0001_counters.sql). A commit batch bumps every recipient's row once,
  in one ``INSERT … ON CONFLICT DO UPDATE`` over the recipients sorted by id: the row
  locks are taken in that order, so two commits for overlapping agents wait for each
  other instead of deadlocking, and a seq can neither repeat nor skip. Whoever sees
  seq N committed can read every seq below N of that agent. What one batch writes,
  and why it is cheap for one inbox's stream of events, is in
  :mod:`backend.store.pg_commit`.
- Idempotency keys (a publish's key, a message's ``client_msg_id``) are claimed with
  ``ON CONFLICT DO NOTHING`` before anything else is written: a concurrent retry on
  another node waits for the first commit and then finds the key taken. A batch
  claims all its keys in one statement, sorted, before its changes are applied.

- Commits go through queues drained by a few writer tasks (half the pool), one queue
  each. A change with recipients goes to the writer that owns its recipient set (a
  hash of it), so one node's commits for an inbox never compete with each other and
  fill that writer's batches; the rest go to the shortest queue. Each writer commits
  every change that queued up while it was busy in one transaction, as the SQLite
  writer does: under load one bump and one WAL flush serve many events. Across nodes,
  a batch first takes an advisory lock per recipient set, so the writers of every node
  queue on one lock per inbox. While the oldest change in a writer's queue has waited
  more than ``max_commit_wait`` (2 s), a new commit for it is refused at once
  (``unavailable``, try again) instead of joining a queue that is not draining. Should
  a batch fail for anything but a lost database (a constraint, a deadlock the lock
  order does not rule out), its changes are retried one transaction each, so one bad
  change fails alone. Agents' public ids are cached (they never change).

Schema: the shared migrations in ``backend/store/migrations`` (SQLite's dialect) are
translated by :func:`pg_dialect`, then the PostgreSQL-only files of the same version in
``migrations_pg`` run. ``deskbell_schema`` holds the version; an advisory lock keeps two
nodes starting at once from migrating twice.

The connection pool's size comes from the URL: ``postgresql://…/deskbell?pool_size=20``
(``pool_min_size`` too); every other query parameter goes to asyncpg as usual.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import time
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import asyncpg

from backend import ids, protocol
from backend.errors import ConfigError, Conflict, DeskbellError, NotFound, StoreUnavailable
from backend.redact import redact_url
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
    PolicyRow,
    QueueRow,
    ReadResult,
    Store,
    Token,
    service_name_taken,
)
from backend.store.common import migration_files, migrations, now_iso
from backend.store.lifecycle import numbered
from backend.store.pg_commit import (
    Duplicate,
    apply_batch,
    counts_decoder,
    mark_read,
    recipient_set_key,
)
from backend.store.rows import group_client_versions, message, notification

log = logging.getLogger(__name__)
T = TypeVar("T")

DEFAULT_POOL_SIZE = 10
_MAX_BATCH = 64
"""Changes committed in one transaction at most (bounds the locks one batch holds)."""
MAX_COMMIT_WAIT = 2.0
"""Seconds the oldest change in a writer's queue may have waited: beyond it a new
commit for that writer is refused with ``unavailable`` rather than queued."""
_MIGRATION_LOCK = 0x6465736B62656C6C  # "deskbell": one advisory lock id for migrations
_CONNECT_TIMEOUT = 5.0
_COMMAND_TIMEOUT = 30.0
_POOL_OPTIONS = ("pool_size", "pool_min_size")

# revoked_at comes from the database's clock so that every node stamps revocations
# on one time line (node clocks drift); same text form as now_iso(), to the microsecond.
_DB_NOW = "to_char(clock_timestamp() AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"')"


def pg_dialect(sql: str) -> str:
    """Translate a shared (SQLite-dialect) migration into PostgreSQL.

    The shared files keep to SQL both engines run, with these rules covering the rest:
    ``INTEGER PRIMARY KEY`` (SQLite's rowid alias) becomes an identity column, every
    other ``INTEGER`` a ``BIGINT``; ``TEXT`` compares byte-wise (``COLLATE "C"``) as it
    does in SQLite, whatever the database's locale, so ordering and the time stamps
    compared as text behave the same on both stores; ``WITHOUT ROWID`` (a SQLite storage
    choice) is dropped. tests/backend/store/test_postgres.py checks the outcome against
    SQLite's schema, so a new SQLite-only construct fails there, not in production.
    """
    sql = re.sub(r"\)\s*WITHOUT ROWID\s*;", ");", sql)
    sql = re.sub(
        r"\bINTEGER PRIMARY KEY\b", "BIGINT GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY", sql
    )
    sql = re.sub(r"\bINTEGER\b", "BIGINT", sql)
    return re.sub(r"\bTEXT\b", 'TEXT COLLATE "C"', sql)


def pg_migrations() -> list[tuple[int, str]]:
    """Every schema version as (version, PostgreSQL script), in order."""
    extra: dict[int, list[str]] = {}
    for version, entry in migration_files("migrations_pg"):
        extra.setdefault(version, []).append(entry.read_text())
    scripts = []
    for version, sql in migrations():
        parts = [pg_dialect(sql), *extra.pop(version, [])]
        scripts.append((version, "\n".join(parts)))
    if extra:
        raise RuntimeError(
            f"migrations_pg has versions without a shared migration: {sorted(extra)}"
        )
    return scripts


def split_pool_options(url: str) -> tuple[str, int, int]:
    """Return (URL for asyncpg, pool min size, pool max size) from a store URL.

    Raises:
        ValueError: a pool option that is not a positive integer.
    """
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    options = {k: v for k, v in query if k in _POOL_OPTIONS}
    rest = [(k, v) for k, v in query if k not in _POOL_OPTIONS]
    try:
        max_size = int(options.get("pool_size", DEFAULT_POOL_SIZE))
        min_size = int(options.get("pool_min_size", min(2, max_size)))
    except ValueError:
        raise ValueError("pool_size and pool_min_size must be whole numbers") from None
    if max_size < 1 or not 0 <= min_size <= max_size:
        raise ValueError("pool_size must be at least 1 and pool_min_size at most pool_size")
    return urlunsplit(parts._replace(query=urlencode(rest))), min_size, max_size


safe_url = redact_url
"""The URL without its secrets, for messages and logs (see backend.redact)."""


_UNAVAILABLE_ERRORS: tuple[type[BaseException], ...] = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.CannotConnectNowError,
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InterfaceError,
    asyncpg.exceptions.InsufficientResourcesError,
)


class PostgresStore(Store):
    """The store of a scaled-out deployment. ``url`` is a ``postgresql://`` URL."""

    def __init__(
        self,
        url: str,
        *,
        connect_timeout: float = _CONNECT_TIMEOUT,
        command_timeout: float = _COMMAND_TIMEOUT,
        max_commit_wait: float = MAX_COMMIT_WAIT,
    ):
        try:
            self._dsn, self.pool_min_size, self.pool_size = split_pool_options(url)
        except ValueError as exc:
            raise ConfigError(f"database URL: {exc}") from None
        self.url = safe_url(self._dsn)
        self._connect_timeout = connect_timeout
        self._command_timeout = command_timeout
        self._max_commit_wait = max_commit_wait
        self._pool: asyncpg.Pool | None = None
        self._queues: list[_CommitQueue] | None = None
        """One commit queue per writer task (see :meth:`commit`)."""
        self._writers: list[asyncio.Task[None]] = []
        self._public_ids: dict[int, str] = {}
        self.batches = 0
        """Transactions the writers committed (a batch of changes or a lone change)."""

    # -- life cycle ------------------------------------------------------------------
    async def open(self) -> None:
        try:
            pool = await asyncpg.create_pool(
                self._dsn,
                min_size=self.pool_min_size,
                max_size=self.pool_size,
                timeout=self._connect_timeout,
                command_timeout=self._command_timeout,
            )
        except asyncpg.InvalidCatalogNameError as exc:
            raise StoreUnavailable(
                f"the database of {self.url} does not exist: create it (createdb), then start again"
            ) from exc
        except asyncpg.InvalidAuthorizationSpecificationError as exc:
            raise StoreUnavailable(f"PostgreSQL refused the login of {self.url}: {exc}") from exc
        except _UNAVAILABLE_ERRORS as exc:
            raise self._unavailable(exc) from exc
        self._pool = pool
        try:
            await self._migrate()
        except BaseException:
            await self.close()
            raise
        self._queues = [_CommitQueue() for _ in range(max(1, self.pool_size // 2))]
        self._writers = [
            asyncio.create_task(self._writer(queue), name=f"deskbell-pg-writer-{n}")
            for n, queue in enumerate(self._queues)
        ]

    async def _migrate(self) -> None:
        async with self._connection() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _MIGRATION_LOCK)
            await conn.execute(
                "CREATE TABLE IF NOT EXISTS deskbell_schema (version BIGINT NOT NULL)"
            )
            version = await conn.fetchval("SELECT max(version) FROM deskbell_schema") or 0
            if version > SCHEMA_VERSION:
                raise StoreUnavailable(
                    f"{self.url} has schema version {version}, newer than this "
                    f"deskbell-server knows ({SCHEMA_VERSION}); upgrade deskbell-server"
                )
            for number, script in pg_migrations():
                if number > version:
                    await conn.execute(script)
                    await conn.execute("DELETE FROM deskbell_schema")
                    await conn.execute("INSERT INTO deskbell_schema VALUES ($1)", number)
                    log.info("event=migrated db=%s version=%d", self.url, number)

    async def close(self) -> None:
        queues, self._queues = self._queues, None
        for queue in queues or ():
            # Finish what was accepted (a graceful stop finishes in-flight commits);
            # with the database gone each fails fast, so this does not hang.
            await queue.join()
        writers, self._writers = self._writers, []
        for task in writers:
            task.cancel()
        for task in writers:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        pool, self._pool = self._pool, None
        if pool is not None:
            try:
                await pool.close()
            except _UNAVAILABLE_ERRORS:
                pool.terminate()

    async def schema_version(self) -> int:
        version = await self._read(
            lambda c: c.fetchval("SELECT COALESCE(max(version), 0) FROM deskbell_schema")
        )
        return int(version)

    async def ping(self) -> None:
        await self._read(lambda c: c.fetchval("SELECT 1"))

    # -- plumbing --------------------------------------------------------------------
    def _unavailable(self, exc: BaseException) -> StoreUnavailable:
        reason = str(exc) or type(exc).__name__
        return StoreUnavailable(
            f"the database {self.url} cannot be reached ({reason}); nothing was stored. "
            "Check that PostgreSQL is running, then try again"
        )

    @asynccontextmanager
    async def _connection(self) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection; every database failure comes out as a DeskbellError."""
        pool = self._pool
        if pool is None:
            raise StoreUnavailable("the store is closed")
        try:
            async with pool.acquire(timeout=self._connect_timeout) as conn:
                yield conn
        except TimeoutError as exc:
            raise StoreUnavailable(
                f"the database {self.url} did not answer in time: it is down or overloaded, "
                "or every pooled connection is busy (see pool_size). Try again"
            ) from exc
        except asyncpg.IntegrityConstraintViolationError as exc:
            raise Conflict(f"that would break a uniqueness rule: {exc}") from exc
        except _UNAVAILABLE_ERRORS as exc:
            raise self._unavailable(exc) from exc
        except asyncpg.PostgresError as exc:
            raise StoreUnavailable(f"the database failed: {exc}") from exc

    async def _read(self, fn: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
        async with self._connection() as conn:
            return await fn(conn)

    async def _write(self, fn: Callable[[asyncpg.Connection], Awaitable[T]]) -> T:
        async with self._connection() as conn, conn.transaction():
            return await fn(conn)

    # -- inboxes and agents ----------------------------------------------------------
    async def add_inbox(self, name: str) -> Inbox:
        async def run(conn: asyncpg.Connection) -> Inbox:
            inbox = await _insert_inbox(conn, name)
            if inbox is None:
                raise Conflict(f"inbox {name} already exists")
            return inbox

        return await self._write(run)

    async def inbox_by_name(self, name: str) -> Inbox:
        row = await self._read(lambda c: c.fetchrow(numbered(queries.INBOX_BY_NAME), name))
        if row is None:
            raise NotFound(f"there is no inbox named {name}")
        return Inbox(*row)

    async def add_agent(
        self, email: str, name: str, inboxes: list[str], password_hash: str | None
    ) -> Agent:
        async def run(conn: asyncpg.Connection) -> Agent:
            if await conn.fetchval("SELECT 1 FROM agents WHERE email = $1", email):
                raise Conflict(f"agent {email} already exists")
            known = await _inbox_ids(conn, inboxes)
            public_id = ids.new_id("a")
            agent_id = await conn.fetchval(
                "INSERT INTO agents (public_id, email, name, password_hash, created_at) "
                "VALUES ($1, $2, $3, $4, $5) ON CONFLICT (email) DO NOTHING RETURNING id",
                public_id,
                email,
                name,
                password_hash,
                now_iso(),
            )
            if agent_id is None:  # another node added it since the check above
                raise Conflict(f"agent {email} already exists")
            await conn.execute(
                "INSERT INTO inbox_members (inbox_id, agent_id) "
                "SELECT DISTINCT unnest($1::bigint[]), $2::bigint ON CONFLICT DO NOTHING",
                [known[inbox] for inbox in inboxes],
                agent_id,
            )
            return Agent(agent_id, public_id, email, name, tuple(inboxes), password_hash)

        return await self._write(run)

    async def import_agents(self, rows: list[ImportRow]) -> ImportResult:
        # Set-based, a fixed number of round trips whatever the row count: IT imports
        # thousands of agents at once. Rows are applied in order, as SQLite does: a
        # later row for the same email updates the agent an earlier one created.
        async def run(conn: asyncpg.Connection) -> ImportResult:
            now = now_iso()
            wanted = list(dict.fromkeys(i for row in rows for i in row.inboxes))
            inbox_ids: dict[str, int] = dict(
                await conn.fetch("SELECT name, id FROM inboxes WHERE name = ANY($1)", wanted)
            )
            missing = [name for name in wanted if name not in inbox_ids]
            if missing:
                await conn.execute(
                    "INSERT INTO inboxes (public_id, name, created_at) "
                    "SELECT p, n, $3 FROM unnest($1::text[], $2::text[]) AS t(p, n) "
                    "ON CONFLICT (name) DO NOTHING",
                    [ids.new_id("i") for _ in missing],
                    missing,
                    now,
                )
                inbox_ids.update(
                    await conn.fetch("SELECT name, id FROM inboxes WHERE name = ANY($1)", missing)
                )
            emails = list(dict.fromkeys(row.email for row in rows))
            existing: dict[str, tuple[int, str, str | None]] = {
                r["email"]: (r["id"], r["public_id"], r["password_hash"])
                for r in await conn.fetch(
                    "SELECT id, public_id, email, password_hash FROM agents WHERE email = ANY($1)",
                    emails,
                )
            }
            final = {row.email: row for row in rows}  # the last row of an email wins
            new_emails = [email for email in emails if email not in existing]
            if new_emails:
                created_rows = await conn.fetch(
                    "INSERT INTO agents (public_id, email, name, created_at) "
                    "SELECT p, e, n, $4 FROM unnest($1::text[], $2::text[], $3::text[]) "
                    "AS t(p, e, n) RETURNING id, public_id, email",
                    [ids.new_id("a") for _ in new_emails],
                    new_emails,
                    [final[email].name for email in new_emails],
                    now,
                )
                fresh = {r["email"]: (r["id"], r["public_id"]) for r in created_rows}
            else:
                fresh = {}
            old_ids = [existing[email][0] for email in emails if email in existing]
            if old_ids:
                await conn.execute(
                    "UPDATE agents AS a SET name = t.n "
                    "FROM unnest($1::bigint[], $2::text[]) AS t(i, n) WHERE a.id = t.i",
                    old_ids,
                    [final[email].name for email in emails if email in existing],
                )
                await conn.execute("DELETE FROM inbox_members WHERE agent_id = ANY($1)", old_ids)

            def agent_id_of(email: str) -> int:
                return existing[email][0] if email in existing else fresh[email][0]

            members = {
                (inbox_ids[inbox], agent_id_of(email))
                for email, row in final.items()
                for inbox in row.inboxes
            }
            if members:
                await conn.execute(
                    "INSERT INTO inbox_members (inbox_id, agent_id) "
                    "SELECT * FROM unnest($1::bigint[], $2::bigint[]) ON CONFLICT DO NOTHING",
                    [m[0] for m in members],
                    [m[1] for m in members],
                )
            tokens = [(row.token_hash, agent_id_of(row.email)) for row in rows if row.token_hash]
            if tokens:
                await conn.execute(
                    "INSERT INTO tokens (hash, kind, agent_id, device, created_at) "
                    "SELECT h, 'agent', a, 'import', $3 "
                    "FROM unnest($1::text[], $2::bigint[]) AS t(h, a)",
                    [t[0] for t in tokens],
                    [t[1] for t in tokens],
                    now,
                )
            created = updated = 0
            seen: set[str] = set()
            agents = []
            for row in rows:
                if row.email in existing or row.email in seen:
                    updated += 1
                else:
                    created += 1
                seen.add(row.email)
                if row.email in existing:
                    agent_id, public_id, password_hash = existing[row.email]
                else:
                    (agent_id, public_id), password_hash = fresh[row.email], None
                agents.append(
                    Agent(agent_id, public_id, row.email, row.name, row.inboxes, password_hash)
                )
            return ImportResult(created, updated, agents)

        return await self._write(run)

    async def list_agents(self) -> list[Agent]:
        async def run(conn: asyncpg.Connection) -> list[Agent]:
            inboxes: dict[int, list[str]] = {}
            for agent_id, inbox in await conn.fetch(queries.ALL_MEMBERSHIPS):
                inboxes.setdefault(agent_id, []).append(inbox)
            return [
                rows.agent(r, tuple(inboxes.get(r[0], ())), with_password=False)
                for r in await conn.fetch(queries.ALL_AGENTS)
            ]

        result: list[Agent] = await self._read(run)
        return result

    async def _agent_where(self, column: str, value: object) -> Agent | None:
        async def run(conn: asyncpg.Connection) -> Agent | None:
            row = await conn.fetchrow(numbered(queries.agent_where(column)), value)
            if row is None:
                return None
            inboxes = await conn.fetch(numbered(queries.AGENT_INBOX_NAMES), row[0])
            return rows.agent(row, tuple(r[0] for r in inboxes))

        found: Agent | None = await self._read(run)
        return found

    async def inbox_member_ids(self, inbox_name: str) -> frozenset[int]:
        async def run(conn: asyncpg.Connection) -> frozenset[int] | None:
            inbox_id = await conn.fetchval("SELECT id FROM inboxes WHERE name = $1", inbox_name)
            return None if inbox_id is None else await _members(conn, inbox_id)

        members: frozenset[int] | None = await self._read(run)
        if members is None:
            raise NotFound(f"there is no inbox named {inbox_name}")
        return members

    async def membership_version(self) -> int:
        version: int = await self._read(lambda c: c.fetchval(queries.MEMBERSHIP_VERSION))
        return version

    async def agent_inbox_ids(self, agent_id: int) -> frozenset[int]:
        rows = await self._read(lambda c: c.fetch(numbered(queries.AGENT_INBOX_IDS), agent_id))
        return frozenset(r[0] for r in rows)

    # -- the operator's lifecycle commands ----------------------------------------------
    async def list_inboxes(self) -> list[InboxSummary]:
        rows = await self._read(lambda c: c.fetch(lifecycle.INBOX_SUMMARIES))
        return [InboxSummary(Inbox(r[0], r[1], r[2]), r[3], r[4]) for r in rows]

    async def remove_inbox(self, name: str, *, force: bool) -> InboxRemoved:
        async def run(conn: asyncpg.Connection) -> InboxRemoved:
            inbox_id = await conn.fetchval(
                "SELECT id FROM inboxes WHERE name = $1 FOR UPDATE", name
            )
            if inbox_id is None:
                raise NotFound(f"there is no inbox named {name}")
            conversations, messages = await conn.fetchrow(
                numbered(lifecycle.INBOX_CONTENT), inbox_id, inbox_id
            )
            if conversations and not force:
                raise lifecycle.inbox_in_use(name, conversations, messages)
            rows = await conn.fetch(numbered(lifecycle.READ_INBOX_NOTIFICATIONS), inbox_id)
            agents = sorted({r[0] for r in rows})
            if agents:
                # Recount what they marked read, in agent order as commits lock: a commit
                # that counted a notification before this waited for nothing, one after
                # this waits for the lock and counts on from the recount.
                await conn.execute(
                    "SELECT 1 FROM agent_seq WHERE agent_id = ANY($1::bigint[]) "
                    "ORDER BY agent_id FOR UPDATE",
                    agents,
                )
                await conn.execute(
                    "UPDATE agent_seq s SET unread = COALESCE((SELECT jsonb_object_agg("
                    "category, n) FROM (SELECT category, COUNT(*) AS n FROM notifications "
                    "WHERE agent_id = s.agent_id AND read = 0 GROUP BY category) c), '{}') "
                    "WHERE s.agent_id = ANY($1::bigint[])",
                    agents,
                )
            counts = {
                what: _count(await conn.execute(numbered(sql), inbox_id))
                for what, sql in lifecycle.REMOVE_INBOX
            }
            return InboxRemoved(
                conversations, messages, counts["memberships"], counts["notifications"]
            )

        return await self._write(run)

    async def set_agent_disabled(self, agent_id: int, disabled: bool) -> list[str]:
        async def run(conn: asyncpg.Connection) -> list[str]:
            await _agent_exists(conn, agent_id)
            stamp = now_iso() if disabled else None
            await conn.execute(numbered(lifecycle.SET_DISABLED), stamp, agent_id)
            return await _revoke_all(conn, agent_id) if disabled else []

        return await self._write(run)

    async def set_password(self, agent_id: int, password_hash: str) -> list[str]:
        async def run(conn: asyncpg.Connection) -> list[str]:
            await _agent_exists(conn, agent_id)
            await conn.execute(numbered(lifecycle.SET_PASSWORD), password_hash, agent_id)
            return await _revoke_all(conn, agent_id)

        return await self._write(run)

    async def update_agent(
        self, agent_id: int, *, name: str | None = None, inboxes: list[str] | None = None
    ) -> Agent:
        async def run(conn: asyncpg.Connection) -> None:
            await _agent_exists(conn, agent_id)
            if name is not None:
                await conn.execute(numbered(lifecycle.RENAME), name, agent_id)
            if inboxes is not None:
                known = await _inbox_ids(conn, inboxes)
                await conn.execute(numbered(lifecycle.DROP_AGENT_MEMBERSHIPS), agent_id)
                await conn.executemany(
                    numbered(lifecycle.ADD_MEMBERSHIP),
                    [(known[i], agent_id) for i in dict.fromkeys(inboxes)],
                )

        await self._write(run)
        return await self.agent(agent_id)

    async def remove_agent(self, agent_id: int) -> AgentRemoved:
        async def run(conn: asyncpg.Connection) -> AgentRemoved:
            await _agent_exists(conn, agent_id)
            revoked = await _revoke_all(conn, agent_id)
            # First the counter row: this waits for a commit in flight to the agent,
            # and a later one finds no agent (agent_seq's foreign key) and stores nothing.
            await conn.execute("DELETE FROM agent_seq WHERE agent_id = $1", agent_id)
            counts = {
                what: _count(await conn.execute(numbered(sql), agent_id))
                for what, sql in lifecycle.REMOVE_AGENT
            }
            await conn.execute(numbered(lifecycle.DELETE_AGENT), agent_id)
            self._public_ids.pop(agent_id, None)
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
        async def run(conn: asyncpg.Connection) -> list[str]:
            replaced: list[str] = []
            if kind == "service":
                # The row locks make a concurrent issue of the same name wait here; two
                # first issues of a name meet at the unique index (a Conflict).
                rows = await conn.fetch(
                    "SELECT hash FROM tokens WHERE kind = 'service' AND name = $1 "
                    "AND revoked_at IS NULL FOR UPDATE",
                    name,
                )
                replaced = [r[0] for r in rows]
                if replaced and not replace:
                    raise Conflict(service_name_taken(str(name)))
                await conn.execute(
                    f"UPDATE tokens SET revoked_at = {_DB_NOW} "  # noqa: S608
                    "WHERE hash = ANY($1::text[])",
                    replaced,
                )
            await conn.execute(
                numbered(queries.INSERT_TOKEN),
                token_hash,
                kind,
                agent_id,
                name,
                device,
                now_iso(),
            )
            return replaced

        return await self._write(run)

    async def token(self, token_hash: str) -> Token | None:
        row = await self._read(
            lambda c: c.fetchrow(numbered(queries.LIVE_TOKEN), token_hash, now_iso())
        )
        return None if row is None else Token(*row)

    async def revoke_token(self, token_hash: str) -> bool:
        status = await self._write(
            lambda c: c.execute(
                f"UPDATE tokens SET revoked_at = {_DB_NOW} "  # noqa: S608
                "WHERE hash = $1 AND revoked_at IS NULL",
                token_hash,
            )
        )
        return bool(status != "UPDATE 0")

    async def revoked_since(self, since: str) -> tuple[list[str], str]:
        rows = await self._read(lambda c: c.fetch(numbered(queries.REVOKED_SINCE), since))
        return [r[0] for r in rows], (rows[-1][1] if rows else since)

    # -- single sign-on and client versions ---------------------------------------------
    async def claim_sso_nonce(self, nonce_hash: str, expires_at: str) -> bool:
        async def run(conn: asyncpg.Connection) -> bool:
            await conn.execute(numbered(queries.DROP_EXPIRED_NONCES), now_iso())
            status = await conn.execute(numbered(queries.CLAIM_NONCE), nonce_hash, expires_at)
            return bool(status != "INSERT 0 0")

        return await self._write(run)

    async def record_client_version(
        self, agent_id: int, version: str, os: str, seen_at: str
    ) -> None:
        await self._write(
            lambda c: c.execute(
                "INSERT INTO client_versions (agent_id, version, os, seen_at) "
                "VALUES ($1, $2, $3, $4) ON CONFLICT (agent_id, version, os) "
                "DO UPDATE SET seen_at = GREATEST(client_versions.seen_at, excluded.seen_at)",
                agent_id,
                version,
                os,
                seen_at,
            )
        )

    async def client_versions_since(self, since: str) -> dict[int, list[ClientVersion]]:
        rows = await self._read(lambda c: c.fetch(_CLIENT_VERSIONS_SINCE, since))
        return group_client_versions([tuple(row) for row in rows])

    # -- conversations ---------------------------------------------------------------
    async def _conversation_where(self, column: str, value: object) -> ConversationFacts | None:
        found: ConversationFacts | None = await self._read(lambda c: _facts(c, column, value))
        return found

    async def messages(self, conversation_id: int, limit: int = 500) -> list[protocol.Message]:
        rows = await self._read(
            lambda c: c.fetch(numbered(queries.RECENT_MESSAGES), conversation_id, limit)
        )
        return [message(row) for row in reversed(rows)]

    async def publish_result(self, service_token_id: int, key: str) -> int | None:
        value = await self._read(
            lambda c: c.fetchval(numbered(queries.PUBLISH_RESULT), service_token_id, key)
        )
        return None if value is None else int(value)

    # -- the write path --------------------------------------------------------------
    @property
    def queued_commits(self) -> int:
        """Changes accepted by :meth:`commit` that no writer has taken up yet."""
        return sum(queue.qsize() for queue in self._queues or ())

    async def commit(self, change: Change) -> Committed:
        queues = self._queues
        if queues is None:
            raise StoreUnavailable("the store is closed")
        if change.withdraw is not None:
            # Alone, not in a writer's batch: its withdraw locks other agents' counters
            # after the conversation's row, and a later change of a batch could want
            # another conversation's row while holding them (a deadlock).
            return (await self._transact([change]))[0]
        queue = _route(queues, change)
        behind = queue.behind()
        if behind > self._max_commit_wait:
            # Refused at once: the writer is not keeping up (the oldest change it has
            # queued has waited that long), and queueing more only makes every caller
            # wait longer (docs/benchmarks.md, fix 11). A burst the writer drains fast
            # never gets here.
            raise StoreUnavailable(
                f"the database is behind: commits like this one have waited {behind:.1f} s, "
                "so nothing was stored. Try again in a few seconds"
            )
        future: asyncio.Future[Committed] = asyncio.get_running_loop().create_future()
        queue.put_nowait((change, future))
        return await future

    async def _writer(self, commits: _CommitQueue) -> None:
        while True:
            batch = [await commits.get()]
            while len(batch) < _MAX_BATCH and not commits.empty():
                batch.append(commits.get_nowait())
            try:
                await self._commit_batch([item for item in batch if not item[1].done()])
            except Exception:  # a bug: fail the waiting callers, keep the writer alive
                log.exception("committing a batch of %d changes failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(StoreUnavailable("the commit failed"))
            finally:
                for _ in batch:
                    commits.task_done()

    async def _commit_batch(self, batch: list[_Queued]) -> None:
        if not batch:
            return
        changes = [change for change, _ in batch]
        try:
            results = await self._transact(changes)
        except StoreUnavailable as exc:
            if len(batch) == 1 or isinstance(exc.__cause__, (*_UNAVAILABLE_ERRORS, TimeoutError)):
                _fail(batch, exc)
                return
            # Not the database going away: find the change that caused it, and commit
            # the others, each on its own.
            await asyncio.gather(*(self._commit_alone(change, f) for change, f in batch))
            return
        except DeskbellError as exc:
            if len(batch) == 1:
                _fail(batch, exc)
                return
            await asyncio.gather(*(self._commit_alone(change, f) for change, f in batch))
            return
        self.batches += 1
        for (_, future), result in zip(batch, results, strict=True):
            if not future.done():
                future.set_result(result)

    async def _transact(self, changes: list[Change]) -> list[Committed]:
        """Commit ``changes`` in one transaction; one result each."""
        try:
            return await self._write(lambda conn: apply_batch(conn, changes, self._public_ids))
        except Duplicate as duplicate:  # a lone change, rolled back: a retry stores nothing
            return [duplicate.committed]

    async def _commit_alone(self, change: Change, future: asyncio.Future[Committed]) -> None:
        try:
            results = await self._transact([change])
        except DeskbellError as exc:
            _fail([(change, future)], exc)
            return
        self.batches += 1
        if not future.done():
            future.set_result(results[0])

    # -- notifications ---------------------------------------------------------------
    async def agent_state(self, agent_id: int) -> tuple[int, dict[str, int]]:
        async def run(conn: asyncpg.Connection) -> tuple[int, dict[str, int]]:
            row = await conn.fetchrow(
                "SELECT last_seq, unread::text FROM agent_seq WHERE agent_id = $1", agent_id
            )
            return (0, {}) if row is None else (row[0], counts_decoder.decode(row[1]))

        state: tuple[int, dict[str, int]] = await self._read(run)
        return state

    async def last_seqs(self, agent_ids: list[int]) -> dict[int, int]:
        async def run(conn: asyncpg.Connection) -> dict[int, int]:
            rows = await conn.fetch(
                "SELECT agent_id, last_seq FROM agent_seq WHERE agent_id = ANY($1::bigint[])",
                agent_ids,
            )
            return {int(row[0]): int(row[1]) for row in rows}

        result: dict[int, int] = await self._read(run)
        return result

    async def notifications_after(
        self, agent: Agent, after_seq: int, limit: int
    ) -> tuple[list[protocol.Notification], bool]:
        rows = await self._read(
            lambda c: c.fetch(_NOTIFICATIONS_AFTER, agent.id, after_seq, limit + 1)
        )
        items = [notification(agent.public_id, r) for r in reversed(rows[:limit])]
        return items, len(rows) > limit

    async def history(
        self,
        agent: Agent,
        before_seq: int | None,
        limit: int,
        category: str | None,
        unread_only: bool,
    ) -> tuple[list[protocol.Notification], bool]:
        sql, params = queries.history(agent.id, before_seq, limit, category, unread_only)
        sql = numbered(sql)
        rows = await self._read(lambda c: c.fetch(sql, *params))
        return [notification(agent.public_id, r) for r in rows[:limit]], len(rows) > limit

    async def mark_read(
        self,
        agent: Agent,
        *,
        seqs: list[int] | None = None,
        conversation_id: int | None = None,
        category: str | None = None,
        everything: bool = False,
    ) -> ReadResult:
        where: str | None = None  # None: nothing to mark
        params: tuple[Any, ...] = ()
        if seqs is not None:
            where, params = " AND seq = ANY($2::bigint[])", (seqs,)
        elif conversation_id is not None:
            where, params = " AND conversation_id = $2", (conversation_id,)
        elif everything and category is not None:
            where, params = " AND category = $2", (category,)
        elif everything:
            where = ""
        return await self._write(
            lambda conn: mark_read(conn, agent.id, agent.public_id, where, *params)
        )

    # -- v1.1: waiting visitors -------------------------------------------------------
    async def queue_rows(
        self, *, inbox_ids: frozenset[int] | None = None, conversation_id: int | None = None
    ) -> list[QueueRow]:
        if conversation_id is not None:
            sql = waiting_sql.QUEUE_SELECT + " WHERE c.id = $1"
            value: Any = conversation_id
        else:
            if not inbox_ids:
                return []
            sql = (
                waiting_sql.QUEUE_SELECT
                + " WHERE c.waiting_since IS NOT NULL AND c.inbox_id = ANY($1::bigint[])"
                + waiting_sql.QUEUE_ORDER
            )
            value = sorted(inbox_ids)
        rows = await self._read(lambda c: c.fetch(sql, value))
        return [waiting_sql.queue_row(row) for row in rows]

    async def set_policy(
        self, inbox_id: int, steps: list[tuple[int, str]] | None, unseen_after_s: int | None
    ) -> PolicyRow:
        async def run(conn: asyncpg.Connection) -> PolicyRow:
            await conn.execute("SELECT 1 FROM inboxes WHERE id = $1 FOR UPDATE", inbox_id)
            current = await _policy(conn, inbox_id)
            unseen = current.unseen_after_s if unseen_after_s is None else unseen_after_s
            await conn.execute(numbered(waiting_sql.UPSERT_POLICY), inbox_id, unseen, now_iso())
            if steps is not None:
                await conn.execute(numbered(waiting_sql.CLEAR_STEPS), inbox_id)
                await conn.executemany(
                    numbered(waiting_sql.ADD_STEP),
                    [(inbox_id, k, after, to) for k, (after, to) in enumerate(steps, 1)],
                )
            return await _policy(conn, inbox_id)

        result: PolicyRow = await self._write(run)
        return result

    async def policy(self, inbox_id: int) -> PolicyRow:
        result: PolicyRow = await self._read(lambda c: _policy(c, inbox_id))
        return result

    async def fire_due_steps(
        self,
        now_ms: int,
        limit: int,
        event: Callable[[DueStep, tuple[int, ...]], NewEvent],
    ) -> list[tuple[DueStep, NewEvent, Committed]]:
        # One step per transaction: each takes its recipients' counter locks in agent
        # order on its own, as every other commit does, so nodes never deadlock.
        # SKIP LOCKED: a row another node is firing is passed over, not waited for.
        due = numbered(waiting_sql.DUE) + " FOR UPDATE SKIP LOCKED"
        public_ids = self._public_ids

        async def one(
            conn: asyncpg.Connection,
        ) -> tuple[DueStep, NewEvent, Committed] | bool:
            row = await conn.fetchrow(due, now_ms, 1)
            if row is None:
                return False
            deleted = await conn.execute(numbered(waiting_sql.DELETE_STEP), row[0], row[1])
            if _count(deleted) != 1:
                return True  # another node fired it: the deleting transaction decides
            facts = await _facts(conn, "c.id", row[0])
            if facts is None or facts.waiting_since != row[2]:
                return True  # a step of a wait that is over: dropped, look further
            left = await conn.fetchval(numbered(waiting_sql.STEPS_LEFT), row[0], row[2])
            step = DueStep(row[0], row[1], row[2], row[3], row[4], bool(row[5]), facts, left == 0)
            new_event = event(step, await _step_recipients(conn, step))
            committed = await apply_batch(conn, [Change(event=new_event)], public_ids, lock=False)
            return step, new_event, committed[0]

        fired = []
        for _ in range(limit):
            outcome = await self._write(one)
            if outcome is False:
                break
            if not isinstance(outcome, bool):
                fired.append(outcome)
        return fired

    async def mark_seen(self, agent_id: int, seqs: list[int]) -> None:
        await self._write(
            lambda c: c.executemany(
                numbered(waiting_sql.MARK_SEEN), [(agent_id, seq) for seq in seqs]
            )
        )

    async def check_unseen(
        self, now_ms: int, limit: int, available: Callable[[frozenset[int]], bool]
    ) -> int:
        due = numbered(waiting_sql.DUE_CHECKS) + " FOR UPDATE SKIP LOCKED"

        async def run(conn: asyncpg.Connection) -> int:
            moved = 0
            for event_id, conversation_id, since, seen in await conn.fetch(due, now_ms, limit):
                await conn.execute(numbered(waiting_sql.DELETE_CHECK), event_id)
                if not await conn.fetchval(
                    numbered(waiting_sql.STILL_UNCLAIMED), conversation_id, since
                ):
                    continue
                if seen:
                    rows = await conn.fetch(numbered(waiting_sql.EVENT_RECIPIENTS), event_id)
                    if available(frozenset(r[0] for r in rows)):
                        continue
                moved += _count(
                    await conn.execute(
                        numbered(waiting_sql.BRING_FORWARD),
                        now_ms,
                        conversation_id,
                        conversation_id,
                        since,
                    )
                )
            return moved

        result: int = await self._write(run)
        return result


_Queued = tuple[Change, asyncio.Future[Committed]]


class _CommitQueue(asyncio.Queue[_Queued]):
    """One writer's queue of changes, each with the time it was queued."""

    def _init(self, maxsize: int) -> None:
        self._queue: deque[tuple[float, _Queued]] = deque()

    def _put(self, item: _Queued) -> None:
        self._queue.append((time.monotonic(), item))

    def _get(self) -> _Queued:
        return self._queue.popleft()[1]

    def behind(self) -> float:
        """Seconds the oldest change still queued has waited (0 with none)."""
        return time.monotonic() - self._queue[0][0] if self._queue else 0.0


def _route(queues: list[_CommitQueue], change: Change) -> _CommitQueue:
    """The writer queue of ``change``: the one that owns its recipient set, if it has
    one (so the node's commits for one inbox never compete with each other, and they
    fill that writer's batches); else the shortest."""
    event = change.event
    if event is not None and event.recipients:
        return queues[recipient_set_key(event.recipients) % len(queues)]
    return min(queues, key=lambda queue: queue.qsize())


def _fail(batch: list[_Queued], exc: DeskbellError) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(type(exc)(exc.message))


async def _policy(conn: asyncpg.Connection, inbox_id: int) -> PolicyRow:
    unseen = await conn.fetchval(numbered(waiting_sql.POLICY), inbox_id)
    steps = await conn.fetch(numbered(waiting_sql.POLICY_STEPS), inbox_id)
    return PolicyRow(
        tuple((r[0], r[1]) for r in steps),
        protocol.DEFAULT_UNSEEN_AFTER_S if unseen is None else unseen,
    )


async def _step_recipients(conn: asyncpg.Connection, step: DueStep) -> tuple[int, ...]:
    """The agents a step's target names now (see protocol.EscalationStep)."""
    target, facts = step.target, step.facts
    if target == "inbox":
        if facts.assignee is not None:
            return (facts.assignee.id,)
        return tuple(sorted(facts.inbox_members))
    if target.startswith("inbox:"):
        inbox_id = await conn.fetchval(
            numbered(waiting_sql.INBOX_BY_NAME), target.removeprefix("inbox:")
        )
        return () if inbox_id is None else tuple(sorted(await _members(conn, inbox_id)))
    agent_id = await conn.fetchval(numbered(waiting_sql.AGENT_BY_EMAIL), target)
    return () if agent_id is None else (agent_id,)


async def _insert_inbox(conn: asyncpg.Connection, name: str) -> Inbox | None:
    """Insert an inbox; None when the name is taken."""
    public_id = ids.new_id("i")
    inbox_id = await conn.fetchval(
        "INSERT INTO inboxes (public_id, name, created_at) VALUES ($1, $2, $3) "
        "ON CONFLICT (name) DO NOTHING RETURNING id",
        public_id,
        name,
        now_iso(),
    )
    return None if inbox_id is None else Inbox(inbox_id, public_id, name)


_MEMBERS = numbered(lifecycle.MEMBERS)


async def _inbox_ids(conn: asyncpg.Connection, names: list[str]) -> dict[str, int]:
    """The ids of the inboxes ``names``, by name; NotFound for one that does not exist."""
    known = dict(await conn.fetch("SELECT name, id FROM inboxes WHERE name = ANY($1)", names))
    for name in names:
        if name not in known:
            raise lifecycle.unknown_inbox(name)
    return known


async def _members(conn: asyncpg.Connection, inbox_id: int) -> frozenset[int]:
    rows = await conn.fetch(_MEMBERS, inbox_id)
    return frozenset(r[0] for r in rows)


async def _agent_exists(conn: asyncpg.Connection, agent_id: int) -> None:
    """Lock the agent's row for this transaction; NotFound when there is none."""
    if await conn.fetchval("SELECT 1 FROM agents WHERE id = $1 FOR UPDATE", agent_id) is None:
        raise NotFound("no such agent")


_NOTIFICATIONS_AFTER = numbered(queries.NOTIFICATIONS_AFTER)
_CLIENT_VERSIONS_SINCE = numbered(queries.CLIENT_VERSIONS_SINCE)
_REVOKE_ALL = numbered(lifecycle.revoke_agent_tokens(_DB_NOW))


async def _revoke_all(conn: asyncpg.Connection, agent_id: int) -> list[str]:
    return [r[0] for r in await conn.fetch(_REVOKE_ALL, agent_id)]


def _count(status: str) -> int:
    """The row count of a command status such as ``UPDATE 3`` or ``DELETE 0``."""
    return int(status.rsplit(" ", 1)[-1])


_FACTS = {column: numbered(sql) for column, sql in rows.FACTS_COLUMNS.items()}


async def _facts(conn: asyncpg.Connection, column: str, value: object) -> ConversationFacts | None:
    row = await conn.fetchrow(_FACTS[column], value)
    if row is None:
        return None
    return rows.conversation_facts(row, await _members(conn, row[2]))


__all__ = ["PostgresStore", "pg_dialect", "pg_migrations", "safe_url", "split_pool_options"]
