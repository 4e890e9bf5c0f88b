"""What one PostgreSQL commit writes: a batch of changes, in the caller's transaction.

:class:`~backend.store.postgres.PostgresStore`'s writer tasks hand each batch of queued
changes to :func:`apply_batch`. Every event of an inbox moves the ``agent_seq`` row of
each of its recipients, so those rows are where commits for one inbox meet, whichever
writer or node makes them (docs/benchmarks.md, "Where the time goes"). Two rules keep
that meeting cheap:

- **One lock per recipient set, taken first.** A batch starts with
  ``pg_advisory_xact_lock`` on a stable hash of each of its events' recipient sets
  (sorted, so two batches never wait on each other in a circle). Commits for one inbox
  from any node then queue on that one lock instead of convoying over each of the
  recipients' row locks. The row locks still decide correctness: two events to
  overlapping but different sets take different advisory locks and meet on the rows,
  which every statement locks in agent-id order.
- **One bump per batch.** The changes' other writes run in batch order; their events
  are written last, together: each recipient's ``agent_seq`` row moves once by the
  number of the batch's events it receives (its unread counts by each category's
  share), and every notification row goes in with one ``INSERT``. An agent's seqs for
  the batch are the consecutive numbers after its ``last_seq``, handed out in event
  order (event ids are drawn from the sequence up front, in batch order): no hole, no
  repeat, no reordering, as if each event had been committed alone, one after the
  other. Each change's result carries every recipient's seq and unread counts as of
  its own event, exactly as a lone commit reports them.
"""

from __future__ import annotations

import hashlib
import sys
from array import array
from collections.abc import Sequence
from typing import Any, NamedTuple

import asyncpg
import msgspec

from backend import ids, protocol
from backend.errors import Conflict, NotFound
from backend.store import queries, waiting_sql
from backend.store.base import Change, Committed, NewEvent, NewMessage, ReadResult, delivered
from backend.store.common import now_iso
from backend.store.lifecycle import numbered
from backend.store.rows import message, new_message

counts_decoder = msgspec.json.Decoder(dict[str, int])
"""Decodes an ``agent_seq.unread`` (category to count) read as text."""


class Duplicate(Exception):
    """Raised inside a commit's transaction to roll it back and report a retry."""

    def __init__(self, committed: Committed):
        super().__init__("duplicate")
        self.committed = committed


def recipient_set_key(recipients: tuple[int, ...] | list[int]) -> int:
    """The advisory lock key of a recipient set: the same on every node and version.

    A signed 64-bit hash of the sorted, distinct agent ids (``pg_advisory_xact_lock``
    takes a ``bigint``). Two sets that collide only queue on one lock needlessly.
    """
    ids = array("q", sorted(set(recipients)))
    if sys.byteorder == "big":  # the same bytes on every machine: little-endian
        ids.byteswap()
    packed = ids.tobytes()
    return int.from_bytes(hashlib.blake2b(packed, digest_size=8).digest(), "big", signed=True)


