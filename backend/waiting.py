"""Waiting visitors, the pure part: escalation policies and steps as plain values.

No I/O and no clock: every function that needs the time takes ``now_ms`` (milliseconds
since the Unix epoch). The store keeps each wait's steps and their due times; the
escalation loop (:mod:`backend.escalation`) asks it for the due ones and builds their
notifications here.
"""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec

from backend import protocol
from backend.store.base import DueStep, NewEvent, PolicyRow
from backend.store.waiting_sql import epoch_ms

POLL_SECONDS = 0.25
"""How often each node asks the store for due steps: a step reaches its recipients
within this much (plus a commit) of its due time."""


class PolicyError(ValueError):
    """A policy argument that cannot be accepted; the message says what to write."""


def parse_step(text: str) -> protocol.EscalationStep:
    """``SECONDS[:TARGET]`` as the CLI takes it (``60``, ``120:inbox:Billing``,
    ``300:lead@example.com``).

    Raises:
        PolicyError: not a positive whole number of seconds, or an unknown target form.
    """
    seconds, colon, target = text.partition(":")
    # ASCII digits only: str.isdigit() also takes "²" (which int() refuses) and "٣".
    if not (seconds.isascii() and seconds.isdigit()) or int(seconds) < 1:
        raise PolicyError(
            f"--escalate {text}: start with a whole number of seconds above 0, "
            "e.g. --escalate 120 or --escalate 300:inbox:Leads"
        )
    if colon and not target:
        raise PolicyError(f"--escalate {text}: name a target after the colon, or leave it out")
    try:
        return msgspec.convert(
            {"after_s": int(seconds), "to": target or "inbox"}, protocol.EscalationStep
        )
    except msgspec.ValidationError:
        raise PolicyError(
            f"--escalate {text}: the target must be inbox, inbox:<name> or an agent's email, "
            f"and the wait at most {protocol.MAX_STEP_SECONDS} seconds"
        ) from None


def ordered_steps(steps: list[protocol.EscalationStep]) -> list[tuple[int, str]]:
    """Steps as stored, numbered from 1 in order of their wait (ties keep their order)."""
    return [(s.after_s, s.to) for s in sorted(steps, key=lambda s: s.after_s)]


def policy_view(inbox: str, row: PolicyRow) -> protocol.InboxPolicy:
    return protocol.InboxPolicy(
        inbox=inbox,
        escalate=[protocol.EscalationStep(after_s=a, to=t) for a, t in row.steps],
        unseen_after_s=row.unseen_after_s,
    )


def schedule(start_ms: int, steps: list[tuple[int, str]]) -> list[tuple[int, int, str]]:
    """(step number, due time, target) of a wait that started at ``start_ms``; the
    store computes the same in SQL (waiting_sql.SCHEDULE)."""
    return [(k, start_ms + after * 1000, to) for k, (after, to) in enumerate(steps, 1)]


def waited_seconds(start_ms: int, now_ms: int) -> int:
    """Whole seconds waited (never negative, whatever the clocks say)."""
    return max(0, now_ms - start_ms) // 1000


def step_event(step: DueStep, recipients: tuple[int, ...], now_ms: int) -> NewEvent:
    """The ``chat.conversation.waiting`` notification of a step that fired at ``now_ms``."""
    waited = waited_seconds(epoch_ms(step.waiting_since), now_ms)
    facts = step.facts
    data = protocol.WaitingData(
        waiting_since=step.waiting_since, step=step.step, waited_s=waited, early=step.early
    )
    return NewEvent(
        kind=protocol.KIND_CONVERSATION_WAITING,
        title=f"{facts.visitor_name} is still waiting",
        body=f"No reply for {duration_text(waited)} in {facts.inbox.name}.",
        conversation_public_id=facts.public_id,
        conversation_id=facts.id,
        url=None,
        data=msgspec.to_builtins(data)
        | {"inbox": facts.inbox.name, "visitor_name": facts.visitor_name},
        created_at=_iso(now_ms),
        recipients=recipients,
    )


def duration_text(seconds: int) -> str:
    """``45 s``, ``2 min``, ``1 h 5 min``: how long, for a person."""
    if seconds < 60:
        return f"{seconds} s"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


def _iso(now_ms: int) -> str:
    stamp = datetime.fromtimestamp(now_ms / 1000, UTC).isoformat(timespec="milliseconds")
    return stamp.replace("+00:00", "Z")
