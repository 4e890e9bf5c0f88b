"""Escalation timers: 10,000 waiting conversations with two-step policies.

    python bench/escalation_timers.py --conversations 10000 --steps 30,60 --agents 5

Builds a fresh SQLite store and the backend's service (no sockets: the cost measured
is the timers'), creates N conversations in one inbox whose policy has the given steps
(each a wait of that many seconds, to the inbox), then runs the backend's escalation
loop (backend.escalation.run, the one every node runs) until every step has fired.
Each conversation waits; each step stores a ``chat.conversation.waiting``
notification for each agent of the inbox.

Figures:
- lateness: when a step was stored minus its due time (p50, p99, max);
- CPU: process CPU time (every thread, the store's writer included) while the loop
  fired the steps, per waiting conversation, and while it idled over N waiting
  conversations with nothing due (the standing cost of keeping the timers in the store);
- reference: the same due times as bare ``loop.call_at`` callbacks on an asyncio loop
  in the same process (lateness and CPU), a timer that stores and survives nothing.

Prints the command line, the figures and the machine's load average.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shlex
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend import escalation, waiting
from backend.app import open_service
from backend.config import Config
from backend.service import Limits, Service
from backend.store.base import Committed, NewEvent
from backend.store.waiting_sql import epoch_ms

INBOX = "Support"


def _cpu() -> float:
    times = os.times()
    return times.user + times.system


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def _create(service: Service, count: int) -> list[int]:
    """Start ``count`` waits; returns each wait's start (ms)."""
    starts: list[int] = []

    async def one(n: int) -> None:
        session = await service.visitor_start(INBOX, f"Visitor {n}", "Hello?", f"10.0.{n}")
        starts.append(epoch_ms(session.messages[0].created_at))

    for first in range(0, count, 200):
        await asyncio.gather(*(one(n) for n in range(first, min(count, first + 200))))
    return starts


async def deskbell(args: argparse.Namespace, folder: Path) -> dict[str, float]:
    config = Config(db=str(folder / "bench.sqlite3"))
    steps = [int(s) for s in args.steps.split(",")]
    async with open_service(config) as service:
        service.limits = Limits(visitor_starts_per_address=10**9)
        service._rules = service.limits.rules()
        await service.store.add_inbox(INBOX)
        for n in range(args.agents):
            await service.add_agent(f"agent{n}@x.org", f"Agent {n}", [INBOX], None)
        await service.waiting.set_policy(
            INBOX, escalate=[str(s) for s in steps], unseen_after_s=10**6 // 100, clear=False
        )
        created_at = time.monotonic()
        starts = await _create(service, args.conversations)
        create_s = time.monotonic() - created_at
        first_due = min(starts) + steps[0] * 1000
        if time.time() * 1000 > first_due:
            raise SystemExit("creating took longer than the first step: raise --steps")

        # The standing cost: the loop polling N waiting conversations, nothing due.
        idle_for = max(0.0, min(5.0, (first_due - time.time() * 1000) / 1000 - 0.5))
        lateness: list[float] = []
        publish = service.publish_stored
        after_ms = {k: s * 1000 for k, s in enumerate(steps, 1)}

        async def recording(event: NewEvent, committed: Committed, accepted_at: float) -> None:
            # Committed, about to go to the sockets: when recipients would see it.
            due_ms = epoch_ms(event.data["waiting_since"]) + after_ms[event.data["step"]]
            lateness.append((time.time() * 1000 - due_ms) / 1000)
            await publish(event, committed, accepted_at)

        service.publish_stored = recording  # type: ignore[method-assign]
        loop_task = asyncio.create_task(escalation.run(service))
        cpu0 = _cpu()
        await asyncio.sleep(idle_for)
        idle_cpu = _cpu() - cpu0

        expected = args.conversations * len(steps)
        await _wait_until(lambda: time.time() * 1000 >= first_due)
        cpu1 = _cpu()
        fire_started = time.monotonic()
        while len(lateness) < expected:
            await asyncio.sleep(0.05)
        fire_cpu = _cpu() - cpu1
        fire_wall = time.monotonic() - fire_started
        loop_task.cancel()
    return {
        "create_s": create_s,
        "steps_fired": len(lateness),
        "late_p50": statistics.median(lateness),
        "late_p99": _percentile(lateness, 0.99),
        "late_max": max(lateness),
        "fire_cpu_s": fire_cpu,
        "fire_wall_s": fire_wall,
        "cpu_us_per_conversation": fire_cpu / args.conversations * 1e6,
        "idle_s": idle_for,
        "idle_cpu_us_per_conversation_per_s": (
            idle_cpu / idle_for / args.conversations * 1e6 if idle_for else float("nan")
        ),
    }


