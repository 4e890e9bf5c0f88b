"""The escalation loop: every node asks the store for due steps and fires them.

The store is the only timer: due times live in its ``wait_steps`` table, and firing a
step deletes its row in the transaction that stores its notifications, so a step fires
once whichever node (or how many) polls, and survives restarts. No process-local timer
decides anything; the loop only decides how soon to ask again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from backend import waiting
from backend.bus import VisitorStatus
from backend.errors import DeskbellError
from backend.service import Service

log = logging.getLogger(__name__)

BATCH = 200
"""Steps fired per store call; a full batch is followed by the next at once."""


Available = Callable[[frozenset[int]], bool]
"""Whether any of these agents can see a toast now (a session that is online)."""


def always_available(_: frozenset[int]) -> bool:
    return True


async def fire_due(service: Service, now_ms: int, available: Available = always_available) -> int:
    """Bring forward the steps of unseen notifications, then fire what is due at
    ``now_ms``; returns how many steps fired."""
    accepted_at = time.time()
    while await service.store.check_unseen(now_ms, BATCH, available) >= BATCH:
        pass
    fired = await service.store.fire_due_steps(
        now_ms, BATCH, lambda step, recipients: waiting.step_event(step, recipients, now_ms)
    )
    for step, event, committed in fired:
        service.metrics.escalations.labels(str(step.step), str(step.early).lower()).inc()
        await service.publish_stored(event, committed, accepted_at)
        if step.last:  # past its last step: the visitor is told honestly (widget line)
            await service.bus.publish(VisitorStatus(step.facts.public_id, busy=True))
    return len(fired)


async def run(
    service: Service,
    *,
    available: Available = always_available,
    poll: float = waiting.POLL_SECONDS,
    clock: Callable[[], float] = time.time,
) -> None:
    """Fire due steps until cancelled. A failing store is logged and retried."""
    while True:
        try:
            while await fire_due(service, int(clock() * 1000), available) >= BATCH:
                pass
        except DeskbellError as exc:
            log.warning("event=escalation_check_failed reason=%r", exc.message)
        except Exception:
            log.exception("escalation check failed")
        await asyncio.sleep(poll)