async def apply_batch(
    conn: asyncpg.Connection,
    changes: list[Change],
    public_ids: dict[int, str],
    *,
    lock: bool = True,
) -> list[Committed]:
    """Apply ``changes`` in the caller's transaction, in order; one result each.

    ``lock``: take the recipient sets' advisory locks first (a writer's batch). A caller
    that already holds other row locks (an escalation step it fires) passes False: it
    must not wait for a lock whose holder may wait for its rows.

    Raises:
        Duplicate: the one change of a batch of one is a retry (roll back, report it).
        asyncpg.PostgresError: as the statements raise it (the caller maps it).
    """
    fanning = [c.event for c in changes if c.event is not None and c.event.recipients]
    # A duplicate is found by the change's first write, which is then undone by leaving
    # it out; only a duplicate message after an earlier write of the same change (its
    # key, its new conversation) needs a savepoint to undo that write, and then each
    # change claims its own key.
    isolated = [_needs_savepoint(change) for change in changes]
    keys: dict[tuple[int, str], int] = {}
    if not any(isolated):
        for change in changes:
            if change.publish_key is not None:
                keys.setdefault(change.publish_key, _notified(change))
    locks = sorted({recipient_set_key(e.recipients) for e in fanning}) if lock else []
    event_ids, claimed = await _start(conn, locks, len(fanning), keys)
    next_event_id = iter(event_ids)
    pending: list[_FanOut] = []
    results = []
    for change, alone in zip(changes, isolated, strict=True):
        event_id = next(next_event_id) if change.event and change.event.recipients else 0
        key = change.publish_key
        try:
            if key in keys:
                if key not in claimed:  # seen before, or earlier in this batch
                    raise Duplicate(await _first_result(conn, key))
                claimed.discard(key)  # the first change with the key takes it
                results.append(await _apply(conn, change, event_id, pending, key_claimed=True))
            elif alone and len(changes) > 1:
                async with conn.transaction():  # a savepoint
                    results.append(await _apply(conn, change, event_id, pending))
            else:
                results.append(await _apply(conn, change, event_id, pending))
        except Duplicate as duplicate:
            if len(changes) == 1:
                raise
            results.append(duplicate.committed)
    if pending:
        await _fan_out(conn, pending, public_ids)
    return results


async def _start(
    conn: asyncpg.Connection, locks: list[int], events: int, keys: dict[tuple[int, str], int]
) -> tuple[list[int], set[tuple[int, str]]]:
    """Take the advisory ``locks`` (in the order given), then draw ``events`` event ids
    and claim the publish ``keys`` (with their notification counts), in one round trip.

    Returns the event ids in drawing order and the keys this transaction took (a key
    another commit took first waits for it to end, then is left out).
    """
    if not (locks or events or keys):
        return [], set()
    claims = sorted(keys)  # a fixed lock order against another node claiming them too
    row = await conn.fetchrow(
        _START,
        locks,
        events,
        [service for service, _ in claims],
        [key for _, key in claims],
        [keys[claim] for claim in claims],
        now_iso(),
    )
    return sorted(row[0]), set(zip(row[1], row[2], strict=True))


# MATERIALIZED: the locks are taken once, and first: every other part reads ``locked``.
_START = (
    "WITH locked AS MATERIALIZED ("
    " SELECT count(pg_advisory_xact_lock(k)) AS n FROM unnest($1::bigint[]) AS t(k)),"
    " claimed AS ("
    " INSERT INTO publish_keys (token_id, key, notifications, created_at)"
    " SELECT s, k, c, $6 FROM locked, unnest($3::bigint[], $4::text[], $5::bigint[]) AS t(s, k, c)"
    " ORDER BY s, k ON CONFLICT DO NOTHING RETURNING token_id, key)"
    " SELECT array(SELECT nextval(pg_get_serial_sequence('events', 'id'))"
    " FROM locked, generate_series(1, $2)),"
    " array(SELECT token_id FROM claimed), array(SELECT key FROM claimed)"
)


def _needs_savepoint(change: Change) -> bool:
    new_message = change.message
    return (
        new_message is not None
        and new_message.client_msg_id is not None
        and (change.publish_key is not None or change.new_conversation is not None)
    )


def _notified(change: Change) -> int:
    """How many notifications ``change`` stores (its publish key's answer to a retry)."""
    event = change.event
    return len(set(event.recipients)) if event is not None else 0


async def _first_result(conn: asyncpg.Connection, key: tuple[int, str]) -> Committed:
    stored = await conn.fetchval(numbered(queries.PUBLISH_RESULT), *key)
    return Committed(notifications=stored, duplicate=True)


class _FanOut(NamedTuple):
    """An event of the batch, applied but not yet fanned out."""

    result: Committed
    event: NewEvent
    event_id: int
    conversation_id: int | None
    recipients: tuple[int, ...]


