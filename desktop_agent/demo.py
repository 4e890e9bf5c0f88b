"""Visitor simulator for the demo: website visitors who open chats and write follow-ups.

    python -m desktop_agent.demo --server ws://127.0.0.1:8765 [--inbox Support] [--every 15]
    python -m desktop_agent.demo --server ws://127.0.0.1:8765 --flood    # a busy day

Calm by default, as a help desk is: a new visitor every fifteen seconds or so, and a
message (a new chat or a follow-up) every few seconds in all, never the same line twice
in a row. ``--flood`` brings a visitor every half second, each writing many follow-ups.
Replies from agents are printed, so whoever answers in the tray app sees the visitor
receive it. Ctrl+C (or SIGTERM) stops it cleanly. It speaks the widget's own channel
with ``backend.protocol`` frames.

What happens when is decided by :func:`schedule`, a pure generator (tests read it
without waiting); :class:`Simulator` only plays it over the network.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import heapq
import itertools
import random
import signal
import sys
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TextIO

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus
from websockets.typing import Subprotocol

from backend.protocol import (
    SUBPROTOCOL,
    Error,
    MessagePush,
    ProtocolError,
    VisitorSend,
    VisitorStart,
    decode_as,
    encode,
    peek,
)
from desktop_agent.core.server_url import channel_url

NAMES = (
    "Dana Smith", "Lee Wong", "Ana Ruiz", "Kim Park", "Omar Haddad", "Priya Nair",
    "Tom Becker", "Sofia Rossi", "Jonas Berg", "Aisha Bello", "Mateo García", "Yuki Tanaka",
)  # fmt: skip

OPENERS = (
    "Hi, my order #{order} has not arrived yet. Can you check where it is?",
    "Hello! I was charged twice for order #{order}.",
    "Can I still change the delivery address for order #{order}?",
    "Do you ship to Norway? I can't find it in the checkout.",
    "The discount code SPRING10 says it has expired, but the banner says it runs all week.",
    "Hi there, how do I return a jacket that doesn't fit?",
    "My account is locked after I reset my password. Help?",
    "Is the blue backpack coming back in stock soon?",
)

FOLLOW_UPS = (
    "Any news?",
    "The tracking page just says 'label created'.",
    "I can send a screenshot if that helps.",
    "Thanks, I'll wait here.",
    "Also, could you send the invoice again?",
    "Sorry, one more thing: <b>is</b> gift wrapping free?",
    "Is anyone there?",
    "The order number is on the confirmation email, right?",
    "I ordered on Monday, if that helps.",
    "My email address is the one on the order.",
    "Can you call me instead? I'm driving later.",
    "OK, found the receipt. What do you need from it?",
)


@dataclass(frozen=True)
class Plan:
    """How busy the simulated website is.

    Attributes:
        every: seconds between new visitors (on average).
        follow_up_after: seconds (on average) between a visitor's messages.
        follow_up_chance: probability that a visitor writes again, each time.
        max_follow_ups: follow-ups one visitor writes at most (below the number of
            FOLLOW_UPS, so that nobody repeats a line).
        stay: how long a visitor stays (seconds) before leaving.
    """

    every: float = 15.0
    follow_up_after: float = 15.0
    follow_up_chance: float = 0.6
    max_follow_ups: int = 2
    stay: float = 120.0

    @classmethod
    def flood(cls) -> Plan:
        """A busy day: a visitor every half second, each writing every few seconds."""
        return cls(every=0.5, follow_up_after=3.0, follow_up_chance=0.9, max_follow_ups=10)


@dataclass(frozen=True)
class Step:
    """One thing a visitor does, ``at`` seconds after the simulation started."""

    at: float
    visitor: int
    """Which visitor, counting from 0 in order of arrival."""
    name: str
    text: str
    opens: bool
    """True for the message that opens the visitor's conversation."""


@dataclass
class _Writer:
    """A visitor still to write: the next time and how many follow-ups are left."""

    at: float
    visitor: int
    left: int
    leaves_at: float
    used: set[str] = field(default_factory=set)

    def __lt__(self, other: _Writer) -> bool:
        return (self.at, self.visitor) < (other.at, other.visitor)


def schedule(plan: Plan, rng: random.Random, count: int = 0) -> Iterator[Step]:
    """Every step of a simulation, in time order: ``count`` visitors (0: no end).

    A visitor never repeats a line, and no line follows the same line (the same text
    from two visitors one after the other would look like a glitch).
    """
    waiting: list[_Writer] = []
    arrivals = itertools.count()
    next_arrival = 0.0
    last_text = ""

    def pick(options: Sequence[str], used: set[str]) -> str:
        fresh = [o for o in options if o not in used and o != last_text]
        return rng.choice(fresh or [o for o in options if o != last_text] or list(options))

    def gap(mean: float) -> float:
        return rng.uniform(0.5, 1.5) * mean

    while True:
        if next_arrival < float("inf") and (not waiting or next_arrival <= waiting[0].at):
            number = next(arrivals)
            name = NAMES[number % len(NAMES)]
            last_text = pick(OPENERS, set())  # the template: order numbers differ anyway
            opener = last_text.format(order=rng.randint(1000, 9999))
            yield Step(next_arrival, number, name, opener, opens=True)
            writer = _Writer(next_arrival, number, plan.max_follow_ups, next_arrival + plan.stay)
            _plan_next(writer, plan, rng, gap, waiting)
            next_arrival = (
                float("inf") if count and number + 1 >= count else next_arrival + gap(plan.every)
            )
            continue
        if not waiting:
            return
        writer = heapq.heappop(waiting)
        text = pick(FOLLOW_UPS, writer.used)
        writer.used.add(text)
        last_text = text
        yield Step(writer.at, writer.visitor, NAMES[writer.visitor % len(NAMES)], text, False)
        writer.left -= 1
        _plan_next(writer, plan, rng, gap, waiting)


