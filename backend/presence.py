"""Who can see a toast, across nodes: each node reports its online agents on the bus.

Presence lives in sessions (the ``presence`` frame, PROTOCOL.md v1.1), and a session
lives on one node. Early escalation asks of a notification's recipients whether any of
them has a session that is online, whichever node holds it. So with a bus every node
sends a :class:`PresenceReport`: the whole set of agents with an online session there,
soon after it changes (at most once per :data:`CHANGE_DELAY`) and every
:data:`REPORT_SECONDS` regardless. A whole set, not a change, so that a lost or
reordered report is repaired by the next one; a serial per node drops an older report
that arrives late.

:class:`ClusterPresence` is the pure core that keeps every other node's last report and
answers the question; :class:`PresenceReporter` is the thin shell that publishes this
node's reports. A node silent for :data:`NODE_TTL` (killed, or cut off) is forgotten:
its sessions count as closed, as they are for its agents' tray apps, which reconnect
elsewhere. While the answer cannot be trusted (just started or just subscribed again,
so other nodes' next reports may not have arrived; or the bus is down) the recipients
count as able to see: only seen receipts decide then, as they did before presence
crossed nodes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass

import msgspec

log = logging.getLogger(__name__)

REPORT_SECONDS = 5.0
"""How often a node reports its online agents even when nothing changed."""
CHANGE_DELAY = 0.5
"""After a change, how long a node waits before reporting (changes in between ride
along): a reconnect storm of thousands of sessions makes a few reports, not thousands."""
NODE_TTL = 3 * REPORT_SECONDS
"""A node not heard from for this long is forgotten (three reports missed)."""
WARM_UP = REPORT_SECONDS + CHANGE_DELAY
"""After starting or reconnecting to the bus, how long until every live node's
periodic report has surely arrived."""


class PresenceReport(msgspec.Struct, tag="presence"):
    """Node ``node``'s agents with at least one online session (agent ids), as of its
    ``serial``-th report; ``leaving``: the node is shutting down (forget it now)."""

    node: str
    serial: int
    online: list[int]
    leaving: bool = False


@dataclass(slots=True)
class _Heard:
    serial: int
    at: float
    online: frozenset[int]
    leaving: bool


class ClusterPresence:
    """The other nodes' last reports, and whether any of some agents is online there.

    No I/O: the gateway hands it every :class:`PresenceReport` the bus brings, and says
    when the bus subscribed again (reports may have been missed). Whether the bus is up
    at all is the caller's to check (``Bus.healthy``).

    Args:
        node: this node's id (its own reports are ignored: the caller asks its
            sessions directly).
        clock: seconds, monotonic.
    """

    def __init__(self, node: str, clock: Callable[[], float] = time.monotonic) -> None:
        self.node = node
        self._clock = clock
        self._nodes: dict[str, _Heard] = {}
        self._trusted_from = clock() + WARM_UP

    def heard(self, report: PresenceReport) -> None:
        """Take in one report (from any node, in any order)."""
        if report.node == self.node:
            return
        known = self._nodes.get(report.node)
        if known is not None and report.serial <= known.serial:
            return  # late: a newer report of that node is already here
        # A leaving node is kept (with nobody) rather than dropped, so that a late
        # report cannot revive it; it goes once silent for NODE_TTL like any other.
        now = self._clock()
        online = frozenset() if report.leaving else frozenset(report.online)
        nodes = {node: heard for node, heard in self._nodes.items() if now - heard.at <= NODE_TTL}
        nodes[report.node] = _Heard(report.serial, now, online, report.leaving)
        # A new dict, never one changed in place: the SQLite store asks from its writer
        # thread, and reads whichever dict it finds whole.
        self._nodes = nodes

    def resubscribed(self) -> None:
        """The bus delivers again after a gap (reports were missed): wait for every
        node's next report."""
        self._trusted_from = self._clock() + WARM_UP

    def online(self, agent_ids: Iterable[int]) -> bool | None:
        """True when another live node has an online session of one of ``agent_ids``;
        False when none has; None when that cannot be known now."""
        if self._clock() < self._trusted_from:
            return None
        wanted = frozenset(agent_ids)
        return any(not heard.online.isdisjoint(wanted) for heard in self._live())

    def nodes(self) -> int:
        """How many other nodes are live (reporting, not leaving); -1 while that cannot
        be known (the ``deskbell_presence_nodes`` metric)."""
        if self._clock() < self._trusted_from:
            return -1
        return sum(not heard.leaving for heard in self._live())

    def agents_online(self) -> int:
        """How many agents have an online session on another live node; -1 while that
        cannot be known (the ``deskbell_presence_agents_online`` metric)."""
        if self._clock() < self._trusted_from:
            return -1
        return len(frozenset().union(*(heard.online for heard in self._live())))

    def _live(self) -> list[_Heard]:
        """The reports of nodes heard from within :data:`NODE_TTL`."""
        now = self._clock()
        return [heard for heard in self._nodes.values() if now - heard.at <= NODE_TTL]


class PresenceReporter:
    """Publishes this node's :class:`PresenceReport` on the bus: soon after a change,
    and every :data:`REPORT_SECONDS`.

    Args:
        online_agents: this node's agents with an online session, now.
        publish: sends a report to every node (the bus's ``publish``).
        node: this node's id; None draws a random one.
    """

    def __init__(
        self,
        online_agents: Callable[[], Iterable[int]],
        publish: Callable[[PresenceReport], Awaitable[None]],
        node: str | None = None,
    ) -> None:
        self.node = node or secrets.token_hex(8)
        self._online_agents = online_agents
        self._publish = publish
        self._serial = 0
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="presence")

    def changed(self) -> None:
        """This node's sessions or their presence changed: report soon."""
        self._changed.set()

    async def stop(self) -> None:
        """Stop reporting, and tell the other nodes to forget this one now."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
            await self._send(leaving=True)

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), REPORT_SECONDS)
                await asyncio.sleep(CHANGE_DELAY)  # let the changes around this one ride along
            self._changed.clear()
            try:
                await self._send()
            except Exception:  # a report is never worth the loop: the next one repairs it
                log.exception("presence report failed")

    async def _send(self, *, leaving: bool = False) -> None:
        self._serial += 1
        online = [] if leaving else sorted(self._online_agents())
        await self._publish(PresenceReport(self.node, self._serial, online, leaving))