async def _wait_until(condition: object) -> None:
    while not condition():  # type: ignore[operator]
        await asyncio.sleep(0.01)


async def reference(args: argparse.Namespace) -> dict[str, float]:
    """The same due times as bare loop.call_at timers."""
    loop = asyncio.get_running_loop()
    steps = [int(s) for s in args.steps.split(",")]
    lateness: list[float] = []
    done = asyncio.Event()
    expected = args.conversations * len(steps)
    # Spread like the stored waits: starts over the same span, shifted to start soon.
    base = loop.time() + 0.5
    span = args.reference_span

    def fire(due: float) -> None:
        lateness.append(loop.time() - due)
        if len(lateness) == expected:
            done.set()

    cpu0 = _cpu()
    for n in range(args.conversations):
        start = base + span * n / args.conversations
        for s in steps:
            due = start + s * args.reference_scale
            loop.call_at(due, fire, due)
    await done.wait()
    cpu = _cpu() - cpu0
    return {
        "late_p50": statistics.median(lateness),
        "late_p99": _percentile(lateness, 0.99),
        "late_max": max(lateness),
        "cpu_us_per_conversation": cpu / args.conversations * 1e6,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--conversations", type=int, default=10_000)
    parser.add_argument("--steps", default="30,60", help="seconds of each step, comma-separated")
    parser.add_argument("--agents", type=int, default=5, help="agents of the inbox")
    parser.add_argument(
        "--reference-scale",
        type=float,
        default=0.1,
        help="the reference's timers run this much faster (its cost does not depend on it)",
    )
    parser.add_argument("--reference-span", type=float, default=2.0)
    args = parser.parse_args()
    print("$ python " + " ".join(shlex.quote(a) for a in sys.argv))
    with tempfile.TemporaryDirectory() as folder:
        ours = asyncio.run(deskbell(args, Path(folder)))
    ref = asyncio.run(reference(args))
    print(f"conversations: {args.conversations}, steps: {args.steps} s, agents: {args.agents}")
    print(f"created in {ours['create_s']:.1f} s; steps fired: {ours['steps_fired']:.0f}")
    print("| | lateness p50 | p99 | max | CPU per waiting conversation |")
    print("| --- | --- | --- | --- | --- |")
    print(
        f"| Deskbell (store rows, polled every {waiting.POLL_SECONDS} s) "
        f"| {ours['late_p50'] * 1000:.0f} ms | {ours['late_p99'] * 1000:.0f} ms "
        f"| {ours['late_max'] * 1000:.0f} ms | {ours['cpu_us_per_conversation']:.0f} µs |"
    )
    print(
        f"| reference: bare loop.call_at | {ref['late_p50'] * 1000:.1f} ms "
        f"| {ref['late_p99'] * 1000:.1f} ms | {ref['late_max'] * 1000:.1f} ms "
        f"| {ref['cpu_us_per_conversation']:.1f} µs |"
    )
    print(
        f"firing took {ours['fire_wall_s']:.1f} s wall, {ours['fire_cpu_s']:.1f} s CPU; "
        f"idle polling over {args.conversations} waits: "
        f"{ours['idle_cpu_us_per_conversation_per_s']:.3f} µs CPU per conversation per second "
        f"(measured over {ours['idle_s']:.1f} s)"
    )
    print(f"load average: {os.getloadavg()}")


if __name__ == "__main__":
    main()