def _plan_next(
    writer: _Writer,
    plan: Plan,
    rng: random.Random,
    gap: Callable[[float], float],
    waiting: list[_Writer],
) -> None:
    """Queue the writer's next follow-up, if it writes one before it leaves."""
    at = writer.at
    while writer.left > 0:
        at += gap(plan.follow_up_after)
        if at >= writer.leaves_at:
            return
        if rng.random() < plan.follow_up_chance:
            writer.at = at
            heapq.heappush(waiting, writer)
            return


class Simulator:
    """Plays a :func:`schedule` on a server's ``/visitor`` channel; prints agent replies.

    Args:
        server_url: the Deskbell server (``ws://host:port``).
        inbox: the inbox visitors write to.
        plan: how often visitors come and write.
        rng: randomness (injectable for tests).
        out: where to print what happens.
    """

    def __init__(
        self,
        server_url: str,
        inbox: str,
        plan: Plan = Plan(),
        rng: random.Random | None = None,
        out: TextIO = sys.stdout,
    ) -> None:
        self.url = channel_url(server_url, "visitor")
        self.inbox = inbox
        self.plan = plan
        self.rng = rng or random.Random()
        self.out = out
        self.started = 0
        self.replies_seen = 0
        self.replied = asyncio.Event()
        """Set when the first agent reply reached a visitor."""
        self._ids = itertools.count(1)
        self._open: dict[int, ClientConnection] = {}

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def run(self, count: int = 0) -> None:
        """Bring ``count`` visitors (0: until cancelled), as :func:`schedule` says."""
        loop = asyncio.get_running_loop()
        began = loop.time()
        async with asyncio.TaskGroup() as group:
            for step in schedule(self.plan, self.rng, count):
                await asyncio.sleep(max(0.0, began + step.at - loop.time()))
                if step.opens:
                    group.create_task(self.visit(step))
                else:
                    await self._follow_up(step)

    async def visit(self, step: Step) -> None:
        """One visitor: open a conversation, stay a while, print agent replies."""
        name = step.name
        try:
            async with connect(self.url, subprotocols=[Subprotocol(SUBPROTOCOL)]) as ws:
                await self._request(
                    ws,
                    VisitorStart(id=next(self._ids), inbox=self.inbox, name=name, text=step.text),
                )
                self.started += 1
                self.say(f"visitor  {name}: {step.text}")
                self._open[step.visitor] = ws
                try:
                    await asyncio.wait_for(self._listen(ws, name), self.plan.stay)
                except TimeoutError:
                    pass  # the visitor leaves
                finally:
                    del self._open[step.visitor]
        except (OSError, InvalidHandshake, InvalidStatus) as exc:
            self.say(f"visitor  {name} could not reach {self.url}: {exc}")
        except ConnectionClosed:
            self.say(f"visitor  {name}: the server closed the chat")
        except VisitorRefused as exc:
            self.say(f"visitor  {name} was turned away: {exc}")

    async def _follow_up(self, step: Step) -> None:
        ws = self._open.get(step.visitor)
        if ws is None:  # not connected (yet, or any more): the line is skipped
            return
        frame = VisitorSend(id=next(self._ids), text=step.text, client_msg_id=uuid.uuid4().hex)
        with contextlib.suppress(ConnectionClosed):
            await ws.send(encode(frame), text=True)
            self.say(f"visitor  {step.name}: {step.text}")

    async def _request(self, ws: ClientConnection, frame: VisitorStart) -> None:
        await ws.send(encode(frame), text=True)
        while True:
            reply = peek(await ws.recv())
            if reply.id == frame.id and reply.type == "error":
                raise VisitorRefused(decode_as(reply.raw, Error).message)
            if reply.id == frame.id:
                return

    async def _listen(self, ws: ClientConnection, name: str) -> None:
        async for raw in ws:
            try:
                frame = peek(raw)
                if frame.type != "message":
                    continue
                message = decode_as(frame.raw, MessagePush).message
            except ProtocolError:
                continue
            if message.author.kind == "agent":
                self.replies_seen += 1
                self.replied.set()
                self.say(f"agent    {message.author.name} → {name}: {message.body}")


class VisitorRefused(Exception):
    """The server refused to open the conversation (unknown inbox, rate limit)."""


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m desktop_agent.demo",
        description="Simulate website visitors chatting with a Deskbell help desk.",
    )
    parser.add_argument("--server", default="ws://127.0.0.1:8765", help="server address")
    parser.add_argument("--inbox", default="Support", help="inbox the visitors write to")
    parser.add_argument(
        "--every",
        type=float,
        help=f"seconds between new visitors (default {Plan().every:g}; --flood: "
        f"{Plan.flood().every:g})",
    )
    parser.add_argument(
        "--flood",
        action="store_true",
        help="a busy day: many visitors writing often (to try the toasts' coalescing)",
    )
    parser.add_argument("--count", type=int, default=0, help="visitors in all (0: no end)")
    parser.add_argument("--seed", type=int, help="random seed, for a repeatable run")
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    plan = Plan.flood() if args.flood else Plan()
    if args.every is not None:
        plan = dataclasses.replace(plan, every=args.every)
    simulator = Simulator(args.server, args.inbox, plan, rng=random.Random(args.seed))
    task = asyncio.create_task(simulator.run(args.count))
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, task.cancel)
    simulator.say(f"visitors are coming to {args.inbox} at {args.server}; Ctrl+C stops them")
    with contextlib.suppress(asyncio.CancelledError):
        await task
    simulator.say(f"visitor simulator stopped after {simulator.started} conversations")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until Ctrl+C; exit status 0."""
    asyncio.run(_main(parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