async def _apply(
    conn: asyncpg.Connection,
    change: Change,
    event_id: int,
    pending: list[_FanOut],
    *,
    key_claimed: bool = False,
) -> Committed:
    """Write everything of ``change`` but its notifications; queue its event (with
    ``event_id``) on ``pending`` for :func:`_fan_out`."""
    result = Committed()
    if change.publish_key is not None and not key_claimed:
        # Claim the key first: a concurrent retry on another node waits here until this
        # transaction ends, then sees the key (committed) or takes it (rolled back).
        claimed = await conn.fetchval(
            "INSERT INTO publish_keys (token_id, key, notifications, created_at) "
            "VALUES ($1, $2, $3, $4) ON CONFLICT DO NOTHING RETURNING 1",
            *change.publish_key,
            _notified(change),
            now_iso(),
        )
        if claimed is None:
            raise Duplicate(await _first_result(conn, change.publish_key))
    conversation_id: int | None = None
    if change.new_conversation is not None:
        new = change.new_conversation
        conversation_id = await conn.fetchval(
            _INSERT_CONVERSATION, *queries.conversation_params(new)
        )
        result.conversation_id = conversation_id
    if change.message is not None:
        msg = change.message
        target = msg.conversation_id if msg.conversation_id is not None else conversation_id
        inserted = await conn.fetchval(_INSERT_MESSAGE, *queries.message_params(msg, target))
        if inserted is None:
            row = await conn.fetchrow(
                numbered(queries.MESSAGE_BY_CLIENT_ID), target, msg.author_kind, msg.client_msg_id
            )
            raise Duplicate(Committed(message=message(row), duplicate=True))
        result.message = new_message(msg)
        await _wait_transition(conn, target, msg, result)
    if change.assign is not None:
        await conn.execute(numbered(queries.ASSIGN), change.assign[1], change.assign[0])
    if change.claim is not None:
        await _claim(conn, *change.claim)
    if change.resolve is not None:
        state = await conn.fetchrow(_WAIT_STATE, change.resolve)
        if state is None:
            raise NotFound("no such conversation")
        await conn.execute(numbered(waiting_sql.RESOLVE), change.resolve)
        await conn.execute(numbered(waiting_sql.DROP_STEPS), change.resolve)
        await conn.execute(numbered(waiting_sql.DROP_CHECKS), change.resolve)
        result.wait_ended = state[0]
    if change.withdraw is not None:
        recipients = change.event.recipients if change.event is not None else ()
        result.withdrawn = await _withdraw(conn, *change.withdraw, recipients)
    if change.event is not None and change.event.recipients:
        event = change.event
        event_conversation = (
            event.conversation_id if event.conversation_id is not None else conversation_id
        )
        recipients = tuple(dict.fromkeys(event.recipients))
        result.notifications = len(recipients)
        if event.kind in waiting_sql.CHECKED_KINDS:
            # Now, not after the fan-out: a later change of the batch may end the wait
            # and drop the conversation's checks (seen_checks has no foreign key).
            await conn.execute(
                _ADD_CHECK, event_id, waiting_sql.epoch_ms(event.created_at), event_conversation
            )
        pending.append(_FanOut(result, event, event_id, event_conversation, recipients))
    return result


