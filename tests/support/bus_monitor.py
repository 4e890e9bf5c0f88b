"""Watch a private D-Bus with the real `dbus-monitor`, for assertions on what was sent.

    with BusMonitor(session.dbus_address, "interface='org.freedesktop.Notifications'") as mon:
        ...  # code under test
        notify = mon.wait_for(lambda m: m.member == "Notify")
        assert notify.strings[4] == "escaped body"

A reader thread parses the monitor's text output into `Captured` messages; `wait_for`
blocks on a condition variable (use `wait_for_async` from async tests), never on a sleep.

dbus-monitor writes its text a line at a time and marks no message's end: a message is
known to have all its lines only once the next one's header line is out. So the monitor
also watches a marker signal of its own, and to complete the newest message it sends
one through the bus (after that message, so dbus-monitor prints it after that message's
last line) and waits for it. Only complete messages are ever handed out.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

_STRING = re.compile(r'^\s*string "(.*)"$')
_MEMBER = re.compile(r"member=(\S+)")
_INTERFACE = re.compile(r"interface=([^;\s]+)")
_MARKER_INTERFACE = "org.deskbell.BusMonitor"
_MARKER_RULE = f"type='signal',interface='{_MARKER_INTERFACE}'"


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
        # Without rules dbus-monitor shows everything, the markers included.
        rules = [*match_rules, _MARKER_RULE] if match_rules else []
        self._argv = ["dbus-monitor", "--address", address, *rules]
        self._address = address
        self._messages: list[Captured] = []
        self._condition = threading.Condition()
        self._closed = False
        self._complete = 0  # messages before this index have all their body lines
        self._in_marker = False  # the lines being read belong to a marker
        self._markers = 0  # markers read so far
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
            del self._messages[: self._complete]
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
        """The messages captured so far, each with all its lines."""
        self._complete_newest()
        with self._condition:
            return self._messages[: self._complete]

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
        checked = start
        while True:
            with self._condition:
                for message in self._messages[checked : self._complete]:
                    if predicate(message):
                        return message
                checked = max(checked, self._complete)
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._closed:
                    seen = "\n".join(m.text for m in self._messages)
                    raise AssertionError(f"no matching D-Bus message in {timeout} s; saw:\n{seen}")
                if self._complete == len(self._messages):
                    self._condition.wait(remaining)
                    continue
            self._complete_newest(remaining)

    def _complete_newest(self, timeout: float = 5.0) -> None:
        """Return once every message captured so far has all its lines: send a marker
        signal through the bus and wait until dbus-monitor has printed it."""
        with self._condition:
            if self._complete == len(self._messages) or self._closed:
                return
            markers = self._markers
        subprocess.run(
            [
                "dbus-send",
                f"--bus={self._address}",
                "--type=signal",
                "/org/deskbell/BusMonitor",
                f"{_MARKER_INTERFACE}.Marker",
            ],
            check=True,
            timeout=timeout,
        )
        with self._condition:
            if not self._condition.wait_for(
                lambda: self._markers > markers or self._closed, timeout
            ):
                raise AssertionError(f"dbus-monitor did not print a marker in {timeout} s")

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
            with self._condition:
                for line in lines:
                    if line and not line[0].isspace():
                        # A header: every message before it has all its lines.
                        self._complete = len(self._messages)
                        self._in_marker = _MARKER_INTERFACE in line
                        if self._in_marker:
                            self._markers += 1
                        else:
                            self._messages.append(Captured(line.split(" time=", 1)[0], line))
                    elif self._messages and not self._in_marker:
                        self._messages[-1].body_lines.append(line)
                self._condition.notify_all()
        with self._condition:
            self._closed = True
            self._complete = len(self._messages)
            self._condition.notify_all()
