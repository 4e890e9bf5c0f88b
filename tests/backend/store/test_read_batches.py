"""Reads of one loop turn share a trip to a reader thread; each gets its own answer."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import pytest

from backend.errors import StoreUnavailable
from backend.store.read_batches import BATCH, ReadBatches


class CountingExecutor(ThreadPoolExecutor):
    def __init__(self) -> None:
        super().__init__(2)
        self.trips = 0

    def submit(self, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Future[Any]:
        self.trips += 1
        return super().submit(fn, *args, **kwargs)


def closed() -> BaseException:
    return StoreUnavailable("the store is closed")


async def test_reads_of_one_turn_go_in_one_trip_and_get_their_own_results() -> None:
    executor = CountingExecutor()
    batches = ReadBatches(executor, closed)

    def boom() -> int:
        raise ValueError("bad read")

    futures = [batches.read(lambda i=i: i * 10) for i in range(5)] + [batches.read(boom)]
    results = await asyncio.gather(*futures, return_exceptions=True)
    assert results[:5] == [0, 10, 20, 30, 40]
    assert isinstance(results[5], ValueError)
    assert executor.trips == 1
    executor.shutdown()


async def test_a_large_turn_is_split_so_several_threads_share_it() -> None:
    executor = CountingExecutor()
    batches = ReadBatches(executor, closed)
    results = await asyncio.gather(*(batches.read(lambda i=i: i) for i in range(BATCH * 2 + 1)))
    assert results == list(range(BATCH * 2 + 1))
    assert executor.trips == 3
    executor.shutdown()


async def test_reads_after_the_executor_is_shut_down_fail_as_closed() -> None:
    executor = CountingExecutor()
    batches = ReadBatches(executor, closed)
    future = batches.read(lambda: 1)
    executor.shutdown()
    with pytest.raises(StoreUnavailable):
        await future


async def test_a_cancelled_read_does_not_disturb_the_others() -> None:
    executor = CountingExecutor()
    batches = ReadBatches(executor, closed)
    first, second = batches.read(lambda: 1), batches.read(lambda: 2)
    first.cancel()
    assert await second == 2
    executor.shutdown()
