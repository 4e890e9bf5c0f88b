"""Watch a private D-Bus with the real `dbus-monitor`, for assertions on what was sent.

    with BusMonitor(session.dbus_address, "interface='org.freedesktop.Notifications'") as mon:
        ...  # code under test
        notify = mon.wait_for(lambda m: m.member == "Notify")
        assert notify.strings[4] == "escaped body"

A reader thread parses the monitor's text output into `Captured` messages; `wait_for`
blocks on a condition variable (use `wait_for_async` from async tests), never on a sleep.
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_STRING = re.compile(r'^\s*string "(.*)"$')
_MEMBER = re.compile(r"member=(\S+)")
_INTERFACE = re.compile(r"interface=([^;\s]+)")


@dataclass
class Captured:
    """One message as dbus-monitor printed it."""

    kind: str  # "method call", "signal", "method return", "error"
    header: str
    body_lines: list[str] = field(default_factory=list)

    @property
    def member(self) -> str:
        match = _MEMBER.search(self.header)
        return match.group(1) if match else ""

    @property
    def interface(self) -> str:
        match = _INTERFACE.search(self.header)
        return match.group(1) if match else ""

    @property
    def strings(self) -> list[str]:
        """Every string argument (also those inside arrays and dicts), in order."""
        return [m.group(1) for line in self.body_lines if (m := _STRING.match(line))]

    @property
    def text(self) -> str:
        return "\n".join([self.header, *self.body_lines])


class BusMonitor:
    """Runs `dbus-monitor --address ADDRESS RULES...` while the `with` block runs."""

    def __init__(self, address: str, *match_rules: str) -> None:
        self._argv = ["dbus-monitor", "--address", address, *match_rules]
        self._messages: list[Captured] = []
        self._condition = threading.Condition()
        self._closed = False
        self._complete = 0  # messages before this index have all their body lines
        self._process: subprocess.Popen[bytes] | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> BusMonitor:
        self._process = subprocess.Popen(
            self._argv, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
        )
        self._thread = threading.Thread(target=self._read, name="dbus-monitor", daemon=True)
        self._thread.start()
        # dbus-monitor is eavesdropping once the bus told it its unique name.
        self.wait_for(lambda m: m.member == "NameAcquired", include_seen=True)
        with self._condition:
            self._messages.clear()
            self._complete = 0
        return self

    def __exit__(self, *exc: object) -> None:
        assert self._process is not None and self._thread is not None
        self._process.terminate()
        self._process.wait(5)
        self._thread.join(5)
        assert self._process.stdout is not None
        self._process.stdout.close()

    @property
    def messages(self) -> list[Captured]:
        with self._condition:
            return list(self._messages)

    def wait_for(
        self,
        predicate: Callable[[Captured], bool],
        timeout: float = 5.0,
        *,
        include_seen: bool = True,
    ) -> Captured:
        """Return the first captured message matching `predicate`, waiting up to `timeout`.

        Raises AssertionError (with everything seen) when none arrives in time.
        """
        deadline = time.monotonic() + timeout
        with self._condition:
            start = 0 if include_seen else len(self._messages)
            while True:
                complete = self._messages[start : self._complete]
                for message in complete:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    seen = "\n".join(m.text for m in self._messages)
                    raise AssertionError(f"no matching D-Bus message in {timeout} s; saw:\n{seen}")
                self._condition.wait(remaining)

    async def wait_for_async(
        self, predicate: Callable[[Captured], bool], timeout: float = 5.0
    ) -> Captured:
        """`wait_for` for async tests: waits in a worker thread, the loop keeps running."""
        return await asyncio.to_thread(self.wait_for, predicate, timeout)

    def _read(self) -> None:
        assert self._process is not None and self._process.stdout is not None
        fd = self._process.stdout.fileno()
        pending = ""
        while chunk := os.read(fd, 65536):
            pending += chunk.decode(errors="replace")
            *lines, pending = pending.split("\n")
            # dbus-monitor flushes after each message: when the pipe is drained right after
            # a full line, the last message has all its lines.
            drained = not pending and not select.select([fd], [], [], 0)[0]
            with self._condition:
                for line in lines:
                    if line and not line[0].isspace():
                        self._messages.append(Captured(line.split(" time=", 1)[0], line))
                    elif self._messages:
                        self._messages[-1].body_lines.append(line)
                self._complete = len(self._messages) if drained else len(self._messages) - 1
                self._condition.notify_all()
        with self._condition:
            self._closed = True
            self._complete = len(self._messages)
            self._condition.notify_all()