# One statement for all of a batch's events: the event rows, one bump of each
# recipient's agent_seq row (locked in agent-id order: no deadlock) by the number of
# the batch's events it receives and its counts by each category's share, and the
# notification rows with the seqs after the old last_seq in event-id (= batch) order.
# Data-modifying CTEs all run, whatever the final SELECT reads.
_EVENTS_AND_PAIRS = (
    "WITH r AS (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[],"
    " $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[], $11::bigint[],"
    " $12::bigint[]) AS r(id, kind, category, title, body, conversation_id, url, data,"
    " created_at, lo, hi)),"
    " e AS (INSERT INTO events (id, kind, category, title, body, conversation_id, url, data,"
    " created_at) SELECT id, kind, category, title, body, conversation_id, url, data,"
    " created_at FROM r),"
    # A row per (recipient, event): n numbers an agent's events in batch order, k counts them.
    " p AS (SELECT m.a, r.id AS ev, r.category, r.conversation_id,"
    " row_number() OVER (PARTITION BY m.a ORDER BY r.id) AS n,"
    " count(*) OVER (PARTITION BY m.a) AS k"
    " FROM r JOIN unnest($10::bigint[]) WITH ORDINALITY AS m(a, i) ON m.i BETWEEN r.lo AND r.hi),"
)
_BUMP = (
    " bumped AS ("
    " INSERT INTO agent_seq AS s (agent_id, last_seq, unread) {rows} ORDER BY a"
    " ON CONFLICT (agent_id) DO UPDATE SET last_seq = s.last_seq + excluded.last_seq,"
    " unread = s.unread || {merge}"
    " RETURNING agent_id, last_seq, unread),"
)
_NOTIFICATIONS = (
    # Each pair's agent's new last_seq, by a window over the pairs and the bumped rows
    # together rather than a join (whose size the planner cannot estimate here).
    " n AS ("
    " INSERT INTO notifications (agent_id, seq, event_id, category, conversation_id)"
    " SELECT a, last - k + n, ev, category, conversation_id FROM ("
    "  SELECT a, ev, category, conversation_id, n, k, max(last) OVER (PARTITION BY a) AS last"
    "  FROM (SELECT a, ev, category, conversation_id, n, k, NULL::bigint AS last FROM p"
    "  UNION ALL SELECT agent_id, NULL, NULL, NULL, NULL, NULL, last_seq FROM bumped) AS u"
    " ) AS w WHERE ev IS NOT NULL)"
    " SELECT agent_id, last_seq, unread::text FROM bumped"
)
_FAN_OUT = (
    _EVENTS_AND_PAIRS  # noqa: S608 - composed of constant texts only
    + " per AS (SELECT a, sum(c)::bigint AS k, jsonb_object_agg(category, c) AS add"
    " FROM (SELECT a, category, count(*) AS c FROM p GROUP BY a, category) AS x GROUP BY a),"
    + _BUMP.format(
        rows="SELECT a, k, add FROM per",
        merge="(SELECT jsonb_object_agg("
        " x.key, COALESCE((s.unread ->> x.key)::bigint, 0) + x.value::bigint)"
        " FROM jsonb_each_text(excluded.unread) AS x)",
    )
    + _NOTIFICATIONS
)
# The common case in one cheaper statement: every event of the batch has the same
# recipients and category ($12), as an inbox's events do (and a lone event). Each
# agent's row moves by the number of events ($11), and its seqs for them are the last
# ones in event order (j): no per-agent numbering needed.
_FAN_OUT_UNIFORM = (
    "WITH r AS"  # noqa: S608 - composed of constant texts only
    " (SELECT * FROM unnest($1::bigint[], $2::text[], $3::text[], $4::text[],"
    " $5::text[], $6::bigint[], $7::text[], $8::text[], $9::text[]) WITH ORDINALITY"
    " AS r(id, kind, category, title, body, conversation_id, url, data, created_at, j)),"
    " e AS (INSERT INTO events (id, kind, category, title, body, conversation_id, url, data,"
    " created_at) SELECT id, kind, category, title, body, conversation_id, url, data,"
    " created_at FROM r),"
    + _BUMP.format(
        rows="SELECT a, $11::bigint, jsonb_build_object($12::text, $11::bigint)"
        " FROM unnest($10::bigint[]) AS t(a)",
        merge="jsonb_build_object("
        "$12::text, COALESCE((s.unread ->> $12::text)::bigint, 0) + excluded.last_seq)",
    )
    + " n AS ("
    " INSERT INTO notifications (agent_id, seq, event_id, category, conversation_id)"
    " SELECT b.agent_id, b.last_seq - $11::bigint + r.j, r.id, r.category, r.conversation_id"
    " FROM bumped b CROSS JOIN r)"
    " SELECT agent_id, last_seq, unread::text FROM bumped"
)


