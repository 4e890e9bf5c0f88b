"""ConnectionService's v1.1 requests and pushes against the real server (in process):
queue and queue_changed, claim and its conflict, withdraw, seen."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from backend.protocol import QueueEntry, WithdrawPush
from desktop_agent.connection import ConnectionService
from desktop_agent.core.state import CursorStore
from desktop_agent.errors import RequestFailed
from tests.support.backend import in_process_backend

ANN = "ann@example.org"
SAM = "sam@example.org"


class Pushes:
    """What one service emitted, and a way to wait for a condition on it."""

    def __init__(self, service: ConnectionService) -> None:
        self.queue: list[tuple[QueueEntry, bool]] = []
        self.withdrawn: list[WithdrawPush] = []
        self.live: list[Any] = []
        self.resumed = 0
        self._changed = asyncio.Event()
        service.queueChanged.connect(lambda e, w: self._add(self.queue, (e, w)))
        service.withdrawn.connect(lambda p: self._add(self.withdrawn, p))
        service.notificationReceived.connect(lambda n: self._add(self.live, n))
        service.resumed.connect(lambda _r: self._bump())

    def _bump(self) -> None:
        self.resumed += 1
        self._changed.set()

    def _add(self, target: list[Any], item: Any) -> None:
        target.append(item)
        self._changed.set()

    async def wait_until(self, predicate: Callable[[], bool], timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():
                self._changed.clear()
                await self._changed.wait()


async def test_queue_claim_withdraw_and_seen_with_the_real_server(tmp_path: Path) -> None:
    async with in_process_backend(tmp_path) as backend:
        tokens = await backend.seed({ANN: ["Support"], SAM: ["Support"]})
        services: list[ConnectionService] = []
        pushes: list[Pushes] = []
        for email in (ANN, SAM):
            service = ConnectionService(
                backend.url, tokens[email], CursorStore(tmp_path / email), ping_interval=None
            )
            services.append(service)
            pushes.append(Pushes(service))
            service.start()
        ann, sam = services
        ann_pushes, _sam_pushes = pushes
        try:
            for recorded in pushes:
                await recorded.wait_until(lambda r=recorded: r.resumed == 1)  # type: ignore[misc]
            assert await ann.queue() == []
            assert await sam.queue() == []

            _visitor, started = await backend.visitor_start("Support", "Dana Smith", "Hello?")
            cid = started["conversation"]["id"]
            await ann_pushes.wait_until(lambda: any(e.id == cid and w for e, w in ann_pushes.queue))
            entry = next(e for e, w in ann_pushes.queue if e.id == cid)
            assert entry.assignee is None and entry.waiting_since is not None
            assert [e.id for e in await ann.queue()] == [cid]

            await ann_pushes.wait_until(lambda: bool(ann_pushes.live))
            notification = ann_pushes.live[0]
            await ann.seen([notification.id], "shown")  # no reply: nothing to wait for

            claimed = await sam.claim(cid)
            assert claimed.assignee is not None and claimed.assignee.name == "Sam"

            await ann_pushes.wait_until(lambda: bool(ann_pushes.withdrawn))
            withdraw = ann_pushes.withdrawn[0]
            assert notification.id in withdraw.ids
            assert withdraw.reason == "claimed" and withdraw.by.name == "Sam"
            await ann_pushes.wait_until(
                lambda: any(e.id == cid and e.assignee is not None for e, _w in ann_pushes.queue)
            )

            with pytest.raises(RequestFailed) as refused:
                await ann.claim(cid)
            assert refused.value.code == "conflict"
            assert "Sam" in refused.value.message
        finally:
            for service in services:
                await service.stop()
