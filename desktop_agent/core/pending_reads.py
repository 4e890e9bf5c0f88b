"""PendingReads: reads made on this computer that the server has not confirmed yet.

Opening a conversation or a row marks its notifications read here at once; the server
is told with ``mark_read`` / ``mark_all_read``. Offline, or when the link drops before
the answer, that request cannot go out: it waits here and is sent again after the
next ``welcome`` (marking read twice is harmless). Until the server confirms a read,
its counts still include the notifications read here, so :meth:`PendingReads.adjust`
takes them out of the counts the badge and the tabs show.

No I/O here: the controller records reads, takes the requests to send when connected,
and reports each one as confirmed or lost.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

TOTAL = "total"
"""The key of the count of every unread notification in the server's ``unread`` object."""


@dataclass(frozen=True)
class ReadIds:
    """``mark_read`` by notification ids."""

    ids: tuple[str, ...]


@dataclass(frozen=True)
class ReadConversation:
    """``mark_read`` of every notification of one conversation."""

    conversation_id: str


@dataclass(frozen=True)
class ReadAll:
    """``mark_all_read`` of one category, or of everything (``category`` None)."""

    category: str | None


ReadRequest = ReadIds | ReadConversation | ReadAll


@dataclass(frozen=True)
class Ticket:
    """One read to send: the request and the unread notifications it covers here.

    Attributes:
        number: tells tickets apart (the same request can be made twice).
        request: what to ask the server.
        rows: (notification id, category) of the rows it marked read on this computer.
    """

    number: int
    request: ReadRequest
    rows: tuple[tuple[str, str], ...]


class PendingReads:
    """Reads waiting to be sent or confirmed, in the order they were made."""

    def __init__(self) -> None:
        self._numbers = itertools.count(1)
        self._waiting: list[Ticket] = []
        self._in_flight: dict[int, Ticket] = {}

    def __len__(self) -> int:
        """Reads not yet confirmed (waiting or sent)."""
        return len(self._waiting) + len(self._in_flight)

    @property
    def waiting(self) -> list[ReadRequest]:
        """The requests not sent yet, oldest first."""
        return [ticket.request for ticket in self._waiting]

    def read(self, request: ReadRequest, rows: Iterable[tuple[str, str]] = ()) -> None:
        """Record a read made here; ``rows`` are the unread (id, category) it covers."""
        self._waiting.append(Ticket(next(self._numbers), request, tuple(rows)))

    def take(self) -> list[Ticket]:
        """The waiting reads, oldest first, now counted as sent (call when connected)."""
        taken, self._waiting = self._waiting, []
        for ticket in taken:
            self._in_flight[ticket.number] = ticket
        return taken

    def confirmed(self, ticket: Ticket) -> None:
        """The server did it (or refused it for good): forget the read."""
        self._in_flight.pop(ticket.number, None)

    def lost(self, ticket: Ticket) -> None:
        """The request did not reach the server: send it again after the next connect.

        Lost reads go back before anything made since, so the server sees reads in
        the order they were made.
        """
        if self._in_flight.pop(ticket.number, None) is None:
            return
        self._waiting.insert(
            next(
                (i for i, t in enumerate(self._waiting) if t.number > ticket.number),
                len(self._waiting),
            ),
            ticket,
        )

    def read_elsewhere(self, ids: Iterable[str]) -> None:
        """These notifications are read on the server (a ``read`` push): stop adjusting."""
        gone = set(ids)
        if not gone:
            return
        for pool in (self._waiting, list(self._in_flight.values())):
            for ticket in pool:
                if any(row_id in gone for row_id, _ in ticket.rows):
                    self._replace(ticket, tuple(r for r in ticket.rows if r[0] not in gone))

    def clear(self) -> None:
        """Forget everything (signing out)."""
        self._waiting.clear()
        self._in_flight.clear()

    def adjust(self, counts: Mapping[str, int]) -> dict[str, int]:
        """The server's unread ``counts`` without the reads made here and not confirmed.

        A ``mark_all_read`` of a category waiting here zeroes that category (all counts,
        with no category); reads of ids and conversations subtract their rows, each row
        once, from their category and from ``total``. No count goes below 0.
        """
        adjusted = {key: max(0, value) for key, value in counts.items()}
        adjusted.setdefault(TOTAL, 0)
        tickets = sorted([*self._in_flight.values(), *self._waiting], key=lambda t: t.number)
        zeroed: set[str] = set()
        everything = False
        seen: set[str] = set()
        for ticket in tickets:
            request = ticket.request
            if isinstance(request, ReadAll):
                if request.category is None:
                    everything = True
                    adjusted = dict.fromkeys(adjusted, 0)
                elif request.category not in zeroed:
                    zeroed.add(request.category)
                    removed = adjusted.get(request.category, 0)
                    adjusted[request.category] = 0
                    adjusted[TOTAL] = max(0, adjusted[TOTAL] - removed)
                continue
            for row_id, category in ticket.rows:
                if everything or category in zeroed or row_id in seen:
                    continue
                seen.add(row_id)
                if category in adjusted:
                    if adjusted[category] == 0:
                        continue  # the server does not count it (any more)
                    adjusted[category] -= 1
                adjusted[TOTAL] = max(0, adjusted[TOTAL] - 1)
        return adjusted

    def _replace(self, ticket: Ticket, rows: tuple[tuple[str, str], ...]) -> None:
        fresh = Ticket(ticket.number, ticket.request, rows)
        if ticket.number in self._in_flight:
            self._in_flight[ticket.number] = fresh
        else:
            self._waiting[self._waiting.index(ticket)] = fresh