async def _fan_out(
    conn: asyncpg.Connection, pending: list[_FanOut], public_ids: dict[int, str]
) -> None:
    """Store the notifications of ``pending`` (in batch order) and fill in each one's
    result: every recipient's seq and unread counts as of that event."""
    # Each distinct recipient list goes once (an inbox's events share one); an event
    # names the range of it (1-based, inclusive) in their concatenation.
    members: list[int] = []
    ranges: dict[tuple[int, ...], tuple[int, int]] = {}
    starts: list[int] = []
    ends: list[int] = []
    for item in pending:
        bounds = ranges.get(item.recipients)
        if bounds is None:
            first = len(members) + 1
            members.extend(item.recipients)
            bounds = ranges[item.recipients] = (first, len(members))
        starts.append(bounds[0])
        ends.append(bounds[1])
    columns: list[list[Any]] = [[] for _ in range(9)]
    for item in pending:
        event = item.event
        row = (
            item.event_id,
            event.kind,
            event.category,
            event.title,
            event.body,
            item.conversation_id,
            event.url,
            protocol.encode(event.data).decode(),
            event.created_at,
        )
        for column, value in zip(columns, row, strict=True):
            column.append(value)
    categories = set(columns[2])
    if len(ranges) == 1 and len(categories) == 1:
        bumped = await conn.fetch(
            _FAN_OUT_UNIFORM, *columns, members, len(pending), categories.pop()
        )
    else:
        bumped = await conn.fetch(_FAN_OUT, *columns, members, starts, ends)
    seqs: dict[int, int] = {}
    counts: dict[int, dict[str, int]] = {}
    for agent_id, last_seq, unread in bumped:
        seqs[agent_id] = last_seq
        counts[agent_id] = counts_decoder.decode(unread)
    unknown = [a for a in seqs if a not in public_ids]
    if unknown:
        public_ids.update(
            await conn.fetch("SELECT id, public_id FROM agents WHERE id = ANY($1)", unknown)
        )
    # From the batch's end back to its start: each event's state is the one after it,
    # then its own share is taken off for the event before.
    for item in reversed(pending):
        category = item.event.category
        deliveries = []
        for agent_id in item.recipients:
            agent_counts = counts[agent_id]
            deliveries.append(
                delivered(
                    (
                        agent_id,
                        public_ids[agent_id],
                        seqs[agent_id],
                        protocol.unread_object(agent_counts),
                    )
                )
            )
            seqs[agent_id] -= 1
            agent_counts[category] -= 1
        item.result.deliveries = deliveries


_INSERT_CONVERSATION = numbered(queries.INSERT_CONVERSATION) + " RETURNING id"
# A retried send (same client_msg_id) inserts nothing: the caller then reads the first.
# Another node's concurrent retry waits for this transaction at the unique index.
_INSERT_MESSAGE = (
    numbered(queries.INSERT_MESSAGE) + " ON CONFLICT (conversation_id, author_kind, client_msg_id)"
    " WHERE client_msg_id IS NOT NULL DO NOTHING RETURNING 1"
)
# The conversation row is locked first: a visitor message and a reply (or two visitor
# messages) on different nodes then move the wait one after the other.
_WAIT_STATE = numbered(waiting_sql.WAIT_STATE) + " FOR UPDATE"
_ADD_CHECK = numbered(waiting_sql.ADD_CHECK)


async def _wait_transition(
    conn: asyncpg.Connection, conversation_id: int | None, msg: NewMessage, result: Committed
) -> None:
    """Start a wait at a visitor message, end it at an agent reply (with its steps)."""
    state = await conn.fetchrow(_WAIT_STATE, conversation_id)
    if state is None:
        return
    waiting_since, inbox_id, _ = state
    if msg.author_kind == "visitor":
        if waiting_since is None:
            await conn.execute(numbered(waiting_sql.START_WAIT), msg.created_at, conversation_id)
            await conn.execute(
                numbered(waiting_sql.SCHEDULE),
                conversation_id,
                msg.created_at,
                waiting_sql.epoch_ms(msg.created_at),
                inbox_id,
            )
            result.wait_started = msg.created_at
    elif msg.author_kind == "agent" and waiting_since is not None:
        await conn.execute(numbered(waiting_sql.END_WAIT), conversation_id)
        await conn.execute(numbered(waiting_sql.DROP_STEPS), conversation_id)
        await conn.execute(numbered(waiting_sql.DROP_CHECKS), conversation_id)
        result.wait_ended = waiting_since


