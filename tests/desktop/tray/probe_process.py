"""The tray probe as seen from a test: start it, send commands, wait for its lines."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

from tests.support.desktop_session import DesktopSession

PROBE = Path(__file__).with_name("tray_probe.py")
REPO_ROOT = Path(__file__).resolve().parents[3]
LINE_TIMEOUT = 20.0
"""Qt's first start on Xvfb can take a few seconds on a busy two-core machine."""


class TrayProbe:
    """The running ``tray_probe.py``: send it commands, wait for the lines it prints."""

    def __init__(self, process: asyncio.subprocess.Process, stderr_path: Path) -> None:
        self.process = process
        self.stderr_path = stderr_path
        self.lines: list[str] = []

    @classmethod
    async def start(cls, session: DesktopSession, log_dir: Path) -> TrayProbe:
        """Start the probe on the session's display and bus; return once it is ready."""
        env = dict(session.env, QT_QPA_PLATFORM="xcb", PYTHONPATH=str(REPO_ROOT))
        stderr_path = log_dir / "tray_probe.stderr"
        with stderr_path.open("wb") as stderr:
            process = await asyncio.create_subprocess_exec(
                sys.executable,
                str(PROBE),
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=stderr,
                env=env,
                cwd=REPO_ROOT,
            )
        probe = cls(process, stderr_path)
        await probe.expect("ready")
        return probe

    async def expect(self, prefix: str, timeout: float = LINE_TIMEOUT) -> str:
        """Return the next printed line that starts with ``prefix`` (others are kept).

        Raises:
            AssertionError: no such line within ``timeout`` s, or the probe exited.
        """
        assert self.process.stdout is not None
        try:
            async with asyncio.timeout(timeout):
                while True:
                    raw = await self.process.stdout.readline()
                    if not raw:
                        raise AssertionError(
                            f"tray probe exited before printing {prefix!r}\n{self.stderr()}"
                        )
                    line = raw.decode().strip()
                    self.lines.append(line)
                    if line.startswith(prefix):
                        return line
        except TimeoutError:
            raise AssertionError(
                f"tray probe printed no {prefix!r} line in {timeout} s; "
                f"lines so far {self.lines}\n{self.stderr()}"
            ) from None

    async def send(self, command: str) -> None:
        """Write one command line to the probe."""
        assert self.process.stdin is not None
        self.process.stdin.write(command.encode() + b"\n")
        await self.process.stdin.drain()

    async def set_state(
        self, unread: int, connection: str = "connected", dnd: bool = False, *, total: int = -1
    ) -> None:
        """Call ``TrayController.set_state`` in the probe and wait until it is applied.

        ``unread`` is also the chat count of the unread object; ``total`` defaults to it.
        """
        total = unread if total < 0 else total
        await self.send(f"state {unread} {connection} {int(dnd)} {unread} {total}")
        await self.expect(f"state {unread}")

    async def stop(self) -> int:
        """Ask the probe to quit; kill it if it does not. Returns its exit status."""
        if self.process.returncode is None:
            try:
                await self.send("quit")
                async with asyncio.timeout(10):
                    return await self.process.wait()
            except (TimeoutError, ConnectionError):
                self.process.kill()
        return await self.process.wait()

    def stderr(self) -> str:
        """What the probe wrote to stderr so far (for failure messages)."""
        try:
            return self.stderr_path.read_text(errors="replace")[-3000:]
        except OSError:
            return ""


ProbeStarter = Callable[[], Awaitable[TrayProbe]]
"""What the ``start_probe`` fixture gives a test: ``probe = await start_probe()``."""
