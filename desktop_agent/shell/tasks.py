"""Background tasks started from Qt slots, never lost and never silently failing.

A slot cannot await; it hands a coroutine to :class:`TaskGroup`, which keeps a reference
until the task ends (asyncio holds only weak ones) and logs any failure with its
traceback. Failures the person should see are reported through ``on_error``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

from desktop_agent.errors import DeskbellError

log = logging.getLogger(__name__)


class TaskGroup:
    """Runs coroutines on the running loop and keeps them until they end."""

    def __init__(self) -> None:
        self._tasks: set[asyncio.Task[Any]] = set()

    def spawn(
        self,
        coro: Coroutine[Any, Any, Any],
        what: str,
        on_error: Callable[[DeskbellError], None] | None = None,
    ) -> asyncio.Task[Any]:
        """Start ``coro``; a ``DeskbellError`` goes to ``on_error`` (or the log), any other
        exception is logged with its traceback.

        Raises:
            RuntimeError: no running event loop.
        """
        task = asyncio.get_running_loop().create_task(coro, name=what)
        self._tasks.add(task)

        def done(task: asyncio.Task[Any]) -> None:
            self._tasks.discard(task)
            if task.cancelled():
                return
            exc = task.exception()
            if exc is None:
                return
            if isinstance(exc, DeskbellError):
                log.warning("%s failed: %s", what, exc)
                if on_error is not None:
                    on_error(exc)
            else:
                log.error("%s failed", what, exc_info=exc)

        task.add_done_callback(done)
        return task

    @property
    def pending(self) -> int:
        """How many tasks are still running."""
        return len(self._tasks)

    async def cancel_all(self) -> None:
        """Cancel every running task and wait for them to end."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