async def _claim(conn: asyncpg.Connection, conversation_id: int, agent_id: int) -> None:
    # READ COMMITTED: a claim that waited for another's row lock re-checks the WHERE
    # against the committed row, so it matches nothing once the other one won.
    if await conn.fetchval(numbered(waiting_sql.CLAIM), agent_id, conversation_id, agent_id):
        return
    holder = await conn.fetchrow(numbered(waiting_sql.HOLDER), conversation_id)
    if holder is None:
        raise NotFound("no such conversation")
    raise Conflict(f"{holder[0]} has taken this conversation already")


async def _withdraw(
    conn: asyncpg.Connection, conversation_id: int, agent_id: int, recipients: tuple[int, ...]
) -> list[tuple[int, ReadResult]]:
    """Mark every agent but ``agent_id``'s unread notifications of the conversation read.

    Every counter row this transaction will touch (those agents', and the change's
    event ``recipients``', bumped later by :func:`_fan_out`) is locked first, in one pass
    in agent-id order, as every other statement takes them: two passes could deadlock
    with a fan-out holding a row between them. The caller commits the change alone.
    """
    others = await conn.fetch(_OTHER_UNREAD_HOLDERS, conversation_id, agent_id)
    if not others:
        return []
    await conn.execute(_LOCK_COUNTERS, sorted({*(row[0] for row in others), *recipients}))
    withdrawn = []
    for other, public_id in others:
        read = await mark_read(conn, other, public_id, " AND conversation_id = $2", conversation_id)
        withdrawn.append((other, read))
    return withdrawn


async def mark_read(
    conn: asyncpg.Connection, agent_id: int, public_id: str, where: str | None, *params: Any
) -> ReadResult:
    """Mark the agent's unread notifications that match ``where`` (conditions on $2…;
    None: none) read, in the caller's transaction, and move its unread counts.

    The agent's ``agent_seq`` row is locked first: that orders this against commits for
    the same agent, so the counters move in the same order as the rows they count.
    """
    unread_text = await conn.fetchval(
        "SELECT unread::text FROM agent_seq WHERE agent_id = $1 FOR UPDATE", agent_id
    )
    counts = {} if unread_text is None else counts_decoder.decode(unread_text)
    changed: Sequence[asyncpg.Record] = []
    if where is not None:
        changed = await conn.fetch(
            f"{_MARK_READ}{where} RETURNING seq, category", agent_id, *params
        )
    if changed:
        counts = queries.unread_after_read(counts, (row[1] for row in changed))
        await conn.execute(
            "UPDATE agent_seq SET unread = $2::text::jsonb WHERE agent_id = $1",
            agent_id,
            _counts_encoder.encode(counts).decode(),
        )
    return ReadResult(
        [ids.notification_id(public_id, seq) for seq in sorted(row[0] for row in changed)],
        protocol.unread_object(counts),
    )


_MARK_READ = numbered(queries.MARK_READ)
_LOCK_COUNTERS = (
    "SELECT 1 FROM agent_seq WHERE agent_id = ANY($1::bigint[]) ORDER BY agent_id FOR UPDATE"
)
_OTHER_UNREAD_HOLDERS = numbered(waiting_sql.OTHER_UNREAD_HOLDERS)
_counts_encoder = msgspec.json.Encoder()


__all__ = ["Duplicate", "apply_batch", "counts_decoder", "mark_read", "recipient_set_key"]
