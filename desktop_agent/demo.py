"""Visitor simulator for the demo: website visitors who open chats and write follow-ups.

    python -m desktop_agent.demo --server ws://127.0.0.1:8765 [--inbox Support] [--every 6]

Every few seconds a new visitor opens a conversation on ``/visitor`` with a realistic
first message, and some write again a little later. Replies from agents are printed,
so whoever answers in the tray app sees the visitor receive it. Ctrl+C (or SIGTERM)
stops it cleanly. It speaks the widget's own channel with ``backend.protocol`` frames.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import random
import signal
import sys
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
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
)


@dataclass(frozen=True)
class Plan:
    """How busy the simulated website is.

    Attributes:
        every: seconds between new visitors (on average).
        follow_up_after: seconds (on average) before a visitor writes again.
        follow_up_chance: probability that a visitor writes again, each time.
        stay: how long a visitor stays (seconds) before leaving.
    """

    every: float = 6.0
    follow_up_after: float = 8.0
    follow_up_chance: float = 0.6
    stay: float = 120.0


class Simulator:
    """Opens conversations on a server's ``/visitor`` channel and prints agent replies.

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

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    async def run(self, count: int = 0) -> None:
        """Bring ``count`` visitors (0: until cancelled), one every ``plan.every`` seconds."""
        async with asyncio.TaskGroup() as group:
            number = 0
            while count == 0 or number < count:
                name = NAMES[number % len(NAMES)]
                group.create_task(self.visit(name))
                number += 1
                if count == 0 or number < count:
                    await asyncio.sleep(self.rng.uniform(0.5, 1.5) * self.plan.every)

    async def visit(self, name: str) -> None:
        """One visitor: open a conversation, maybe write again, print agent replies."""
        opener = self.rng.choice(OPENERS).format(order=self.rng.randint(1000, 9999))
        try:
            async with connect(self.url, subprotocols=[Subprotocol(SUBPROTOCOL)]) as ws:
                await self._request(
                    ws, VisitorStart(id=next(self._ids), inbox=self.inbox, name=name, text=opener)
                )
                self.started += 1
                self.say(f"visitor  {name}: {opener}")
                listener = asyncio.create_task(self._listen(ws, name))
                try:
                    await self._follow_ups(ws, name)
                finally:
                    listener.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await listener
        except (OSError, InvalidHandshake, InvalidStatus) as exc:
            self.say(f"visitor  {name} could not reach {self.url}: {exc}")
        except ConnectionClosed:
            self.say(f"visitor  {name}: the server closed the chat")
        except VisitorRefused as exc:
            self.say(f"visitor  {name} was turned away: {exc}")

    async def _follow_ups(self, ws: ClientConnection, name: str) -> None:
        loop = asyncio.get_running_loop()
        leave_at = loop.time() + self.plan.stay
        while loop.time() < leave_at:
            wait = self.rng.uniform(0.5, 1.5) * self.plan.follow_up_after
            await asyncio.sleep(min(wait, max(0.0, leave_at - loop.time())))
            if loop.time() >= leave_at or self.rng.random() > self.plan.follow_up_chance:
                continue
            text = self.rng.choice(FOLLOW_UPS)
            frame = VisitorSend(id=next(self._ids), text=text, client_msg_id=uuid.uuid4().hex)
            await ws.send(encode(frame), text=True)
            self.say(f"visitor  {name}: {text}")

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
    parser.add_argument("--every", type=float, default=6.0, help="seconds between visitors")
    parser.add_argument("--count", type=int, default=0, help="visitors in all (0: no end)")
    parser.add_argument("--seed", type=int, help="random seed, for a repeatable run")
    return parser.parse_args(argv)


async def _main(args: argparse.Namespace) -> None:
    simulator = Simulator(
        args.server,
        args.inbox,
        Plan(every=args.every),
        rng=random.Random(args.seed),
    )
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
