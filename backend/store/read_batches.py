"""Store reads that arrive in one turn of the event loop go to a reader thread together.

Each trip to a thread costs the event loop a queue put, a thread wake-up and a wake-up
of its own when the answer comes back (``run_in_executor``): more than a small SQLite
read itself. When thousands of agents connect at once, each asks for its token, its
agent and its notifications, and their requests come in the same turns of the loop. A
:class:`ReadBatches` collects the reads of one turn and hands them to the thread pool
in batches of at most :data:`BATCH` (so several threads still share a large turn's
reads); one callback resolves a batch's futures. A read alone waits one turn longer
than with ``run_in_executor``: nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from concurrent.futures import Executor
from typing import Any, TypeVar

T = TypeVar("T")
BATCH = 32
"""Most reads one trip to a reader thread carries."""

_Read = tuple[Callable[[], Any], "asyncio.Future[Any]"]


class ReadBatches:
    """Runs reads on ``executor``, a loop turn's worth at a time."""

    def __init__(self, executor: Executor, closed: Callable[[], BaseException]):
        """``closed()``: the exception for reads that find the executor shut down."""
        self._executor = executor
        self._closed = closed
        self._pending: list[_Read] = []

    def read(self, fn: Callable[[], T]) -> asyncio.Future[T]:
        """Run ``fn()`` on a reader thread; its result (or exception) in the future."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        pending = self._pending
        if not pending:
            loop.call_soon(self._submit, loop)
        pending.append((fn, future))
        return future

    def _submit(self, loop: asyncio.AbstractEventLoop) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), BATCH):
            batch = pending[start : start + BATCH]
            try:
                self._executor.submit(_run, loop, batch)
            except RuntimeError:  # shut down: the store was closed meanwhile
                for _fn, future in batch:
                    if not future.done():
                        future.set_exception(self._closed())


def _run(loop: asyncio.AbstractEventLoop, batch: list[_Read]) -> None:
    """On a reader thread: every read of the batch, then one callback on the loop."""
    results: list[tuple[asyncio.Future[Any], Any, BaseException | None]] = []
    for fn, future in batch:
        try:
            results.append((future, fn(), None))
        except BaseException as exc:  # handed to the caller, as run_in_executor does
            results.append((future, None, exc))
    with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits any more
        loop.call_soon_threadsafe(_resolve, results)


def _resolve(results: list[tuple[asyncio.Future[Any], Any, BaseException | None]]) -> None:
    for future, value, exc in results:
        if future.done():  # cancelled by its caller
            continue
        if exc is not None:
            future.set_exception(exc)
        else:
            future.set_result(value)
