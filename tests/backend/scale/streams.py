"""Strict stream sessions for the delivery tests: a session that never asks twice.

:class:`Session` is an agent's tray app reduced to the one promise under test: it
resumes once per connection (after the last seq it holds) and then only listens. It
records every notification seq exactly as it arrived, on every connection, so a test
can demand that the concatenation is ``1..N`` - no gap the client had to fill, no
repeat, no reorder. When its node goes away it reconnects to a live node of its
:class:`Nodes` (waiting for one to come up when none is).

Nothing sleeps: waits are for a frame, a closed socket or a node coming up.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

from tests.backend.scale.cluster import CONNECT_ERRORS, Roaming
from tests.support.backend import BackendHarness, WsClient


class Reachable(Protocol):
    name: str
    harness: BackendHarness

    @property
    def alive(self) -> bool: ...


class Nodes:
    """The nodes sessions may use; ``changed`` fires whenever one comes or goes."""

    def __init__(self, live: Callable[[], list[Any]]):
        self._live = live
        self.changed = asyncio.Event()

    def live(self) -> list[Any]:
        return self._live()

    def poke(self) -> None:
        self.changed.set()
        self.changed = asyncio.Event()


class Session(Roaming):
    """One agent session that records its stream strictly (see the module doc)."""

    connect_errors = (*CONNECT_ERRORS, AssertionError)

    def __init__(self, nodes: Nodes, token: str, home: Reachable, label: str):
        super().__init__(token, home, seed=label)
        self.nodes = nodes
        self.label = label
        self.received: list[int] = []
        """Every notification seq in arrival order, over all connections."""

    @property
    def last_seq(self) -> int:
        return self.received[-1] if self.received else 0

    async def _next_node(self, gone: Any, *, refused: bool) -> Any:
        """A live node, preferring one other than ``gone``; waits for one to come up."""
        while True:
            changed = self.nodes.changed
            live = self.nodes.live()
            others = [n for n in live if n is not gone]
            if others:
                return self._rotation.choice(others)
            if live:
                return live[0]
            await changed.wait()

    def _take(self, client: WsClient, notification: dict[str, Any]) -> None:
        self.received.append(notification["seq"])

    def problems(self, last_seq: int) -> str | None:
        """None when the stream is exactly 1..last_seq; else what is wrong with it."""
        if self.received == list(range(1, last_seq + 1)):
            return None
        seen: set[int] = set()
        repeats = sorted({s for s in self.received if s in seen or seen.add(s)})  # type: ignore[func-returns-value]
        missing = sorted(set(range(1, last_seq + 1)) - seen)
        out_of_order = [
            (a, b) for a, b in zip(self.received, self.received[1:], strict=False) if b != a + 1
        ]
        return (
            f"{self.label} on {self.visited}: expected 1..{last_seq}, got {len(self.received)}"
            f" seqs; missing {missing[:10]}, repeated {repeats[:10]},"
            f" jumps {out_of_order[:10]}"
        )
